import AblabCore

/// Positions relative to the end of the chat-formatted prompt (−1 = last token), parsed from
/// Python-style slices: `-5:` → [−5, −4, −3, −2, −1]; `-8:-2` → [−8 … −3]; `-1` → [−1];
/// `-5,-1` → [−5, −1]; `auto` → the template's post-instruction tokens; `auto+instruction` → the
/// instruction's last token and the post-instruction tokens after it.
public enum PositionSpec: Equatable, Sendable {
    case auto
    case autoWithInstruction
    case explicit([Int])

    public static func parse(_ s: String, file: String = "--positions") throws -> PositionSpec {
        let t = s.trimmingCharacters(in: .whitespaces)
        if t == "auto" { return .auto }
        if t == "auto+instruction" { return .autoWithInstruction }
        func int(_ x: Substring) throws -> Int {
            guard let v = Int(x.trimmingCharacters(in: .whitespaces)) else {
                throw InputError(file: file, key: "positions", "'\(s)' is not a position list: use e.g. auto, auto+instruction, -5:, -8:-2, -1 or -5,-1")
            }
            return v
        }
        var out: [Int] = []
        if t.contains(":") {
            let parts = t.split(separator: ":", omittingEmptySubsequences: false)
            guard parts.count == 2 else { throw InputError(file: file, key: "positions", "'\(s)' has more than one ':'") }
            let start = try int(parts[0])
            let end = parts[1].trimmingCharacters(in: .whitespaces).isEmpty ? 0 : try int(parts[1])
            guard start < 0, end <= 0, start < end || end == 0 else {
                throw InputError(file: file, key: "positions", "'\(s)': positions count from the end and must be negative (e.g. -5:)")
            }
            out = Array(start..<(end == 0 ? 0 : end))
        } else {
            out = try t.split(separator: ",").map(int)
        }
        guard !out.isEmpty, out.allSatisfy({ $0 < 0 }), Set(out).count == out.count else {
            throw InputError(file: file, key: "positions", "'\(s)': give distinct negative positions (−1 is the last token)")
        }
        return .explicit(out.sorted())
    }

    /// The concrete positions for a template with `templateTokens` post-instruction tokens.
    public func resolve(templateTokens: Int) -> [Int] {
        switch self {
        case .auto: return Array((-templateTokens)..<0)
        case .autoWithInstruction: return Array((-templateTokens - 1)..<0)
        case .explicit(let p): return p
        }
    }
}
