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

        // Leading axes as unit rows: a few more than asked for, refined, then cut to k.
        let kr = min(r, k + 8)
        var comps = Matrix(rows: k, cols: d)
        if k > 0 {
            var v0: Matrix
            if useGram {
                let uk = Matrix(rows: kr, cols: n, data: Array(eig.vectors.data[0..<(kr * n)])) // [kr, n]
                v0 = try matmul(uk, z) // [kr, d] = U_krᵀ Z, row i has norm s_i
            } else {
                v0 = Matrix(rows: kr, cols: d, data: Array(eig.vectors.data[0..<(kr * d)]))
            }
            let refined = try refine(z, v0) // [kr, d], Double
            for i in 0..<kr {
                var s = 0.0
                for j in 0..<d { s += refined[i * d + j] * Double(orientation[j]) }
                proj[i] = s
            }
            comps.data.withUnsafeMutableBufferPointer { p in
                for i in 0..<k {
                    let sign: Double = proj[i] < 0 ? -1 : 1
                    for j in 0..<d { p[i * d + j] = Float(sign * refined[i * d + j]) }
                }
            }
        }
        proj = proj.map { abs($0) }

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

    /// Sharpens approximate leading axes `v0` ([k, d]) of the centred rows `z` ([n, d]): one subspace
    /// iteration (Zᵀ Z v0ᵀ), Double Gram–Schmidt, then Rayleigh–Ritz with a Double Jacobi eigensolver.
    /// The Float eigensolver works on Z Zᵀ (or Zᵀ Z), whose rounding error is ε·s₁²; here the small
    /// k × k problem is built from Z v (error ε·s₁·sᵢ), which keeps trailing axes accurate.
    /// Returns unit rows in Double, ordered by decreasing Ritz value. [k, d]
    static func refine(_ z: Matrix, _ v0: Matrix) throws -> [Double] {
        let k = v0.rows, d = v0.cols, n = z.rows
        let w = try matmul(z, v0, transB: true)   // [n, k]
        let v1 = try matmul(w, z, transA: true)   // [k, d] = (Zᵀ Z v0ᵀ)ᵀ
        // Modified Gram–Schmidt, twice, in Double.
        var q = v1.data.map(Double.init)          // [k, d]
        for _ in 0..<2 {
            for i in 0..<k {
                for j in 0..<i {
                    var s = 0.0
                    for t in 0..<d { s += q[i * d + t] * q[j * d + t] }
                    for t in 0..<d { q[i * d + t] -= s * q[j * d + t] }
                }
                var nrm = 0.0
                for t in 0..<d { nrm += q[i * d + t] * q[i * d + t] }
                nrm = nrm.squareRoot()
                let inv = nrm > 0 ? 1 / nrm : 0
                for t in 0..<d { q[i * d + t] *= inv }
            }
        }
        let qf = Matrix(rows: k, cols: d, data: q.map { Float($0) })
        let w2 = try matmul(z, qf, transB: true)  // [n, k]
        var sm = [Double](repeating: 0, count: k * k)
        for a in 0..<n {
            for i in 0..<k {
                let wi = Double(w2.data[a * k + i])
                for j in 0...i { sm[i * k + j] += wi * Double(w2.data[a * k + j]) }
            }
        }
        for i in 0..<k { for j in 0..<i { sm[j * k + i] = sm[i * k + j] } }
        let (_, rot) = SmallEigen.symmetric(sm, n: k)
        var out = [Double](repeating: 0, count: k * d)
        for i in 0..<k {
            for j in 0..<k {
                let r = rot[i * k + j]
                if r == 0 { continue }
                for t in 0..<d { out[i * d + t] += r * q[j * d + t] }
            }
            var nrm = 0.0
            for t in 0..<d { nrm += out[i * d + t] * out[i * d + t] }
            let inv = nrm > 0 ? 1 / nrm.squareRoot() : 0
            for t in 0..<d { out[i * d + t] *= inv }
        }
        return out
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
