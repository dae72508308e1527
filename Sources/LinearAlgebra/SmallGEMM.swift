import Dispatch

/// C[m, n] = A[m, k] · W[n, k]ᵀ (+ C when `accumulate`) for few rows of A (decoding, batched generation).
///
/// OpenBLAS packs W into its panel layout on every call, which for m ≤ 32 costs as much as the product
/// itself (the packing showed up as a quarter of the time of batched generation). This kernel reads W in
/// place, once per call: blocks of 4 rows of W against pairs of rows of A, 8 SIMD8 accumulators, and
/// splits the rows of W over `threads` threads.
public enum SmallGEMM {
    /// Rows of A up to which `multiplyTransposed` is the better choice than OpenBLAS sgemm.
    public static let maxRows = 32

    public static func multiplyTransposed(m: Int, n: Int, k: Int, a: UnsafePointer<Float>, lda: Int,
                                          w: UnsafePointer<Float>, ldw: Int, c: UnsafeMutablePointer<Float>, ldc: Int,
                                          accumulate: Bool = false, threads: Int = BLAS.threads) {
        guard m > 0, n > 0 else { return }
        let t = max(1, min(threads, n / 64))
        if t == 1 {
            block(m: m, rows: 0..<n, k: k, a: a, lda: lda, w: w, ldw: ldw, c: c, ldc: ldc, accumulate: accumulate)
            return
        }
        // rows of W split in multiples of 4
        let per = ((n + t - 1) / t + 3) / 4 * 4
        let ua = UnsafeSendable(a), uw = UnsafeSendable(w), uc = UnsafeSendableMutable(c)
        DispatchQueue.concurrentPerform(iterations: t) { i in
            let lo = i * per, hi = min(n, lo + per)
            if lo < hi {
                block(m: m, rows: lo..<hi, k: k, a: ua.p, lda: lda, w: uw.p, ldw: ldw, c: uc.p, ldc: ldc, accumulate: accumulate)
            }
        }
    }

    @inline(__always)
    static func load(_ p: UnsafePointer<Float>) -> SIMD8<Float> { UnsafeRawPointer(p).loadUnaligned(as: SIMD8<Float>.self) }

    @inline(__always)
    static func put(_ v: Float, _ p: UnsafeMutablePointer<Float>, _ accumulate: Bool) {
        if accumulate { p.pointee += v } else { p.pointee = v }
    }

    static func block(m: Int, rows: Range<Int>, k: Int, a: UnsafePointer<Float>, lda: Int, w: UnsafePointer<Float>, ldw: Int,
                      c: UnsafeMutablePointer<Float>, ldc: Int, accumulate: Bool) {
        let k8 = k & ~7
        var j = rows.lowerBound
        while j + 4 <= rows.upperBound {
            let w0 = w + j * ldw, w1 = w0 + ldw, w2 = w1 + ldw, w3 = w2 + ldw
            var i = 0
            // two rows of A against four rows of W: 8 accumulators + 5 operands fit AVX2's 16 registers
            while i + 2 <= m {
                let a0 = a + i * lda, a1 = a0 + lda
                var s00 = SIMD8<Float>(), s01 = SIMD8<Float>(), s02 = SIMD8<Float>(), s03 = SIMD8<Float>()
                var s10 = SIMD8<Float>(), s11 = SIMD8<Float>(), s12 = SIMD8<Float>(), s13 = SIMD8<Float>()
                var p = 0
                while p < k8 {
                    let x0 = load(w0 + p), x1 = load(w1 + p), x2 = load(w2 + p), x3 = load(w3 + p)
                    let y0 = load(a0 + p)
                    s00.addProduct(y0, x0); s01.addProduct(y0, x1); s02.addProduct(y0, x2); s03.addProduct(y0, x3)
                    let y1 = load(a1 + p)
                    s10.addProduct(y1, x0); s11.addProduct(y1, x1); s12.addProduct(y1, x2); s13.addProduct(y1, x3)
                    p += 8
                }
                var r = SIMD8<Float>(s00.sum(), s01.sum(), s02.sum(), s03.sum(), s10.sum(), s11.sum(), s12.sum(), s13.sum())
                while p < k {
                    for ii in 0..<2 { for jj in 0..<4 { r[ii * 4 + jj] += a[(i + ii) * lda + p] * w[(j + jj) * ldw + p] } }
                    p += 1
                }
                for ii in 0..<2 { for jj in 0..<4 { put(r[ii * 4 + jj], c + (i + ii) * ldc + j + jj, accumulate) } }
                i += 2
            }
            while i < m {   // one row of A against four rows of W
                let a0 = a + i * lda
                var s0 = SIMD8<Float>(), s1 = SIMD8<Float>(), s2 = SIMD8<Float>(), s3 = SIMD8<Float>()
                var p = 0
                while p < k8 {
                    let y = load(a0 + p)
                    s0.addProduct(y, load(w0 + p)); s1.addProduct(y, load(w1 + p))
                    s2.addProduct(y, load(w2 + p)); s3.addProduct(y, load(w3 + p))
                    p += 8
                }
                var r0 = s0.sum(), r1 = s1.sum(), r2 = s2.sum(), r3 = s3.sum()
                while p < k { r0 += a0[p] * w0[p]; r1 += a0[p] * w1[p]; r2 += a0[p] * w2[p]; r3 += a0[p] * w3[p]; p += 1 }
                let cr = c + i * ldc + j
                put(r0, cr, accumulate); put(r1, cr + 1, accumulate); put(r2, cr + 2, accumulate); put(r3, cr + 3, accumulate)
                i += 1
            }
            j += 4
        }
        while j < rows.upperBound {   // the last rows of W, one at a time
            let w0 = w + j * ldw
            for i in 0..<m {
                let a0 = a + i * lda
                var s = SIMD8<Float>()
                var p = 0
                while p < k8 { s.addProduct(load(a0 + p), load(w0 + p)); p += 8 }
                var r = s.sum()
                while p < k { r += a0[p] * w0[p]; p += 1 }
                put(r, c + i * ldc + j, accumulate)
            }
            j += 1
        }
    }
}

/// Pointers handed to `concurrentPerform` workers, which write disjoint parts.
struct UnsafeSendable: @unchecked Sendable { let p: UnsafePointer<Float>; init(_ p: UnsafePointer<Float>) { self.p = p } }
struct UnsafeSendableMutable: @unchecked Sendable { let p: UnsafeMutablePointer<Float>; init(_ p: UnsafeMutablePointer<Float>) { self.p = p } }
