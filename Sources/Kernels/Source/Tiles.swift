import KernelABI

// The register tiles of the panel path: h rows of x × 4 rows of W (the full height `tileX` is set per CPU
// path in Variant.swift: as many accumulators as the vector registers hold).

extension Impl {
    @inline(__always)
    static func tile(_ h: Int, _ w: UnsafePointer<Float>, k: Int, k16: Int, x: UnsafePointer<Float>, ldx: Int,
                     out: UnsafeMutablePointer<Float>, ldo: Int, accumulate: Bool) {
        if h == 6 {
            tile6x4(w, k: k, k16: k16, x: x, ldx: ldx, out: out, ldo: ldo, accumulate: accumulate)
        } else if h == 4 {
            tile4x4(w, k: k, k16: k16, x: x, ldx: ldx, out: out, ldo: ldo, accumulate: accumulate)
        } else {
            for i in 0..<h { row4(w, k: k, k16: k16, x: x + i * ldx, out: out + i * ldo, accumulate: accumulate) }
        }
    }

    /// The scalar tails past k16 of x row xr against W rows w, w + k, w + 2k, w + 3k (zero when there are none).
    @inline(__always)
    static func tails(_ xr: UnsafePointer<Float>, _ w: UnsafePointer<Float>, k: Int, k16: Int) -> SIMD4<Float> {
        k16 == k ? SIMD4<Float>() : SIMD4(tailDot(xr, w, from: k16, to: k), tailDot(xr, w + k, from: k16, to: k),
                                          tailDot(xr, w + 2 * k, from: k16, to: k), tailDot(xr, w + 3 * k, from: k16, to: k))
    }

    /// The outputs of four tile rows (x rows x + i·ldx, accumulators a_i0 … a_i3): with `jointReductions` one
    /// `hsum16` (lanes 4i ..< 4i + 4: row i), else `finishRow` row by row; the same additions either way.
    @inline(__always)
    static func finish4Rows(_ a00: V16, _ a01: V16, _ a02: V16, _ a03: V16, _ a10: V16, _ a11: V16, _ a12: V16, _ a13: V16,
                            _ a20: V16, _ a21: V16, _ a22: V16, _ a23: V16, _ a30: V16, _ a31: V16, _ a32: V16, _ a33: V16,
                            x: UnsafePointer<Float>, ldx: Int, w: UnsafePointer<Float>, k: Int, k16: Int,
                            out: UnsafeMutablePointer<Float>, ldo: Int, accumulate: Bool) {
        let x1 = x + ldx, x2 = x + 2 * ldx, x3 = x + 3 * ldx
        guard jointReductions else {
            finishRow(a00, a01, a02, a03, x: x, w: w, k: k, k16: k16, out: out, accumulate: accumulate)
            finishRow(a10, a11, a12, a13, x: x1, w: w, k: k, k16: k16, out: out + ldo, accumulate: accumulate)
            finishRow(a20, a21, a22, a23, x: x2, w: w, k: k, k16: k16, out: out + 2 * ldo, accumulate: accumulate)
            finishRow(a30, a31, a32, a33, x: x3, w: w, k: k, k16: k16, out: out + 3 * ldo, accumulate: accumulate)
            return
        }
        let r = hsum16(a00, a01, a02, a03, a10, a11, a12, a13, a20, a21, a22, a23, a30, a31, a32, a33)
            + V16(lowHalf: SIMD8(lowHalf: tails(x, w, k: k, k16: k16), highHalf: tails(x1, w, k: k, k16: k16)),
                  highHalf: SIMD8(lowHalf: tails(x2, w, k: k, k16: k16), highHalf: tails(x3, w, k: k, k16: k16)))
        store4(r.lowHalf.lowHalf, into: out, accumulate: accumulate); store4(r.lowHalf.highHalf, into: out + ldo, accumulate: accumulate)
        store4(r.highHalf.lowHalf, into: out + 2 * ldo, accumulate: accumulate)
        store4(r.highHalf.highHalf, into: out + 3 * ldo, accumulate: accumulate)
    }

    /// The outputs of two tile rows the same way (one `hsum8`).
    @inline(__always)
    static func finish2Rows(_ a00: V16, _ a01: V16, _ a02: V16, _ a03: V16, _ a10: V16, _ a11: V16, _ a12: V16, _ a13: V16,
                            x: UnsafePointer<Float>, ldx: Int, w: UnsafePointer<Float>, k: Int, k16: Int,
                            out: UnsafeMutablePointer<Float>, ldo: Int, accumulate: Bool) {
        guard jointReductions else {
            finishRow(a00, a01, a02, a03, x: x, w: w, k: k, k16: k16, out: out, accumulate: accumulate)
            finishRow(a10, a11, a12, a13, x: x + ldx, w: w, k: k, k16: k16, out: out + ldo, accumulate: accumulate)
            return
        }
        let r = hsum8(a00, a01, a02, a03, a10, a11, a12, a13)
            + SIMD8(lowHalf: tails(x, w, k: k, k16: k16), highHalf: tails(x + ldx, w, k: k, k16: k16))
        store4(r.lowHalf, into: out, accumulate: accumulate); store4(r.highHalf, into: out + ldo, accumulate: accumulate)
    }

    /// The four outputs of one tile row: the lane reductions of its accumulators (`hsum4`), plus the scalar
    /// tails past k16 of x row xr against W rows w, w + k, w + 2k, w + 3k (zero when there are none).
    @inline(__always)
    static func finishRow(_ a: V16, _ b: V16, _ c: V16, _ d: V16, x xr: UnsafePointer<Float>, w: UnsafePointer<Float>, k: Int, k16: Int,
                          out o: UnsafeMutablePointer<Float>, accumulate: Bool) {
        finish4(a, b, c, d, tail: tails(xr, w, k: k, k16: k16), into: o, accumulate: accumulate)
    }

    /// Four rows of x × four rows of W: 16 accumulators (AVX-512's 32 registers hold them and the operands).
    @inline(__always)
    static func tile4x4(_ w: UnsafePointer<Float>, k: Int, k16: Int, x: UnsafePointer<Float>, ldx: Int,
                        out: UnsafeMutablePointer<Float>, ldo: Int, accumulate: Bool) {
        let w0 = w, w1 = w + k, w2 = w + 2 * k, w3 = w + 3 * k
        let x0 = x, x1 = x + ldx, x2 = x + 2 * ldx, x3 = x + 3 * ldx
        var a00 = V16(), a01 = V16(), a02 = V16(), a03 = V16()
        var a10 = V16(), a11 = V16(), a12 = V16(), a13 = V16()
        var a20 = V16(), a21 = V16(), a22 = V16(), a23 = V16()
        var a30 = V16(), a31 = V16(), a32 = V16(), a33 = V16()
        var p = 0
        while p < k16 {
            let v0 = load16(w0 + p), v1 = load16(w1 + p), v2 = load16(w2 + p), v3 = load16(w3 + p)
            var u = load16(x0 + p)
            a00.addProduct(u, v0); a01.addProduct(u, v1); a02.addProduct(u, v2); a03.addProduct(u, v3)
            u = load16(x1 + p)
            a10.addProduct(u, v0); a11.addProduct(u, v1); a12.addProduct(u, v2); a13.addProduct(u, v3)
            u = load16(x2 + p)
            a20.addProduct(u, v0); a21.addProduct(u, v1); a22.addProduct(u, v2); a23.addProduct(u, v3)
            u = load16(x3 + p)
            a30.addProduct(u, v0); a31.addProduct(u, v1); a32.addProduct(u, v2); a33.addProduct(u, v3)
            p += 16
        }
        finish4Rows(a00, a01, a02, a03, a10, a11, a12, a13, a20, a21, a22, a23, a30, a31, a32, a33,
                    x: x, ldx: ldx, w: w, k: k, k16: k16, out: out, ldo: ldo, accumulate: accumulate)
    }

    /// Six rows of x × four rows of W: 24 accumulators, four W vectors and one x vector (29 of AVX-512's 32
    /// registers); per 16 elements 10 loads feed 24 fused multiply-adds.
    @inline(__always)
    static func tile6x4(_ w: UnsafePointer<Float>, k: Int, k16: Int, x: UnsafePointer<Float>, ldx: Int,
                        out: UnsafeMutablePointer<Float>, ldo: Int, accumulate: Bool) {
        let w0 = w, w1 = w + k, w2 = w + 2 * k, w3 = w + 3 * k
        let x0 = x, x1 = x + ldx, x2 = x + 2 * ldx, x3 = x + 3 * ldx, x4 = x + 4 * ldx, x5 = x + 5 * ldx
        var a00 = V16(), a01 = V16(), a02 = V16(), a03 = V16()
        var a10 = V16(), a11 = V16(), a12 = V16(), a13 = V16()
        var a20 = V16(), a21 = V16(), a22 = V16(), a23 = V16()
        var a30 = V16(), a31 = V16(), a32 = V16(), a33 = V16()
        var a40 = V16(), a41 = V16(), a42 = V16(), a43 = V16()
        var a50 = V16(), a51 = V16(), a52 = V16(), a53 = V16()
        var p = 0
        while p < k16 {
            let v0 = load16(w0 + p), v1 = load16(w1 + p), v2 = load16(w2 + p), v3 = load16(w3 + p)
            var u = load16(x0 + p)
            a00.addProduct(u, v0); a01.addProduct(u, v1); a02.addProduct(u, v2); a03.addProduct(u, v3)
            u = load16(x1 + p)
            a10.addProduct(u, v0); a11.addProduct(u, v1); a12.addProduct(u, v2); a13.addProduct(u, v3)
            u = load16(x2 + p)
            a20.addProduct(u, v0); a21.addProduct(u, v1); a22.addProduct(u, v2); a23.addProduct(u, v3)
            u = load16(x3 + p)
            a30.addProduct(u, v0); a31.addProduct(u, v1); a32.addProduct(u, v2); a33.addProduct(u, v3)
            u = load16(x4 + p)
            a40.addProduct(u, v0); a41.addProduct(u, v1); a42.addProduct(u, v2); a43.addProduct(u, v3)
            u = load16(x5 + p)
            a50.addProduct(u, v0); a51.addProduct(u, v1); a52.addProduct(u, v2); a53.addProduct(u, v3)
            p += 16
        }
        finish4Rows(a00, a01, a02, a03, a10, a11, a12, a13, a20, a21, a22, a23, a30, a31, a32, a33,
                    x: x, ldx: ldx, w: w, k: k, k16: k16, out: out, ldo: ldo, accumulate: accumulate)
        finish2Rows(a40, a41, a42, a43, a50, a51, a52, a53,
                    x: x4, ldx: ldx, w: w, k: k, k16: k16, out: out + 4 * ldo, ldo: ldo, accumulate: accumulate)
    }
}
