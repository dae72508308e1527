import Foundation
import Testing
import KernelABI
@testable import ModelRuntime

/// The SIMD kernels of the forward pass against their definitions, computed in Double, for every kernel
/// build this CPU can run.
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

    @Test("exp: relative error below 4e-7 over [-87, 88], clamped outside", arguments: CPUKernels.available)
    func expMatchesExp(_ path: KernelPath) {
        let K = CPUKernels.kernels(for: path)
        var worst = 0.0
        let xs = Self.values(80_000, -87, 88, seed: 1) + Self.values(8_000, -2, 2, seed: 2) + [0, 1, -1, 88, -87.3, 0.5]
        var e = [Float](repeating: 0, count: xs.count)
        xs.withUnsafeBufferPointer { x in e.withUnsafeMutableBufferPointer { K.exp(x.baseAddress!, $0.baseAddress!, n: xs.count) } }
        for i in 0..<xs.count {
            let want = Foundation.exp(Double(xs[i]))
            worst = max(worst, abs(Double(e[i]) - want) / want)
        }
        #expect(worst < 4e-7, "worst relative error \(worst)")
        // 17 values: a whole vector and the scalar tail take the same path
        let input: [Float] = [-1000, -88, 89, 1000, .infinity, -.infinity, 0, 88, 0, 0, 0, 0, 0, 0, 0, 0, -1000]
        var special = [Float](repeating: 0, count: input.count)
        input.withUnsafeBufferPointer { x in special.withUnsafeMutableBufferPointer { K.exp(x.baseAddress!, $0.baseAddress!, n: input.count) } }
        for l in [0, 1, 5, 16] { #expect(special[l] >= 0 && special[l] < 2e-38, "lane \(l): \(special[l])") }
        for l in [2, 3, 4] { #expect(special[l] == special[7] && special[l].isFinite && special[l] > 1.6e38, "lane \(l): \(special[l])") }
        #expect(special[6] == 1)
    }

    @Test("softmax keeps NaN: a row with a NaN becomes all NaN", arguments: CPUKernels.available)
    func softmaxNaN(_ path: KernelPath) {
        var v: [Float] = [1, 2, .nan, 3, 4, 5, 6, 7, 8, 9]
        v.withUnsafeMutableBufferPointer { CPUKernels.kernels(for: path).softmax($0.baseAddress!, n: 10) }
        #expect(v.allSatisfy { $0.isNaN })
    }

    static let pathsAndSizes: [(KernelPath, Int)] = CPUKernels.available.flatMap { p in [1, 7, 8, 9, 17, 64, 1536, 4864].map { (p, $0) } }

    @Test("softmax and SwiGLU equal their definitions", arguments: pathsAndSizes)
    func softmaxAndSwiglu(_ path: KernelPath, _ n: Int) {
        let K = CPUKernels.kernels(for: path)
        var v = Self.values(n, -30, 30, seed: UInt64(n))
        let m = v.map(Double.init).max()!
        let z = v.reduce(0.0) { $0 + Foundation.exp(Double($1) - m) }
        let want = v.map { Foundation.exp(Double($0) - m) / z }
        v.withUnsafeMutableBufferPointer { K.softmax($0.baseAddress!, n: n) }
        for j in 0..<n { #expect(abs(Double(v[j]) - want[j]) <= 1e-6 * max(want[j], 1e-30) + 1e-12) }

        let gu = Self.values(2 * n, -12, 12, seed: UInt64(n) + 99)
        var out = [Float](repeating: 0, count: n)
        gu.withUnsafeBufferPointer { g in out.withUnsafeMutableBufferPointer { K.swiglu(g.baseAddress!, $0.baseAddress!, f: n, count: 1, ldgu: 2 * n) } }
        for j in 0..<n {
            let g = Double(gu[j]), u = Double(gu[n + j])
            let w = g / (1 + Foundation.exp(-g)) * u
            #expect(abs(Double(out[j]) - w) <= 1e-6 * abs(w) + 1e-6, "j \(j): \(out[j]) vs \(w)")
        }
    }

    @Test("RMSNorm and RoPE (both layouts) equal their definitions",
          arguments: CPUKernels.available.flatMap { p in [8, 9, 64, 576, 896].map { (p, $0) } })
    func rmsNormAndRope(_ path: KernelPath, _ n: Int) {
        let K = CPUKernels.kernels(for: path)
        let x = Self.values(n, -3, 3, seed: 5), w = Self.values(n, 0.5, 1.5, seed: 6)
        var out = [Float](repeating: 0, count: n)
        x.withUnsafeBufferPointer { xp in w.withUnsafeBufferPointer { wp in out.withUnsafeMutableBufferPointer {
            K.rmsNorm(xp.baseAddress!, wp.baseAddress!, offset: 0, $0.baseAddress!, n: n, eps: 1e-5, count: 1) } } }
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
                K.rope(vp.baseAddress!, cos: c.baseAddress!, sin: s.baseAddress!, half: half, adjacentPairs: style == .adjacentPairs) } } }
            for i in 0..<half {
                let (ia, ib) = style == .neox ? (i, i + half) : (2 * i, 2 * i + 1)
                let a = Double(x[ia]), b = Double(x[ib]), c = Double(cs[i]), s = Double(sn[i])
                #expect(abs(Double(v[ia]) - (a * c - b * s)) < 1e-5)
                #expect(abs(Double(v[ib]) - (b * c + a * s)) < 1e-5)
            }
        }
    }

    @Test("one query row's attention equals softmax(q·kᵀ·scale)·V",
          arguments: CPUKernels.available.flatMap { p in [1, 5, 37, 300].map { (p, $0) } })
    func attendRowMatchesDefinition(_ path: KernelPath, _ visible: Int) {
        let K = CPUKernels.kernels(for: path)
        let hd = 64, stride = 3 * hd   // keys/values of head 1 of 3, position-major, like the KV cache
        let q = Self.values(hd, -1, 1, seed: 11)
        let k = Self.values(visible * stride, -1, 1, seed: 12), v = Self.values(visible * stride, -2, 2, seed: 13)
        let scale: Float = 1 / 8
        var scores = [Float](repeating: 0, count: visible), out = [Float](repeating: 0, count: hd)
        q.withUnsafeBufferPointer { qp in k.withUnsafeBufferPointer { kp in v.withUnsafeBufferPointer { vp in
            scores.withUnsafeMutableBufferPointer { sp in out.withUnsafeMutableBufferPointer { op in
                K.attend(q: qp.baseAddress!, k: kp.baseAddress! + hd, v: vp.baseAddress! + hd, stride: stride, visible: visible,
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
