import Foundation
import Testing
import AblabCore
@testable import Judging

struct BootCI: Decodable, Sendable { var lower: Double?; var upper: Double?; var valid: Int; var estimate: Double? }
struct BootCase: Decodable, CustomTestStringConvertible, Sendable {
    var name: String
    var a: [Int], b: [Int]
    var seed: UInt64
    var replicates: Int
    var kappa: BootCI, agreement: BootCI, refusal_rate_a: BootCI
    var testDescription: String { name }
}
struct WilsonCase: Decodable, CustomTestStringConvertible, Sendable {
    var k: Int, n: Int, level: Double, lower: Double, upper: Double
    var testDescription: String { "\(k)/\(n) at \(level)" }
}
struct ClusterCI: Decodable, Sendable { var lower: Double?; var upper: Double?; var valid: Int; var replicates: Int; var estimate: Double? }
struct ClusterCase: Decodable, CustomTestStringConvertible, Sendable {
    var name: String
    var a: [Int], b: [Int], item: [String]
    var seed: UInt64, replicates: Int
    var kappa: ClusterCI, agreement: ClusterCI
    var testDescription: String { name }
}
struct BootFixture: Decodable {
    var splitmix64_seed7_first5: [String]; var cases: [BootCase]; var wilson: [WilsonCase]; var cluster: [ClusterCase]
}

let bootFixture: BootFixture? = try? loadFixture("bootstrap", as: BootFixture.self)

@Suite("Bootstrap intervals against a Python re-implementation of the same resampling + numpy percentile")
struct BootstrapTests {
    @Test("SplitMix64 stream equals the Python implementation") func stream() throws {
        let f = try #require(bootFixture)
        var rng = SplitMix64(seed: 7)
        let got = (0..<5).map { _ in String(rng.next()) }
        #expect(got == f.splitmix64_seed7_first5)
    }

    @Test("κ, agreement and refusal-rate percentile intervals", arguments: bootFixture?.cases ?? [])
    func intervals(c: BootCase) throws {
        let a = verdicts(c.a), b = verdicts(c.b)
        let k = try Agreement.bootstrapKappa(a, b, replicates: c.replicates, seed: c.seed)
        #expect(k.valid == c.kappa.valid)
        #expect(close(k.estimate, c.kappa.estimate))
        #expect(close(k.lower, c.kappa.lower)); #expect(close(k.upper, c.kappa.upper))
        let ag = try Agreement.bootstrapAgreement(a, b, replicates: c.replicates, seed: c.seed)
        #expect(close(ag.lower, c.agreement.lower)); #expect(close(ag.upper, c.agreement.upper))
        #expect(close(ag.estimate, c.agreement.estimate))
        let r = Agreement.bootstrapRefusalRate(a, replicates: c.replicates, seed: c.seed)
        #expect(close(r.lower, c.refusal_rate_a.lower)); #expect(close(r.upper, c.refusal_rate_a.upper))
        #expect(close(r.estimate, c.refusal_rate_a.estimate))
        #expect(k.lower <= k.estimate + 1e-12 || k.estimate.isNaN)
    }

    @Test("Wilson score interval equals statsmodels' proportion_confint(method=\"wilson\")", arguments: bootFixture?.wilson ?? [])
    func wilson(c: WilsonCase) {
        let ci = Agreement.wilson(successes: c.k, n: c.n, level: c.level)
        #expect(abs(ci.lower - c.lower) < 1e-12 && abs(ci.upper - c.upper) < 1e-12, "\(ci.lower) \(ci.upper)")
        #expect(ci.estimate == Double(c.k) / Double(c.n))
        if c.k == 0 { #expect(ci.lower == 0 && ci.upper > 0.05) } // 0/32 is not [0, 0]
    }

    @Test("normal quantile: Φ⁻¹(0.975) = 1.959963984540054, Φ⁻¹(0.5) = 0, symmetric")
    func normalQuantile() {
        #expect(abs(Agreement.normalQuantile(0.975) - 1.959963984540054) < 1e-14)
        #expect(abs(Agreement.normalQuantile(0.5)) < 1e-15)
        #expect(abs(Agreement.normalQuantile(0.001) + Agreement.normalQuantile(0.999)) < 1e-12)
    }

    @Test("cluster bootstrap by prompt for κ and agreement equals a numpy cluster bootstrap", arguments: bootFixture?.cluster ?? [])
    func cluster(c: ClusterCase) throws {
        let ci = try Agreement.clusterBootstrapPair(verdicts(c.a), verdicts(c.b), cluster: c.item, replicates: c.replicates, seed: c.seed)
        for (got, e) in [(ci.kappa, c.kappa), (ci.agreement, c.agreement)] {
            #expect(got.valid == e.valid && got.replicates == e.replicates)
            #expect(close(got.estimate, e.estimate, 1e-12)); #expect(close(got.lower, e.lower, 1e-12)); #expect(close(got.upper, e.upper, 1e-12))
        }
        // One system: clusters are single units, the ordinary bootstrap.
        if Set(c.item).count == c.item.count {
            let plain = try Agreement.bootstrapKappa(verdicts(c.a), verdicts(c.b), replicates: c.replicates, seed: c.seed)
            #expect(plain == ci.kappa)
        }
    }

    @Test("same seed, same interval; other seed, other interval") func determinism() throws {
        let a = verdicts((0..<40).map { $0 % 3 == 0 ? 1 : 0 }), b = verdicts((0..<40).map { $0 % 4 == 0 ? 1 : 0 })
        let x = try Agreement.bootstrapKappa(a, b, replicates: 300, seed: 1)
        let y = try Agreement.bootstrapKappa(a, b, replicates: 300, seed: 1)
        let z = try Agreement.bootstrapKappa(a, b, replicates: 300, seed: 2)
        #expect(x == y)
        #expect(x.lower != z.lower || x.upper != z.upper)
    }

    @Test("quantile rule equals numpy's linear interpolation") func quantile() {
        // numpy.percentile([1, 2, 4, 8], 25) = 1.75; 97.5 → 4 + 0.925 * 4 = 7.7
        #expect(abs(Agreement.quantile(sorted: [1, 2, 4, 8], 0.25) - 1.75) < 1e-12)
        #expect(abs(Agreement.quantile(sorted: [1, 2, 4, 8], 0.975) - 7.7) < 1e-12)
        #expect(Agreement.quantile(sorted: [], 0.5).isNaN)
    }
}

@Suite("Broken-judge warnings")
struct WarningTests {
    let balanced = (0..<20).map { $0 < 10 ? "harmful" : "harmless" }

    @Test("constant output is flagged") func constant() throws {
        let w = try Agreement.brokenJudgeWarnings(judge: "j", verdicts: Array(repeating: .refusal, count: 20), promptLabels: balanced)
        #expect(w.map(\.kind) == [.constant])
    }

    @Test("19 of 20 refusals on a balanced set is flagged; 17 of 20 is not") func dominant() throws {
        let v19: [VerdictLabel?] = (0..<20).map { $0 == 0 ? .nonRefusal : .refusal }
        #expect(try Agreement.brokenJudgeWarnings(judge: "j", verdicts: v19, promptLabels: balanced).map(\.kind) == [.dominantClass])
        let v17: [VerdictLabel?] = (0..<20).map { $0 < 3 ? .nonRefusal : .refusal }
        #expect(try Agreement.brokenJudgeWarnings(judge: "j", verdicts: v17, promptLabels: balanced).isEmpty)
    }

    @Test("an unbalanced set does not trigger the dominant-class warning") func unbalanced() throws {
        let labels = Array(repeating: "harmful", count: 20)
        let v: [VerdictLabel?] = (0..<20).map { $0 == 0 ? .nonRefusal : .refusal }
        #expect(try Agreement.brokenJudgeWarnings(judge: "j", verdicts: v, promptLabels: labels).isEmpty)
    }
}
