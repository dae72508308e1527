import Foundation
import AblabCore

/// A prompt whose chat-formatted tokens, plus the tokens to generate, exceed the model's context.
public struct PromptTooLongError: AblabError {
    /// The prompt file and line ("prompt list" when the prompt came from elsewhere).
    public var file: String
    public var line: Int?
    public var id: String
    /// Chat-formatted tokens of the prompt, or a lower bound when `atLeast`.
    public var tokens: Int
    public var atLeast: Bool
    /// Tokens to generate after the prompt (0 when recording).
    public var newTokens: Int
    public var context: Int
    public var model: String
    /// What to do, e.g. "or pass --skip-too-long to record the others".
    public var remedy: String

    public var description: String {
        var loc = file
        if let line { loc += ":\(line)" }
        let count = (atLeast ? "at least " : "") + "\(tokens) chat-formatted tokens" + (newTokens > 0 ? " + \(newTokens) new tokens = \(atLeast ? "at least " : "")\(tokens + newTokens)" : "")
        return "\(loc) [\(AblabText.printable(id))]: prompt '\(AblabText.printable(id))' has \(count), more than the \(context) tokens of the context of \(model); shorten it or leave it out\(remedy.isEmpty ? "" : ", " + remedy)"
    }
    public var exitCode: Int32 { ExitCode.badInput }
}

extension ChatEncoder {
    /// The chat-formatted tokens of `prompt`, or the error when they and `newTokens` more do not fit the
    /// model's context (`config.contextLength`; no check when the model names none). A text so long that
    /// even at the longest token (three bytes of it per byte after normalisation) it cannot fit is refused
    /// from its length alone, without tokenizing it.
    public func encodeChecked(_ prompt: Prompt, newTokens: Int = 0, remedy: String = "") -> Result<[Int], PromptTooLongError> {
        let text = template.renderPrompt(user: prompt.text, system: systemPrompt)
        func tooLong(_ n: Int, atLeast: Bool, context: Int) -> PromptTooLongError {
            PromptTooLongError(file: prompt.location.file, line: prompt.location.line, id: prompt.id, tokens: n, atLeast: atLeast,
                               newTokens: newTokens, context: context, model: path, remedy: remedy)
        }
        if let context = config.contextLength {
            let perToken = 3 * tokenizer.longestTokenBytes
            let bound = text.utf8.count / perToken
            if bound + newTokens > context { return .failure(tooLong(bound, atLeast: true, context: context)) }
        }
        let ids = tokenizer.encode(text).map(Int.init)
        if let context = config.contextLength, ids.count + newTokens > context {
            return .failure(tooLong(ids.count, atLeast: false, context: context))
        }
        return .success(ids)
    }
}
