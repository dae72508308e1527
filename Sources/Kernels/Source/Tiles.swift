import KernelABI

// The register tile of the panel path: `tileX` rows of x × 4 rows of W (tileX is set per CPU path in
// Variant.swift: as many accumulators as the vector registers hold).

extension Impl {
    @inline(__always)
    static func tile(_ w: UnsafePointer<Float>, k: Int, k16: Int, x: UnsafePointer<Float>, ldx: Int,
                     out: UnsafeMutablePointer<Float>, ldo: Int, accumulate: Bool) {
        if tileX == 4 {
            tile4x4(w, k: k, k16: k16, x: x, ldx: ldx, out: out, ldo: ldo, accumulate: accumulate)
        } else {
            for i in 0..<tileX { row4(w, k: k, k16: k16, x: x + i * ldx, out: out + i * ldo, accumulate: accumulate) }
        }
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
        @inline(__always) func put(_ a: V16, _ xr: UnsafePointer<Float>, _ wr: UnsafePointer<Float>, _ o: UnsafeMutablePointer<Float>) {
            finish(a, tail: tailDot(xr, wr, from: k16, to: k), into: o, accumulate: accumulate)
        }
        let o0 = out, o1 = out + ldo, o2 = out + 2 * ldo, o3 = out + 3 * ldo
        put(a00, x0, w0, o0); put(a01, x0, w1, o0 + 1); put(a02, x0, w2, o0 + 2); put(a03, x0, w3, o0 + 3)
        put(a10, x1, w0, o1); put(a11, x1, w1, o1 + 1); put(a12, x1, w2, o1 + 2); put(a13, x1, w3, o1 + 3)
        put(a20, x2, w0, o2); put(a21, x2, w1, o2 + 1); put(a22, x2, w2, o2 + 2); put(a23, x2, w3, o2 + 3)
        put(a30, x3, w0, o3); put(a31, x3, w1, o3 + 1); put(a32, x3, w2, o3 + 2); put(a33, x3, w3, o3 + 3)
    }
}
