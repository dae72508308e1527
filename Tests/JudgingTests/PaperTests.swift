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
