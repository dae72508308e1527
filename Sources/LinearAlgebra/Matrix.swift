import CBLAS
import AblabCore

/// Errors from the linear-algebra layer.
public enum LinearAlgebraError: AblabError, Equatable {
    case shapeMismatch(String)
    case lapackFailed(routine: String, info: Int32)
    public var description: String {
        switch self {
        case .shapeMismatch(let s): return "shape mismatch: \(s)"
        case .lapackFailed(let r, let info): return "LAPACK \(r) failed (info = \(info)); the matrix may contain NaN or Inf"
        }
    }
}

/// A dense row-major matrix of Float: element (i, j) is `data[i * cols + j]`.
public struct Matrix: Equatable, Sendable {
    public var rows: Int
    public var cols: Int
    public var data: [Float] // [rows, cols]

    public init(rows: Int, cols: Int, repeating v: Float = 0) {
        precondition(rows >= 0 && cols >= 0)
        self.rows = rows; self.cols = cols
        self.data = [Float](repeating: v, count: rows * cols)
    }

    public init(rows: Int, cols: Int, data: [Float]) {
        precondition(data.count == rows * cols, "Matrix: \(data.count) values for \(rows)x\(cols)")
        self.rows = rows; self.cols = cols; self.data = data
    }

    /// From nested rows (tests, small literals).
    public init(_ nested: [[Float]]) {
        rows = nested.count
        cols = nested.first?.count ?? 0
        data = nested.flatMap { $0 }
        precondition(data.count == rows * cols, "ragged rows")
    }

    public static func identity(_ n: Int) -> Matrix {
        var m = Matrix(rows: n, cols: n)
        for i in 0..<n { m.data[i * n + i] = 1 }
        return m
    }

    public subscript(i: Int, j: Int) -> Float {
        get { data[i * cols + j] }
        set { data[i * cols + j] = newValue }
    }

    public func row(_ i: Int) -> [Float] { Array(data[(i * cols)..<((i + 1) * cols)]) }

    public func column(_ j: Int) -> [Float] { (0..<rows).map { data[$0 * cols + j] } }

    /// Rows selected by index, in the given order.
    public func rows(_ indices: [Int]) -> Matrix {
        var out = Matrix(rows: indices.count, cols: cols)
        out.data.withUnsafeMutableBufferPointer { dst in
            data.withUnsafeBufferPointer { src in
                for (k, i) in indices.enumerated() {
                    (dst.baseAddress! + k * cols).update(from: src.baseAddress! + i * cols, count: cols)
                }
            }
        }
        return out
    }

    public var transposed: Matrix {
        var t = Matrix(rows: cols, cols: rows)
        for i in 0..<rows { for j in 0..<cols { t.data[j * rows + i] = data[i * cols + j] } }
        return t
    }

    /// Frobenius norm.
    public var frobeniusNorm: Float { Float(data.reduce(0.0) { $0 + Double($1) * Double($1) }.squareRoot()) }
}

extension Matrix: CustomStringConvertible {
    public var description: String {
        var s = "Matrix \(rows)x\(cols)\n"
        for i in 0..<min(rows, 8) {
            s += (0..<min(cols, 8)).map { String(format: "%9.4f", self[i, $0]) }.joined(separator: " ")
            s += cols > 8 ? " …\n" : "\n"
        }
        if rows > 8 { s += "…\n" }
        return s
    }
}
