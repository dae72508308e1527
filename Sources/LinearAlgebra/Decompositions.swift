import CBLAS
import AblabCore

/// Eigendecomposition of a symmetric matrix.
public struct SymmetricEigen: Sendable {
    /// Eigenvalues in descending order.
    public var values: [Float]
    /// Eigenvectors as rows, in the order of `values`: `vectors.row(i)` belongs to `values[i]`.
    public var vectors: Matrix
}

/// Symmetric eigendecomposition with LAPACK ssyevd (divide and conquer). Only the lower triangle
/// (in row-major terms) is read.
public func symmetricEigen(_ a: Matrix, vectors wantVectors: Bool = true) throws -> SymmetricEigen {
    guard a.rows == a.cols else { throw LinearAlgebraError.shapeMismatch("symmetricEigen of \(a.rows)x\(a.cols)") }
    let n = a.rows
    if n == 0 { return SymmetricEigen(values: [], vectors: Matrix(rows: 0, cols: 0)) }
    // Row-major symmetric == column-major symmetric; LAPACK writes eigenvector j into column j,
    // which in row-major storage is row j.
    var work = a.data
    var w = [Float](repeating: 0, count: n)
    var nn = Int32(n), lda = Int32(n), info: Int32 = 0
    var lwork: Int32 = -1, liwork: Int32 = -1
    var wq: Float = 0
    var iwq: Int32 = 0
    let jobz: CChar = wantVectors ? 86 /* V */ : 78 /* N */
    var jz = jobz, uplo: CChar = 85 /* U: column-major upper == row-major lower */
    ssyevd_(&jz, &uplo, &nn, &work, &lda, &w, &wq, &lwork, &iwq, &liwork, &info, 1, 1)
    guard info == 0 else { throw LinearAlgebraError.lapackFailed(routine: "ssyevd", info: info) }
    lwork = Int32(wq); liwork = iwq
    var fwork = [Float](repeating: 0, count: Int(max(lwork, 1)))
    var iwork = [Int32](repeating: 0, count: Int(max(liwork, 1)))
    ssyevd_(&jz, &uplo, &nn, &work, &lda, &w, &fwork, &lwork, &iwork, &liwork, &info, 1, 1)
    guard info == 0 else { throw LinearAlgebraError.lapackFailed(routine: "ssyevd", info: info) }
    // LAPACK returns ascending order; reverse to descending.
    let values = Array(w.reversed())
    var vecs = Matrix(rows: wantVectors ? n : 0, cols: n)
    if wantVectors {
        for i in 0..<n {
            let src = n - 1 - i
            for j in 0..<n { vecs.data[i * n + j] = work[src * n + j] }
        }
    }
    return SymmetricEigen(values: values, vectors: vecs)
}

/// Thin singular value decomposition A = U · diag(S) · Vᵀ with k = min(m, n).
public struct SVD: Sendable {
    public var u: Matrix      // [m, k]
    public var s: [Float]     // [k], descending
    public var vt: Matrix     // [k, n]
}

/// Thin SVD with LAPACK sgesdd.
public func svd(_ a: Matrix) throws -> SVD {
    let m = a.rows, n = a.cols, k = min(m, n)
    if k == 0 { return SVD(u: Matrix(rows: m, cols: 0), s: [], vt: Matrix(rows: 0, cols: n)) }
    // Row-major A [m, n] is column-major Aᵀ [n, m]. SVD of Aᵀ = V S Uᵀ, so LAPACK's "U" is our V
    // (column-major [n, k] == row-major Vᵀ [k, n]) and its "VT" is our Uᵀ (column-major [k, m] ==
    // row-major U [m, k]).
    var work = a.data
    var mm = Int32(n), nn = Int32(m), lda = Int32(n)
    var s = [Float](repeating: 0, count: k)
    var lu = Matrix(rows: k, cols: n)  // col-major [n, k]
    var lvt = Matrix(rows: m, cols: k) // col-major [k, m]
    var ldu = Int32(n), ldvt = Int32(k)
    var info: Int32 = 0, lwork: Int32 = -1
    var wq: Float = 0
    var iwork = [Int32](repeating: 0, count: 8 * k)
    var jobz: CChar = 83 // S
    sgesdd_(&jobz, &mm, &nn, &work, &lda, &s, &lu.data, &ldu, &lvt.data, &ldvt, &wq, &lwork, &iwork, &info, 1)
    guard info == 0 else { throw LinearAlgebraError.lapackFailed(routine: "sgesdd", info: info) }
    lwork = Int32(wq)
    var fwork = [Float](repeating: 0, count: Int(max(lwork, 1)))
    sgesdd_(&jobz, &mm, &nn, &work, &lda, &s, &lu.data, &ldu, &lvt.data, &ldvt, &fwork, &lwork, &iwork, &info, 1)
    guard info == 0 else { throw LinearAlgebraError.lapackFailed(routine: "sgesdd", info: info) }
    return SVD(u: lvt, s: s, vt: lu)
}
