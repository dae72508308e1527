import KernelABI

/// This build's kernels (the same source is compiled once per CPU path; see Package.swift).
public enum Impl: KernelSet {
    public static func matmul(_ w: WeightMatrix, columns: Range<Int>, x: UnsafePointer<Float>, m: Int, ldx: Int,
                              out: UnsafeMutablePointer<Float>, ldo: Int, accumulate: Bool, panel: UnsafeMutablePointer<Float>) {
        guard m > 0, !columns.isEmpty else { return }
        switch w.format {
        case .f32: matmulTyped(F32Format.self, w, columns: columns, x: x, m: m, ldx: ldx, out: out, ldo: ldo, accumulate: accumulate, panel: panel)
        case .f16: matmulTyped(F16Format.self, w, columns: columns, x: x, m: m, ldx: ldx, out: out, ldo: ldo, accumulate: accumulate, panel: panel)
        case .bf16: matmulTyped(BF16Format.self, w, columns: columns, x: x, m: m, ldx: ldx, out: out, ldo: ldo, accumulate: accumulate, panel: panel)
        case .q8_0: matmulTyped(Q8_0Format.self, w, columns: columns, x: x, m: m, ldx: ldx, out: out, ldo: ldo, accumulate: accumulate, panel: panel)
        case .q4_0: matmulTyped(Q4_0Format.self, w, columns: columns, x: x, m: m, ldx: ldx, out: out, ldo: ldo, accumulate: accumulate, panel: panel)
        case .q4_1: matmulTyped(Q4_1Format.self, w, columns: columns, x: x, m: m, ldx: ldx, out: out, ldo: ldo, accumulate: accumulate, panel: panel)
        case .q5_0: matmulTyped(Q5_0Format.self, w, columns: columns, x: x, m: m, ldx: ldx, out: out, ldo: ldo, accumulate: accumulate, panel: panel)
        case .q5_1: matmulTyped(Q5_1Format.self, w, columns: columns, x: x, m: m, ldx: ldx, out: out, ldo: ldo, accumulate: accumulate, panel: panel)
        case .q4_K: matmulTyped(Q4_KFormat.self, w, columns: columns, x: x, m: m, ldx: ldx, out: out, ldo: ldo, accumulate: accumulate, panel: panel)
        case .q5_K: matmulTyped(Q5_KFormat.self, w, columns: columns, x: x, m: m, ldx: ldx, out: out, ldo: ldo, accumulate: accumulate, panel: panel)
        case .q6_K: matmulTyped(Q6_KFormat.self, w, columns: columns, x: x, m: m, ldx: ldx, out: out, ldo: ldo, accumulate: accumulate, panel: panel)
        }
    }

    public static func dequantize(_ w: WeightMatrix, rows: Range<Int>, into out: UnsafeMutablePointer<Float>) {
        switch w.format {
        case .f32: decodeRows(F32Format.self, w, rows: rows, into: out)
        case .f16: decodeRows(F16Format.self, w, rows: rows, into: out)
        case .bf16: decodeRows(BF16Format.self, w, rows: rows, into: out)
        case .q8_0: decodeRows(Q8_0Format.self, w, rows: rows, into: out)
        case .q4_0: decodeRows(Q4_0Format.self, w, rows: rows, into: out)
        case .q4_1: decodeRows(Q4_1Format.self, w, rows: rows, into: out)
        case .q5_0: decodeRows(Q5_0Format.self, w, rows: rows, into: out)
        case .q5_1: decodeRows(Q5_1Format.self, w, rows: rows, into: out)
        case .q4_K: decodeRows(Q4_KFormat.self, w, rows: rows, into: out)
        case .q5_K: decodeRows(Q5_KFormat.self, w, rows: rows, into: out)
        case .q6_K: decodeRows(Q6_KFormat.self, w, rows: rows, into: out)
        }
    }
}
