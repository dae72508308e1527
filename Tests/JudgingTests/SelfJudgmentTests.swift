import Foundation
import Testing
import AblabCore
@testable import Judging

private struct SelfCase: Decodable {
    var system: String
    var selfVerdicts: [Int?]
    var reference: [Int?]
    var n: Int
    var accuracy: Double
    var kappa: Double?
    var tp: Int, fp: Int, fn: Int, tn: Int
    enum CodingKeys: String, CodingKey {
        case system, selfVerdicts = "self", reference, n, accuracy, kappa, tp, fp, fn, tn
    }
}
private struct SelfCases: Decodable { var cases: [SelfCase] }

/// A judge that counts its calls: REFUSAL when the response starts with "no".
private final class CountingJudge: Judge, @unchecked Sendable {
    let name = "count"
    var calls = 0
    var judged = 0
    func judge(prompt: String, response: String) throws -> Verdict {
        Verdict(response.hasPrefix("no") ? .refusal : .nonRefusal, score: response.hasPrefix("no") ? 1 : 0)
    }
    func judgeAll(_ items: [JudgeItem]) throws -> [Judgment] {
        calls += 1; judged += items.count
        return try items.map { Judgment(itemID: $0.itemID, system: $0.system, label: $0.label, judge: name,
                                        verdict: try judge(prompt: $0.prompt, response: $0.response).label, score: nil) }
    }
}

private func tempDir() throws -> String {
    let d = FileManager.default.temporaryDirectory.appendingPathComponent("ablab-judge-\(UUID().uuidString)").path
    try FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true)
    return d
}

@Suite("Self-judgment and judge runs")
struct SelfJudgmentTests {
    @Test("per-system accuracy, kappa and confusion match scikit-learn")
    func summaryMatchesSklearn() throws {
        let fx = try loadFixture("self_judgment", as: SelfCases.self)
        #expect(fx.cases.count == 4)
        var rows: [SelfJudgmentRow] = []
        for c in fx.cases {
            let s = verdicts(c.selfVerdicts), r = verdicts(c.reference)
            for i in 0..<s.count {
                rows.append(SelfJudgmentRow(system: c.system, itemID: "i\(i)", label: "harmful", selfVerdict: s[i],
                                            selfScore: s[i].map { $0 == .refusal ? 0.9 : 0.1 },
                                            referenceJudge: "regex:paper", referenceVerdict: r[i]))
            }
        }
        let summary = try SelfJudgment.summarize(rows)
        #expect(summary.map(\.system) == fx.cases.map(\.system))
        for (s, c) in zip(summary, fx.cases) {
            #expect(s.n == c.n, "\(c.system)")
            #expect(close(s.accuracy, c.accuracy, 1e-12), "\(c.system) accuracy \(s.accuracy) vs \(c.accuracy)")
            #expect(close(s.kappa, c.kappa, 1e-12), "\(c.system) kappa \(s.kappa) vs \(String(describing: c.kappa))")
            #expect(s.confusion == Agreement.Confusion(tp: c.tp, fp: c.fp, fn: c.fn, tn: c.tn), "\(c.system)")
        }
        // The CSV files have the documented columns and one line per row / system.
        let dir = try tempDir()
        _ = try SelfJudgment.write(rows, run: dir)
        let detail = try CSV.parse(String(contentsOfFile: dir + "/self_judgment.csv", encoding: .utf8), file: "t")
        #expect(detail[0].fields == ["system", "question", "item_id", "label", "self_verdict", "self_score", "reference_judge", "reference_verdict"])
        #expect(detail[1].fields[1] == "refused")
        #expect(detail.filter { !($0.fields.count == 1 && $0.fields[0].isEmpty) }.count == rows.count + 1)
        let sum = try CSV.parse(String(contentsOfFile: dir + "/self_judgment_summary.csv", encoding: .utf8), file: "t")
        #expect(sum[0].fields == ["system", "question", "n", "accuracy", "kappa", "tp", "fp", "fn", "tn", "constant"])
        #expect(sum[1].fields[0] == "ckpt" && sum[1].fields[1] == "refused" && sum[1].fields[2] == "12" && sum[1].fields[5] == "5")
        #expect(sum[4].fields[4] == "nan")
        // Only the system that said REFUSAL to everything is marked constant, and warned about.
        #expect(sum.dropFirst().filter { $0.fields.count == 10 }.map { $0.fields[9] } == ["0", "0", "0", "1"])
        let warnings = SelfJudgment.constantWarnings(summary, rows: rows)
        #expect(warnings.count == 1 && warnings[0].hasPrefix("constant answered the 'refused' self-judgment question with REFUSAL"))
    }

    @Test("one summary per system and question wording; the wording's answers are Yes/No or A/B")
    func wordings() throws {
        var rows: [SelfJudgmentRow] = []
        for (q, v) in [(SelfJudgment.Wording.served, VerdictLabel.refusal), (.refused, .nonRefusal)] {
            for i in 0..<4 {
                rows.append(SelfJudgmentRow(system: "s", itemID: "i\(i)", label: "harmful", selfVerdict: i == 0 ? v : (v == .refusal ? .nonRefusal : .refusal),
                                            selfScore: nil, referenceJudge: "r", referenceVerdict: i < 2 ? .refusal : .nonRefusal, question: q))
            }
        }
        let s = try SelfJudgment.summarize(rows)
        #expect(s.map(\.question) == [.served, .refused] && s.allSatisfy { $0.n == 4 && !$0.constant })
        // served: verdicts R N N N vs reference R R N N → 3 of 4; refused: N R R R → 1 of 4.
        #expect(s[0].accuracy == 0.75 && s[1].accuracy == 0.25)
        #expect(SelfJudgment.Wording.served.refusalOptions == ["No", " No"] && SelfJudgment.Wording.refused.refusalOptions == ["A", " A"])
        #expect(SelfJudgment.Wording.served.text.contains("give me what I asked for") && SelfJudgment.Wording.refused.text == SelfJudgment.question)
    }

    @Test("judgments.csv is resumable: rows already present are not judged again")
    func resumable() throws {
        let dir = try tempDir()
        let path = dir + "/judgments.csv"
        let items = (0..<10).map { i in
            JudgeItem(itemID: "p\(i)", system: i < 5 ? "a" : "a+abl-x", label: i % 2 == 0 ? "harmful" : "harmless",
                      prompt: "q\(i)", response: i % 3 == 0 ? "no, I'm sorry" : "yes, here")
        }
        let counting = CountingJudge()
        // First run: only the first 6 items (as if killed after them), chunks of 4.
        #expect(try JudgeRun.run(items: Array(items.prefix(6)), judges: [counting, PatternJudge.paper()],
                                 judgmentsPath: path, chunk: 4, progress: false) == 12)
        #expect(counting.judged == 6 && counting.calls == 2)
        // Second run over everything: only the 4 missing items per judge are judged.
        #expect(try JudgeRun.run(items: items, judges: [counting, PatternJudge.paper()], judgmentsPath: path, chunk: 4, progress: false) == 8)
        #expect(counting.judged == 10)
        // Third run: nothing to do.
        #expect(try JudgeRun.run(items: items, judges: [counting, PatternJudge.paper()], judgmentsPath: path, progress: false) == 0)
        #expect(counting.judged == 10)
        let rows = try JudgmentsFile.read(path)
        #expect(rows.count == 20)
        for it in items {
            let expected: VerdictLabel = it.response.hasPrefix("no") ? .refusal : .nonRefusal
            #expect(rows.first { $0.judge == "count" && $0.itemID == it.itemID && $0.system == it.system }?.verdict == expected)
            #expect(rows.first { $0.judge == "regex:paper" && $0.itemID == it.itemID }?.verdict == expected)
        }
    }

    @Test("the probe's direction file: its width is checked, and an all-zero direction is refused with the file's name")
    func directionFile() throws {
        let dir = NSTemporaryDirectory() + "ablab-selfdir-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try Data("0.5 -1\n2, 0 # a comment\n".utf8).write(to: URL(fileURLWithPath: dir + "/d.txt"))
        #expect(try SelfJudgment.readDirection(dir + "/d.txt", width: 4) == [0.5, -1, 2, 0])
        #expect(throws: InputError.self) { try SelfJudgment.readDirection(dir + "/d.txt", width: 3) }
        try Data("0 0\n-0.0, 0\n".utf8).write(to: URL(fileURLWithPath: dir + "/z.txt"))
        let e = #expect(throws: InputError.self) { try SelfJudgment.readDirection(dir + "/z.txt", width: 4) }
        #expect(e?.file == dir + "/z.txt")
        #expect(e?.message.contains("all zeros") == true)
    }

    @Test("generation files: required keys, system names, duplicates")
    func generations() throws {
        let text = """
        {"id": "h1", "label": "harmful", "system": "m", "checkpoint": "m", "settings": {"temperature": 0}, "prompt": "p", "response": "r", "tokens": 3, "finish_reason": "eos"}
        {"id": 7, "label": "harmless", "system": "m+abl-mean-diff-L3-p-1-a1.0", "prompt": "p2", "response": "r2"}

        """
        let g = try GenerationsFile.parse(text, file: "g.jsonl")
        #expect(g.count == 2)
        #expect(g[1].id == "7" && g[1].checkpoint == "m" && g[1].isAbliterated && !g[0].isAbliterated)
        #expect(throws: InputError.self) { try GenerationsFile.parse(#"{"id": "h1", "system": "m", "prompt": "p"}"#, file: "g") }
        #expect(throws: InputError.self) { try GenerationsFile.parse(text + text, file: "g") }
        #expect(throws: InputError.self) { try GenerationsFile.parse("not json", file: "g") }
    }
}
