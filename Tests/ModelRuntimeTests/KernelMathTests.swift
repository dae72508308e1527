import Foundation
import Testing
@testable import ModelRuntime

/// The SIMD kernels of the forward pass against their definitions, computed in Double.
@Suite("Forward-pass kernels against their definitions in double precision")
struct KernelMathTests {
    /// Deterministic values in [lo, hi) (a linear congruential sequence; any spread of values will do).
    static func values(_ n: Int, _ lo: Double, _ hi: Double, seed: UInt64) -> [Float] {
        var s = seed
        return (0..<n).map { _ in
            s = s &* 6364136223846793005 &+ 1442695040888963407
            return Float(lo + (hi - lo) * Double(s >> 11) / Double(1 << 53))
        }
    }

    @Test("exp8: relative error below 4e-7 over [-87, 88], clamped outside")
    func exp8MatchesExp() {
        var worst = 0.0
        let xs = Self.values(80_000, -87, 88, seed: 1) + Self.values(8_000, -2, 2, seed: 2) + [0, 1, -1, 88, -87.3, 0.5]
        var i = 0
        while i + 8 <= xs.count {
            var v = F8(); for l in 0..<8 { v[l] = xs[i + l] }
            let e = exp8(v)
            for l in 0..<8 {
                let want = Foundation.exp(Double(xs[i + l]))
                worst = max(worst, abs(Double(e[l]) - want) / want)
            }
            i += 8
        }
        #expect(worst < 4e-7, "worst relative error \(worst)")
        let special = exp8(F8(-1000, -88, 89, 1000, .infinity, -.infinity, 0, 88))
        for l in [0, 1, 5] { #expect(special[l] >= 0 && special[l] < 2e-38, "lane \(l): \(special[l])") }
        for l in [2, 3, 4] { #expect(special[l] == special[7] && special[l].isFinite && special[l] > 1.6e38, "lane \(l): \(special[l])") }
        #expect(special[6] == 1)
    }

    @Test("softmax keeps NaN: a row with a NaN becomes all NaN")
    func softmaxNaN() {
        var v: [Float] = [1, 2, .nan, 3, 4, 5, 6, 7, 8, 9]
        v.withUnsafeMutableBufferPointer { softmaxInPlace($0.baseAddress!, 10) }
        #expect(v.allSatisfy { $0.isNaN })
    }

    @Test("softmax and SwiGLU equal their definitions", arguments: [1, 7, 8, 9, 64, 1536, 4864])
    func softmaxAndSwiglu(_ n: Int) {
        var v = Self.values(n, -30, 30, seed: UInt64(n))
        let m = v.map(Double.init).max()!
        let z = v.reduce(0.0) { $0 + Foundation.exp(Double($1) - m) }
        let want = v.map { Foundation.exp(Double($0) - m) / z }
        v.withUnsafeMutableBufferPointer { softmaxInPlace($0.baseAddress!, n) }
        for j in 0..<n { #expect(abs(Double(v[j]) - want[j]) <= 1e-6 * max(want[j], 1e-30) + 1e-12) }

        let gu = Self.values(2 * n, -12, 12, seed: UInt64(n) + 99)
        var out = [Float](repeating: 0, count: n)
        gu.withUnsafeBufferPointer { g in out.withUnsafeMutableBufferPointer { swiglu(g.baseAddress!, $0.baseAddress!, n) } }
        for j in 0..<n {
            let g = Double(gu[j]), u = Double(gu[n + j])
            let w = g / (1 + Foundation.exp(-g)) * u
            #expect(abs(Double(out[j]) - w) <= 1e-6 * abs(w) + 1e-6, "j \(j): \(out[j]) vs \(w)")
        }
    }

    @Test("RMSNorm and RoPE (both layouts) equal their definitions", arguments: [8, 9, 64, 576, 896])
    func rmsNormAndRope(_ n: Int) {
        let x = Self.values(n, -3, 3, seed: 5), w = Self.values(n, 0.5, 1.5, seed: 6)
        var out = [Float](repeating: 0, count: n)
        x.withUnsafeBufferPointer { xp in w.withUnsafeBufferPointer { wp in out.withUnsafeMutableBufferPointer {
            rmsNorm(xp.baseAddress!, wp.baseAddress!, $0.baseAddress!, n, 1e-5) } } }
        let ms = x.reduce(0.0) { $0 + Double($1) * Double($1) } / Double(n)
        for j in 0..<n {
            let want = Double(w[j]) * Double(x[j]) / (ms + 1e-5).squareRoot()
            #expect(abs(Double(out[j]) - want) <= 2e-6 * abs(want) + 1e-7)
        }
        guard n % 2 == 0 else { return }
        let half = n / 2
        let angles = Self.values(half, -10, 10, seed: 7)
        let cs = angles.map { Float(Foundation.cos(Double($0))) }, sn = angles.map { Float(Foundation.sin(Double($0))) }
        for style in [RopeStyle.neox, .adjacentPairs] {
            var v = x
            v.withUnsafeMutableBufferPointer { vp in cs.withUnsafeBufferPointer { c in sn.withUnsafeBufferPointer { s in
                rope(vp.baseAddress!, c.baseAddress!, s.baseAddress!, half, style) } } }
            for i in 0..<half {
                let (ia, ib) = style == .neox ? (i, i + half) : (2 * i, 2 * i + 1)
                let a = Double(x[ia]), b = Double(x[ib]), c = Double(cs[i]), s = Double(sn[i])
                #expect(abs(Double(v[ia]) - (a * c - b * s)) < 1e-5)
                #expect(abs(Double(v[ib]) - (b * c + a * s)) < 1e-5)
            }
        }
    }

    @Test("one query row's attention equals softmax(q·kᵀ·scale)·V", arguments: [1, 5, 37, 300])
    func attendRowMatchesDefinition(_ visible: Int) {
        let hd = 64, stride = 3 * hd   // keys/values of head 1 of 3, position-major, like the KV cache
        let q = Self.values(hd, -1, 1, seed: 11)
        let k = Self.values(visible * stride, -1, 1, seed: 12), v = Self.values(visible * stride, -2, 2, seed: 13)
        let scale: Float = 1 / 8
        var scores = [Float](repeating: 0, count: visible), out = [Float](repeating: 0, count: hd)
        q.withUnsafeBufferPointer { qp in k.withUnsafeBufferPointer { kp in v.withUnsafeBufferPointer { vp in
            scores.withUnsafeMutableBufferPointer { sp in out.withUnsafeMutableBufferPointer { op in
                attendRow(qp.baseAddress!, kp.baseAddress! + hd, vp.baseAddress! + hd, stride: stride, visible: visible,
                          hd: hd, scale: scale, scores: sp.baseAddress!, out: op.baseAddress!) } } } } }
        var s = (0..<visible).map { j in (0..<hd).reduce(0.0) { $0 + Double(q[$1]) * Double(k[j * stride + hd + $1]) } * Double(scale) }
        let m = s.max()!
        s = s.map { Foundation.exp($0 - m) }
        let z = s.reduce(0, +)
        for c in 0..<hd {
            let want = (0..<visible).reduce(0.0) { $0 + s[$1] / z * Double(v[$1 * stride + hd + c]) }
            #expect(abs(Double(out[c]) - want) < 2e-6, "component \(c)")
        }
    }
}
