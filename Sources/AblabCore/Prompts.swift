import Foundation

/// One prompt of a study: an id unique within its set, the user's text, a class label
/// (`harmful` / `harmless`, or any string) and an optional split (`train`, `test`, …).
public struct Prompt: Codable, Hashable, Sendable {
    public var id: String
    public var text: String
    public var label: String
    public var split: String?
    /// The file and line the prompt was read from (for messages; not part of equality, hashing or coding).
    public var origin: PromptOrigin?
    public init(id: String, text: String, label: String, split: String? = nil, origin: PromptOrigin? = nil) {
        self.id = id; self.text = text; self.label = label; self.split = split; self.origin = origin
    }

    enum CodingKeys: String, CodingKey { case id, text, label, split }

    public static func == (a: Prompt, b: Prompt) -> Bool {
        a.id == b.id && a.text == b.text && a.label == b.label && a.split == b.split
    }
    public func hash(into h: inout Hasher) { h.combine(id); h.combine(text); h.combine(label); h.combine(split) }

    /// The file (or option) and line the prompt came from ("prompt list" when unknown).
    public var location: (file: String, line: Int?) { (origin?.file ?? "prompt list", origin?.line) }
}

/// Where a prompt was read from.
public struct PromptOrigin: Sendable, Hashable {
    public var file: String
    /// 1-based line (JSONL) or the line a CSV record starts on; nil for a prompt given on the command line.
    public var line: Int?
    public init(file: String, line: Int?) { self.file = file; self.line = line }
}

/// Reads prompt files (JSONL or CSV with `id`, `text`, `label` and optional `split`) and checks them
/// before any model work: duplicate ids, missing fields, empty text and bad JSON are errors naming
/// the file and line.
public enum PromptFile {
    /// Loads one file. With `splits`, rows of other splits are skipped before they are checked (the
    /// shipped harmful set has empty texts in its `non-english` split).
    public static func load(_ path: String, splits: Set<String>? = nil) throws -> [Prompt] {
        // Size first (bounded memory); a line too long for any context is refused naming its prompt id.
        let data = try BoundedText.read(path, what: "prompt file", maxLineBytes: .max)
        let lower = path.lowercased()
        if let long = BoundedText.longLine(data, limit: InputLimits.maxLineBytes) {
            let id = lower.hasSuffix(".csv") ? nil : data.withUnsafeBytes {
                JSONPeek.topLevelString("id", in: UnsafeRawBufferPointer(rebasing: $0[long.start..<(long.start + long.bytes)]))
            }
            throw InputError(file: path, line: long.line, key: id,
                             "the prompt\(id.map { " '\(AblabText.printable($0))'" } ?? "") on line \(long.line) is \(long.bytes) bytes (\(InputLimits.formatBytes(long.bytes))), more than the \(InputLimits.maxLineBytes) bytes (\(InputLimits.formatBytes(InputLimits.maxLineBytes))) a prompt line may hold, far beyond any model's context; shorten it or remove it")
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw InputError(file: path, "the prompt file is not valid UTF-8")
        }
        let prompts = lower.hasSuffix(".csv") ? try parseCSV(text, file: path, splits: splits) : try parseJSONL(text, file: path, splits: splits)
        if prompts.isEmpty {
            throw InputError(file: path, splits == nil ? "the prompt file holds no prompts" : "no prompt has split \(splits!.sorted().joined(separator: " or "))")
        }
        return prompts
    }

    /// Loads several files and checks ids are unique across all of them.
    public static func load(_ paths: [String], splits: Set<String>? = nil) throws -> [Prompt] {
        var all: [Prompt] = []
        var seen: [String: String] = [:]
        for p in paths {
            for prompt in try load(p, splits: splits) {
                if let other = seen[prompt.id] {
                    throw InputError(file: p, key: prompt.id, "duplicate prompt id (also in \(other))")
                }
                seen[prompt.id] = p
                all.append(prompt)
            }
        }
        return all
    }

    static func parseJSONL(_ text: String, file: String, splits: Set<String>? = nil) throws -> [Prompt] {
        var out: [Prompt] = []
        var ids: [String: Int] = [:]
        var lineNo = 0
        for rawLine in text.split(separator: "\n", omittingEmptySubsequences: false) {
            lineNo += 1
            let line = rawLine.trimmingCharacters(in: .whitespacesAndNewlines)
            if line.isEmpty { continue }
            let obj: Any
            do {
                obj = try JSONSerialization.jsonObject(with: Data(line.utf8), options: [.fragmentsAllowed])
            } catch {
                throw InputError(file: file, line: lineNo, "bad JSON: \(shortJSONError(error))")
            }
            guard let dict = obj as? [String: Any] else {
                throw InputError(file: file, line: lineNo, "expected a JSON object with id, text and label")
            }
            func field(_ k: String, required: Bool) throws -> String? {
                guard let v = dict[k], !(v is NSNull) else {
                    if required { throw InputError(file: file, line: lineNo, key: k, "missing field '\(k)'") }
                    return nil
                }
                if let s = v as? String { return s }
                if let n = v as? NSNumber, k == "id" { return n.stringValue }
                throw InputError(file: file, line: lineNo, key: k, "field '\(k)' must be a string")
            }
            let p = Prompt(id: try field("id", required: true)!, text: try field("text", required: true)!,
                           label: try field("label", required: true)!, split: try field("split", required: false),
                           origin: PromptOrigin(file: file, line: lineNo))
            if let splits, !splits.contains(p.split ?? "") { continue }
            try check(p, file: file, line: lineNo, ids: &ids)
            out.append(p)
        }
        return out
    }

    static func check(_ p: Prompt, file: String, line: Int, ids: inout [String: Int]) throws {
        if p.id.isEmpty { throw InputError(file: file, line: line, key: "id", "empty id") }
        if p.text.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty {
            throw InputError(file: file, line: line, key: "text", "empty text for prompt '\(p.id)'")
        }
        if p.label.isEmpty { throw InputError(file: file, line: line, key: "label", "empty label for prompt '\(p.id)'") }
        if let first = ids[p.id] {
            throw InputError(file: file, line: line, key: "id", "duplicate id '\(p.id)' (first on line \(first))")
        }
        ids[p.id] = line
    }

    static func parseCSV(_ text: String, file: String, splits: Set<String>? = nil) throws -> [Prompt] {
        let rows = try CSV.parse(text, file: file)
        guard let header = rows.first else { return [] }
        let names = header.fields.map { $0.trimmingCharacters(in: .whitespaces).lowercased() }
        func col(_ n: String) -> Int? { names.firstIndex(of: n) }
        for req in ["id", "text", "label"] where col(req) == nil {
            throw InputError(file: file, line: 1, key: req, "the CSV header has no '\(req)' column")
        }
        var ids: [String: Int] = [:]
        var out: [Prompt] = []
        for row in rows.dropFirst() {
            if row.fields.count == 1 && row.fields[0].isEmpty { continue }
            guard row.fields.count == names.count else {
                throw InputError(file: file, line: row.line, "expected \(names.count) fields, found \(row.fields.count)")
            }
            let split = col("split").map { row.fields[$0] }.flatMap { $0.isEmpty ? nil : $0 }
            let p = Prompt(id: row.fields[col("id")!], text: row.fields[col("text")!], label: row.fields[col("label")!], split: split,
                           origin: PromptOrigin(file: file, line: row.line))
            if let splits, !splits.contains(p.split ?? "") { continue }
            try check(p, file: file, line: row.line, ids: &ids)
            out.append(p)
        }
        return out
    }

    static func shortJSONError(_ e: Error) -> String {
        let ns = e as NSError
        if let d = ns.userInfo[NSDebugDescriptionErrorKey] as? String { return d }
        return ns.localizedDescription
    }
}

/// A small RFC 4180 CSV reader that keeps the line each record starts on.
public enum CSV {
    public struct Row: Sendable { public var line: Int; public var fields: [String] }

    /// Parses CSV text. A record (which may span lines inside quotes) longer than `maxRecordBytes` is an
    /// error naming the line it starts on.
    public static func parse(_ text: String, file: String, maxRecordBytes: Int = InputLimits.maxLineBytes) throws -> [Row] {
        var rows: [Row] = []
        var field = ""
        var fields: [String] = []
        var inQuotes = false
        var line = 1
        var rowStart = 1
        var recordBytes = 0
        var it = text.unicodeScalars.makeIterator()
        var next = it.next()
        if next == "\u{FEFF}" { next = it.next() }
        while let c = next {
            next = it.next()
            recordBytes += UTF8.width(c)
            if recordBytes > maxRecordBytes {
                throw InputError(file: file, line: rowStart, "the CSV record starting on line \(rowStart) is longer than the \(maxRecordBytes) bytes (\(InputLimits.formatBytes(maxRecordBytes))) a record may hold; shorten it (or close a quote left open)")
            }
            if inQuotes {
                if c == "\"" {
                    if next == "\"" { field.unicodeScalars.append("\""); next = it.next(); recordBytes += 1 }
                    else { inQuotes = false }
                } else {
                    if c == "\n" { line += 1 }
                    field.unicodeScalars.append(c)
                }
            } else {
                switch c {
                case "\"": inQuotes = true
                case ",": fields.append(field); field = ""
                case "\r": break
                case "\n":
                    fields.append(field); field = ""
                    rows.append(Row(line: rowStart, fields: fields)); fields = []
                    line += 1; rowStart = line; recordBytes = 0
                default: field.unicodeScalars.append(c)
                }
            }
        }
        if inQuotes { throw InputError(file: file, line: rowStart, "unterminated quoted field") }
        if !field.isEmpty || !fields.isEmpty { fields.append(field); rows.append(Row(line: rowStart, fields: fields)) }
        return rows
    }

    /// Quotes a field for writing when needed.
    public static func escape(_ s: String) -> String {
        if s.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" }) {
            return "\"" + s.replacingOccurrences(of: "\"", with: "\"\"") + "\""
        }
        return s
    }
}
