import Testing
@testable import LinearAlgebra

/// The few-rows product against the definition C[i, j] = Σₚ A[i, p]·W[j, p], summed in Double.
@Suite("SmallGEMM against the definition")
struct SmallGEMMTests {
    static func values(_ n: Int, seed: UInt64) -> [Float] {
        var s = seed
        return (0..<n).map { _ in
            s = s &* 6364136223846793005 &+ 1442695040888963407
            return Float(Double(s >> 11) / Double(1 << 53) * 2 - 1)
        }
    }

    @Test(arguments: [(1, 4, 8), (1, 577, 576), (3, 9, 13), (4, 8, 16), (5, 131, 64), (16, 1536, 576), (17, 67, 896), (32, 260, 31)])
    func matchesDefinition(_ shape: (Int, Int, Int)) {
        let (m, n, k) = shape
        let a = Self.values(m * k, seed: 1), w = Self.values(n * k, seed: 2), c0 = Self.values(m * n, seed: 3)
        for threads in [1, 2] {
            for accumulate in [false, true] {
                var c = c0
                a.withUnsafeBufferPointer { ap in w.withUnsafeBufferPointer { wp in c.withUnsafeMutableBufferPointer { cp in
                    SmallGEMM.multiplyTransposed(m: m, n: n, k: k, a: ap.baseAddress!, lda: k, w: wp.baseAddress!, ldw: k,
                                                 c: cp.baseAddress!, ldc: n, accumulate: accumulate, threads: threads) } } }
                var worst = 0.0
                for i in 0..<m {
                    for j in 0..<n {
                        var want = (0..<k).reduce(0.0) { $0 + Double(a[i * k + $1]) * Double(w[j * k + $1]) }
                        if accumulate { want += Double(c0[i * n + j]) }
                        worst = max(worst, abs(Double(c[i * n + j]) - want))
                    }
                }
                // float32 sums of k products of values in [-1, 1]: error well below k · 2⁻²⁴ · (typical |sum|)
                #expect(worst < 1e-5 * Double(k).squareRoot() + 1e-6, "m \(m) n \(n) k \(k) threads \(threads) accumulate \(accumulate): \(worst)")
            }
        }
    }
}
