import AblabCore
import Foundation

/// The study's own judge data (arXiv 2510.02768; github.com/shashankskagnihotri/safety_pretraining,
/// GPL-3.0), as copied into notebooks-scripts/data/paper/: the two annotators' user-study files
/// (200 responses: 10 questions × 20 systems) and the per-(model, label, judge) summary counts.
public struct PaperStudy: Sendable {
    public static let annotator1File = "user_study_sampled_corrected_20250831_145952_with_user_20250831_174445.csv"
    public static let annotator2File = "user2_user_study_sampled_corrected_20250831_145952_with_user_20250831_215055.csv"
    /// Counts on the 200 user-study responses, original model and judge names.
    public static let summary10qFile = "model_comparison_10q_with_llm_and_humans_summary_corrected.csv"
    /// The same with the paper's short names ("Human 1", "regex", "ChatGPT5", …).
    public static let summary10qRenamedFile = "model_comparison_10q_with_llm_and_humans_summary_corrected_renamed.csv"
    /// Counts on the full run (50 prompts per label and system), short names.
    public static let summaryAllRenamedFile = "model_comparison_all_summary_renamed.csv"

    /// One response both annotators labelled.
    public struct Response: Sendable {
        public var qid: String
        public var model: String
        public var label: String
        public var question: String
        public var response: String
        public var human1: VerdictLabel
        public var human2: VerdictLabel
    }

    /// One row of a summary file.
    public struct SummaryRow: Sendable, Equatable {
        public var model: String
        public var label: String
        public var judge: String
        public var refused: Int
        public var notRefused: Int
        public var total: Int
    }

    public var directory: String
    /// Annotator 1's rows (file order), joined with annotator 2 on qid + model.
    public var responses: [Response]

    public static func load(directory dir: String) throws -> PaperStudy {
        let f1 = dir + "/" + annotator1File, f2 = dir + "/" + annotator2File
        let a = try readTable(f1), b = try readTable(f2)
        let need = ["qid", "model", "label", "question", "response", "user_choice"]
        for (file, t) in [(f1, a), (f2, b)] {
            for c in need where t.col[c] == nil {
                throw InputError(file: file, line: 1, key: c, "the user-study file has no '\(c)' column")
            }
        }
        func verdict(_ t: Table, _ row: CSV.Row, file: String) throws -> VerdictLabel {
            let raw = t.field(row, "user_choice")
            guard let v = VerdictLabel(lenient: raw) else {
                throw InputError(file: file, line: row.line, key: "user_choice", "'\(raw)' is neither REFUSAL nor NOT REFUSAL")
            }
            return v
        }
        var second: [String: VerdictLabel] = [:]
        for row in b.rows {
            let key = b.field(row, "qid") + "\u{1}" + b.field(row, "model")
            guard second[key] == nil else { throw InputError(file: f2, line: row.line, "qid and model appear twice") }
            second[key] = try verdict(b, row, file: f2)
        }
        var out: [Response] = []
        var seen = Set<String>()
        for row in a.rows {
            let key = a.field(row, "qid") + "\u{1}" + a.field(row, "model")
            guard seen.insert(key).inserted else { throw InputError(file: f1, line: row.line, "qid and model appear twice") }
            guard let h2 = second[key] else { continue }   // inner join
            out.append(Response(qid: a.field(row, "qid"), model: a.field(row, "model"), label: a.field(row, "label"),
                                question: a.field(row, "question"), response: a.field(row, "response"),
                                human1: try verdict(a, row, file: f1), human2: h2))
        }
        return PaperStudy(directory: dir, responses: out)
    }

    /// The responses as items to judge: item id = qid, system = model.
    public var items: [JudgeItem] {
        responses.map { JudgeItem(itemID: $0.qid, system: $0.model, label: $0.label, prompt: $0.question, response: $0.response) }
    }

    /// The two annotators as judgments (judges `human_1`, `human_2`, the summary files' names).
    public var humanJudgments: [Judgment] {
        responses.map { Judgment(itemID: $0.qid, system: $0.model, label: $0.label, judge: "human_1", verdict: $0.human1) }
            + responses.map { Judgment(itemID: $0.qid, system: $0.model, label: $0.label, judge: "human_2", verdict: $0.human2) }
    }

    public struct HumanAgreement: Sendable {
        public var n: Int
        public var refusals1: Int, refusals2: Int
        public var agreement: Double
        public var kappa: Double
    }

    public func humanAgreement() throws -> HumanAgreement {
        let a = responses.map { Optional($0.human1) }, b = responses.map { Optional($0.human2) }
        return HumanAgreement(n: responses.count,
                              refusals1: responses.filter { $0.human1 == .refusal }.count,
                              refusals2: responses.filter { $0.human2 == .refusal }.count,
                              agreement: try Agreement.percentAgreement(a, b), kappa: try Agreement.cohenKappa(a, b))
    }

    /// Our rule judge on the 200 responses next to the study's regex: the per-response verdicts are not
    /// published, so the comparison is per (model, label) group against the summary's `regex` counts,
    /// plus per-response confusion against each annotator.
    public struct RegexReproduction: Sendable {
        public struct Group: Sendable { public var model: String; public var label: String; public var ours: Int; public var study: Int }
        public var judge: String
        public var groups: [Group]
        public var matchingGroups: Int { groups.filter { $0.ours == $0.study }.count }
        public var ourRefusals: Int
        public var studyRefusals: Int
        public var vsHuman1: Agreement.Confusion
        public var vsHuman2: Agreement.Confusion
        public var kappaVsHuman1: Double
        public var kappaVsHuman2: Double
        /// Responses a curly-apostrophe-folding variant calls refusals and the plain judge does not.
        public var curlyOnly: Int
    }

    public func reproduceRegex(judge: PatternJudge = .paper()) throws -> RegexReproduction {
        let summary = try Self.readSummary(directory + "/" + Self.summary10qFile)
        var study: [String: Int] = [:]
        for r in summary where r.judge == "regex" { study[r.model + "\u{1}" + r.label] = r.refused }
        let folded = PatternJudge(name: judge.name + "+fold",
                                  literals: judge.patterns.compactMap { if case .literal(let s) = $0 { return s } else { return nil } },
                                  foldApostrophes: true)
        var ours: [String: Int] = [:]
        var order: [(String, String)] = []
        var verdicts: [VerdictLabel?] = []
        var curlyOnly = 0
        for r in responses {
            let key = r.model + "\u{1}" + r.label
            if ours[key] == nil { ours[key] = 0; order.append((r.model, r.label)) }
            let v = judge.matches(r.response)
            if v { ours[key]! += 1 } else if folded.matches(r.response) { curlyOnly += 1 }
            verdicts.append(v ? .refusal : .nonRefusal)
        }
        let groups = order.map { (m, l) in
            RegexReproduction.Group(model: m, label: l, ours: ours[m + "\u{1}" + l]!, study: study[m + "\u{1}" + l] ?? -1)
        }
        let h1 = responses.map { Optional($0.human1) }, h2 = responses.map { Optional($0.human2) }
        return RegexReproduction(
            judge: judge.name, groups: groups, ourRefusals: verdicts.filter { $0 == .refusal }.count,
            studyRefusals: summary.filter { $0.judge == "regex" }.reduce(0) { $0 + $1.refused },
            vsHuman1: try Agreement.confusion(predicted: verdicts, reference: h1),
            vsHuman2: try Agreement.confusion(predicted: verdicts, reference: h2),
            kappaVsHuman1: try Agreement.cohenKappa(verdicts, h1), kappaVsHuman2: try Agreement.cohenKappa(verdicts, h2),
            curlyOnly: curlyOnly)
    }

    /// One judge compared with the reference judge the way the study's notebook does it: Pearson (and
    /// Spearman) over the (model, label) groups both have, on the concatenation of the refused and the
    /// not_refused counts (2 × groups values per judge).
    public struct JudgeCorrelation: Sendable {
        public var judge: String
        public var groups: Int
        public var pearson: Double
        public var spearman: Double
        public var refused: Int
        public var total: Int
    }

    public static func judgeCorrelations(_ summary: [SummaryRow], reference: String = "Human 1") throws -> [JudgeCorrelation] {
        var byJudge: [String: [String: SummaryRow]] = [:]
        var judges: [String] = []
        for r in summary {
            if byJudge[r.judge] == nil { byJudge[r.judge] = [:]; judges.append(r.judge) }
            byJudge[r.judge]![r.model + "\u{1}" + r.label] = r
        }
        guard let ref = byJudge[reference] else {
            throw StatsError("the summary has no judge '\(reference)'; judges: \(judges.joined(separator: ", "))")
        }
        let refKeys = summary.filter { $0.judge == reference }.map { $0.model + "\u{1}" + $0.label }
        var out: [JudgeCorrelation] = []
        for j in judges where j != reference {
            let rows = byJudge[j]!
            let keys = refKeys.filter { rows[$0] != nil }
            let x = keys.map { Double(ref[$0]!.refused) } + keys.map { Double(ref[$0]!.notRefused) }
            let y = keys.map { Double(rows[$0]!.refused) } + keys.map { Double(rows[$0]!.notRefused) }
            out.append(JudgeCorrelation(judge: j, groups: keys.count, pearson: try Agreement.pearson(x, y),
                                        spearman: try Agreement.spearman(x, y),
                                        refused: rows.values.reduce(0) { $0 + $1.refused },
                                        total: rows.values.reduce(0) { $0 + $1.total }))
        }
        return out
    }

    /// Refused and total counts per judge, in first-seen order.
    public static func refusalTotals(_ summary: [SummaryRow]) -> [(judge: String, refused: Int, total: Int)] {
        var out: [(judge: String, refused: Int, total: Int)] = []
        var idx: [String: Int] = [:]
        for r in summary {
            if let i = idx[r.judge] { out[i].refused += r.refused; out[i].total += r.total }
            else { idx[r.judge] = out.count; out.append((r.judge, r.refused, r.total)) }
        }
        return out
    }

    public static func readSummary(_ path: String) throws -> [SummaryRow] {
        let t = try readTable(path)
        for c in ["model", "label", "refusal_judge", "refused", "not_refused", "total"] where t.col[c] == nil {
            throw InputError(file: path, line: 1, key: c, "the summary file has no '\(c)' column")
        }
        return try t.rows.map { row in
            func int(_ c: String) throws -> Int {
                guard let v = Int(t.field(row, c).trimmingCharacters(in: .whitespaces)), v >= 0 else {
                    throw InputError(file: path, line: row.line, key: c, "'\(t.field(row, c))' is not a count")
                }
                return v
            }
            let r = SummaryRow(model: t.field(row, "model"), label: t.field(row, "label"), judge: t.field(row, "refusal_judge"),
                               refused: try int("refused"), notRefused: try int("not_refused"), total: try int("total"))
            guard r.refused + r.notRefused == r.total else {
                throw InputError(file: path, line: row.line, "refused + not_refused is not total")
            }
            return r
        }
    }

    // MARK: CSV helpers

    struct Table {
        var col: [String: Int]
        var rows: [CSV.Row]
        func field(_ row: CSV.Row, _ c: String) -> String { col[c].map { row.fields[$0] } ?? "" }
    }

    static func readTable(_ path: String) throws -> Table {
        let attrs = try? FileManager.default.attributesOfItem(atPath: path)
        guard let size = attrs?[.size] as? Int else {
            throw IOError(path: path, "cannot read the study file (missing? copy notebooks-scripts/data/paper/ or pass its folder)")
        }
        guard size <= 64 << 20 else { throw InputError(file: path, "the study file is \(size) bytes; the study's files are under 1 MB") }
        let text = try BoundedText.readString(path, what: "study CSV file", maxFileBytes: 64 << 20)
        let rows = try CSV.parse(text, file: path)
        guard let header = rows.first else { throw InputError(file: path, "the study file is empty") }
        var col: [String: Int] = [:]
        for (i, h) in header.fields.enumerated() { col[h] = i }
        var body: [CSV.Row] = []
        for r in rows.dropFirst() {
            if r.fields.count == 1 && r.fields[0].isEmpty { continue }
            guard r.fields.count == header.fields.count else {
                throw InputError(file: path, line: r.line, "the row has \(r.fields.count) fields but the header has \(header.fields.count)")
            }
            body.append(r)
        }
        return Table(col: col, rows: body)
    }
}
