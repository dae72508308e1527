import CBLAS
import AblabCore

/// Thin, checked entry points into OpenBLAS.
public enum BLAS {
    /// Sets OpenBLAS's thread count (call once at start-up; threads = cores is the default).
    public static func setThreads(_ n: Int) { openblas_set_num_threads(Int32(n)) }
    public static var threads: Int { Int(openblas_get_num_threads()) }
    /// The kernel family OpenBLAS picked for this CPU (e.g. "Haswell", "SkylakeX", "Zen").
    public static var coreName: String { String(cString: openblas_get_corename()) }

    /// C[m, n] = alpha * op(A) * op(B) + beta * C, all row-major, raw pointers (hot path).
    @inline(__always)
    public static func sgemm(transA: Bool = false, transB: Bool = false, m: Int, n: Int, k: Int,
                             alpha: Float = 1, a: UnsafePointer<Float>, lda: Int,
                             b: UnsafePointer<Float>, ldb: Int,
                             beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int) {
        if m == 1 && !transA {
            // one row: a matrix-vector product (OpenBLAS 0.3.21's sgemm packs B even for m = 1)
            if transB {   // c[n] = B[n, k] · a[k]
                cblas_sgemv(CblasRowMajor, CblasNoTrans, Int32(n), Int32(k), alpha, b, Int32(ldb), a, 1, beta, c, 1)
            } else {      // c[n] = B[k, n]ᵀ · a[k]
                cblas_sgemv(CblasRowMajor, CblasTrans, Int32(k), Int32(n), alpha, b, Int32(ldb), a, 1, beta, c, 1)
            }
            return
        }
        cblas_sgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
                    Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
    }
}

/// C = op(A) · op(B).
public func matmul(_ a: Matrix, _ b: Matrix, transA: Bool = false, transB: Bool = false) throws -> Matrix {
    let m = transA ? a.cols : a.rows
    let ka = transA ? a.rows : a.cols
    let kb = transB ? b.cols : b.rows
    let n = transB ? b.rows : b.cols
    guard ka == kb else {
        throw LinearAlgebraError.shapeMismatch("matmul \(a.rows)x\(a.cols)\(transA ? "ᵀ" : "") · \(b.rows)x\(b.cols)\(transB ? "ᵀ" : "")")
    }
    var c = Matrix(rows: m, cols: n)
    if m == 0 || n == 0 { return c }
    if ka == 0 { return c }
    a.data.withUnsafeBufferPointer { pa in
        b.data.withUnsafeBufferPointer { pb in
            c.data.withUnsafeMutableBufferPointer { pc in
                BLAS.sgemm(transA: transA, transB: transB, m: m, n: n, k: ka,
                           a: pa.baseAddress!, lda: a.cols, b: pb.baseAddress!, ldb: b.cols,
                           c: pc.baseAddress!, ldc: n)
            }
        }
    }
    return c
}

/// y = A · x.
public func matvec(_ a: Matrix, _ x: [Float]) throws -> [Float] {
    guard a.cols == x.count else { throw LinearAlgebraError.shapeMismatch("matvec \(a.rows)x\(a.cols) · \(x.count)") }
    var y = [Float](repeating: 0, count: a.rows)
    if a.rows == 0 || a.cols == 0 { return y }
    a.data.withUnsafeBufferPointer { pa in
        x.withUnsafeBufferPointer { px in
            y.withUnsafeMutableBufferPointer { py in
                cblas_sgemv(CblasRowMajor, CblasNoTrans, Int32(a.rows), Int32(a.cols), 1, pa.baseAddress!, Int32(a.cols),
                            px.baseAddress!, 1, 0, py.baseAddress!, 1)
            }
        }
    }
    return y
}
