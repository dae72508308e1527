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
        var j = 0
        if jointReductions && hd % 16 == 0 {
            // Sixteen positions at a time, their accumulators reduced together (`hsum16`: the additions of
            // `dotCanonical`, lane by lane side by side). hd is a multiple of 16, so the tail is + 0 as there.
            let zero = V16()
            while j + 16 <= visible {
                let kj = k + j * stride
                @inline(__always) func acc(_ t: Int) -> V16 {
                    let kt = kj + t * stride
                    var a = V16()
                    var e = 0
                    while e < hd { a.addProduct(load16(q + e), load16(kt + e)); e += 16 }
                    return a
                }
                let r = hsum16(acc(0), acc(1), acc(2), acc(3), acc(4), acc(5), acc(6), acc(7),
                               acc(8), acc(9), acc(10), acc(11), acc(12), acc(13), acc(14), acc(15)) + zero
                store16(V16(repeating: scale) * r, scores + j)
                j += 16
            }
        }
        while j < visible { scores[j] = scale * dotCanonical(q, k + j * stride, hd); j += 1 }
        softmax(scores, n: visible)
        // out = Σ_j p_j v_j, each element's fused multiply-adds in the order of j from 0 (as `axpy` into a
        // zeroed row): 64 elements at a time held in registers over all positions, then 16, then one.
        var c = 0
        while c + 64 <= hd {
            var o0 = V16(), o1 = V16(), o2 = V16(), o3 = V16()
            for j in 0..<visible {
                let p = V16(repeating: scores[j]), vr = v + j * stride + c
                o0.addProduct(p, load16(vr)); o1.addProduct(p, load16(vr + 16))
                o2.addProduct(p, load16(vr + 32)); o3.addProduct(p, load16(vr + 48))
            }
            store16(o0, out + c); store16(o1, out + c + 16); store16(o2, out + c + 32); store16(o3, out + c + 48)
            c += 64
        }
        while c + 16 <= hd {
            var o0 = V16()
            for j in 0..<visible { o0.addProduct(V16(repeating: scores[j]), load16(v + j * stride + c)) }
            store16(o0, out + c)
            c += 16
        }
        while c < hd {
            var o: Float = 0
            for j in 0..<visible { o = o.addingProduct(scores[j], v[j * stride + c]) }
            out[c] = o
            c += 1
        }
    }
}
