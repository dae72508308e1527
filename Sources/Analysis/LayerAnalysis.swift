import AblabCore
import LinearAlgebra

/// The explained-variance spectrum of the pooled train activations.
public struct Spectrum: Sendable {
    /// Covariance eigenvalues (n − 1 denominator), descending. [r]
    public var eigenvalues: [Double]
    /// Shares of the total variance; sums to 1. [r]
    public var explainedVarianceRatio: [Double]
    /// Running sum of the shares. [r]
    public var cumulativeVariance: [Double]
    /// (Σλ)² / Σλ².
    public var participationRatio: Double
}

/// Bootstrap and split-half stability of one direction (see `Stability`).
public struct DirectionStability: Sendable, Equatable {
    public var replicates: Int
    /// Mean cosine between bootstrap directions and the full-data direction.
    public var meanCosine: Double
    /// 2.5th and 97.5th percentiles of those cosines (linear interpolation).
    public var lower: Double
    public var upper: Double
    /// Cosine between the directions fit on two fixed, seeded halves of the train prompts.
    public var splitHalfCosine: Double
}

/// One refusal direction and its test-set statistics.
public struct Direction: Sendable {
    public var method: DirectionMethod
    /// Unit vector. [d]
    public var vector: [Float]
    /// Separation of test projection scores x · vector (measurement only).
    public var testSeparation: Separation
    /// Separation the candidate ranking uses: on validation prompts when the cache has them, else on
    /// the fit prompts (`rankedOn` says which).
    public var rankingSeparation: Separation
    public var rankedOn: RankingSet
    public var stability: DirectionStability?
}

/// The prompts candidate directions are ranked on.
public enum RankingSet: String, Sendable, Codable {
    case validation
    /// The fit prompts themselves (in-sample), when no validation prompts were recorded.
    case train
}

/// A linear probe on the leading PC scores.
public struct ProbeResult: Sendable {
    /// Number of leading PCs used.
    public var components: Int
    /// Test accuracy (threshold 0 on the decision function; harmful = positive).
    public var accuracy: Double
    /// Coefficients on the standardised PC scores and the intercept (sklearn's coef_, intercept_).
    public var coefficients: [Double]
    public var intercept: Double
    public var converged: Bool
}

/// Everything the analysis computes for one (checkpoint, layer, position).
public struct LayerAnalysis: Sendable {
    public var checkpoint: String
    public var layer: Int
    public var position: Int
    public var width: Int
    public var trainCounts: (harmful: Int, harmless: Int)
    public var testCounts: (harmful: Int, harmless: Int)
    public var spectrum: Spectrum
    /// ‖P_k Δ‖² / ‖Δ‖² for k = 1…r, Δ = mean harmful − mean harmless (train).
    public var meanDiffShare: [Double]
    /// mean-diff then pc1.
    public var directions: [Direction]
    /// cos(mean-diff, pc1) (≥ 0 by pc1's orientation).
    public var cosineMeanDiffPC1: Double
    public var probes: [ProbeResult]
    /// True when the train and test prompt ids overlapped (see `LeakageGuard`).
    public var leakage: Bool

    public func direction(_ m: DirectionMethod) -> Direction? { directions.first { $0.method == m } }
    public var site: String { "\(checkpoint) layer \(layer) position \(position)" }
}

/// Vertically stacks matrices of equal width.
func vstack(_ ms: [Matrix]) -> Matrix {
    let d = ms.first?.cols ?? 0
    var out = Matrix(rows: ms.reduce(0) { $0 + $1.rows }, cols: d)
    var off = 0
    for m in ms {
        out.data.replaceSubrange(off..<(off + m.data.count), with: m.data)
        off += m.data.count
    }
    return out
}

/// mean(a) − mean(b) column-wise, Double accumulation. [d]
func meanDifference(_ a: Matrix, _ b: Matrix) -> [Float] {
    let ma = a.columnMeans(), mb = b.columnMeans()
    return (0..<a.cols).map { ma[$0] - mb[$0] }
}

/// Analyses one site: PCA spectrum, mean-diff and pc1 directions, test separation, probes, stability.
public func analyzeLayer(checkpoint: String, layer: Int, position: Int, data: ActivationSplit,
                         options: AnalysisOptions = AnalysisOptions(), leakage: Bool = false) throws -> LayerAnalysis {
    let site = "\(checkpoint) layer \(layer) position \(position)"
    let d = data.width
    var named = [("train harmful", data.trainHarmful), ("train harmless", data.trainHarmless),
                 ("test harmful", data.testHarmful), ("test harmless", data.testHarmless)]
    let validation: (Matrix, Matrix)? = data.validationHarmful.flatMap { h in data.validationHarmless.map { (h, $0) } }
    if let (vh, vb) = validation { named += [("validation harmful", vh), ("validation harmless", vb)] }
    for (name, m) in named {
        guard m.cols == d else { throw AnalysisError(site: site, "\(name) activations have width \(m.cols), expected \(d); the cache mixes models") }
        guard m.rows >= 2 else { throw AnalysisError(site: site, "only \(m.rows) \(name) prompt(s); each class needs at least 2 train and 2 test prompts") }
    }
    guard d > 0 else { throw AnalysisError(site: site, "activations have width 0") }
    for (_, m) in named { try requireFinite(m, site: site) }

    let nh = data.trainHarmful.rows, nb = data.trainHarmless.rows
    let train = vstack([data.trainHarmful, data.trainHarmless]) // [nh + nb, d]
    let delta = meanDifference(data.trainHarmful, data.trainHarmless) // [d]
    guard Vec.norm(delta) > 0 else { throw AnalysisError(site: site, "harmful and harmless train means are identical; the activations carry no class signal (check the cache)") }
    let ks = Array(Set(options.probeComponents.map { min($0, min(train.rows - 1, d)) }.filter { $0 > 0 })).sorted()
    let keep = max(1, ks.last ?? 1)
    let pca = try PCA.fit(train, keep: keep, orientation: delta, site: site)

    let md = Vec.normalized(delta)
    let pc1 = pca.components.row(0)
    var directions: [Direction] = []
    for (method, v) in [(DirectionMethod.meanDiff, md), (.pc1, pc1)] {
        let sep = Stats.separation(try projectionScores(data.testHarmful, v), try projectionScores(data.testHarmless, v))
        let (rh, rb) = validation ?? (data.trainHarmful, data.trainHarmless)
        let rank = Stats.separation(try projectionScores(rh, v), try projectionScores(rb, v))
        directions.append(Direction(method: method, vector: v, testSeparation: sep, rankingSeparation: rank,
                                    rankedOn: validation == nil ? .train : .validation, stability: nil))
    }

    // Probes on the leading PC scores.
    let trainScores = try PCA.scores(train, pca)                                   // [n, keep]
    let testScores = try PCA.scores(vstack([data.testHarmful, data.testHarmless]), pca) // [m, keep]
    let yTrain = (0..<train.rows).map { $0 < nh }
    let mTest = testScores.rows
    let yTest = (0..<mTest).map { $0 < data.testHarmful.rows }
    var probes: [ProbeResult] = []
    for k in ks {
        let xtr = firstColumns(trainScores, k), xte = firstColumns(testScores, k)
        let scaler = Standardizer(fit: xtr, n: train.rows, k: k)
        let model = Logistic.fit(x: scaler.apply(xtr, n: train.rows, k: k), n: train.rows, k: k, y: yTrain, c: options.probeC)
        let xs = scaler.apply(xte, n: mTest, k: k)
        var correct = 0
        for i in 0..<mTest where (model.decision(xs[(i * k)..<((i + 1) * k)]) > 0) == yTest[i] { correct += 1 }
        probes.append(ProbeResult(components: k, accuracy: Double(correct) / Double(mTest), coefficients: model.coefficients,
                                  intercept: model.intercept, converged: model.converged))
    }

    if options.bootstrapReplicates > 0 {
        let st = try Stability.directions(train: train, harmfulCount: nh, pca: pca, delta: delta,
                                          replicates: options.bootstrapReplicates, seed: options.seed)
        directions[0].stability = st.meanDiff
        directions[1].stability = st.pc1
    }

    return LayerAnalysis(
        checkpoint: checkpoint, layer: layer, position: position, width: d,
        trainCounts: (nh, nb), testCounts: (data.testHarmful.rows, data.testHarmless.rows),
        spectrum: Spectrum(eigenvalues: pca.eigenvalues, explainedVarianceRatio: pca.explainedVarianceRatio,
                           cumulativeVariance: pca.cumulativeVariance, participationRatio: pca.participationRatio),
        meanDiffShare: pca.orientationShare, directions: directions,
        cosineMeanDiffPC1: Double(Vec.cosine(md, pc1)), probes: probes, leakage: leakage)
}

/// The first k columns of a Float matrix as row-major Double. [rows, k]
func firstColumns(_ m: Matrix, _ k: Int) -> [Double] {
    var out = [Double](repeating: 0, count: m.rows * k)
    for i in 0..<m.rows { for j in 0..<k { out[i * k + j] = Double(m[i, j]) } }
    return out
}
