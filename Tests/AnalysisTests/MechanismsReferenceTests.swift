import Foundation
import Testing
import LinearAlgebra
import Analysis

/// The JSON written by notebooks-scripts/fixtures_mechanisms.py: COSMIC's scores reimplemented with
/// numpy from the paper's formula, and scikit-learn's AUROC, Brier score and calibration curve.
struct MechanismsFixture: Decodable {
    struct Score: Decodable { var layer: Int; var position: Int; var ablation: Double; var addition: Double; var eligible: Bool }
    struct Site: Decodable { var layer: Int; var position: Int }
    struct CosmicCase: Decodable {
        var name: String
        var n_layers: Int
        var d: Int
        var positions: [Int]
        var activations: [Float]
        var shape: [Int]
        var fit_harmful: [Int], fit_harmless: [Int], score_harmful: [Int], score_harmless: [Int]
        var low_layers: [Int]
        var scores: [Score]
        var chosen: Site
        /// Residual layer l at position p: [N, d].
        func residual(_ l: Int, _ p: Int) -> Matrix {
            let n = shape[1], pc = shape[2], pi = positions.firstIndex(of: p)!
            var m = Matrix(rows: n, cols: d)
            for i in 0..<n { for j in 0..<d { m.data[i * d + j] = activations[((l * n + i) * pc + pi) * d + j] } }
            return m
        }
    }
    struct CalibrationCase: Decodable {
        var name: String
        var p: [Double]
        var y: [Int]
        var auroc: Double
        var brier: Double
        var prob_true: [Double]
        var prob_pred: [Double]
        var counts: [Int]
        var ece: Double
    }
    var cosmic: [CosmicCase]
    var calibration: [CalibrationCase]

    static let shared: MechanismsFixture = {
        let url = Bundle.module.url(forResource: "mechanisms", withExtension: "json", subdirectory: "Fixtures")!
        return try! JSONDecoder().decode(MechanismsFixture.self, from: Data(contentsOf: url))
    }()
}

@Suite("Mechanisms against numpy and scikit-learn")
struct MechanismsReferenceTests {
    @Test("COSMIC's scores, evaluation layers and pick equal the numpy reimplementation of the paper's formula", arguments: [0, 1])
    func cosmic(index: Int) throws {
        let c = MechanismsFixture.shared.cosmic[index]
        let r = try Cosmic.scores(checkpoint: c.name, nLayers: c.n_layers, positions: c.positions, residual: { c.residual($0, $1) },
                                  fit: (c.fit_harmful, c.fit_harmless), score: (c.score_harmful, c.score_harmless))
        #expect(r.lowLayers == c.low_layers)
        #expect(r.scores.count == c.scores.count)
        for (got, want) in zip(r.scores, c.scores) {
            #expect(got.layer == want.layer && got.position == want.position)
            #expect(abs(got.ablation - want.ablation) <= 1e-12, "\(c.name) layer \(want.layer) position \(want.position): ablation \(got.ablation) vs \(want.ablation)")
            #expect(abs(got.addition - want.addition) <= 1e-12, "\(c.name) layer \(want.layer) position \(want.position): addition \(got.addition) vs \(want.addition)")
            #expect(got.eligible == want.eligible)
        }
        let chosen = r.scores.filter(\.chosen)
        #expect(chosen.count == 1)
        #expect(chosen.first?.layer == c.chosen.layer && chosen.first?.position == c.chosen.position)
    }

    @Test("AUROC, Brier score, reliability bins and ECE equal scikit-learn's", arguments: [0, 1])
    func calibration(index: Int) throws {
        let c = MechanismsFixture.shared.calibration[index]
        let k = try ProbabilityCalibration(probabilities: c.p, outcomes: c.y.map { $0 == 1 })
        #expect(abs(k.auroc - c.auroc) <= 1e-12, "\(c.name): AUROC \(k.auroc) vs \(c.auroc)")
        #expect(abs(k.brier - c.brier) <= 1e-12, "\(c.name): Brier \(k.brier) vs \(c.brier)")
        #expect(k.bins.map(\.count) == c.counts)
        #expect(k.bins.count == c.prob_true.count)
        for (b, (t, p)) in zip(k.bins, zip(c.prob_true, c.prob_pred)) {
            #expect(abs(b.observedFrequency - t) <= 1e-12 && abs(b.meanProbability - p) <= 1e-12, "\(c.name): bin \(b)")
        }
        #expect(abs(k.ece - c.ece) <= 1e-12, "\(c.name): ECE \(k.ece) vs \(c.ece)")
    }

    @Test("a probability outside [0, 1] is an error naming it")
    func badProbability() {
        #expect(throws: AnalysisError.self) { try ProbabilityCalibration(probabilities: [0.2, 1.5], outcomes: [true, false]) }
        #expect(throws: AnalysisError.self) { try ProbabilityCalibration(probabilities: [.nan], outcomes: [true]) }
    }
}
