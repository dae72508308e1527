import AblabCore
import Foundation

/// One generated answer, a line of `<run>/generations/<system>.jsonl`:
/// {id, label, system, checkpoint, settings, prompt, response, tokens, finish_reason}. Only id, system,
/// prompt and response are required here; `checkpoint` defaults to the system name up to `+abl-`.
public struct GenerationLine: Sendable, Equatable {
    public var id: String
    public var label: String
    public var system: String
    public var checkpoint: String
    public var prompt: String
    public var response: String

    public init(id: String, label: String, system: String, checkpoint: String? = nil, prompt: String, response: String) {
        self.id = id; self.label = label; self.system = system
        self.checkpoint = checkpoint ?? GenerationLine.checkpoint(ofSystem: system)
        self.prompt = prompt; self.response = response
    }

    /// The checkpoint of a system name `<checkpoint>` or `<checkpoint>+abl-…`.
    public static func checkpoint(ofSystem s: String) -> String {
        if let r = s.range(of: "+abl-") { return String(s[..<r.lowerBound]) }
        return s
    }

    /// True for `<checkpoint>+abl-…` systems.
    public var isAbliterated: Bool { system != checkpoint }

    public var item: JudgeItem { JudgeItem(itemID: id, system: system, label: label, prompt: prompt, response: response) }
}

/// Reads generation files.
public enum GenerationsFile {
    /// Larger files are refused (a generation file of 100k long answers is well under this).
    public static let maxBytes = 1 << 30

    public static func read(_ path: String) throws -> [GenerationLine] {
        let text = try BoundedText.readString(path, what: "generations file", maxFileBytes: maxBytes)
        return try parse(text, file: path)
    }

    public static func parse(_ text: String, file: String) throws -> [GenerationLine] {
        var out: [GenerationLine] = []
        var seen = Set<String>()
        var lineNo = 0
        for raw in text.split(separator: "\n", omittingEmptySubsequences: false) {
            lineNo += 1
            let line = raw.trimmingCharacters(in: .whitespacesAndNewlines)
            if line.isEmpty { continue }
            guard let obj = (try? JSONSerialization.jsonObject(with: Data(line.utf8))) as? [String: Any] else {
                throw InputError(file: file, line: lineNo, "the line is not a JSON object; each line must be one generation record")
            }
            func str(_ k: String, required: Bool) throws -> String? {
                switch obj[k] {
                case let s as String: return s
                case let n as NSNumber: return n.stringValue
                case nil, is NSNull:
                    if required { throw InputError(file: file, line: lineNo, key: k, "the record has no '\(k)'; write id, system, prompt and response on every line") }
                    return nil
                default: throw InputError(file: file, line: lineNo, key: k, "'\(k)' must be a string")
                }
            }
            let g = GenerationLine(id: try str("id", required: true)!, label: try str("label", required: false) ?? "",
                                   system: try str("system", required: true)!, checkpoint: try str("checkpoint", required: false),
                                   prompt: try str("prompt", required: true)!, response: try str("response", required: true)!)
            guard seen.insert(g.system + "\u{1}" + g.id).inserted else {
                throw InputError(file: file, line: lineNo, key: "id", "system '\(g.system)' has item '\(g.id)' twice; keep one generation per item")
            }
            out.append(g)
        }
        return out
    }

    /// Every `<run>/generations/*.jsonl`, files in name order.
    public static func readRun(_ run: String) throws -> [GenerationLine] {
        let dir = (run as NSString).appendingPathComponent("generations")
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: dir) else {
            throw IOError(path: dir, "no generations folder; run `ablab generate` (or abliterate) first")
        }
        let files = names.filter { $0.hasSuffix(".jsonl") }.sorted()
        guard !files.isEmpty else { throw InputError(file: dir, "no .jsonl generation files in the folder") }
        var out: [GenerationLine] = []
        var seen = Set<String>()
        for f in files {
            let path = (dir as NSString).appendingPathComponent(f)
            for g in try read(path) {
                guard seen.insert(g.system + "\u{1}" + g.id).inserted else {
                    throw InputError(file: path, key: "id", "system '\(g.system)' item '\(g.id)' also appears in another generations file")
                }
                out.append(g)
            }
        }
        return out
    }
}
