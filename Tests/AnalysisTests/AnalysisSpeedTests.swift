import Foundation
import Testing
import LinearAlgebra
import Analysis

/// A study-sized site (250 + 250 train, 50 + 50 test prompts, width 896) must analyse quickly.
@Suite("Analysis speed")
struct AnalysisSpeedTests {
    static func randomSplit(d: Int, seed: UInt64) -> ActivationSplit {
        var g = SplitMix64(seed: seed)
        func gauss() -> Float { // Box–Muller on two uniforms
            let u1 = (Double(g.next() >> 11) + 0.5) / 9007199254740992.0, u2 = Double(g.next() >> 11) / 9007199254740992.0
            return Float((-2 * log(u1)).squareRoot() * cos(2 * Double.pi * u2))
        }
        let scales = (0..<d).map { Float(1 / Double($0 + 1).squareRoot()) }
        let dir = (0..<d).map { _ in gauss() }
        let dn = Vec.normalized(dir)
        func m(_ n: Int, _ sign: Float) -> Matrix {
            var x = Matrix(rows: n, cols: d)
            for i in 0..<n { for j in 0..<d { x[i, j] = gauss() * scales[j] + sign * 0.5 * dn[j] } }
            return x
        }
        return ActivationSplit(trainHarmful: m(250, 1), trainHarmless: m(250, -1), testHarmful: m(50, 1), testHarmless: m(50, -1))
    }

    @Test("one study-sized site takes well under a second")
    func site() throws {
        let data = Self.randomSplit(d: 896, seed: 3)
        let clock = ContinuousClock()
        var result: LayerAnalysis?
        let t = try clock.measure {
            result = try analyzeLayer(checkpoint: "bench", layer: 0, position: -1, data: data)
        }
        let a = try #require(result)
        print("site 500 x 896 (100 bootstrap replicates): \(t); pc1 CI \(a.direction(.pc1)!.stability!.lower)…\(a.direction(.pc1)!.stability!.upper)")
        #expect(t < .seconds(2))
    }
}
