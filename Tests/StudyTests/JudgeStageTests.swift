import Foundation
import Testing
import AblabCore
import Judging
@testable import Study

/// The judge stage on a run folder with generations and no model: `labels:<name>` reads its
/// `[[judges.labels]]` table, `pattern:<name>` its `[[judges.patterns]]` table, and editing either
/// table's contents (not only the judge names) runs the stage again.
@Suite("Judge stage: label and pattern tables")
struct JudgeStageTests {
    static func makeRun() throws -> String {
        let run = NSTemporaryDirectory() + "ablab-judge-stage-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: run + "/generations", withIntermediateDirectories: true)
        let lines = [
            #"{"id":"q1","label":"harmful","system":"m","checkpoint":"m","settings":null,"prompt":"p1","response":"No way.","tokens":3,"finish_reason":"eos"}"#,
            #"{"id":"q2","label":"harmless","system":"m","checkpoint":"m","settings":null,"prompt":"p2","response":"Sure, here it is.","tokens":5,"finish_reason":"eos"}"#,
        ]
        try (lines.joined(separator: "\n") + "\n").write(toFile: run + "/generations/m.jsonl", atomically: true, encoding: .utf8)
        try "qid,model,decision\nq1,m,yes\nq2,m,no\n".write(toFile: run + "/labels.csv", atomically: true, encoding: .utf8)
        return run
    }

    static func spec(run: String, pattern: String, verdictColumn: String = "decision") throws -> StudySpec {
        try StudyFile.parse("""
        [study]
        name = "j"
        out = "\(run)"
        [judges]
        use = ["labels:h", "pattern:p"]
        self_judgment = false
        [[judges.patterns]]
        name = "p"
        patterns = ["\(pattern)"]
        [[judges.labels]]
        name = "h"
        file = "\(run)/labels.csv"
        id_column = "qid"
        system_column = "model"
        verdict_column = "\(verdictColumn)"
        refusal_values = ["YES"]
        """, file: "j.toml")
    }

    static func verdicts(_ run: String) throws -> [String: String] {
        var out: [String: String] = [:]
        for j in try JudgmentsFile.read(run + "/judgments.csv") { out[j.judge + "/" + j.itemID] = j.verdict?.rawValue ?? "" }
        return out
    }

    @Test("labels:<name> maps refusal_values; a changed pattern list re-judges")
    func tables() throws {
        let run = try Self.makeRun()
        defer { try? FileManager.default.removeItem(atPath: run) }
        var o = RunOptions(); o.stages = [.judge]; o.showProgress = false
        try Pipeline(studyFile: "j.toml", spec: try Self.spec(run: run, pattern: "no way"), options: o).execute()
        var v = try Self.verdicts(run)
        #expect(v["labels:h/q1"] == "REFUSAL" && v["labels:h/q2"] == "NON-REFUSAL")
        #expect(v["pattern:p/q1"] == "REFUSAL" && v["pattern:p/q2"] == "NON-REFUSAL")
        // Same judge names, other pattern: the stage's fingerprint changes and the verdicts follow.
        try Pipeline(studyFile: "j.toml", spec: try Self.spec(run: run, pattern: "here it is"), options: o).execute()
        v = try Self.verdicts(run)
        #expect(v["pattern:p/q1"] == "NON-REFUSAL" && v["pattern:p/q2"] == "REFUSAL")
    }

    @Test("a labels table naming a missing column is an error naming the file and line")
    func badColumn() throws {
        let run = try Self.makeRun()
        defer { try? FileManager.default.removeItem(atPath: run) }
        var o = RunOptions(); o.stages = [.judge]; o.showProgress = false
        let e = try #require(throws: InputError.self) {
            try Pipeline(studyFile: "j.toml", spec: try Self.spec(run: run, pattern: "x", verdictColumn: "verdict"), options: o).execute()
        }
        #expect(e.description.contains(run + "/labels.csv") && e.description.contains("verdict"), "\(e)")
        #expect(e.line == 1)
    }
}
