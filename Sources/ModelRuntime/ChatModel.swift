import Foundation
import AblabCore

/// A chat checkpoint ready to use: weights, tokenizer and chat template loaded from one path (a GGUF
/// file or a Hugging Face folder), with the study's system-prompt setting applied to every prompt.
public final class ChatModel {
    public let path: String
    public let transformer: Transformer
    public let tokenizer: BPETokenizer
    public let template: ChatTemplate
    public let systemPrompt: SystemPrompt

    public init(path: String, systemPrompt: SystemPrompt = .modelDefault, chatFormat: String? = nil) throws {
        self.path = path
        let tok = try LoadedTokenizer.load(path: path)
        self.tokenizer = tok.tokenizer
        self.template = try tok.chatTemplate(format: chatFormat)
        self.systemPrompt = systemPrompt
        self.transformer = try Transformer.load(path: path)
    }

    public var config: ModelConfig { transformer.config }

    /// The exact system text used (empty when there is no system turn), for file headers.
    public var systemPromptText: String {
        switch systemPrompt {
        case .modelDefault: return template.defaultSystemPrompt ?? ""
        case .custom(let s): return s
        case .none: return ""
        }
    }

    /// Chat-formatted token ids of a single user turn, with the generation prompt.
    public func encodeChat(user: String) -> [Int] {
        tokenizer.encode(template.renderPrompt(user: user, system: systemPrompt)).map(Int.init)
    }

    /// Chat-formatted token ids of a whole conversation, with the generation prompt.
    public func encodeChat(_ messages: [ChatMessage]) -> [Int] {
        let insert: Bool
        if case .none = systemPrompt { insert = false } else { insert = true }
        var msgs = messages
        if case .custom(let s) = systemPrompt, messages.first?.role != "system" { msgs.insert(.system(s), at: 0) }
        return tokenizer.encode(template.render(msgs, addGenerationPrompt: true, insertDefaultSystem: insert)).map(Int.init)
    }

    /// End-of-sequence ids: the model's plus the template's end-of-turn tokens.
    public var eosIds: Set<Int> {
        Set(config.eosIds).union(tokenizer.eosTokenIds.map(Int.init))
    }

    /// Decoded text of generated ids, without special tokens.
    public func decode(_ ids: [Int]) -> String {
        tokenizer.decode(ids.map { Int32($0) }, skipSpecial: true)
    }

    /// Number of template tokens after the user's text (the default recording positions).
    public var postInstructionTokens: Int { template.tokenCountAfterUserText(tokenizer) }
}
