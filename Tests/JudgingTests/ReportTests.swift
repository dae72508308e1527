import Foundation
import Testing
@testable import Judging

struct ReportRate: Decodable, Sendable {
    var system: String, label: String, judge: String
    var n: Int, refusals: Int
    var rate: Double?, lower: Double?, upper: Double?
    var tp: Int?, fp: Int?, fn: Int?, tn: Int?
}
struct ReportPair: Decodable, Sendable {
    var a: String, b: String, n: Int
    var agreement: BootCI, kappa: BootCI
    var pearson: Double?, spearman: Double?
    var stacked_pearson: Double?, stacked_spearman: Double?
}
struct ReportRef: Decodable, Sendable { var judge: String; var accuracy: Double?, precision: Double?, recall: Double?, f1: Double?, kappa: Double? }
struct ReportFixture: Decodable {
    var replicates: Int, seed: UInt64, reference: String, judges: [String]
    var rates: [ReportRate], pairs: [ReportPair], reference_rows: [ReportRef]
    var fleiss: Double?, fleiss_items: Int, alpha: Double?
    var warnings: [[String]]
}

@Suite("ablab agree's report on a judgments.csv against pandas / sklearn / scipy / statsmodels")
struct ReportTests {
    @Test func report() throws {
        let fx = try loadFixture("report", as: ReportFixture.self)
        let csv = try #require(Bundle.module.url(forResource: "report_judgments", withExtension: "csv", subdirectory: "Fixtures/stats"))
        let table = try JudgmentTable(try JudgmentsFile.read(csv.path))
        #expect(table.judges == fx.judges)
        let r = try AgreementReport.compute(table, options: .init(reference: fx.reference, replicates: fx.replicates, seed: fx.seed))

        #expect(r.rates.count == fx.rates.count)
        for e in fx.rates {
            let got = try #require(r.rates.first { $0.system == e.system && $0.label == e.label && $0.judge == e.judge })
            #expect(got.n == e.n); #expect(got.refusals == e.refusals)
            #expect(close(got.rate.estimate, e.rate)); #expect(close(got.rate.lower, e.lower)); #expect(close(got.rate.upper, e.upper))
            if let tp = e.tp {
                #expect(got.confusion == Agreement.Confusion(tp: tp, fp: e.fp!, fn: e.fn!, tn: e.tn!), "\(e.system) \(e.label) \(e.judge)")
            } else {
                #expect(got.confusion == nil)
            }
        }
        #expect(r.pairs.count == fx.pairs.count)
        for e in fx.pairs {
            let p = try #require(r.pairs.first { $0.judgeA == e.a && $0.judgeB == e.b })
            #expect(p.n == e.n)
            #expect(close(p.agreement.estimate, e.agreement.estimate))
            #expect(close(p.agreement.lower, e.agreement.lower)); #expect(close(p.agreement.upper, e.agreement.upper))
            #expect(close(p.kappa.estimate, e.kappa.estimate), "\(e.a)-\(e.b)")
            #expect(close(p.kappa.lower, e.kappa.lower)); #expect(close(p.kappa.upper, e.kappa.upper))
            let c = try #require(r.correlations.first { $0.judgeA == e.a && $0.judgeB == e.b })
            #expect(close(c.pearson, e.pearson)); #expect(close(c.spearman, e.spearman))
            #expect(close(c.stackedPearson, e.stacked_pearson)); #expect(close(c.stackedSpearman, e.stacked_spearman))
            #expect(p.kappa.valid == e.kappa.valid && p.agreement.valid == e.agreement.valid)
        }
        for e in fx.reference_rows {
            let g = try #require(r.referenceRows.first { $0.judge == e.judge })
            #expect(close(g.confusion.accuracy, e.accuracy)); #expect(close(g.confusion.precision, e.precision))
            #expect(close(g.confusion.recall, e.recall)); #expect(close(g.confusion.f1, e.f1)); #expect(close(g.kappa, e.kappa))
        }
        #expect(r.fleiss.items == fx.fleiss_items)
        #expect(close(r.fleiss.kappa, fx.fleiss))
        #expect(close(r.krippendorffAlpha, fx.alpha))
        #expect(r.warnings.map { [$0.judge, $0.kind == .constant ? "constant" : "dominant"] } == fx.warnings)

        // the tidy CSVs read back as CSV with one row per statistic
        let agreement = try AblabCoreCSV.parse(r.agreementCSV())
        #expect(agreement.first == ["judge_a", "judge_b", "metric", "value", "lower", "upper", "n", "interval", "replicates", "valid"])
        #expect(agreement.count == 1 + fx.pairs.count * 6 + fx.reference_rows.count * 5 + 2)
        let kappaRow = try #require(agreement.first { $0[2] == "cohen_kappa" })
        #expect(kappaRow[7] == "cluster-bootstrap-by-item" && kappaRow[8] == String(fx.replicates))
        #expect(agreement.contains { $0[2] == "pearson_stacked_counts" } && agreement.contains { $0[2] == "pearson_refusal_counts" })
        let rates = try AblabCoreCSV.parse(r.refusalRatesCSV())
        #expect(rates.count == 1 + fx.rates.count && rates[0][8] == "interval" && rates[1][8] == "wilson")
    }

    @Test("an unknown reference judge is an error") func unknownReference() throws {
        let t = try JudgmentTable([Judgment(itemID: "1", system: "s", label: "harmful", judge: "a", verdict: .refusal)])
        #expect(throws: StatsError.self) { try AgreementReport.compute(t, options: .init(reference: "b")) }
    }
}
