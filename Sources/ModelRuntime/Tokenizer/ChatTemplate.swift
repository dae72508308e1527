import AblabCore
import Foundation

/// One turn of a conversation.
public struct ChatMessage: Sendable, Codable, Equatable {
    public var role: String      // "system", "user", "assistant"
    public var content: String
    public init(role: String, content: String) { self.role = role; self.content = content }
    public static func system(_ s: String) -> ChatMessage { ChatMessage(role: "system", content: s) }
    public static func user(_ s: String) -> ChatMessage { ChatMessage(role: "user", content: s) }
    public static func assistant(_ s: String) -> ChatMessage { ChatMessage(role: "assistant", content: s) }
}

/// Which system prompt a conversation gets.
public enum SystemPrompt: Sendable, Equatable {
    /// Whatever the model's template does without a system message (SmolLM2 and Qwen2.5 insert their own).
    case modelDefault
    /// This text as the system turn (an empty string gives an empty system turn).
    case custom(String)
    /// No system turn at all.
    case none
}

/// A chat template that cannot be used: unknown or unsupported.
public struct ChatTemplateError: AblabError {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
    public var exitCode: Int32 { ExitCode.badInput }
}

/// Renders conversations exactly as transformers' `apply_chat_template(messages, tokenize=False,
/// add_generation_prompt=…)` does for the ChatML family (SmolLM2, Qwen2.5, generic ChatML):
/// `<|im_start|>{role}\n{content}<|im_end|>\n` per message, `<|im_start|>assistant\n` as the generation
/// prompt, and the template's default system turn when the first message is not a system message.
public struct ChatTemplate: Sendable, Equatable {
    public enum Family: String, Sendable, CaseIterable {
        case smollm2, qwen2, chatml
    }
    public let family: Family
    /// The system prompt the template inserts when the conversation has none (nil: it inserts none).
    public let defaultSystemPrompt: String?

    public init(family: Family, defaultSystemPrompt: String?) {
        self.family = family
        self.defaultSystemPrompt = defaultSystemPrompt
    }

    /// Formats a user can name explicitly (`--chat-format`, study key `chat_format`).
    public static let formatNames = ["chatml"]

    /// The template for a format name given by the user, for models whose own template is unknown.
    public static func named(_ name: String, defaultSystemPrompt: String? = nil) throws -> ChatTemplate {
        switch name.lowercased() {
        case "chatml": return ChatTemplate(family: .chatml, defaultSystemPrompt: defaultSystemPrompt)
        default:
            throw ChatTemplateError("unknown chat format \"\(name)\"; supported: \(formatNames.joined(separator: ", "))")
        }
    }

    /// Recognises the template stored in a model (`tokenizer.chat_template`): SmolLM2's, Qwen2.5's, or
    /// another plain ChatML template. Anything else is a `ChatTemplateError` saying how to choose a format.
    public static func detect(templateSource: String?, architecture: String) throws -> ChatTemplate {
        let howTo = "choose a format explicitly with --chat-format chatml (study key chat_format = \"chatml\") if the model uses ChatML"
        guard let src = templateSource, !src.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty else {
            throw ChatTemplateError("the \(architecture) model has no chat template (tokenizer.chat_template); \(howTo)")
        }
        let isChatML = src.contains("<|im_start|>") && src.contains("<|im_end|>")
            && (src.contains("message['role']") || src.contains("message.role") || src.contains("message[\"role\"]"))
            && (src.contains("message['content']") || src.contains("message.content") || src.contains("message[\"content\"]"))
        // Features whose output this renderer does not reproduce.
        let unsupported = ["<think>", "reasoning_content", "| trim", "|trim", "strip()", "raise_exception"]
            .filter { src.contains($0) }
        guard isChatML, unsupported.isEmpty else {
            let why = isChatML ? " (it uses \(unsupported.joined(separator: ", ")), which this renderer does not implement)" : ""
            throw ChatTemplateError("the chat template of this \(architecture) model is not a recognised ChatML template\(why); \(howTo)")
        }
        let system = defaultSystem(in: src)
        let family: Family
        if system?.contains("SmolLM") == true { family = .smollm2 }
        else if system?.hasPrefix("You are Qwen") == true { family = .qwen2 }
        else { family = .chatml }
        return ChatTemplate(family: family, defaultSystemPrompt: system)
    }

    /// The literal default system text of a ChatML template: a string literal
    /// `'<|im_start|>system\n…<|im_end|>` with no expression inside.
    static func defaultSystem(in src: String) -> String? {
        let marker = "<|im_start|>system"
        var search = src.startIndex..<src.endIndex
        while let r = src.range(of: marker, range: search) {
            search = r.upperBound..<src.endIndex
            var rest = src[r.upperBound...]
            if rest.hasPrefix("\\n") { rest = rest.dropFirst(2) }
            else if rest.hasPrefix("\n") { rest = rest.dropFirst(1) }
            else { continue }
            guard let end = rest.range(of: "<|im_end|>") else { continue }
            let body = rest[..<end.lowerBound]
            if body.isEmpty || body.contains(where: { "'\"{}+".contains($0) }) { continue }
            return unescape(String(body))
        }
        return nil
    }

    /// Jinja string-literal escapes that can appear in a system prompt.
    static func unescape(_ s: String) -> String {
        guard s.contains("\\") else { return s }
        var out = ""
        var it = s.makeIterator()
        while let c = it.next() {
            if c == "\\", let n = it.next() {
                switch n {
                case "n": out.append("\n")
                case "t": out.append("\t")
                default: out.append(n)
                }
            } else {
                out.append(c)
            }
        }
        return out
    }

    /// The text of a conversation. The template's default system turn is inserted when the first
    /// message is not a system message, as the model's own template does (pass `insertDefaultSystem:
    /// false` for no system turn at all).
    public func render(_ messages: [ChatMessage], addGenerationPrompt: Bool, insertDefaultSystem: Bool = true) -> String {
        var out = ""
        if insertDefaultSystem, let sys = defaultSystemPrompt, let first = messages.first, first.role != "system" {
            out += "<|im_start|>system\n" + sys + "<|im_end|>\n"
        }
        for m in messages {
            out += "<|im_start|>" + m.role + "\n" + m.content + "<|im_end|>\n"
        }
        if addGenerationPrompt { out += generationPrompt }
        return out
    }

    /// A single-turn prompt with the chosen system prompt, ready for generation.
    public func renderPrompt(user: String, system: SystemPrompt) -> String {
        switch system {
        case .modelDefault: return render([.user(user)], addGenerationPrompt: true)
        case .custom(let s): return render([.system(s), .user(user)], addGenerationPrompt: true)
        case .none: return render([.user(user)], addGenerationPrompt: true, insertDefaultSystem: false)
        }
    }

    /// What follows the last message when a generation prompt is added.
    public var generationPrompt: String { "<|im_start|>assistant\n" }

    /// The text between the user's text and the model's answer in a generation prompt.
    public var userSuffix: String { "<|im_end|>\n" + generationPrompt }

    /// Number of template tokens after the user's text (for ChatML `<|im_end|>`, `\n`, `<|im_start|>`,
    /// `assistant`, `\n`: 5 with Qwen2.5, 6 with SmolLM2 whose vocabulary splits `assistant` in two).
    /// Recording uses these positions by default.
    public func tokenCountAfterUserText(_ tokenizer: BPETokenizer) -> Int {
        tokenizer.encode(userSuffix).count
    }
}
