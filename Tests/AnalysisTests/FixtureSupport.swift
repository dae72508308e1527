import Foundation
import Testing
import LinearAlgebra
import Analysis

/// The JSON written by notebooks-scripts/fixtures_analysis.py (numpy / scikit-learn / scipy).
struct Fixture: Decodable {
    struct Sep: Decodable { var cohen_d: Double; var auroc: Double }
    struct Probe: Decodable { var k: Int; var accuracy: Double; var coef: [Double]; var intercept: Double }
    struct Stab: Decodable { var cosines: [Double]; var mean: Double; var lower: Double; var upper: Double; var split_half: Double }
    struct Stability: Decodable { var seed: UInt64; var replicates: Int; var mean_diff: Stab; var pc1: Stab }
    struct Case: Decodable {
        var name: String
        var d: Int
        var signal: Double
        var train_harmful: [[Double]]
        var train_harmless: [[Double]]
        var test_harmful: [[Double]]
        var test_harmless: [[Double]]
        var planted: [Double]
        var rank: Int
        var explained_variance: [Double]
        var explained_variance_ratio: [Double]
        var cumulative: [Double]
        var participation_ratio: Double
        var components: [[Double]]
        var mean_diff_share: [Double]
        var mean_diff: [Double]
        var pc1: [Double]
        var cos_md_pc1: Double
        var separation: [String: Sep]
        var probes: [Probe]
        var stability: Stability

        var split: ActivationSplit {
            ActivationSplit(trainHarmful: matrix(train_harmful), trainHarmless: matrix(train_harmless),
                            testHarmful: matrix(test_harmful), testHarmless: matrix(test_harmless))
        }
        var options: AnalysisOptions {
            var o = AnalysisOptions()
            o.probeComponents = probes.map(\.k)
            o.bootstrapReplicates = stability.replicates
            o.seed = stability.seed
            return o
        }
    }
    struct CKA: Decodable { var x: [[Double]]; var y: [[Double]]; var harmful_rows: Int; var cka: Double; var pearson_scores: Double }
    struct Ties: Decodable { var pos: [Double]; var neg: [Double]; var auroc: Double; var cohen_d: Double; var percentile_2_5: Double; var percentile_97_5: Double }
    struct SM: Decodable { var seed: UInt64; var outputs: [String]; var bounded_seed: UInt64; var bounded_10: [Int] }
    var cases: [Case]
    var cka: CKA
    var ties: Ties
    var splitmix64: SM

    static let shared: Fixture = {
        let url = Bundle.module.url(forResource: "analysis_cases", withExtension: "json", subdirectory: "Fixtures")!
        return try! JSONDecoder().decode(Fixture.self, from: Data(contentsOf: url))
    }()
    static func named(_ name: String) -> Case { shared.cases.first { $0.name == name }! }
}

/// Rows of Doubles → Float matrix (the fixture values are exact float32 values).
func matrix(_ rows: [[Double]]) -> Matrix { Matrix(rows.map { $0.map { Float($0) } }) }

/// |a − b| ≤ rel · max(|b|, floor).
func close(_ a: Double, _ b: Double, rel: Double = 1e-4, floor: Double = 1e-6) -> Bool {
    abs(a - b) <= rel * max(abs(b), floor)
}

func maxRelErr(_ a: [Double], _ b: [Double], floor: Double) -> Double {
    precondition(a.count == b.count)
    return zip(a, b).map { abs($0 - $1) / max(abs($1), floor) }.max() ?? 0
}

func cosine(_ a: [Double], _ b: [Double]) -> Double {
    var ab = 0.0, aa = 0.0, bb = 0.0
    for i in 0..<a.count { ab += a[i] * b[i]; aa += a[i] * a[i]; bb += b[i] * b[i] }
    return ab / (aa * bb).squareRoot()
}
