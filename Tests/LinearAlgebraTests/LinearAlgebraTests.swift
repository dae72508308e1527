import Foundation
import Testing
@testable import LinearAlgebra

/// Deterministic pseudo-random numbers for tests (SplitMix64).
struct TestRNG {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E3779B97F4A7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58476D1CE4E5B9
        z = (z ^ (z >> 27)) &* 0x94D049BB133111EB
        return z ^ (z >> 31)
    }
    mutating func uniform() -> Float { Float(next() >> 40) / Float(1 << 24) * 2 - 1 }
    mutating func matrix(_ r: Int, _ c: Int) -> Matrix { Matrix(rows: r, cols: c, data: (0..<(r * c)).map { _ in uniform() }) }
}

func naiveMatmul(_ a: Matrix, _ b: Matrix) -> Matrix {
    var c = Matrix(rows: a.rows, cols: b.cols)
    for i in 0..<a.rows { for j in 0..<b.cols {
        var s = 0.0
        for k in 0..<a.cols { s += Double(a[i, k]) * Double(b[k, j]) }
        c[i, j] = Float(s)
    } }
    return c
}

func maxAbsDiff(_ a: Matrix, _ b: Matrix) -> Float {
    zip(a.data, b.data).map { abs($0 - $1) }.max() ?? 0
}

@Suite("Linear algebra against mathematics")
struct LinearAlgebraTests {
    @Test("gemm equals a naive triple loop", arguments: [(1, 1, 1), (3, 5, 7), (17, 64, 33), (128, 96, 200)])
    func gemmMatchesNaive(shape: (Int, Int, Int)) throws {
        var rng = TestRNG(state: UInt64(shape.0 * 1000 + shape.1))
        let a = rng.matrix(shape.0, shape.1), b = rng.matrix(shape.1, shape.2)
        let c = try matmul(a, b)
        #expect(maxAbsDiff(c, naiveMatmul(a, b)) < 1e-4 * Float(shape.1))
    }

    @Test("gemm with transposes equals the explicit transpose")
    func gemmTransposes() throws {
        var rng = TestRNG(state: 7)
        let a = rng.matrix(9, 4), b = rng.matrix(6, 4)
        let c = try matmul(a, b, transB: true)           // [9, 6]
        #expect(maxAbsDiff(c, naiveMatmul(a, b.transposed)) < 1e-5)
        let d = try matmul(a, a, transA: true)           // [4, 4]
        #expect(maxAbsDiff(d, naiveMatmul(a.transposed, a)) < 1e-5)
    }

    @Test("shape mismatch is a typed error")
    func shapeMismatch() {
        #expect(throws: LinearAlgebraError.self) { try matmul(Matrix(rows: 2, cols: 3), Matrix(rows: 2, cols: 3)) }
    }

    @Test("eigenvalues of a known symmetric matrix")
    func knownEigenvalues() throws {
        // [[2,1],[1,2]] has eigenvalues 3 and 1 with eigenvectors (1,1)/√2 and (1,−1)/√2.
        let e = try symmetricEigen(Matrix([[2, 1], [1, 2]]))
        #expect(abs(e.values[0] - 3) < 1e-6 && abs(e.values[1] - 1) < 1e-6)
        let v0 = e.vectors.row(0)
        #expect(abs(abs(v0[0]) - 1 / Float(2).squareRoot()) < 1e-6 && abs(v0[0] - v0[1]) < 1e-6)
        // The tridiagonal matrix 2 on the diagonal, −1 off it (n = 6) has eigenvalues
        // 2 − 2 cos(kπ/(n+1)), k = 1…n.
        let n = 6
        var t = Matrix(rows: n, cols: n)
        for i in 0..<n { t[i, i] = 2; if i > 0 { t[i, i - 1] = -1; t[i - 1, i] = -1 } }
        let te = try symmetricEigen(t)
        let expected = (1...n).map { 2 - 2 * cos(Double($0) * .pi / Double(n + 1)) }.sorted(by: >)
        for (got, want) in zip(te.values, expected) { #expect(abs(Double(got) - want) < 1e-5) }
    }

    @Test("eigenvectors reconstruct the matrix: A = V diag(λ) Vᵀ")
    func eigenReconstruction() throws {
        var rng = TestRNG(state: 11)
        let x = rng.matrix(40, 12)
        let a = try matmul(x, x, transA: true)
        let e = try symmetricEigen(a)
        var vl = e.vectors // rows are vectors
        for i in 0..<vl.rows { for j in 0..<vl.cols { vl[i, j] *= e.values[i] } }
        let rec = try matmul(e.vectors, vl, transA: true)
        #expect(maxAbsDiff(rec, a) < 1e-3 * a.frobeniusNorm / 12)
        #expect(zip(e.values, e.values.dropFirst()).allSatisfy { $0 >= $1 })
    }

    @Test("SVD reconstructs A and has orthonormal factors", arguments: [(7, 3), (3, 7), (25, 25)])
    func svdReconstruction(shape: (Int, Int)) throws {
        var rng = TestRNG(state: UInt64(shape.0 * 31 + shape.1))
        let a = rng.matrix(shape.0, shape.1)
        let d = try svd(a)
        var us = d.u
        for i in 0..<us.rows { for j in 0..<us.cols { us[i, j] *= d.s[j] } }
        let rec = try matmul(us, d.vt)
        #expect(maxAbsDiff(rec, a) < 1e-5)
        let utu = try matmul(d.u, d.u, transA: true)
        #expect(maxAbsDiff(utu, .identity(min(shape.0, shape.1))) < 1e-5)
        #expect(zip(d.s, d.s.dropFirst()).allSatisfy { $0 >= $1 })
    }

    @Test("mean-centring and covariance match the definitions")
    func covarianceDefinition() throws {
        let x = Matrix([[1, 2], [3, 6], [5, 10]])
        let (c, mu) = x.meanCentred()
        #expect(mu == [3, 6])
        #expect(c.columnMeans().allSatisfy { abs($0) < 1e-6 })
        // var(x0) = (4+0+4)/2 = 4, var(x1) = 16, cov = 8.
        let cov = try x.covariance()
        #expect(cov == Matrix([[4, 8], [8, 16]]))
    }
}
