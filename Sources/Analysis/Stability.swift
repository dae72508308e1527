import AblabCore
import LinearAlgebra


/// Stability of the mean-diff and pc1 directions under resampling of the train prompts.
///
/// Bootstrap: replicate b draws nₕ harmful rows (indices `bounded(nₕ)`, in order) and then n_b
/// harmless rows (`bounded(n_b)`) with replacement from one `SplitMix64(seed)` stream, refits both
/// directions (pc1 oriented along the replicate's own Δ) and records the cosine to the full-data
/// direction; the interval is the 2.5th–97.5th percentile. Split-half: `SplitMix64(seed + 1)`
/// shuffles the harmful indices and then the harmless indices (Fisher–Yates); half A is the first
/// ⌊n/2⌋ of each shuffled class, half B the rest; the cosine is between the two halves' directions.
///
/// Everything runs in sample space on the n × n Gram matrix G = Z Zᵀ of the centred train rows, so a
/// replicate costs O(n²) rather than O(n d): with selection weights c, Δ* = Zᵀ c; a resample's pc1 is
/// Z*ᵀ u / √μ for the top eigenpair (μ, u) of the double-centred G[sel, sel].
public enum Stability {
    public struct Result: Sendable { public var meanDiff: DirectionStability; public var pc1: DirectionStability }

    public static func directions(train: Matrix, harmfulCount nh: Int, pca: PCAResult, delta: [Float],
                                  replicates: Int, seed: UInt64) throws -> Result {
        let n = train.rows, d = train.cols
        let nb = n - nh
        precondition(nh >= 2 && nb >= 2 && replicates >= 0)
        var z = train // [n, d] centred with the PCA mean
        z.data.withUnsafeMutableBufferPointer { q in
            for i in 0..<n { for j in 0..<d { q[i * d + j] -= pca.mean[j] } }
        }
        let g = try pca.gram ?? matmul(z, z, transB: true) // [n, n]
        let zd = try matvec(z, delta).map(Double.init)      // Z Δ [n]
        let p1 = try matvec(z, pca.components.row(0)).map(Double.init) // Z v₁ [n]
        let deltaNorm = Double(Vec.norm(delta))
        var work = Workspace(n: n)

        var rng = SplitMix64(seed: seed)
        var cosMD = [Double](), cosPC = [Double]()
        cosMD.reserveCapacity(replicates); cosPC.reserveCapacity(replicates)
        var sel = [Int](repeating: 0, count: n)
        for _ in 0..<replicates {
            for i in 0..<nh { sel[i] = rng.bounded(nh) }
            for i in 0..<nb { sel[nh + i] = nh + rng.bounded(nb) }
            let c = weights(sel, harmful: 0..<nh, harmless: nh..<n, n: n)
            let gc = gramTimes(g, c, n: n)
            let ctgc = dot(c, gc)
            cosMD.append(ctgc > 0 ? clampCos(dot(c, zd) / (ctgc.squareRoot() * deltaNorm)) : 0)
            // pc1 of the resample, warm-started from the full pc1 scores.
            let (mu, u) = topEigen(gram: g, rows: sel, start: sel.map { p1[$0] }, work: &work)
            if mu > 0 {
                var proj = 0.0, orient = 0.0
                for a in 0..<n { proj += u[a] * p1[sel[a]]; orient += u[a] * gc[sel[a]] }
                cosPC.append(clampCos((orient < 0 ? -proj : proj) / mu.squareRoot()))
            } else {
                cosPC.append(0)
            }
        }

        // Split half.
        var rng2 = SplitMix64(seed: seed &+ 1)
        var ph = Array(0..<nh), pb = Array(nh..<n)
        rng2.shuffle(&ph); rng2.shuffle(&pb)
        let aH = Array(ph[0..<(nh / 2)]), bH = Array(ph[(nh / 2)...])
        let aB = Array(pb[0..<(nb / 2)]), bB = Array(pb[(nb / 2)...])
        let cA = weights(aH + aB, harmful: 0..<aH.count, harmless: aH.count..<(aH.count + aB.count), n: n)
        let cB = weights(bH + bB, harmful: 0..<bH.count, harmless: bH.count..<(bH.count + bB.count), n: n)
        let gA = gramTimes(g, cA, n: n), gB = gramTimes(g, cB, n: n)
        let halfMD = clampCos(dot(cA, gB) / (dot(cA, gA) * dot(cB, gB)).squareRoot())
        let rowsA = aH + aB, rowsB = bH + bB
        let (muA, uA) = topEigen(gram: g, rows: rowsA, start: rowsA.map { p1[$0] }, work: &work)
        let (muB, uB) = topEigen(gram: g, rows: rowsB, start: rowsB.map { p1[$0] }, work: &work)
        var halfPC = 0.0
        if muA > 0 && muB > 0 {
            var sA = 0.0, sB = 0.0
            for a in 0..<rowsA.count { sA += uA[a] * gA[rowsA[a]] }
            for b in 0..<rowsB.count { sB += uB[b] * gB[rowsB[b]] }
            var cross = 0.0 // u_Aᵀ G[A, B] u_B
            g.data.withUnsafeBufferPointer { gp in
                for a in 0..<rowsA.count {
                    let base = rowsA[a] * n
                    var s = 0.0
                    for b in 0..<rowsB.count { s += Double(gp[base + rowsB[b]]) * uB[b] }
                    cross += uA[a] * s
                }
            }
            let sign: Double = ((sA < 0) != (sB < 0)) ? -1 : 1
            halfPC = clampCos(sign * cross / (muA * muB).squareRoot())
        }

        func summary(_ cs: [Double], _ half: Double) -> DirectionStability {
            DirectionStability(replicates: cs.count, meanCosine: cs.isEmpty ? .nan : Stats.mean(cs),
                               lower: Stats.percentile(cs, 2.5), upper: Stats.percentile(cs, 97.5), splitHalfCosine: half)
        }
        return Result(meanDiff: summary(cosMD, halfMD), pc1: summary(cosPC, halfPC))
    }

    /// Selection weights: +1/|harmful part| per harmful draw, −1/|harmless part| per harmless draw. [n]
    static func weights(_ rows: [Int], harmful: Range<Int>, harmless: Range<Int>, n: Int) -> [Double] {
        var c = [Double](repeating: 0, count: n)
        let wh = 1 / Double(harmful.count), wb = 1 / Double(harmless.count)
        for a in harmful { c[rows[a]] += wh }
        for a in harmless { c[rows[a]] -= wb }
        return c
    }

    /// G c for symmetric G (only rows with c ≠ 0 are read). [n]
    static func gramTimes(_ g: Matrix, _ c: [Double], n: Int) -> [Double] {
        var out = [Double](repeating: 0, count: n)
        g.data.withUnsafeBufferPointer { gp in
            for i in 0..<n where c[i] != 0 {
                let ci = c[i], base = i * n
                for j in 0..<n { out[j] += ci * Double(gp[base + j]) }
            }
        }
        return out
    }

    @inline(__always) static func dot(_ a: [Double], _ b: [Double]) -> Double {
        var s = 0.0
        for i in 0..<a.count { s += a[i] * b[i] }
        return s
    }
    @inline(__always) static func clampCos(_ x: Double) -> Double { x.isFinite ? max(-1, min(1, x)) : 0 }

    struct Workspace {
        var w: [Float]
        init(n: Int) { w = [Float](repeating: 0, count: n) }
    }

    /// Top eigenpair of the double-centred resample Gram matrix M = H G[rows, rows] H by restarted
    /// Lanczos with full reorthogonalisation, started from `start` (centred first). M is never formed:
    /// for a centred x, M x = H (G w)[rows] with w_j = Σ_{b : rows_b = j} x_b, one sgemv on the full G.
    /// Returns (eigenvalue, unit eigenvector in Double). [rows.count]
    static func topEigen(gram g: Matrix, rows: [Int], start: [Double], work: inout Workspace,
                         steps: Int = 12, restarts: Int = 12, tolerance: Double = 1e-6) -> (Double, [Double]) {
        let m = rows.count, n = g.cols
        if work.w.count != n { work.w = [Float](repeating: 0, count: n) }
        func apply(_ x: ArraySlice<Double>) -> [Double] {
            for j in 0..<n { work.w[j] = 0 }
            for (b, v) in x.enumerated() { work.w[rows[b]] += Float(v) }
            let full = (try? matvec(g, work.w)) ?? [Float](repeating: 0, count: n)
            var y = rows.map { Double(full[$0]) }
            let mean = y.reduce(0, +) / Double(m)
            for a in 0..<m { y[a] -= mean }
            return y
        }
        // Start vector: centred, normalised; a fixed alternating pattern if it is zero.
        let sm = start.reduce(0, +) / Double(m)
        var x = start.map { $0 - sm }
        var nrm = x.reduce(0) { $0 + $1 * $1 }.squareRoot()
        if !(nrm > 0) {
            x = (0..<m).map { Double($0 % 2 == 0 ? 1 : -1) }
            let mx = x.reduce(0, +) / Double(m)
            x = x.map { $0 - mx }
            nrm = x.reduce(0) { $0 + $1 * $1 }.squareRoot()
        }
        for a in 0..<m { x[a] /= nrm }
        let s = max(1, min(steps, m - 1))
        var q = [Double](repeating: 0, count: (s + 1) * m) // Lanczos basis, rows
        var alpha = [Double](repeating: 0, count: s), beta = [Double](repeating: 0, count: s)
        var theta = 0.0
        for _ in 0...restarts {
            for a in 0..<m { q[a] = x[a] }
            var used = 0
            var lastBeta = 0.0
            for j in 0..<s {
                var w = apply(q[(j * m)..<((j + 1) * m)])
                var al = 0.0
                for a in 0..<m { al += q[j * m + a] * w[a] }
                alpha[j] = al
                for _ in 0..<2 { // full reorthogonalisation against q_0 … q_j
                    for i in 0...j {
                        var c = 0.0
                        for a in 0..<m { c += q[i * m + a] * w[a] }
                        for a in 0..<m { w[a] -= c * q[i * m + a] }
                    }
                }
                var b = 0.0
                for a in 0..<m { b += w[a] * w[a] }
                b = b.squareRoot()
                used = j + 1
                lastBeta = b
                if b <= 1e-12 * max(abs(al), 1e-300) || j == s - 1 { break }
                if j >= 2 { // stop early once the top Ritz pair has converged
                    let (th, y) = topRitz(alpha, beta, j + 1)
                    if th > 0 && abs(b * y) <= tolerance * th { break }
                }
                beta[j] = b
                for a in 0..<m { q[(j + 1) * m + a] = w[a] / b }
            }
            // Tridiagonal T = tridiag(beta, alpha, beta), top Ritz pair.
            var t = [Double](repeating: 0, count: used * used)
            for j in 0..<used {
                t[j * used + j] = alpha[j]
                if j + 1 < used { t[j * used + j + 1] = beta[j]; t[(j + 1) * used + j] = beta[j] }
            }
            let (vals, vecs) = SmallEigen.symmetric(t, n: used)
            theta = vals[0]
            var u = [Double](repeating: 0, count: m)
            for j in 0..<used {
                let y = vecs[j]
                for a in 0..<m { u[a] += y * q[j * m + a] }
            }
            let un = u.reduce(0) { $0 + $1 * $1 }.squareRoot()
            if un > 0 { for a in 0..<m { u[a] /= un } }
            x = u
            let residual = abs(lastBeta * vecs[used - 1])
            if !(theta > 0) || residual <= tolerance * theta { break }
        }
        return (max(theta, 0), x)
    }

    /// Top eigenvalue of tridiag(beta, alpha, beta) of size k and the last entry of its eigenvector.
    static func topRitz(_ alpha: [Double], _ beta: [Double], _ k: Int) -> (Double, Double) {
        var t = [Double](repeating: 0, count: k * k)
        for j in 0..<k {
            t[j * k + j] = alpha[j]
            if j + 1 < k { t[j * k + j + 1] = beta[j]; t[(j + 1) * k + j] = beta[j] }
        }
        let (vals, vecs) = SmallEigen.symmetric(t, n: k)
        return (vals[0], vecs[k - 1])
    }
}
