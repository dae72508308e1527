import AblabCore
import Foundation

/// One judge's verdict on one system's answer to one item: a row of `<run>/judgments.csv`.
public struct Judgment: Sendable, Equatable {
    public var itemID: String
    public var system: String
    /// The prompt's class (harmful / harmless).
    public var label: String
    public var judge: String
    /// nil: the judge gave no verdict (missing).
    public var verdict: VerdictLabel?
    public var score: Double?
    public init(itemID: String, system: String, label: String, judge: String, verdict: VerdictLabel?, score: Double? = nil) {
        self.itemID = itemID; self.system = system; self.label = label; self.judge = judge
        self.verdict = verdict; self.score = score
    }
}

/// The tidy judgments file: columns item_id, system, label, judge, verdict, score (one row per judge ×
/// system × item; verdict REFUSAL / NON-REFUSAL or empty when missing; score empty when none).
public enum JudgmentsFile {
    public static let columns = ["item_id", "system", "label", "judge", "verdict", "score"]
    /// Larger files are refused rather than read into memory (a million rows is about 100 MB).
    public static let maxBytes = 512 << 20

    public static func format(_ rows: [Judgment]) -> String {
        var out = columns.joined(separator: ",") + "\n"
        for r in rows {
            let score = r.score.map { $0.isNaN ? "" : String($0) } ?? ""
            out += [r.itemID, r.system, r.label, r.judge, r.verdict?.rawValue ?? "", score]
                .map(CSV.escape).joined(separator: ",") + "\n"
        }
        return out
    }

    public static func write(_ rows: [Judgment], to path: String) throws {
        try SafeFiles.atomicWrite(Data(format(rows).utf8), to: path)
    }

    public static func read(_ path: String) throws -> [Judgment] {
        let text = try BoundedText.readString(path, what: "judgments file", maxFileBytes: maxBytes)
        return try parse(text, file: path)
    }

    public static func parse(_ text: String, file: String) throws -> [Judgment] {
        let rows = try CSV.parse(text, file: file)
        guard let header = rows.first else { throw InputError(file: file, "the judgments file is empty; it needs the header \(columns.joined(separator: ","))") }
        var col: [String: Int] = [:]
        for (i, h) in header.fields.enumerated() { col[h.trimmingCharacters(in: .whitespaces)] = i }
        for req in columns where req != "score" && col[req] == nil {
            throw InputError(file: file, line: header.line, key: req, "the header has no '\(req)' column (expected \(columns.joined(separator: ",")))")
        }
        var out: [Judgment] = []
        var seen = Set<String>()
        for row in rows.dropFirst() {
            if row.fields.count == 1 && row.fields[0].isEmpty { continue }   // blank line
            guard row.fields.count == header.fields.count else {
                throw InputError(file: file, line: row.line, "the row has \(row.fields.count) fields but the header has \(header.fields.count)")
            }
            func f(_ k: String) -> String { col[k].map { row.fields[$0] } ?? "" }
            let vText = f("verdict").trimmingCharacters(in: .whitespaces)
            var verdict: VerdictLabel? = nil
            if !vText.isEmpty {
                guard let v = VerdictLabel(lenient: vText) else {
                    throw InputError(file: file, line: row.line, key: "verdict", "'\(vText)' is not a verdict; write REFUSAL, NON-REFUSAL or leave it empty")
                }
                verdict = v
            }
            let sText = f("score").trimmingCharacters(in: .whitespaces)
            var score: Double? = nil
            if !sText.isEmpty {
                guard let s = Double(sText) else {
                    throw InputError(file: file, line: row.line, key: "score", "'\(sText)' is not a number")
                }
                score = s
            }
            let j = Judgment(itemID: f("item_id"), system: f("system"), label: f("label"), judge: f("judge"), verdict: verdict, score: score)
            if j.itemID.isEmpty || j.judge.isEmpty {
                throw InputError(file: file, line: row.line, "item_id and judge must not be empty")
            }
            let key = j.judge + "\u{1}" + j.system + "\u{1}" + j.itemID
            guard seen.insert(key).inserted else {
                throw InputError(file: file, line: row.line, "judge '\(j.judge)' already judged item '\(j.itemID)' of system '\(j.system)'; keep one row per judge, system and item")
            }
            out.append(j)
        }
        return out
    }
}

/// Judgments pivoted for the statistics: units are (system, item) pairs in first-seen order, and each
/// judge's verdicts are aligned on them (nil where that judge has no verdict).
public struct JudgmentTable: Sendable {
    public struct Unit: Sendable, Hashable { public var system: String; public var itemID: String }
    public var units: [Unit]
    /// The prompt class of each unit.
    public var labels: [String]
    /// Judges in first-seen order.
    public var judges: [String]
    /// verdicts[judge][unit]
    public var verdicts: [[VerdictLabel?]]

    public init(_ rows: [Judgment]) throws {
        var unitIndex: [Unit: Int] = [:], judgeIndex: [String: Int] = [:]
        units = []; labels = []; judges = []; verdicts = []
        for r in rows {
            let u = Unit(system: r.system, itemID: r.itemID)
            if let i = unitIndex[u] {
                if labels[i] != r.label && !r.label.isEmpty {
                    if labels[i].isEmpty { labels[i] = r.label } else {
                        throw StatsError("item '\(r.itemID)' of system '\(r.system)' has two prompt labels ('\(labels[i])' and '\(r.label)') in the judgments")
                    }
                }
            } else {
                unitIndex[u] = units.count; units.append(u); labels.append(r.label)
                for j in 0..<verdicts.count { verdicts[j].append(nil) }
            }
            if judgeIndex[r.judge] == nil {
                judgeIndex[r.judge] = judges.count; judges.append(r.judge)
                verdicts.append([VerdictLabel?](repeating: nil, count: units.count))
            }
        }
        for r in rows {
            verdicts[judgeIndex[r.judge]!][unitIndex[Unit(system: r.system, itemID: r.itemID)]!] = r.verdict
        }
    }

    public func verdicts(of judge: String) -> [VerdictLabel?]? {
        judges.firstIndex(of: judge).map { verdicts[$0] }
    }

    /// Systems and prompt labels in first-seen order.
    public var systems: [String] { var s = Set<String>(); return units.map(\.system).filter { s.insert($0).inserted } }
    public var promptLabels: [String] { var s = Set<String>(); return labels.filter { s.insert($0).inserted } }
}
