import Foundation
import Testing
import LinearAlgebra
import Analysis

/// A study-sized site (250 + 250 train, 50 + 50 test prompts, width 896) must analyse quickly.
/// Times are this thread's CPU time with one BLAS thread, so a busy machine does not make them flaky.
@Suite("Analysis speed", .serialized)
struct AnalysisSpeedTests {
    static func randomSplit(d: Int, signal: Float, seed: UInt64) -> ActivationSplit {
        var g = SplitMix64(seed: seed)
        func gauss() -> Float { // Box–Muller on two uniforms
            let u1 = (Double(g.next() >> 11) + 0.5) / 9007199254740992.0, u2 = Double(g.next() >> 11) / 9007199254740992.0
            return Float((-2 * log(u1)).squareRoot() * cos(2 * Double.pi * u2))
        }
        let scales = (0..<d).map { Float(1 / Double($0 + 1).squareRoot()) }
        let dn = Vec.normalized((0..<d).map { _ in gauss() })
        func m(_ n: Int, _ sign: Float) -> Matrix {
            var x = Matrix(rows: n, cols: d)
            for i in 0..<n { for j in 0..<d { x[i, j] = gauss() * scales[j] + sign * 0.5 * signal * dn[j] } }
            return x
        }
        return ActivationSplit(trainHarmful: m(250, 1), trainHarmless: m(250, -1), testHarmful: m(50, 1), testHarmless: m(50, -1))
    }

    static func cpuSeconds(_ body: () throws -> Void) rethrows -> Double {
        var a = timespec(), b = timespec()
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &a)
        try body()
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &b)
        return Double(b.tv_sec - a.tv_sec) + Double(b.tv_nsec - a.tv_nsec) * 1e-9
    }

    @Test("one study-sized site costs well under a second of CPU", arguments: [(Float(3), "clear pc1"), (Float(0.5), "no pc1 gap")])
    func site(signal: Float, label: String) throws {
        let saved = BLAS.threads
        BLAS.setThreads(1)
        defer { BLAS.setThreads(saved) }
        let data = Self.randomSplit(d: 896, signal: signal, seed: 3)
        var none = AnalysisOptions(); none.bootstrapReplicates = 0
        var result: LayerAnalysis?
        let full = try Self.cpuSeconds { result = try analyzeLayer(checkpoint: "bench", layer: 0, position: -1, data: data) }
        let noBoot = try Self.cpuSeconds { _ = try analyzeLayer(checkpoint: "bench", layer: 0, position: -1, data: data, options: none) }
        let train = Matrix(rows: 500, cols: 896, data: data.trainHarmful.data + data.trainHarmless.data)
        let g = try matmul(train, train, transB: true)
        let gram = try Self.cpuSeconds { _ = try matmul(train, train, transB: true) }
        let eig = try Self.cpuSeconds { _ = try symmetricEigen(g) }
        let vals = try Self.cpuSeconds { _ = try symmetricEigen(g, vectors: false) }
        let a = try #require(result)
        let s = try #require(a.direction(.pc1)?.stability)
        print(String(format: "[%@] CPU s: site %.3f, without bootstrap %.3f; gram %.3f, ssyevd %.3f, values only %.3f; pc1 CI %.3f…%.3f",
                     label, full, noBoot, gram, eig, vals, s.lower, s.upper))
        #expect(full < 1.0)
    }
}
