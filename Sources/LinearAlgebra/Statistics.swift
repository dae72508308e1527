import AblabCore

extension Matrix {
    /// Column means (Double accumulation).
    public func columnMeans() -> [Float] {
        guard rows > 0 else { return [Float](repeating: 0, count: cols) }
        var acc = [Double](repeating: 0, count: cols)
        data.withUnsafeBufferPointer { p in
            for i in 0..<rows {
                let base = i * cols
                for j in 0..<cols { acc[j] += Double(p[base + j]) }
            }
        }
        return acc.map { Float($0 / Double(rows)) }
    }

    /// Subtracts the column means; returns the centred matrix and the means.
    public func meanCentred() -> (centred: Matrix, means: [Float]) {
        let mu = columnMeans()
        var c = self
        c.data.withUnsafeMutableBufferPointer { p in
            for i in 0..<rows {
                let base = i * cols
                for j in 0..<cols { p[base + j] -= mu[j] }
            }
        }
        return (c, mu)
    }

    /// Sample covariance of the columns (divides by rows − 1), [cols, cols].
    public func covariance() throws -> Matrix {
        let (c, _) = meanCentred()
        var cov = try matmul(c, c, transA: true)
        let denom = Float(max(rows - 1, 1))
        for i in 0..<cov.data.count { cov.data[i] /= denom }
        return cov
    }
}

/// Vector helpers on [Float].
public enum Vec {
    public static func dot(_ a: [Float], _ b: [Float]) -> Float {
        precondition(a.count == b.count)
        var s: Double = 0
        for i in 0..<a.count { s += Double(a[i]) * Double(b[i]) }
        return Float(s)
    }
    public static func norm(_ a: [Float]) -> Float { dot(a, a).squareRoot() }
    public static func normalized(_ a: [Float]) -> [Float] {
        let n = norm(a)
        return n > 0 ? a.map { $0 / n } : a
    }
    public static func cosine(_ a: [Float], _ b: [Float]) -> Float {
        let na = norm(a), nb = norm(b)
        guard na > 0, nb > 0 else { return 0 }
        return max(-1, min(1, dot(a, b) / (na * nb)))
    }
    public static func sub(_ a: [Float], _ b: [Float]) -> [Float] { zip(a, b).map { $0 - $1 } }
}
