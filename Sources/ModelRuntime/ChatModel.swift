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

    /// `thinking` is Qwen3's switch (false: the prompt closes an empty think block, as
    /// `enable_thinking=False` renders it); other templates ignore it.
    public init(path: String, systemPrompt: SystemPrompt = .modelDefault, chatFormat: String? = nil,
                thinking: Bool = false) throws {
        self.path = path
        let tok = try LoadedTokenizer.load(path: path)
        self.tokenizer = tok.tokenizer
        var template = try tok.chatTemplate(format: chatFormat)
        template.thinking = thinking
        do { try template.check(system: systemPrompt) } catch let e as ChatTemplateError {
            throw InputError(file: path, "\(e.message)")
        }
        self.template = template
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
    /// (The system-prompt choice was checked against the template when the model was loaded.)
    public func encodeChat(user: String) -> [Int] {
        let (m, insert) = template.promptMessages(user: user, system: systemPrompt)
        return tokenizer.encode(template.renderChecked(m, addGenerationPrompt: true, insertDefaultSystem: insert)).map(Int.init)
    }

    /// Chat-formatted token ids of a whole conversation, with the generation prompt. Throws when the
    /// template refuses the conversation (e.g. Gemma's and Mistral's need alternating turns).
    public func encodeChat(_ messages: [ChatMessage]) throws -> [Int] {
        let insert: Bool
        if case .none = systemPrompt { insert = false } else { insert = true }
        var msgs = messages
        if case .custom(let s) = systemPrompt, messages.first?.role != "system" { msgs.insert(.system(s), at: 0) }
        return tokenizer.encode(try template.render(msgs, addGenerationPrompt: true, insertDefaultSystem: insert)).map(Int.init)
    }

    /// End-of-sequence ids: the model's, the tokenizer's and the template's end-of-turn tokens.
    public var eosIds: Set<Int> {
        var ids = Set(config.eosIds).union(tokenizer.eosTokenIds.map(Int.init))
        for t in template.endOfTurnTokens { if let id = tokenizer.addedTokenId(t) { ids.insert(Int(id)) } }
        return ids
    }

    /// Decoded text of generated ids, without special tokens.
    public func decode(_ ids: [Int]) -> String {
        tokenizer.decode(ids.map { Int32($0) }, skipSpecial: true)
    }

    /// A decoded answer split into its thinking block and the answer the judges see (see
    /// `ChatTemplate.splitThinking`); only Qwen3's template produces thinking blocks.
    public func splitThinking(_ text: String) -> (thinking: String?, answer: String) {
        template.family == .qwen3 ? ChatTemplate.splitThinking(text) : (nil, text)
    }

    /// Number of template tokens after the user's text (the default recording positions).
    public var postInstructionTokens: Int { template.tokenCountAfterUserText(tokenizer) }
}
