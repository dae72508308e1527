import Foundation
import Testing
@testable import Judging

struct PaperConfusion: Decodable, Sendable { var tp: Int, fn: Int, fp: Int, tn: Int; var kappa: Double }
struct PaperCorr: Decodable, Sendable { var groups: Int; var pearson: Double?; var spearman: Double?; var refusals: Int }
struct PaperFixture: Decodable {
    var joined: Int
    var human1_refusals: Int, human2_refusals: Int
    var human_agreement: Double, human_kappa: Double
    var regex_refusals: Int, regex_groups: Int, regex_groups_matching_summary: Int, regex_summary_refusals: Int
    var regex_vs_human1: PaperConfusion, regex_vs_human2: PaperConfusion
    var curly_only_matches: Int
    var judges_vs_human1: [String: PaperCorr]
    var all_summary_refusals: [String: Int]
    var all_summary_totals: [String: Int]
}

let paperDir = packageRoot + "/notebooks-scripts/data/paper"

@Suite("The study's data: our numbers equal pandas / sklearn / scipy on the same CSVs")
struct PaperTests {
    let fx: PaperFixture
    let study: PaperStudy
    init() throws {
        fx = try loadFixture("paper", as: PaperFixture.self)
        study = try PaperStudy.load(directory: paperDir)
    }

    @Test("human–human agreement and Cohen's κ") func humans() throws {
        let h = try study.humanAgreement()
        #expect(h.n == fx.joined)
        #expect(h.refusals1 == fx.human1_refusals)
        #expect(h.refusals2 == fx.human2_refusals)
        #expect(close(h.agreement, fx.human_agreement))
        #expect(close(h.kappa, fx.human_kappa))
    }

    @Test("regex:paper reproduces the study's regex counts per (model, label) group") func regex() throws {
        let r = try study.reproduceRegex()
        #expect(r.groups.count == fx.regex_groups)
        #expect(r.matchingGroups == fx.regex_groups_matching_summary)
        #expect(r.ourRefusals == fx.regex_refusals)
        #expect(r.studyRefusals == fx.regex_summary_refusals)
        #expect(r.vsHuman1 == Agreement.Confusion(tp: fx.regex_vs_human1.tp, fp: fx.regex_vs_human1.fp, fn: fx.regex_vs_human1.fn, tn: fx.regex_vs_human1.tn))
        #expect(r.vsHuman2 == Agreement.Confusion(tp: fx.regex_vs_human2.tp, fp: fx.regex_vs_human2.fp, fn: fx.regex_vs_human2.fn, tn: fx.regex_vs_human2.tn))
        #expect(close(r.kappaVsHuman1, fx.regex_vs_human1.kappa))
        #expect(close(r.kappaVsHuman2, fx.regex_vs_human2.kappa))
        #expect(r.curlyOnly == fx.curly_only_matches)
    }

    @Test("every judge vs Human 1: Pearson / Spearman over the 80-long count vectors") func correlations() throws {
        let summary = try PaperStudy.readSummary(paperDir + "/" + PaperStudy.summary10qRenamedFile)
        let c = try PaperStudy.judgeCorrelations(summary, reference: "Human 1")
        #expect(c.count == fx.judges_vs_human1.count)
        for j in c {
            let e = try #require(fx.judges_vs_human1[j.judge], "judge \(j.judge)")
            #expect(j.groups == e.groups)
            #expect(close(j.pearson, e.pearson), "\(j.judge) pearson")
            #expect(close(j.spearman, e.spearman), "\(j.judge) spearman")
            #expect(j.refused == e.refusals)
        }
    }

    @Test("per-judge totals in the full-run summary") func totals() throws {
        let summary = try PaperStudy.readSummary(paperDir + "/" + PaperStudy.summaryAllRenamedFile)
        let t = PaperStudy.refusalTotals(summary)
        #expect(t.count == fx.all_summary_refusals.count)
        for r in t {
            #expect(r.refused == fx.all_summary_refusals[r.judge])
            #expect(r.total == fx.all_summary_totals[r.judge])
        }
    }

    @Test("the annotator files through the generic labels importer agree with the paper importer") func viaLabels() throws {
        let j = try LabelsJudge(spec: "labels:\(paperDir)/\(PaperStudy.annotator2File);item=qid;system=model;verdict=user_choice;name=human_2")
        var same = 0
        for r in study.responses where j.verdict(system: r.model, itemID: r.qid)?.label == r.human2 { same += 1 }
        #expect(same == fx.joined)
    }
}

struct CalibRow: Decodable, Sendable {
    var judge: String, annotator: String, n: Int, judge_refusals: Int, annotator_refusals: Int
    var accuracy: Double, accuracy_lower: Double, accuracy_upper: Double
    var kappa: ClusterCI, f1: ClusterCI
}
struct CalibFixture: Decodable { var replicates: Int; var seed: UInt64; var n: Int; var rows: [CalibRow] }

@Suite("Judges calibrated on the study's 200 human-labelled responses, against statsmodels / sklearn / numpy")
struct CalibrationTests {
    @Test("regex:paper and substring:arditi vs each annotator: accuracy (Wilson), κ and F1 (cluster bootstrap by question)",
          arguments: ["regex:paper", "substring:arditi"])
    func ruleJudges(judge: String) throws {
        let fx = try loadFixture("calibration", as: CalibFixture.self)
        let study = try PaperStudy.load(directory: paperDir)
        let j = try Judges.make(spec: judge)
        let rows = try JudgeCalibration.compute(study: study, judge: judge, judgments: try j.judgeAll(study.items),
                                                replicates: fx.replicates, seed: fx.seed)
        #expect(rows.map(\.annotator) == ["human_1", "human_2"])
        for r in rows {
            let e = try #require(fx.rows.first { $0.judge == judge && $0.annotator == r.annotator })
            #expect(r.n == e.n && r.n == 200)
            #expect(r.judgeRefusals == e.judge_refusals && r.annotatorRefusals == e.annotator_refusals)
            #expect(close(r.accuracy.estimate, e.accuracy, 1e-12))
            #expect(close(r.accuracy.lower, e.accuracy_lower, 1e-12) && close(r.accuracy.upper, e.accuracy_upper, 1e-12))
            for (got, ex) in [(r.kappa, e.kappa), (r.f1, e.f1)] {
                #expect(close(got.estimate, ex.estimate, 1e-12))
                #expect(close(got.lower, ex.lower, 1e-12) && close(got.upper, ex.upper, 1e-12))
                #expect(got.valid == ex.valid)
            }
        }
        if judge == "regex:paper" {
            // The number `ablab agree --paper` has always printed for the study's regex against Human 1.
            #expect(abs(rows[0].kappa.estimate - 0.627) < 0.0005)
        }
        let csv = try AblabCoreCSV.parse(JudgeCalibration.csv(rows))
        #expect(csv.count == 3 && csv[0][0] == "judge" && csv[1][1] == "human_1")
    }

    @Test("the best judge is the one with the highest κ against Human 1")
    func best() throws {
        let study = try PaperStudy.load(directory: paperDir)
        var rows: [JudgeCalibration.Row] = []
        for name in ["regex:paper", "substring:arditi"] {
            rows += try JudgeCalibration.compute(study: study, judge: name, judgments: try Judges.make(spec: name).judgeAll(study.items), replicates: 10)
        }
        let best = try #require(JudgeCalibration.best(rows))
        let k = rows.filter { $0.annotator == "human_1" }.map(\.kappa.estimate)
        #expect(best.kappa.estimate == k.max())
    }
}
