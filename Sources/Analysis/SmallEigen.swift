/// Symmetric eigendecomposition of a small dense Double matrix by cyclic Jacobi rotations.
/// Used for Rayleigh–Ritz refinement (k ≤ ~100) and Lanczos tridiagonals, where Double accuracy
/// matters more than speed.
public enum SmallEigen {
    /// `a` is n × n row-major and symmetric. Returns eigenvalues in descending order and the matching
    /// unit eigenvectors as rows (`vectors[i * n ..< (i + 1) * n]` belongs to `values[i]`).
    public static func symmetric(_ a: [Double], n: Int, maxSweeps: Int = 60) -> (values: [Double], vectors: [Double]) {
        precondition(a.count == n * n)
        if n == 0 { return ([], []) }
        var m = a
        var v = [Double](repeating: 0, count: n * n)
        for i in 0..<n { v[i * n + i] = 1 }
        for _ in 0..<maxSweeps {
            var off = 0.0, diag = 0.0
            for p in 0..<n {
                diag += m[p * n + p] * m[p * n + p]
                for q in (p + 1)..<n { off += m[p * n + q] * m[p * n + q] }
            }
            if off <= 1e-30 * max(diag, 1e-300) { break }
            for p in 0..<(n - 1) {
                for q in (p + 1)..<n {
                    let apq = m[p * n + q]
                    if apq == 0 { continue }
                    let theta = (m[q * n + q] - m[p * n + p]) / (2 * apq)
                    let t = (theta >= 0 ? 1.0 : -1.0) / (abs(theta) + (theta * theta + 1).squareRoot())
                    let c = 1 / (t * t + 1).squareRoot(), s = t * c
                    for k in 0..<n { // columns p, q
                        let akp = m[k * n + p], akq = m[k * n + q]
                        m[k * n + p] = c * akp - s * akq
                        m[k * n + q] = s * akp + c * akq
                    }
                    for k in 0..<n { // rows p, q
                        let apk = m[p * n + k], aqk = m[q * n + k]
                        m[p * n + k] = c * apk - s * aqk
                        m[q * n + k] = s * apk + c * aqk
                    }
                    m[p * n + q] = 0; m[q * n + p] = 0
                    for k in 0..<n {
                        let vkp = v[k * n + p], vkq = v[k * n + q]
                        v[k * n + p] = c * vkp - s * vkq
                        v[k * n + q] = s * vkp + c * vkq
                    }
                }
            }
        }
        let order = (0..<n).sorted { m[$0 * n + $0] > m[$1 * n + $1] }
        var values = [Double](repeating: 0, count: n), vectors = [Double](repeating: 0, count: n * n)
        for (r, j) in order.enumerated() {
            values[r] = m[j * n + j]
            for k in 0..<n { vectors[r * n + k] = v[k * n + j] }
        }
        return (values, vectors)
    }
}
