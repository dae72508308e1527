import Foundation
import ModelRuntime

/// A chat or text completion request, checked field by field: a known field of the wrong type or out of
/// range is a 400 naming the field; unknown fields are ignored (clients send extras).
struct ParsedRequest: Sendable {
    enum Input: Sendable { case messages([ChatMessage]), text(String) }
    var model: String
    var input: Input
    var maxTokens: Int?
    var sampling: SamplingOptions
    var stop: [String]
    var stream: Bool
    var includeUsage: Bool
    /// nil: none; k: the chosen token's log-probability and the k most probable.
    var logprobs: Int?
    /// vLLM's extension: decode exactly max_tokens, ignoring end-of-sequence tokens.
    var ignoreEOS: Bool

    init(body: Data, chat: Bool, configuration: ServeConfiguration) throws {
        guard !body.isEmpty else { throw APIError.badRequest("The request has no body; send a JSON object") }
        let root: JSONValue
        switch JSONValue.parse(body) {
        case .success(let v): root = v
        case .failure(let why): throw APIError.badRequest("The body is not valid JSON: \(why.reason)", code: "invalid_json")
        }
        guard case .object(let o) = root else { throw APIError.badRequest("The body must be a JSON object, not \(root.typeName)") }

        func bad(_ key: String, _ what: String) -> APIError {
            APIError.badRequest("'\(key)' must be \(what)", param: key, code: "invalid_type")
        }
        func value(_ key: String) -> JSONValue? {
            guard let v = o[key] else { return nil }
            if case .null = v { return nil }
            return v
        }
        func string(_ key: String) throws -> String? {
            guard let v = value(key) else { return nil }
            guard case .string(let s) = v else { throw bad(key, "a string, not \(v.typeName)") }
            return s
        }
        func int(_ key: String, _ range: ClosedRange<Int>) throws -> Int? {
            guard let v = value(key) else { return nil }
            let i: Int
            switch v {
            case .int(let x): i = x
            case .number(let d) where d == d.rounded() && abs(d) < 9e15: i = Int(d)
            default: throw bad(key, "an integer, not \(v.typeName)")
            }
            guard range.contains(i) else {
                throw APIError.badRequest("'\(key)' must be between \(range.lowerBound) and \(range.upperBound), not \(i)", param: key, code: "invalid_value")
            }
            return i
        }
        func number(_ key: String, _ ok: (Double) -> Bool, _ rule: String) throws -> Double? {
            guard let v = value(key) else { return nil }
            let d: Double
            switch v {
            case .int(let x): d = Double(x)
            case .number(let x): d = x
            default: throw bad(key, "a number, not \(v.typeName)")
            }
            guard d.isFinite, ok(d) else { throw APIError.badRequest("'\(key)' must be \(rule), not \(d)", param: key, code: "invalid_value") }
            return d
        }
        func bool(_ key: String) throws -> Bool? {
            guard let v = value(key) else { return nil }
            guard case .bool(let b) = v else { throw bad(key, "true or false, not \(v.typeName)") }
            return b
        }

        guard let model = try string("model") else { throw APIError.badRequest("'model' is required", param: "model", code: "missing_required_parameter") }
        self.model = model

        if chat {
            guard let m = value("messages") else {
                throw APIError.badRequest("'messages' is required", param: "messages", code: "missing_required_parameter")
            }
            guard case .array(let items) = m, !items.isEmpty else { throw bad("messages", "a non-empty array of messages") }
            var messages: [ChatMessage] = []
            for (i, item) in items.enumerated() {
                let key = "messages[\(i)]"
                guard case .object(let msg) = item else { throw bad(key, "an object with 'role' and 'content'") }
                guard case .string(let role)? = msg["role"], ["system", "user", "assistant", "developer"].contains(role) else {
                    throw bad(key + ".role", "one of system, user, assistant, developer")
                }
                let content: String
                switch msg["content"] {
                case .string(let s)?: content = s
                case .null?, nil where role == "assistant": content = ""
                case .array(let parts)?:
                    var text = ""
                    for (j, p) in parts.enumerated() {
                        guard case .object(let part) = p, case .string("text")? = part["type"], case .string(let t)? = part["text"] else {
                            throw bad("\(key).content[\(j)]", "a text part {\"type\": \"text\", \"text\": …} (only text is supported)")
                        }
                        text += t
                    }
                    content = text
                default: throw bad(key + ".content", "a string or an array of text parts")
                }
                messages.append(ChatMessage(role: role == "developer" ? "system" : role, content: content))
            }
            input = .messages(messages)
        } else {
            switch value("prompt") {
            case .string(let s)?: input = .text(s)
            case .array(let a)? where a.count == 1:
                guard case .string(let s) = a[0] else { throw bad("prompt", "a string (token-id prompts are not supported)") }
                input = .text(s)
            case .array?: throw APIError.badRequest("'prompt' must be one string; send one request per prompt", param: "prompt", code: "invalid_value")
            case nil: throw APIError.badRequest("'prompt' is required", param: "prompt", code: "missing_required_parameter")
            case let v?: throw bad("prompt", "a string, not \(v.typeName)")
            }
            if try bool("echo") == true { throw APIError.badRequest("'echo' is not supported", param: "echo", code: "unsupported_parameter") }
            if try string("suffix") != nil { throw APIError.badRequest("'suffix' is not supported", param: "suffix", code: "unsupported_parameter") }
        }

        let limit = configuration.contextLength
        maxTokens = try int(chat ? "max_completion_tokens" : "max_tokens", 1...limit) ?? int("max_tokens", 1...limit)
        if let n = try int("n", 1...128), n != 1 {
            throw APIError.badRequest("'n' must be 1: one choice per request", param: "n", code: "unsupported_parameter")
        }
        let temperature = try number("temperature", { $0 >= 0 && $0 <= 2 }, "between 0 and 2") ?? 1
        let topP = try number("top_p", { $0 > 0 && $0 <= 1 }, "in (0, 1]") ?? 1
        var seed: UInt64
        if let v = value("seed") {
            guard case .int(let s) = v else { throw bad("seed", "an integer, not \(v.typeName)") }
            seed = UInt64(bitPattern: Int64(s))
        } else {
            seed = UInt64.random(in: 0...UInt64.max)
        }
        if temperature == 0 { seed = 0 }
        sampling = SamplingOptions(temperature: Float(temperature), topP: Float(topP), seed: seed)

        switch value("stop") {
        case nil: stop = []
        case .string(let s)?: stop = s.isEmpty ? [] : [s]
        case .array(let a)?:
            guard a.count <= 4 else { throw APIError.badRequest("'stop' takes at most 4 strings", param: "stop", code: "invalid_value") }
            stop = try a.map { v in
                guard case .string(let s) = v else { throw bad("stop", "a string or an array of strings") }
                return s
            }.filter { !$0.isEmpty }
        case let v?: throw bad("stop", "a string or an array of strings, not \(v.typeName)")
        }

        stream = try bool("stream") ?? false
        ignoreEOS = try bool("ignore_eos") ?? false
        includeUsage = false
        if let so = value("stream_options") {
            guard case .object(let opts) = so else { throw bad("stream_options", "an object") }
            if let u = opts["include_usage"] {
                guard case .bool(let b) = u else { throw bad("stream_options.include_usage", "true or false") }
                includeUsage = b
            }
        }

        if chat {
            let want = try bool("logprobs") ?? false
            let top = try int("top_logprobs", 0...20)
            if top != nil && !want {
                throw APIError.badRequest("'top_logprobs' needs 'logprobs': true", param: "top_logprobs", code: "invalid_value")
            }
            logprobs = want ? (top ?? 0) : nil
        } else {
            logprobs = try int("logprobs", 0...20)
        }
    }
}
