import AblabCore
import Foundation

/// Verdicts imported from any CSV (human annotations, another tool's judge): a `Judge` that looks items
/// up by id instead of reading the response.
///
/// Column mapping: `item` (one or more columns, joined with "/" into the item id), optional `system`
/// (then items are keyed by system and id), `verdict`, optional `score`, and an optional value map
/// (`"NOT REFUSAL": .nonRefusal`, …). Without a map, the usual spellings are understood
/// (see `VerdictLabel(lenient:)`). Empty verdict cells are missing verdicts.
public struct LabelsJudge: Judge {
    public struct Columns: Sendable {
        public var item: [String]
        public var system: String?
        public var verdict: String
        public var score: String?
        public var label: String?
        public init(item: [String] = ["item_id"], system: String? = nil, verdict: String, score: String? = nil, label: String? = nil) {
            self.item = item; self.system = system; self.verdict = verdict; self.score = score; self.label = label
        }
    }

    public struct Key: Hashable, Sendable { public var system: String; public var itemID: String }

    public let name: String
    public let file: String
    public let columns: Columns
    /// Verdicts by (system, item id); system is "" when the file has no system column.
    public let verdicts: [Key: Verdict]
    /// Keys in file order, with the prompt label when a label column was given.
    public let order: [(key: Key, label: String)]

    public static let maxBytes = 256 << 20

    public init(name: String, file: String, columns: Columns, map: [String: VerdictLabel]? = nil) throws {
        self.name = name; self.file = file; self.columns = columns
        let text = try BoundedText.readString(file, what: "labels file", maxFileBytes: Self.maxBytes)
        let rows = try CSV.parse(text, file: file)
        guard let header = rows.first else { throw InputError(file: file, "the labels file is empty") }
        var col: [String: Int] = [:]
        for (i, h) in header.fields.enumerated() { col[h.trimmingCharacters(in: .whitespaces)] = i }
        func need(_ c: String, _ role: String) throws -> Int {
            guard let i = col[c] else {
                throw InputError(file: file, line: header.line, key: c, "no '\(c)' column for the \(role); the header has \(header.fields.joined(separator: ", "))")
            }
            return i
        }
        guard !columns.item.isEmpty else { throw InputError(file: file, "name at least one item id column") }
        let itemCols = try columns.item.map { try need($0, "item id") }
        let systemCol = try columns.system.map { try need($0, "system") }
        let verdictCol = try need(columns.verdict, "verdict")
        let scoreCol = try columns.score.map { try need($0, "score") }
        let labelCol = try columns.label.map { try need($0, "prompt label") }
        var lowerMap: [String: VerdictLabel]? = nil
        if let map {
            lowerMap = [:]
            for (k, v) in map { lowerMap![k.trimmingCharacters(in: .whitespaces).lowercased()] = v }
        }
        var out: [Key: Verdict] = [:]
        var order: [(key: Key, label: String)] = []
        var seen = Set<Key>()
        for row in rows.dropFirst() {
            if row.fields.count == 1 && row.fields[0].isEmpty { continue }
            guard row.fields.count == header.fields.count else {
                throw InputError(file: file, line: row.line, "the row has \(row.fields.count) fields but the header has \(header.fields.count)")
            }
            let id = itemCols.map { row.fields[$0] }.joined(separator: "/")
            let key = Key(system: systemCol.map { row.fields[$0] } ?? "", itemID: id)
            guard seen.insert(key).inserted else {
                throw InputError(file: file, line: row.line, "item '\(id)'\(key.system.isEmpty ? "" : " of system '\(key.system)'") appears twice; keep one row per item")
            }
            let raw = row.fields[verdictCol].trimmingCharacters(in: .whitespaces)
            order.append((key, labelCol.map { row.fields[$0] } ?? ""))
            if raw.isEmpty { continue }
            let label: VerdictLabel?
            if let lowerMap { label = lowerMap[raw.lowercased()] } else { label = VerdictLabel(lenient: raw) }
            guard let label else {
                throw InputError(file: file, line: row.line, key: columns.verdict,
                                 "'\(raw)' is not mapped to a verdict; add it to the value map (map=\(raw):REFUSAL or map=\(raw):NON-REFUSAL)")
            }
            var score: Double? = nil
            if let scoreCol {
                let s = row.fields[scoreCol].trimmingCharacters(in: .whitespaces)
                if !s.isEmpty {
                    guard let d = Double(s) else { throw InputError(file: file, line: row.line, key: columns.score, "'\(s)' is not a number") }
                    score = d
                }
            }
            out[key] = Verdict(label, score: score)
        }
        verdicts = out
        self.order = order
    }

    /// Parses `labels:FILE;verdict=COL;item=A+B;system=COL;score=COL;label=COL;map=V:REFUSAL,W:NON-REFUSAL;name=N`.
    public init(spec: String) throws {
        guard spec.hasPrefix("labels:") else { throw JudgeSpecError(spec: spec, "a labels judge starts with 'labels:'") }
        let parts = spec.dropFirst("labels:".count).split(separator: ";", omittingEmptySubsequences: false).map(String.init)
        guard let file = parts.first, !file.isEmpty else { throw JudgeSpecError(spec: spec, "give the CSV file after 'labels:'") }
        var opts: [String: String] = [:]
        for p in parts.dropFirst() where !p.isEmpty {
            guard let eq = p.firstIndex(of: "=") else { throw JudgeSpecError(spec: spec, "'\(p)' is not key=value") }
            let k = String(p[..<eq]).trimmingCharacters(in: .whitespaces)
            guard ["verdict", "item", "system", "score", "label", "map", "name"].contains(k) else {
                throw JudgeSpecError(spec: spec, "unknown option '\(k)'; use verdict, item, system, score, label, map, name")
            }
            opts[k] = String(p[p.index(after: eq)...])
        }
        guard let verdict = opts["verdict"] else { throw JudgeSpecError(spec: spec, "say which column holds the verdict: ;verdict=COLUMN") }
        var map: [String: VerdictLabel]? = nil
        if let m = opts["map"] {
            map = [:]
            for entry in m.split(separator: ",") {
                guard let colon = entry.lastIndex(of: ":"),
                      let v = VerdictLabel(rawValue: entry[entry.index(after: colon)...].trimmingCharacters(in: .whitespaces).uppercased()) else {
                    throw JudgeSpecError(spec: spec, "map entry '\(entry)' must be VALUE:REFUSAL or VALUE:NON-REFUSAL")
                }
                map![String(entry[..<colon])] = v
            }
        }
        let cols = Columns(item: (opts["item"] ?? "item_id").split(separator: "+").map(String.init),
                           system: opts["system"], verdict: verdict, score: opts["score"], label: opts["label"])
        let base = URL(fileURLWithPath: file).deletingPathExtension().lastPathComponent
        try self.init(name: opts["name"] ?? "labels:\(base)", file: file, columns: cols, map: map)
    }

    public func verdict(system: String, itemID: String) -> Verdict? {
        verdicts[Key(system: columns.system == nil ? "" : system, itemID: itemID)]
    }

    public func judge(prompt: String, response: String) throws -> Verdict {
        throw JudgeSpecError(spec: name, "imported labels are looked up by item id, not by the response text; judge items instead")
    }

    public func judge(_ item: JudgeItem) throws -> Verdict? {
        verdict(system: item.system, itemID: item.itemID)
    }

    /// Every row of the file as judgments (label from the label column, or empty).
    public func judgments() -> [Judgment] {
        order.map { Judgment(itemID: $0.key.itemID, system: $0.key.system, label: $0.label, judge: name,
                             verdict: verdicts[$0.key]?.label, score: verdicts[$0.key]?.score) }
    }
}
