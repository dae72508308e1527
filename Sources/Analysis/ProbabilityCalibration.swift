import Foundation

/// How well stated probabilities P(positive) match binary outcomes: AUROC, Brier score and a
/// reliability diagram with its expected calibration error.
public struct ProbabilityCalibration: Sendable, Equatable {
    /// One non-empty bin of the reliability diagram.
    public struct Bin: Sendable, Equatable {
        /// The bin's interval [lower, upper] (bin 0 includes 0; bin i > 0 is (lower, upper]).
        public var lower: Double
        public var upper: Double
        public var count: Int
        /// Mean stated probability and observed positive fraction of the bin.
        public var meanProbability: Double
        public var observedFrequency: Double
    }
    public var n: Int
    public var positives: Int
    /// P(score of a random positive > score of a random negative), ties ½; NaN with one class only.
    public var auroc: Double
    /// Mean of (p − y)².
    public var brier: Double
    /// Σ_bins (count / n) · |observed − mean probability|.
    public var ece: Double
    public var bins: [Bin]

    /// `probabilities[i]` ∈ [0, 1] stated for `outcomes[i]`. Bins as scikit-learn's
    /// `calibration_curve(strategy="uniform")`: edges i / nBins computed as numpy's linspace, a value goes
    /// to the bin counted by the number of inner edges strictly below it. Throws on NaN or out-of-range input.
    public init(probabilities p: [Double], outcomes y: [Bool], bins nBins: Int = 10) throws {
        guard p.count == y.count, !p.isEmpty, nBins >= 1 else {
            throw AnalysisError(site: "calibration", "need as many outcomes as probabilities (\(y.count) vs \(p.count)), at least one, and at least one bin")
        }
        if let bad = p.firstIndex(where: { !($0 >= 0 && $0 <= 1) }) {
            throw AnalysisError(site: "calibration", "probability \(p[bad]) (item \(bad)) is not in [0, 1]")
        }
        n = p.count
        positives = y.filter { $0 }.count
        auroc = Stats.auroc(zip(p, y).filter { $0.1 }.map(\.0), zip(p, y).filter { !$0.1 }.map(\.0))
        brier = zip(p, y).reduce(0.0) { $0 + ($1.0 - ($1.1 ? 1 : 0)) * ($1.0 - ($1.1 ? 1 : 0)) } / Double(n)
        let step = 1.0 / Double(nBins)
        let edges = (0...nBins).map { $0 == nBins ? 1.0 : Double($0) * step }
        var count = [Int](repeating: 0, count: nBins), sumP = [Double](repeating: 0, count: nBins), sumY = [Double](repeating: 0, count: nBins)
        for (pi, yi) in zip(p, y) {
            var b = 0
            while b + 1 < nBins && edges[b + 1] < pi { b += 1 }
            count[b] += 1; sumP[b] += pi; sumY[b] += yi ? 1 : 0
        }
        var bins: [Bin] = []
        var ece = 0.0
        for b in 0..<nBins where count[b] > 0 {
            let c = Double(count[b])
            bins.append(Bin(lower: edges[b], upper: edges[b + 1], count: count[b], meanProbability: sumP[b] / c, observedFrequency: sumY[b] / c))
            ece += c / Double(n) * abs(sumY[b] / c - sumP[b] / c)
        }
        self.bins = bins
        self.ece = ece
    }
}
