import Foundation
import Testing
@testable import Judging

struct PairCase: Decodable, CustomTestStringConvertible, Sendable {
    var name: String
    var a: [Int?], b: [Int?]
    var n: Int
    var agreement: Double?, kappa: Double?
    var tp: Int, fp: Int, fn: Int, tn: Int
    var accuracy: Double?, precision: Double?, recall: Double?, f1: Double?
    var testDescription: String { name }
}
struct MultiCase: Decodable, CustomTestStringConvertible, Sendable {
    var name: String
    var ratings: [[Int?]]
    var fleiss: Double?
    var fleiss_items: Int
    var alpha: Double?
    var textbook_alpha: Double?
    var testDescription: String { name }
}
struct CorrCase: Decodable, CustomTestStringConvertible, Sendable {
    var name: String
    var x: [Double], y: [Double]
    var pearson: Double?, spearman: Double?
    var testDescription: String { name }
}
struct AgreementFixture: Decodable { var pairs: [PairCase]; var multi: [MultiCase]; var correlations: [CorrCase] }

let agreementFixture: AgreementFixture = {
    do { return try loadFixture("agreement", as: AgreementFixture.self) }
    catch { return AgreementFixture(pairs: [], multi: [], correlations: []) }
}()

@Suite("Agreement statistics against sklearn / statsmodels / scipy / numpy")
struct AgreementTests {
    @Test("fixtures are present") func fixturesPresent() {
        #expect(agreementFixture.pairs.count >= 10)
        #expect(agreementFixture.multi.count >= 8)
        #expect(agreementFixture.correlations.count >= 5)
    }

    @Test("percent agreement and Cohen's κ (sklearn)", arguments: agreementFixture.pairs)
    func pairwise(c: PairCase) throws {
        let a = verdicts(c.a), b = verdicts(c.b)
        #expect(try Agreement.pairCounts(a, b).n == c.n)
        #expect(close(try Agreement.percentAgreement(a, b), c.agreement))
        #expect(close(try Agreement.cohenKappa(a, b), c.kappa))
    }

    @Test("confusion matrix, accuracy, precision, recall, F1 (sklearn)", arguments: agreementFixture.pairs)
    func confusion(c: PairCase) throws {
        let m = try Agreement.confusion(predicted: verdicts(c.a), reference: verdicts(c.b))
        #expect(m == Agreement.Confusion(tp: c.tp, fp: c.fp, fn: c.fn, tn: c.tn))
        #expect(close(m.accuracy, c.accuracy))
        #expect(close(m.precision, c.precision))
        #expect(close(m.recall, c.recall))
        #expect(close(m.f1, c.f1))
    }

    @Test("Fleiss' κ (statsmodels) and Krippendorff's α (numpy coincidence matrix)", arguments: agreementFixture.multi)
    func manyRaters(c: MultiCase) throws {
        let f = try Agreement.fleissKappa(c.ratings)
        #expect(f.items == c.fleiss_items)
        #expect(close(f.kappa, c.fleiss))
        let alpha = try Agreement.krippendorffAlpha(c.ratings)
        #expect(close(alpha, c.alpha))
        if let t = c.textbook_alpha { #expect(abs(alpha - t) < 5e-4) }   // published to 3 decimals
    }

    @Test("Krippendorff's α on verdict labels equals α on their codes") func alphaOnLabels() throws {
        let c = try #require(agreementFixture.multi.first { $0.name == "missing_values" })
        let labels = c.ratings.map(verdicts)
        #expect(close(try Agreement.krippendorffAlpha(labels), c.alpha))
        #expect(close(try Agreement.fleissKappa(labels).kappa, c.fleiss))
    }

    @Test("Pearson and Spearman (scipy)", arguments: agreementFixture.correlations)
    func correlations(c: CorrCase) throws {
        #expect(close(try Agreement.pearson(c.x, c.y), c.pearson))
        #expect(close(try Agreement.spearman(c.x, c.y), c.spearman))
    }

    @Test("average ranks for ties") func ranks() {
        // mathematics: values 10, 20, 20, 30, 20 → ranks 1, 3, 3, 5, 3 (20s span ranks 2–4)
        #expect(Agreement.averageRanks([10, 20, 20, 30, 20]) == [1, 3, 3, 5, 3])
    }

    @Test("lists of different lengths are an error, not a crash") func shapes() {
        #expect(throws: StatsError.self) { try Agreement.cohenKappa([VerdictLabel.refusal], []) }
        #expect(throws: StatsError.self) { try Agreement.krippendorffAlpha([[1, 2], [1]]) }
        #expect(throws: StatsError.self) { try Agreement.pearson([1, 2], [1]) }
    }
}
