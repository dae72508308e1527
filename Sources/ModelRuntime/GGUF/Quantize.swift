import Foundation

/// Float32 → ggml blocks, following llama.cpp's reference quantizers (`quantize_row_*_ref` in
/// ggml-quants.c, which `llama-quantize` uses when no importance matrix is given): the same
/// arithmetic in the same order in Float32, so the bytes equal llama.cpp's. One file per format
/// (Quantize<Format>.swift); the layouts are the ggml block definitions also read by `GGMLDequantizer`.
///
/// Rows are `cols` consecutive values (`cols` = GGUF `dims[0]`); every row is a whole number of blocks,
/// so a tensor is its rows' blocks one after another. Work is split across cores by whole blocks; the
/// bytes do not depend on the number of threads.
public enum GGMLQuantizer {
    /// The types this quantizer writes.
    public static let supported: [GGMLType] = [.f32, .f16, .bf16, .q8_0, .q4_0, .q4_1, .q5_0, .q5_1, .q4_K, .q5_K, .q6_K]

    public static func canQuantize(_ type: GGMLType) -> Bool { supported.contains(type) }

    /// Errors name the tensor (`tensor`) when the caller gives one.
    public enum Failure: Error, CustomStringConvertible, Equatable {
        case unsupportedType(GGMLType, tensor: String)
        case shape(rows: Int, cols: Int, values: Int, type: GGMLType, tensor: String)
        case nonFinite(index: Int, tensor: String)

        public var description: String {
            switch self {
            case let .unsupportedType(t, n):
                return "\(n): cannot quantize to \(t); ablab writes \(GGMLQuantizer.supported.map(\.name).joined(separator: ", "))"
            case let .shape(r, c, v, t, n):
                return "\(n): \(v) values for \(r) rows × \(c) columns, or \(c) columns not a multiple of the \(t) block size \(t.blockSize)"
            case let .nonFinite(i, n):
                return "\(n): value \(i) is NaN or infinite; a quantized block cannot hold it"
            }
        }
    }

    /// `rows × cols` values (row-major) encoded as `type`. Throws for an unsupported type, a shape that
    /// does not fit (`cols` must be a multiple of the block size) and NaN / infinite values in block formats.
    public static func quantize(_ type: GGMLType, rows: Int, cols: Int, values: UnsafeBufferPointer<Float>,
                                tensor: String = "(tensor)") throws -> [UInt8] {
        guard canQuantize(type) else { throw Failure.unsupportedType(type, tensor: tensor) }
        guard rows >= 0, cols >= 0, values.count == rows * cols, cols % type.blockSize == 0,
              let bytes = type.byteCount(elements: rows * cols) else {
            throw Failure.shape(rows: rows, cols: cols, values: values.count, type: type, tensor: tensor)
        }
        let n = values.count
        if type.blockSize > 1, let base = values.baseAddress {
            for i in 0..<n where !base[i].isFinite { throw Failure.nonFinite(index: i, tensor: tensor) }
        }
        guard n > 0 else { return [] }
        let src = values.baseAddress!
        let blocks = n / type.blockSize
        return [UInt8](unsafeUninitializedCapacity: bytes) { out, count in
            let dst = out.baseAddress!
            let cores = ProcessInfo.processInfo.activeProcessorCount
            let chunks = cores < 2 || blocks < 64 ? 1 : min(blocks, cores * 8)
            let per = (blocks + chunks - 1) / chunks
            let p = Pointers(src: src, dst: dst)
            DispatchQueue.concurrentPerform(iterations: chunks) { c in
                let b0 = c * per, b1 = min(blocks, b0 + per)
                guard b0 < b1 else { return }
                encode(type, p.src + b0 * type.blockSize, p.dst + b0 * type.blockBytes, blocks: b1 - b0)
            }
            count = bytes
        }
    }

    /// `quantize` of an array.
    public static func quantize(_ type: GGMLType, rows: Int, cols: Int, values: [Float], tensor: String = "(tensor)") throws -> [UInt8] {
        try values.withUnsafeBufferPointer { try quantize(type, rows: rows, cols: cols, values: $0, tensor: tensor) }
    }

    private struct Pointers: @unchecked Sendable {
        let src: UnsafePointer<Float>
        let dst: UnsafeMutablePointer<UInt8>
    }

    /// `blocks` whole blocks of `type` from `x` into `y`.
    static func encode(_ type: GGMLType, _ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<UInt8>, blocks: Int) {
        let bs = type.blockSize, bb = type.blockBytes
        switch type {
        case .f32: FloatFormats.f32(x, y, count: blocks)
        case .f16: FloatFormats.f16(x, y, count: blocks)
        case .bf16: FloatFormats.bf16(x, y, count: blocks)
        default:
            var scratch = KQuantScratch()
            for b in 0..<blocks {
                let xb = x + b * bs, yb = y + b * bb
                switch type {
                case .q8_0: Q8_0.block(xb, yb)
                case .q4_0: Q4_0.block(xb, yb)
                case .q4_1: Q4_1.block(xb, yb)
                case .q5_0: Q5_0.block(xb, yb)
                case .q5_1: Q5_1.block(xb, yb)
                case .q4_K: Q4_K.block(xb, yb, &scratch)
                case .q5_K: Q5_K.block(xb, yb, &scratch)
                case .q6_K: Q6_K.block(xb, yb, &scratch)
                default: preconditionFailure("unsupported \(type)")
                }
            }
        }
    }
}

// MARK: - shared arithmetic (ggml-quants.c helpers)

/// ggml's `nearest_int`: adds 1.5·2²³ so the float's low mantissa bits hold the rounded integer
/// (round half to even for |x| < 2²²; beyond that the same bit pattern as ggml's, never a trap).
@inline(__always) func ggmlNearestInt(_ f: Float) -> Int32 {
    let v = f + 12582912
    return Int32(bitPattern: v.bitPattern & 0x007F_FFFF) - 0x0040_0000
}

/// IEEE half of `f`, rounded to nearest even (ggml's GGML_FP32_TO_FP16 for finite values).
@inline(__always) func fp16(_ f: Float) -> UInt16 { GGUFWriter.floatToHalf(f) }
@inline(__always) func fp32(_ h: UInt16) -> Float { GGMLDequantizer.halfToFloat(h) }

@inline(__always) func storeU16(_ v: UInt16, _ p: UnsafeMutablePointer<UInt8>) {
    p[0] = UInt8(truncatingIfNeeded: v); p[1] = UInt8(truncatingIfNeeded: v >> 8)
}

/// C's float → integer conversion as the x86 compilers emit it (truncation toward zero; out of range
/// gives Int32.min), used where ggml casts `(int8_t)(x + 8.5f)` and the like. Inputs are finite here.
@inline(__always) func cTruncInt32(_ f: Float) -> Int32 {
    f > -2147483648 && f < 2147483648 ? Int32(f) : Int32.min
}
