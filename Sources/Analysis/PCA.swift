import AblabCore
import LinearAlgebra

/// PCA of pooled harmful + harmless train activations.
public struct PCAResult: Sendable {
    /// Pooled mean of the rows that were fit. [d]
    public var mean: [Float]
    /// Covariance eigenvalues (divided by n − 1), descending, clamped at 0. [r], r = min(n − 1, d)
    public var eigenvalues: [Double]
    /// eigenvalues / Σ eigenvalues; sums to 1. [r]
    public var explainedVarianceRatio: [Double]
    /// Running sum of `explainedVarianceRatio`. [r]
    public var cumulativeVariance: [Double]
    /// (Σλ)² / Σλ²: the effective number of dimensions.
    public var participationRatio: Double
    /// Leading unit principal axes as rows, oriented so `component · orientation ≥ 0`. [k, d]
    public var components: Matrix
    /// Projection of the orientation vector on every axis, `v_i · Δ` (after orientation, so ≥ 0). [r]
    public var orientationProjections: [Double]
    /// ‖P_k Δ‖² / ‖Δ‖² for k = 1…r: the share of the orientation vector in the top-k axes. [r]
    public var orientationShare: [Double]
    /// The rows' Gram matrix Z Zᵀ of the centred data when it was formed (n < d), for reuse. [n, n]
    public var gram: Matrix?
}

public enum PCA {
    /// Fits PCA on the rows of `x` ([n, d]). Uses the n × n Gram matrix Z Zᵀ when n < d and the d × d
    /// scatter matrix Zᵀ Z otherwise (both through sgemm + ssyevd). Keeps the `keep` leading axes as
    /// vectors, each oriented so that its dot product with `orientation` ([d]) is ≥ 0.
    public static func fit(_ x: Matrix, keep: Int, orientation: [Float], site: String = "PCA") throws -> PCAResult {
        let n = x.rows, d = x.cols
        guard n >= 2, d >= 1 else { throw AnalysisError(site: site, "PCA needs at least 2 prompts and a non-empty width (got \(n) x \(d)); record more prompts") }
        guard orientation.count == d else { throw AnalysisError(site: site, "orientation vector has \(orientation.count) values for width \(d)") }
        try requireFinite(x, site: site)
        let (z, mean) = x.meanCentred() // [n, d]
        let r = min(n - 1, d)
        let k = max(0, min(keep, r))
        let useGram = n < d
        let scatter = useGram ? try matmul(z, z, transB: true) /* [n, n] */ : try matmul(z, z, transA: true) /* [d, d] */
        let eig = try symmetricEigen(scatter)
        let denom = Double(n - 1)
        var sq = [Double](repeating: 0, count: r) // s_i² = eigenvalues of the scatter matrix
        for i in 0..<r { sq[i] = max(0, Double(eig.values[i])) }
        let eigenvalues = sq.map { $0 / denom }

        // Projections of Δ on every axis: v_i · Δ = u_iᵀ (Z Δ) / s_i in the Gram case.
        var proj = [Double](repeating: 0, count: r)
        if useGram {
            let zd = try matvec(z, orientation) // [n]
            for i in 0..<r where sq[i] > 0 {
                var s = 0.0
                for j in 0..<n { s += Double(eig.vectors[i, j]) * Double(zd[j]) }
                proj[i] = s / sq[i].squareRoot()
            }
        } else {
            for i in 0..<r {
                var s = 0.0
                for j in 0..<d { s += Double(eig.vectors[i, j]) * Double(orientation[j]) }
                proj[i] = s
            }
        }
        let signs: [Float] = proj.map { $0 < 0 ? -1 : 1 }
        proj = proj.map { abs($0) }

        // Leading axes as unit rows.
        var comps = Matrix(rows: k, cols: d)
        if k > 0 {
            if useGram {
                let uk = Matrix(rows: k, cols: n, data: Array(eig.vectors.data[0..<(k * n)])) // [k, n]
                comps = try matmul(uk, z) // [k, d] = U_kᵀ Z, row i has norm s_i
            } else {
                comps = Matrix(rows: k, cols: d, data: Array(eig.vectors.data[0..<(k * d)]))
            }
            comps.data.withUnsafeMutableBufferPointer { p in
                for i in 0..<k {
                    var nrm = 0.0
                    for j in 0..<d { nrm += Double(p[i * d + j]) * Double(p[i * d + j]) }
                    let scale = nrm > 0 ? signs[i] / Float(nrm.squareRoot()) : 0
                    for j in 0..<d { p[i * d + j] *= scale }
                }
            }
        }

        let total = eigenvalues.reduce(0, +)
        let ratio = total > 0 ? eigenvalues.map { $0 / total } : eigenvalues.map { _ in 0 }
        var cum = [Double](repeating: 0, count: r)
        var acc = 0.0
        for i in 0..<r { acc += ratio[i]; cum[i] = acc }
        let sumSq = eigenvalues.reduce(0) { $0 + $1 * $1 }
        let pr = sumSq > 0 ? total * total / sumSq : 0

        var dd = 0.0
        for v in orientation { dd += Double(v) * Double(v) }
        var share = [Double](repeating: 0, count: r)
        acc = 0
        for i in 0..<r { acc += proj[i] * proj[i]; share[i] = dd > 0 ? min(1, acc / dd) : 0 }

        return PCAResult(mean: mean, eigenvalues: eigenvalues, explainedVarianceRatio: ratio, cumulativeVariance: cum,
                         participationRatio: pr, components: comps, orientationProjections: proj,
                         orientationShare: share, gram: useGram ? scatter : nil)
    }

    /// Scores of the rows of `x` ([m, d]) on the axes: (x − mean) · componentsᵀ, [m, k].
    public static func scores(_ x: Matrix, _ p: PCAResult, components k: Int? = nil) throws -> Matrix {
        let kk = min(k ?? p.components.rows, p.components.rows)
        var c = x
        let d = x.cols
        guard d == p.mean.count else { throw LinearAlgebraError.shapeMismatch("PCA scores: width \(d) vs \(p.mean.count)") }
        c.data.withUnsafeMutableBufferPointer { q in
            for i in 0..<x.rows { for j in 0..<d { q[i * d + j] -= p.mean[j] } }
        }
        let comps = Matrix(rows: kk, cols: d, data: Array(p.components.data[0..<(kk * d)]))
        return try matmul(c, comps, transB: true)
    }
}

/// Throws when a matrix holds NaN or ±Inf (LAPACK would fail later with a less helpful message).
func requireFinite(_ x: Matrix, site: String) throws {
    var bad = false
    x.data.withUnsafeBufferPointer { p in
        for v in p where !v.isFinite { bad = true; break }
    }
    if bad { throw AnalysisError(site: site, "the activations contain NaN or Inf; re-record this checkpoint (the model may have overflowed)") }
}
