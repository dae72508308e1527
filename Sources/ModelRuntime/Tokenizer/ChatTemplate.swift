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
    /// Whatever the model's template does without a system message (SmolLM2 and Qwen2.5 insert their own,
    /// Llama 3.1 writes its date header).
    case modelDefault
    /// This text as the system turn (an empty string gives an empty system turn).
    case custom(String)
    /// No system turn at all (for templates that always write one, such as Llama 3.1's date header,
    /// the same as `modelDefault`).
    case none
}

/// A chat template that cannot be used: unknown or unsupported, or a conversation it refuses.
public struct ChatTemplateError: AblabError {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
    public var exitCode: Int32 { ExitCode.badInput }
}

/// Renders conversations exactly as transformers' `apply_chat_template(messages, tokenize=False,
/// add_generation_prompt=…)` renders them with the model family's own Jinja template (the reference
/// templates are in `notebooks-scripts/chat_templates/`). Roles are `system`, `user` and `assistant`.
///
/// - ChatML (`chatml`; detected as `smollm2` and `qwen2` when the template inserts SmolLM2's or
///   Qwen2.5's default system turn): `<|im_start|>{role}\n{content}<|im_end|>\n`, generation prompt
///   `<|im_start|>assistant\n`.
/// - `qwen3` (Qwen3): ChatML without a default system turn; an assistant message's `<think>…</think>`
///   block is dropped from the history as the template does; with `thinking = false` the generation
///   prompt ends with an empty `<think>\n\n</think>\n\n` block (`enable_thinking=False`).
/// - `llama3` (Llama 3 / 3-8B-Instruct): `<|begin_of_text|>` then
///   `<|start_header_id|>{role}<|end_header_id|>\n\n{content, trimmed}<|eot_id|>` per message.
/// - `llama3.1` (Llama 3.1 / 3.3): as `llama3`, but the system turn is always written and starts with
///   `Cutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024\n\n` (the template's fixed date).
/// - `gemma2` (Gemma 2): `<bos>`, `<start_of_turn>{user|model}\n{content, trimmed}<end_of_turn>\n`; no
///   system role (an error, as the template raises); roles must alternate user/assistant.
/// - `gemma3` (Gemma 3): as `gemma2`, but a system message is folded into the first user turn as
///   `{system}\n\n` before the (trimmed) user text.
/// - `mistral` (Mistral-7B-Instruct v0.3): `<s>`, `[INST] {user}[/INST]`, assistant ` {content, trimmed}</s>`;
///   the system text goes before the *last* user message (`[INST] {system}\n\n{user}[/INST]`); roles
///   must alternate; no generation prompt.
/// - `phi3` (Phi-3 / 3.5): `<|{role}|>\n{content}<|end|>\n`, an empty system message is left out,
///   generation prompt `<|assistant|>\n` (without it, `<|endoftext|>`).
/// - `glm4` (GLM-4-9B-chat): `[gMASK]<sop>`, then `<|{role}|>\n{content}` for every message with
///   non-empty content, generation prompt `<|assistant|>`.
public struct ChatTemplate: Sendable, Equatable {
    public enum Family: String, Sendable, CaseIterable {
        case smollm2, qwen2, chatml, qwen3
        case llama3
        case llama31 = "llama3.1"
        case gemma2, gemma3, mistral, phi3, glm4
    }
    public let family: Family
    /// The system prompt the template inserts when the conversation has none (nil: it inserts none).
    public let defaultSystemPrompt: String?
    /// Qwen3's thinking switch: false renders `enable_thinking=False` (an empty think block after the
    /// generation prompt); true renders the template's default (the model may think first). Other
    /// families ignore it.
    public var thinking: Bool

    public init(family: Family, defaultSystemPrompt: String?, thinking: Bool = true) {
        self.family = family
        self.defaultSystemPrompt = defaultSystemPrompt
        self.thinking = thinking
    }

    /// Formats a user can name explicitly (`--chat-format`, study key `chat_format`).
    public static let formatNames = ["chatml", "qwen3", "llama3", "llama3.1", "gemma2", "gemma3", "mistral", "phi3", "glm4"]

    static var chooseFormat: String {
        "choose one with --chat-format (study key chat_format); known formats: \(formatNames.joined(separator: ", "))"
    }

    /// The template for a format name given by the user, for models whose own template is unknown.
    public static func named(_ name: String, defaultSystemPrompt: String? = nil) throws -> ChatTemplate {
        let lower = name.lowercased()
        let alias = ["gemma": "gemma3", "llama3.3": "llama3.1", "glm": "glm4", "phi3.5": "phi3"]
        guard let family = Family(rawValue: alias[lower] ?? lower), formatNames.contains(family.rawValue) else {
            throw ChatTemplateError("unknown chat format \"\(name)\"; known formats: \(formatNames.joined(separator: ", "))")
        }
        // Only ChatML carries a default system prompt over from the model's own template.
        return ChatTemplate(family: family, defaultSystemPrompt: family == .chatml ? defaultSystemPrompt : nil)
    }

    /// Recognises the template stored in a model (`tokenizer.chat_template`) by its text: the ChatML
    /// family (SmolLM2's, Qwen2.5's or plain), Qwen3, Llama 3 and 3.1/3.3, Gemma 2 and 3, Mistral v0.3,
    /// Phi-3 and GLM-4. Anything else is a `ChatTemplateError` naming `--chat-format` and the formats known.
    public static func detect(templateSource: String?, architecture: String) throws -> ChatTemplate {
        guard let src = templateSource, !src.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty else {
            throw ChatTemplateError("the \(architecture) model has no chat template (tokenizer.chat_template); \(chooseFormat)")
        }
        func unknown(_ why: String = "") -> ChatTemplateError {
            ChatTemplateError("the chat template of this \(architecture) model is not recognised\(why); \(chooseFormat)")
        }
        func has(_ parts: String...) -> Bool { parts.allSatisfy { src.contains($0) } }

        if has("<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>") {
            if has("Cutting Knowledge Date: December 2023") {
                // Llama 3.2's template writes today's date (strftime_now): the prompt would change every day.
                if has("strftime_now") {
                    throw unknown(" (it writes today's date into the system turn, so prompts would change from day to day; --chat-format llama3.1 uses the fixed date \"26 Jul 2024\")")
                }
                guard has("\"26 Jul 2024\"") else { throw unknown(" (a Llama 3.1-style template with another date)") }
                return ChatTemplate(family: .llama31, defaultSystemPrompt: nil)
            }
            guard has("message['content'] | trim") || has("message['content']|trim") else { throw unknown() }
            return ChatTemplate(family: .llama3, defaultSystemPrompt: nil)
        }
        if has("<start_of_turn>", "<end_of_turn>") {
            if has("System role not supported") { return ChatTemplate(family: .gemma2, defaultSystemPrompt: nil) }
            if has("first_user_prefix") { return ChatTemplate(family: .gemma3, defaultSystemPrompt: nil) }
            throw unknown()
        }
        if has("[INST]", "[/INST]") {
            if has("\"[INST] \" + system_message + \"\\n\\n\" + message[\"content\"] + \"[/INST]\"",
                   "\" \" + message[\"content\"]|trim + eos_token") {
                return ChatTemplate(family: .mistral, defaultSystemPrompt: nil)
            }
            throw unknown(" (only Mistral-7B-Instruct v0.3's [INST] template is implemented)")
        }
        if has("<|user|>", "<|assistant|>", "<|end|>") {
            return ChatTemplate(family: .phi3, defaultSystemPrompt: nil)
        }
        if has("[gMASK]<sop>") {
            if has("<|{{ item['role'] }}|>{{ item['metadata'] }}") { return ChatTemplate(family: .glm4, defaultSystemPrompt: nil) }
            throw unknown(" (only GLM-4-9B-chat's template is implemented)")
        }
        let isChatML = has("<|im_start|>", "<|im_end|>")
            && (has("message['role']") || has("message.role") || has("message[\"role\"]"))
            && (has("message['content']") || has("message.content") || has("message[\"content\"]"))
        guard isChatML else { throw unknown() }
        if has("enable_thinking", "<think>", "</think>") {
            return ChatTemplate(family: .qwen3, defaultSystemPrompt: nil)
        }
        // Features of other ChatML variants whose output this renderer does not reproduce.
        let unsupported = ["<think>", "reasoning_content", "| trim", "|trim", "strip()", "raise_exception"]
            .filter { src.contains($0) }
        guard unsupported.isEmpty else {
            throw unknown(" (a ChatML template using \(unsupported.joined(separator: ", ")), which this renderer does not implement)")
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

    // MARK: rendering

    var isChatML: Bool { family == .smollm2 || family == .qwen2 || family == .chatml || family == .qwen3 }

    /// The template's own beginning-of-sequence text (`bos_token`), written by the template itself.
    var bosText: String {
        switch family {
        case .llama3, .llama31: return "<|begin_of_text|>"
        case .gemma2, .gemma3: return "<bos>"
        case .mistral: return "<s>"
        default: return ""
        }
    }

    /// The texts of the tokens that end the model's turn (generation stops at them).
    public var endOfTurnTokens: [String] {
        switch family {
        case .smollm2, .qwen2, .chatml, .qwen3: return ["<|im_end|>", "<|endoftext|>"]
        case .llama3, .llama31: return ["<|eot_id|>", "<|end_of_text|>"]
        case .gemma2, .gemma3: return ["<end_of_turn>", "<eos>"]
        case .mistral: return ["</s>"]
        case .phi3: return ["<|end|>", "<|endoftext|>"]
        case .glm4: return ["<|user|>", "<|observation|>", "<|endoftext|>"]
        }
    }

    /// Whether the template accepts this conversation (as the Jinja template would render it rather
    /// than raise): roles system/user/assistant (ChatML: any role), Gemma 2 without a system message,
    /// Gemma and Mistral with alternating user/assistant turns after an optional first system message.
    public func check(_ messages: [ChatMessage]) throws {
        if !isChatML || family == .qwen3 {
            for m in messages where !["system", "user", "assistant"].contains(m.role) {
                throw ChatTemplateError("the \(family.rawValue) chat template has no role \"\(AblabText.printable(m.role))\" (system, user and assistant are supported)")
            }
        }
        switch family {
        case .gemma2, .gemma3, .mistral:
            if family == .gemma2, messages.first?.role == "system" {
                throw ChatTemplateError("the gemma2 chat template has no system role (Gemma 2 refuses system messages); use system_prompt = \"\" (no system turn) or --chat-format gemma3, which folds it into the first user turn")
            }
            let loop = messages.first?.role == "system" && family != .gemma2 ? Array(messages.dropFirst()) : messages
            // A later system message is rendered by Gemma's templates like any role, refused by Mistral's.
            for (i, m) in loop.enumerated() where (m.role == "user") != (i % 2 == 0) || (family == .mistral && m.role == "system") {
                throw ChatTemplateError("the \(family.rawValue) chat template needs alternating user/assistant turns after an optional first system message (message \(i + 1 + messages.count - loop.count) is \"\(AblabText.printable(m.role))\")")
            }
        default:
            break
        }
    }

    /// The text of a conversation, exactly as the family's template renders it. The template's default
    /// system turn (ChatML families) is inserted when the first message is not a system message (pass
    /// `insertDefaultSystem: false` for no system turn at all). Throws when the template would refuse
    /// the conversation (`check`).
    public func render(_ messages: [ChatMessage], addGenerationPrompt: Bool, insertDefaultSystem: Bool = true) throws -> String {
        try check(messages)
        return renderChecked(messages, addGenerationPrompt: addGenerationPrompt, insertDefaultSystem: insertDefaultSystem)
    }

    /// `render` for a conversation `check` accepted.
    func renderChecked(_ messages: [ChatMessage], addGenerationPrompt: Bool, insertDefaultSystem: Bool) -> String {
        var out = bosText
        let hasSystem = messages.first?.role == "system"
        switch family {
        case .smollm2, .qwen2, .chatml:
            if insertDefaultSystem, let sys = defaultSystemPrompt, let first = messages.first, first.role != "system" {
                out += "<|im_start|>system\n" + sys + "<|im_end|>\n"
            }
            for m in messages { out += "<|im_start|>" + m.role + "\n" + m.content + "<|im_end|>\n" }
            if addGenerationPrompt { out += "<|im_start|>assistant\n" }

        case .qwen3:
            // The last user turn (a tool response would not count; this renderer has no tool role).
            let lastQuery = messages.lastIndex(where: { $0.role == "user" }) ?? (messages.count - 1)
            for (i, m) in messages.enumerated() {
                if m.role == "user" || m.role == "system" {
                    out += "<|im_start|>" + m.role + "\n" + m.content + "<|im_end|>\n"
                } else {
                    var content = m.content
                    var reasoning = ""
                    if let r = content.range(of: "</think>", options: .backwards) {
                        let first = content.components(separatedBy: "</think>")[0]
                        content = PyString.lstrip(String(content[r.upperBound...]), "\n")
                        let stripped = PyString.rstrip(first, "\n")
                        reasoning = PyString.lstrip(stripped.components(separatedBy: "<think>").last ?? stripped, "\n")
                    }
                    if i > lastQuery && (i == messages.count - 1 || !reasoning.isEmpty) {
                        out += "<|im_start|>assistant\n<think>\n" + PyString.strip(reasoning, "\n") + "\n</think>\n\n"
                            + PyString.lstrip(content, "\n")
                    } else {
                        out += "<|im_start|>assistant\n" + content
                    }
                    out += "<|im_end|>\n"
                }
            }
            if addGenerationPrompt {
                out += "<|im_start|>assistant\n"
                if !thinking { out += "<think>\n\n</think>\n\n" }
            }

        case .llama3:
            for m in messages {
                out += "<|start_header_id|>" + m.role + "<|end_header_id|>\n\n" + PyString.strip(m.content) + "<|eot_id|>"
            }
            if addGenerationPrompt { out += "<|start_header_id|>assistant<|end_header_id|>\n\n" }

        case .llama31:
            let system = hasSystem ? PyString.strip(messages[0].content) : ""
            out += "<|start_header_id|>system<|end_header_id|>\n\n"
            out += "Cutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024\n\n" + system + "<|eot_id|>"
            for m in messages.dropFirst(hasSystem ? 1 : 0) {
                out += "<|start_header_id|>" + m.role + "<|end_header_id|>\n\n" + PyString.strip(m.content) + "<|eot_id|>"
            }
            if addGenerationPrompt { out += "<|start_header_id|>assistant<|end_header_id|>\n\n" }

        case .gemma2, .gemma3:
            let prefix = hasSystem ? messages[0].content + "\n\n" : ""
            for (i, m) in messages.dropFirst(hasSystem ? 1 : 0).enumerated() {
                out += "<start_of_turn>" + (m.role == "assistant" ? "model" : m.role) + "\n" + (i == 0 ? prefix : "")
                out += PyString.strip(m.content) + "<end_of_turn>\n"
            }
            if addGenerationPrompt { out += "<start_of_turn>model\n" }

        case .mistral:
            let loop = Array(messages.dropFirst(hasSystem ? 1 : 0))
            for (i, m) in loop.enumerated() {
                if m.role == "user" {
                    if i == loop.count - 1 && hasSystem {
                        out += "[INST] " + messages[0].content + "\n\n" + m.content + "[/INST]"
                    } else {
                        out += "[INST] " + m.content + "[/INST]"
                    }
                } else {
                    out += " " + PyString.strip(m.content) + "</s>"
                }
            }

        case .phi3:
            for m in messages {
                if m.role == "system" && m.content.isEmpty { continue }
                out += "<|" + m.role + "|>\n" + m.content + "<|end|>\n"
            }
            out += addGenerationPrompt ? "<|assistant|>\n" : "<|endoftext|>"

        case .glm4:
            out += "[gMASK]<sop>"
            for m in messages where !m.content.isEmpty { out += "<|" + m.role + "|>\n" + m.content }
            if addGenerationPrompt { out += "<|assistant|>" }
        }
        return out
    }

    /// Whether a system-prompt choice can be rendered (Gemma 2 has no system role).
    public func check(system: SystemPrompt) throws {
        if case .custom = system { try check([.system(""), .user("")]) }
    }

    /// The messages of a single-turn prompt with the chosen system prompt.
    func promptMessages(user: String, system: SystemPrompt) -> (messages: [ChatMessage], insertDefault: Bool) {
        switch system {
        case .modelDefault: return ([.user(user)], true)
        case .custom(let s): return ([.system(s), .user(user)], true)
        case .none: return ([.user(user)], false)
        }
    }

    /// A single-turn prompt with the chosen system prompt, ready for generation.
    public func renderPrompt(user: String, system: SystemPrompt) throws -> String {
        let (m, insert) = promptMessages(user: user, system: system)
        return try render(m, addGenerationPrompt: true, insertDefaultSystem: insert)
    }

    /// The text between the user's text and the model's answer in a single-turn generation prompt
    /// (ChatML: `<|im_end|>\n<|im_start|>assistant\n`; Llama 3: `<|eot_id|>` and the assistant header;
    /// Mistral: `[/INST]`; …).
    public var userSuffix: String {
        let marker = "\u{1}USER\u{1}"
        let text = renderChecked([.user(marker)], addGenerationPrompt: true, insertDefaultSystem: false)
        guard let r = text.range(of: marker, options: .backwards) else { return "" }
        return String(text[r.upperBound...])
    }

    /// Number of template tokens after the user's text (for ChatML `<|im_end|>`, `\n`, `<|im_start|>`,
    /// `assistant`, `\n`: 5 with Qwen2.5, 6 with SmolLM2 whose vocabulary splits `assistant` in two).
    /// Recording uses these positions by default.
    public func tokenCountAfterUserText(_ tokenizer: BPETokenizer) -> Int {
        tokenizer.encode(userSuffix).count
    }

    /// A generated answer split into its thinking block and the answer proper, as Qwen3's template
    /// splits an assistant message: the text after the last `</think>` (leading newlines removed) is
    /// the answer, the text between `<think>` and it the thinking. An answer that opens `<think>` and
    /// never closes it (cut off while thinking) has an empty answer. Text without `<think>` is all answer.
    public static func splitThinking(_ text: String) -> (thinking: String?, answer: String) {
        if let close = text.range(of: "</think>", options: .backwards) {
            let before = String(text[..<close.lowerBound])
            let thought = before.components(separatedBy: "<think>").last ?? before
            return (PyString.strip(thought, "\n"), PyString.lstrip(String(text[close.upperBound...]), "\n"))
        }
        let lead = PyString.lstrip(text)
        if lead.hasPrefix("<think>") {
            return (PyString.strip(String(lead.dropFirst("<think>".count)), "\n"), "")
        }
        return (nil, text)
    }
}

/// Python's `str.strip` / `lstrip` / `rstrip` (what Jinja's `trim` filter calls), on Unicode scalars:
/// by default the characters Python counts as whitespace (`str.isspace`).
enum PyString {
    static func isSpace(_ s: Unicode.Scalar) -> Bool {
        switch s.value {
        case 0x09...0x0D, 0x1C...0x20, 0x85, 0xA0, 0x1680, 0x2000...0x200A, 0x2028, 0x2029, 0x202F, 0x205F, 0x3000: return true
        default: return false
        }
    }

    static func bounds(_ s: String, _ chars: String?, left: Bool, right: Bool) -> String {
        let set = chars.map { Set($0.unicodeScalars) }
        func drop(_ u: Unicode.Scalar) -> Bool { set.map { $0.contains(u) } ?? isSpace(u) }
        let u = Array(s.unicodeScalars)
        var a = 0, b = u.count
        if left { while a < b && drop(u[a]) { a += 1 } }
        if right { while b > a && drop(u[b - 1]) { b -= 1 } }
        var out = String.UnicodeScalarView()
        out.append(contentsOf: u[a..<b])
        return String(out)
    }

    static func strip(_ s: String, _ chars: String? = nil) -> String { bounds(s, chars, left: true, right: true) }
    static func lstrip(_ s: String, _ chars: String? = nil) -> String { bounds(s, chars, left: true, right: false) }
    static func rstrip(_ s: String, _ chars: String? = nil) -> String { bounds(s, chars, left: false, right: true) }
}
