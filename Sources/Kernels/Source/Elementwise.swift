import Foundation
import KernelABI

// The elementwise and attention kernels of the forward pass, over 16 lanes with scalar tails.

extension Impl {
    /// The canonical dot product (see KernelABI).
    @inline(__always)
    static func dotCanonical(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ n: Int) -> Float {
        var acc = V16()
        var j = 0
        while j + 16 <= n { acc.addProduct(load16(a + j), load16(b + j)); j += 16 }
        return hsum(acc) + tailDot(a, b, from: j, to: n)
    }

    /// y[j] += alpha · x[j] (one fused multiply-add per element).
    @inline(__always)
    static func axpy(_ alpha: Float, _ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ n: Int) {
        let a = V16(repeating: alpha)
        var j = 0
        while j + 16 <= n { var v = load16(y + j); v.addProduct(a, load16(x + j)); store16(v, y + j); j += 16 }
        while j < n { y[j] = y[j].addingProduct(alpha, x[j]); j += 1 }
    }

    public static func dot(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, n: Int) -> Float { dotCanonical(a, b, n) }

    public static func rmsNorm(_ x: UnsafePointer<Float>, _ w: UnsafePointer<Float>, offset: Float, _ out: UnsafeMutablePointer<Float>,
                               n: Int, eps: Float, count: Int) {
        let off = V16(repeating: offset)
        for r in 0..<count {
            let xr = x + r * n, orow = out + r * n
            let inv = 1 / (dotCanonical(xr, xr, n) / Float(n) + eps).squareRoot()
            let vi = V16(repeating: inv)
            var j = 0
            while j + 16 <= n { store16((load16(w + j) + off) * (load16(xr + j) * vi), orow + j); j += 16 }
            while j < n { orow[j] = (w[j] + offset) * (xr[j] * inv); j += 1 }
        }
    }

    public static func rope(_ v: UnsafeMutablePointer<Float>, cos cs: UnsafePointer<Float>, sin sn: UnsafePointer<Float>, half: Int,
                            adjacentPairs: Bool) {
        if adjacentPairs {
            for i in 0..<half {
                let a = v[2 * i], b = v[2 * i + 1]
                v[2 * i] = a * cs[i] - b * sn[i]
                v[2 * i + 1] = b * cs[i] + a * sn[i]
            }
            return
        }
        var i = 0
        while i + 16 <= half {
            let a = load16(v + i), b = load16(v + i + half), c = load16(cs + i), s = load16(sn + i)
            store16(a * c - b * s, v + i)
            store16(b * c + a * s, v + i + half)
            i += 16
        }
        while i < half {
            let a = v[i], b = v[i + half]
            v[i] = a * cs[i] - b * sn[i]
            v[i + half] = b * cs[i] + a * sn[i]
            i += 1
        }
    }

    /// eˣ for 16 lanes: x = k·ln2 + r with |r| ≤ ln2/2 (ln2 in two parts, Cody–Waite), eʳ by a degree-6
    /// Taylor polynomial (relative error < 2e-7), 2ᵏ built in the exponent bits. Inputs are clamped to
    /// [−87.33, 88]; NaN gives an unspecified value (callers check for NaN). No lane masks or integer
    /// conversions (Swift builds those lane by lane).
    @inline(__always)
    static func exp16(_ x: V16) -> V16 {
        let xc = pointwiseMin(pointwiseMax(x, V16(repeating: -87.33654)), V16(repeating: 88))
        let magic = V16(repeating: 12582912)
        let t = xc * V16(repeating: 1.442695041) + magic
        let k = t - magic
        let ki = unsafeBitCast(t, to: I16.self) &- 0x4B40_0000
        var r = xc - k * V16(repeating: 0.693359375)
        r = r - k * V16(repeating: -2.12194440e-4)
        var p = V16(repeating: 1.0 / 720)
        p = p * r + V16(repeating: 1.0 / 120)
        p = p * r + V16(repeating: 1.0 / 24)
        p = p * r + V16(repeating: 1.0 / 6)
        p = p * r + V16(repeating: 0.5)
        p = p * r + V16(repeating: 1)
        p = p * r + V16(repeating: 1)
        return p * unsafeBitCast((ki &+ 127) &<< 23, to: V16.self)
    }

    /// The scalar tail of `exp16`: the same arithmetic on one value.
    @inline(__always)
    static func exp1(_ x: Float) -> Float { exp16(V16(repeating: x))[0] }

    public static func softmax(_ v: UnsafeMutablePointer<Float>, n: Int) {
        var m = -Float.infinity
        var nan = false
        for j in 0..<n { let x = v[j]; m = x > m ? x : m; nan = nan || x.isNaN }
        if nan { v.update(repeating: .nan, count: n); return }
        let vm = V16(repeating: m)
        var acc = V16()
        var j = 0
        while j + 16 <= n { let e = exp16(load16(v + j) - vm); store16(e, v + j); acc += e; j += 16 }
        var s = hsum(acc)
        while j < n { let e = exp1(v[j] - m); v[j] = e; s += e; j += 1 }
        let inv = 1 / s
        let vi = V16(repeating: inv)
        j = 0
        while j + 16 <= n { store16(load16(v + j) * vi, v + j); j += 16 }
        while j < n { v[j] *= inv; j += 1 }
    }

    public static func swiglu(_ gu: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>, f: Int, count: Int, ldgu: Int) {
        let one = V16(repeating: 1)
        for r in 0..<count {
            let g0 = gu + r * ldgu, o = out + r * f
            var j = 0
            while j + 16 <= f {
                let g = load16(g0 + j)
                store16(g / (one + exp16(-g)) * load16(g0 + f + j), o + j)
                j += 16
            }
            while j < f {
                let g = g0[j]
                o[j] = g / (1 + exp1(-g)) * g0[f + j]
                j += 1
            }
        }
    }

    public static func exp(_ x: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>, n: Int) {
        var j = 0
        while j + 16 <= n { store16(exp16(load16(x + j)), out + j); j += 16 }
        while j < n { out[j] = exp1(x[j]); j += 1 }
    }

    public static func add(_ x: UnsafeMutablePointer<Float>, _ y: UnsafePointer<Float>, n: Int) {
        var j = 0
        while j + 16 <= n { store16(load16(x + j) + load16(y + j), x + j); j += 16 }
        while j < n { x[j] += y[j]; j += 1 }
    }

    public static func attend(q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>, stride: Int, visible: Int,
                              hd: Int, scale: Float, scores: UnsafeMutablePointer<Float>, out: UnsafeMutablePointer<Float>) {
        for j in 0..<visible { scores[j] = scale * dotCanonical(q, k + j * stride, hd) }
        softmax(scores, n: visible)
        out.update(repeating: 0, count: hd)
        for j in 0..<visible { axpy(scores[j], v + j * stride, out, hd) }
    }
}
