import Foundation
import AblabCore

/// A chat checkpoint ready to use: weights, tokenizer and chat template loaded from one path (a GGUF
/// file or a Hugging Face folder), with the study's system-prompt setting applied to every prompt.
public final class ChatModel {
    public let path: String
    public let transformer: Transformer
    /// Tokenizer, template and system prompt (also usable without the weights).
    public let encoder: ChatEncoder
    public var tokenizer: BPETokenizer { encoder.tokenizer }
    public var template: ChatTemplate { encoder.template }
    public var systemPrompt: SystemPrompt { encoder.systemPrompt }

    public convenience init(path: String, systemPrompt: SystemPrompt = .modelDefault, chatFormat: String? = nil) throws {
        try self.init(encoder: try ChatEncoder(path: path, systemPrompt: systemPrompt, chatFormat: chatFormat))
    }

    /// Loads the weights for an encoder whose checks (prompt lengths, memory, disk) have passed.
    public init(encoder: ChatEncoder) throws {
        self.path = encoder.path
        self.encoder = encoder
        self.transformer = try Transformer.load(path: encoder.path)
    }

    public var config: ModelConfig { transformer.config }

    /// The exact system text used (empty when there is no system turn), for file headers.
    public var systemPromptText: String { encoder.systemPromptText }

    /// Chat-formatted token ids of a single user turn, with the generation prompt.
    public func encodeChat(user: String) -> [Int] { encoder.encodeChat(user: user) }

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
    public var postInstructionTokens: Int { encoder.postInstructionTokens }
}

/// A chat model's tokenizer, chat template, system-prompt setting and configuration, read without the
/// weights: prompts can be tokenized and checked against the context, and memory estimated, before the
/// weights are loaded (`ChatModel(encoder:)`).
public struct ChatEncoder: Sendable {
    public let path: String
    public let tokenizer: BPETokenizer
    public let template: ChatTemplate
    public let systemPrompt: SystemPrompt
    /// The model's configuration and tensor table, read from the files.
    public let header: ModelHeader
    public var config: ModelConfig { header.config }

    public init(path: String, systemPrompt: SystemPrompt = .modelDefault, chatFormat: String? = nil) throws {
        let tok = try LoadedTokenizer.load(path: path)
        self.path = path
        self.tokenizer = tok.tokenizer
        self.template = try tok.chatTemplate(format: chatFormat)
        self.systemPrompt = systemPrompt
        self.header = try ModelHeader.read(path: path)
    }

    /// Chat-formatted token ids of a single user turn, with the generation prompt.
    public func encodeChat(user: String) -> [Int] {
        tokenizer.encode(template.renderPrompt(user: user, system: systemPrompt)).map(Int.init)
    }

    /// Number of template tokens after the user's text (the default recording positions).
    public var postInstructionTokens: Int { template.tokenCountAfterUserText(tokenizer) }

    /// The exact system text used (empty when there is no system turn), for file headers.
    public var systemPromptText: String {
        switch systemPrompt {
        case .modelDefault: return template.defaultSystemPrompt ?? ""
        case .custom(let s): return s
        case .none: return ""
        }
    }
}
