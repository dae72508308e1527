import Foundation

// Elementwise and small kernels of the forward pass, written over SIMD8<Float> (AVX2 lanes in release
// builds for x86-64-v3 / "haswell"; see the Makefile's CPU_FLAGS). Each has a scalar tail.

typealias F8 = SIMD8<Float>

@inline(__always)
func load8(_ p: UnsafePointer<Float>) -> F8 { UnsafeRawPointer(p).loadUnaligned(as: F8.self) }

@inline(__always)
func store8(_ v: F8, _ p: UnsafeMutablePointer<Float>) { UnsafeMutableRawPointer(p).storeBytes(of: v, as: F8.self) }

/// Σ a[j]·b[j] over n values, eight partial sums.
@inline(__always)
func dot(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ n: Int) -> Float {
    var acc = F8(repeating: 0)
    var j = 0
    while j + 8 <= n { acc.addProduct(load8(a + j), load8(b + j)); j += 8 }
    var s = acc.sum()
    while j < n { s += a[j] * b[j]; j += 1 }
    return s
}

/// y[j] += alpha · x[j].
@inline(__always)
func axpy(_ alpha: Float, _ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ n: Int) {
    let a = F8(repeating: alpha)
    var j = 0
    while j + 8 <= n { var v = load8(y + j); v.addProduct(a, load8(x + j)); store8(v, y + j); j += 8 }
    while j < n { y[j] += alpha * x[j]; j += 1 }
}

/// out = x / sqrt(mean(x²) + eps) ⊙ w.
@inline(__always)
func rmsNorm(_ x: UnsafePointer<Float>, _ w: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>, _ n: Int, _ eps: Float) {
    let inv = 1 / (dot(x, x, n) / Float(n) + eps).squareRoot()
    let vi = F8(repeating: inv)
    var j = 0
    while j + 8 <= n { store8(load8(w + j) * (load8(x + j) * vi), out + j); j += 8 }
    while j < n { out[j] = w[j] * (x[j] * inv); j += 1 }
}

/// Rotates one head vector in place by the position's angles.
@inline(__always)
func rope(_ v: UnsafeMutablePointer<Float>, _ cs: UnsafePointer<Float>, _ sn: UnsafePointer<Float>, _ half: Int, _ style: RopeStyle) {
    switch style {
    case .neox:
        var i = 0
        while i + 8 <= half {
            let a = load8(v + i), b = load8(v + i + half), c = load8(cs + i), s = load8(sn + i)
            store8(a * c - b * s, v + i)
            store8(b * c + a * s, v + i + half)
            i += 8
        }
        while i < half {
            let a = v[i], b = v[i + half]
            v[i] = a * cs[i] - b * sn[i]
            v[i + half] = b * cs[i] + a * sn[i]
            i += 1
        }
    case .adjacentPairs:
        for i in 0..<half {
            let a = v[2 * i], b = v[2 * i + 1]
            v[2 * i] = a * cs[i] - b * sn[i]
            v[2 * i + 1] = b * cs[i] + a * sn[i]
        }
    }
}

/// eˣ for eight lanes: x = k·ln2 + r with |r| ≤ ln2/2 (ln2 split in two parts, Cody–Waite), eʳ by a
/// degree-6 Taylor polynomial (relative error < 2e-7 on that interval), 2ᵏ built in the exponent bits.
/// Inputs are clamped to [−87.33, 88]: below, the result is ~1.2e-38 instead of 0; above, e⁸⁸ ≈ 1.65e38
/// instead of +inf; a NaN gives an unspecified value (callers check for NaN themselves). No lane masks:
/// Swift builds SIMD comparison masks lane by lane, which made this function ten times slower.
@inline(__always)
func exp8(_ x: F8) -> F8 {
    let xc = pointwiseMin(pointwiseMax(x, F8(repeating: -87.33654)), F8(repeating: 88))
    // k = round(x / ln2) by the magic-number trick: adding 1.5·2²³ leaves round-to-nearest-even(x/ln2)
    // in the low mantissa bits, readable as an integer without a (slow, per-lane) conversion.
    let magic = F8(repeating: 12582912)
    let t = xc * F8(repeating: 1.442695041) + magic
    let k = t - magic
    let ki = unsafeBitCast(t, to: SIMD8<Int32>.self) &- 0x4B40_0000   // in [−126, 127]
    var r = xc - k * F8(repeating: 0.693359375)      // ln2 high part (exact in float)
    r = r - k * F8(repeating: -2.12194440e-4)         // ln2 low part
    var p = F8(repeating: 1.0 / 720)
    p = p * r + F8(repeating: 1.0 / 120)
    p = p * r + F8(repeating: 1.0 / 24)
    p = p * r + F8(repeating: 1.0 / 6)
    p = p * r + F8(repeating: 0.5)
    p = p * r + F8(repeating: 1)
    p = p * r + F8(repeating: 1)
    return p * unsafeBitCast((ki &+ 127) &<< 23, to: F8.self)
}

/// Numerically stable softmax over the first n values.
@inline(__always)
func softmaxInPlace(_ v: UnsafeMutablePointer<Float>, _ n: Int) {
    var m = -Float.infinity
    var nan = false
    for j in 0..<n { let x = v[j]; m = x > m ? x : m; nan = nan || x.isNaN }
    if nan { v.update(repeating: .nan, count: n); return }   // NaN in, NaN out (exp8 would hide it)
    let vm = F8(repeating: m)
    var acc = F8(repeating: 0)
    var j = 0
    while j + 8 <= n { let e = exp8(load8(v + j) - vm); store8(e, v + j); acc += e; j += 8 }
    var s = acc.sum()
    while j < n { let e = expf(v[j] - m); v[j] = e; s += e; j += 1 }
    let inv = 1 / s
    let vi = F8(repeating: inv)
    j = 0
    while j + 8 <= n { store8(load8(v + j) * vi, v + j); j += 8 }
    while j < n { v[j] *= inv; j += 1 }
}

/// out[j] = silu(gate[j]) · up[j] with gate = gu[0..<f], up = gu[f..<2f].
@inline(__always)
func swiglu(_ gu: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>, _ f: Int) {
    let one = F8(repeating: 1)
    var j = 0
    while j + 8 <= f {
        let g = load8(gu + j)
        store8(g / (one + exp8(-g)) * load8(gu + f + j), out + j)
        j += 8
    }
    while j < f {
        let g = gu[j]
        out[j] = g / (1 + expf(-g)) * gu[f + j]
        j += 1
    }
}

@inline(__always)
func addInPlace(_ x: UnsafeMutablePointer<Float>, _ y: UnsafePointer<Float>, _ n: Int) {
    var j = 0
    while j + 8 <= n { store8(load8(x + j) + load8(y + j), x + j); j += 8 }
    while j < n { x[j] += y[j]; j += 1 }
}

/// Attention of one query row against `visible` cached positions, for one head:
/// out[hd] = Σⱼ softmax(scale · q·kⱼ)ⱼ · vⱼ. `k`, `v` point at the head's first position; rows are
/// `stride` floats apart. `scores` has room for `visible` values. For decoding and short new segments,
/// where BLAS calls on tiny matrices cost more than they compute.
@inline(__always)
func attendRow(_ q: UnsafePointer<Float>, _ k: UnsafePointer<Float>, _ v: UnsafePointer<Float>, stride: Int,
               visible: Int, hd: Int, scale: Float, scores: UnsafeMutablePointer<Float>, out: UnsafeMutablePointer<Float>) {
    for j in 0..<visible { scores[j] = scale * dot(q, k + j * stride, hd) }
    softmaxInPlace(scores, visible)
    out.update(repeating: 0, count: hd)
    for j in 0..<visible { axpy(scores[j], v + j * stride, out, hd) }
}
