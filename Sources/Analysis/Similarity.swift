import LinearAlgebra
import AblabCore

/// Similarity of directions and representations across layers and checkpoints.
public enum Similarity {
    /// Cosine of every pair of vectors (e.g. one direction per layer of a checkpoint). Vectors of
    /// different lengths or zero vectors give NaN. [count][count]
    public static func cosineMatrix(_ vectors: [[Float]]) -> [[Double]] {
        let n = vectors.count
        let norms = vectors.map { Double(Vec.norm($0)) }
        var out = [[Double]](repeating: [Double](repeating: .nan, count: n), count: n)
        for i in 0..<n {
            for j in i..<n {
                guard vectors[i].count == vectors[j].count, norms[i] > 0, norms[j] > 0 else { continue }
                var s = 0.0
                for t in 0..<vectors[i].count { s += Double(vectors[i][t]) * Double(vectors[j][t]) }
                let c = max(-1, min(1, s / (norms[i] * norms[j])))
                out[i][j] = c; out[j][i] = c
            }
        }
        return out
    }

    /// Relative-depth mapping between models with different layer counts: layer `l` of a model with
    /// `from` layers goes to the layer of a `to`-layer model at the same relative depth
    /// l / (from − 1), i.e. round(l · (to − 1) / (from − 1)) with halves rounded up. The first layer
    /// maps to the first and the last to the last; equal counts map every layer to itself.
    public static func mappedLayer(_ l: Int, from: Int, to: Int) -> Int {
        precondition(from > 0 && to > 0 && l >= 0 && l < from)
        if from == 1 { return 0 }
        let x = Double(l) * Double(to - 1) / Double(from - 1)
        return min(to - 1, Int((x + 0.5).rounded(.down)))
    }

    public struct LayerPair: Sendable, Equatable {
        public var layerA: Int
        public var layerB: Int
        public var cosine: Double
    }

    /// For every layer of checkpoint A, the cosine between its direction and the direction of the
    /// depth-mapped layer of checkpoint B (`mappedLayer(l, from: a.count, to: b.count)`). Both
    /// checkpoints must have the same width.
    public static func crossCheckpointCosines(_ a: [[Float]], _ b: [[Float]]) throws -> [LayerPair] {
        guard let wa = a.first?.count, let wb = b.first?.count else { return [] }
        guard wa == wb, a.allSatisfy({ $0.count == wa }), b.allSatisfy({ $0.count == wb }) else {
            throw AnalysisError(site: "checkpoint comparison", "directions of width \(wa) and \(wb) cannot be compared by cosine; use linear CKA or score correlation for different widths")
        }
        return a.indices.map { l in
            let m = mappedLayer(l, from: a.count, to: b.count)
            return LayerPair(layerA: l, layerB: m, cosine: Double(Vec.cosine(a[l], b[m])))
        }
    }

    /// Linear CKA (Kornblith et al. 2019) between two representations of the same n prompts, x [n, d1]
    /// and y [n, d2]: with column-centred X, Y, ‖Yᵀ X‖²_F / (‖Xᵀ X‖_F ‖Yᵀ Y‖_F). Computed from the n × n
    /// Gram matrices (⟨X Xᵀ, Y Yᵀ⟩ / (‖X Xᵀ‖ ‖Y Yᵀ‖), the same number) when that is cheaper.
    /// `useGram` forces one form (tests).
    public static func linearCKA(_ x: Matrix, _ y: Matrix, useGram: Bool? = nil) throws -> Double {
        let n = x.rows, d1 = x.cols, d2 = y.cols
        guard y.rows == n else { throw AnalysisError(site: "CKA", "the two representations have \(n) and \(y.rows) prompts; CKA needs the same prompts in the same order") }
        guard n >= 2 else { return .nan }
        let xc = x.meanCentred().centred, yc = y.meanCentred().centred
        let gram = useGram ?? (n * n * (d1 + d2) < n * (d1 * d2 + d1 * d1 + d2 * d2))
        let cross: Double, sx: Double, sy: Double
        if gram {
            let kx = try matmul(xc, xc, transB: true), ky = try matmul(yc, yc, transB: true) // [n, n]
            var c = 0.0, a = 0.0, b = 0.0
            for i in 0..<(n * n) {
                let u = Double(kx.data[i]), v = Double(ky.data[i])
                c += u * v; a += u * u; b += v * v
            }
            cross = c; sx = a.squareRoot(); sy = b.squareRoot()
        } else {
            cross = sumSquares(try matmul(yc, xc, transA: true))        // ‖Yᵀ X‖² [d2, d1]
            sx = sumSquares(try matmul(xc, xc, transA: true)).squareRoot() // [d1, d1]
            sy = sumSquares(try matmul(yc, yc, transA: true)).squareRoot() // [d2, d2]
        }
        guard sx > 0, sy > 0 else { return .nan }
        return cross / (sx * sy)
    }

    /// Debiased linear CKA: the unbiased HSIC estimator (Song et al. 2012) in place of the plug-in one,
    /// HSIC_u(K, L) / √(HSIC_u(K, K) HSIC_u(L, L)) with K, L the linear Gram matrices of the centred
    /// representations. Linear CKA with fewer prompts than dimensions is biased upward (independent random
    /// representations score far above 0); the debiased estimate is near 0 for them. Needs n ≥ 4
    /// prompts (nan otherwise, or when a representation is constant).
    public static func debiasedCKA(_ x: Matrix, _ y: Matrix) throws -> Double {
        let (kx, ky) = try grams(x, y)
        return debiasedCKA(kx: kx, ky: ky, n: x.rows, permutation: nil)
    }

    /// Permutation baseline of the debiased CKA: the estimate with y's prompts shuffled (so the pairing
    /// of prompts is broken) `permutations` times, SplitMix64 seeded with `seed` shuffling 0..<n anew each
    /// time (Fisher–Yates, `SplitMix64.shuffle`). Returns the mean and the 95th percentile (numpy's linear
    /// rule) of the shuffled estimates: what the statistic gives for unrelated representations of this size.
    public static func debiasedCKAPermutationBaseline(_ x: Matrix, _ y: Matrix, permutations: Int = 20,
                                                      seed: UInt64 = 20251002) throws -> (mean: Double, p95: Double) {
        let n = x.rows
        guard n >= 4, permutations > 0 else { return (.nan, .nan) }
        let (kx, ky) = try grams(x, y)
        var rng = SplitMix64(seed: seed)
        var values: [Double] = []
        for _ in 0..<permutations {
            var perm = Array(0..<n)
            rng.shuffle(&perm)
            let v = debiasedCKA(kx: kx, ky: ky, n: n, permutation: perm)
            if !v.isNaN { values.append(v) }
        }
        guard !values.isEmpty else { return (.nan, .nan) }
        values.sort()
        let pos = 0.95 * Double(values.count - 1)
        let lo = Int(pos.rounded(.down)), hi = min(lo + 1, values.count - 1)
        let p95 = values[lo] + (values[hi] - values[lo]) * (pos - Double(lo))
        return (values.reduce(0, +) / Double(values.count), p95)
    }

    /// Double Gram matrices of the column-centred x and y. [n, n] each
    static func grams(_ x: Matrix, _ y: Matrix) throws -> ([Double], [Double]) {
        guard y.rows == x.rows else { throw AnalysisError(site: "CKA", "the two representations have \(x.rows) and \(y.rows) prompts; CKA needs the same prompts in the same order") }
        let xc = x.meanCentred().centred, yc = y.meanCentred().centred
        let kx = try matmul(xc, xc, transB: true), ky = try matmul(yc, yc, transB: true)
        return (kx.data.map(Double.init), ky.data.map(Double.init))
    }

    /// Debiased CKA from Gram matrices; `permutation` reorders the prompts of ky (ky[p[i], p[j]]).
    static func debiasedCKA(kx: [Double], ky: [Double], n: Int, permutation p: [Int]?) -> Double {
        guard n >= 4 else { return .nan }
        func l(_ i: Int, _ j: Int) -> Double { p.map { ky[$0[i] * n + $0[j]] } ?? ky[i * n + j] }
        func k(_ i: Int, _ j: Int) -> Double { kx[i * n + j] }
        // HSIC_u(A, B) = [Σ_{i≠j} A_ij B_ij + (ΣA)(ΣB)/((n−1)(n−2)) − 2/(n−2) Σ_i (Σ_j A_ij)(Σ_j B_ij)] / (n(n−3)),
        // sums over the off-diagonal entries (the diagonals are set to 0).
        var rk = [Double](repeating: 0, count: n), rl = rk
        var kl = 0.0, kk = 0.0, ll = 0.0
        for i in 0..<n { for j in 0..<n where i != j {
            let a = k(i, j), b = l(i, j)
            rk[i] += a; rl[i] += b
            kl += a * b; kk += a * a; ll += b * b
        } }
        let sk = rk.reduce(0, +), sl = rl.reduce(0, +)
        var dkl = 0.0, dkk = 0.0, dll = 0.0
        for i in 0..<n { dkl += rk[i] * rl[i]; dkk += rk[i] * rk[i]; dll += rl[i] * rl[i] }
        let nn = Double(n)
        func hsic(_ t: Double, _ sa: Double, _ sb: Double, _ d: Double) -> Double {
            (t + sa * sb / ((nn - 1) * (nn - 2)) - 2 / (nn - 2) * d) / (nn * (nn - 3))
        }
        let hxy = hsic(kl, sk, sl, dkl), hxx = hsic(kk, sk, sk, dkk), hyy = hsic(ll, sl, sl, dll)
        guard hxx > 0, hyy > 0 else { return .nan }
        return hxy / (hxx * hyy).squareRoot()
    }

    /// Pearson correlation of per-prompt projection scores x · dx and y · dy (same prompts, any widths).
    public static func scoreCorrelation(x: Matrix, dx: [Float], y: Matrix, dy: [Float]) throws -> Double {
        guard x.rows == y.rows else { throw AnalysisError(site: "score correlation", "the two representations have \(x.rows) and \(y.rows) prompts; use the same prompts") }
        return Stats.pearson(try projectionScores(x, dx), try projectionScores(y, dy))
    }

    static func sumSquares(_ m: Matrix) -> Double { m.data.reduce(0) { $0 + Double($1) * Double($1) } }
}
