import Foundation
import KernelABI

/// Conversion of ggml blocks to Float32, by the forward pass's own kernels (one decoder per format in
/// Sources/Kernels/Source/Format*.swift), so a dequantized tensor holds exactly the values every product
/// uses. Layouts follow the ggml block definitions: every quantized block stores `blockSize` consecutive
/// elements of a row in `blockBytes` bytes, all numbers little-endian, scales as IEEE half precision.
public enum GGMLDequantizer {
    /// Dequantizes `elements` elements (a whole number of blocks) of `type` starting at `src` into `dst`.
    /// Throws nothing: callers check `type.canDequantize` and block alignment first (see `GGUFFile`).
    /// Large inputs are split across the available cores.
    public static func dequantize(_ type: GGMLType, from src: UnsafeRawPointer, elements: Int,
                                  into dst: UnsafeMutablePointer<Float>, kernels: any KernelSet.Type = CPUKernels.active) {
        precondition(type.canDequantize && elements % type.blockSize == 0)
        let blocks = elements / type.blockSize
        let minParallel = 1 << 20
        let cores = ProcessInfo.processInfo.activeProcessorCount
        if elements < minParallel || cores < 2 {
            decode(type, src, blocks, dst, kernels: kernels)
            return
        }
        let chunks = min(cores * 4, max(1, elements / (minParallel / 4)))
        let per = (blocks + chunks - 1) / chunks
        let s = SendablePointers(src: src, dst: dst)
        let k = UncheckedBox(value: kernels)
        DispatchQueue.concurrentPerform(iterations: chunks) { c in
            let b0 = c * per, b1 = min(blocks, b0 + per)
            guard b0 < b1 else { return }
            decode(type, s.src + b0 * type.blockBytes, b1 - b0, s.dst + b0 * type.blockSize, kernels: k.value)
        }
    }

    private struct SendablePointers: @unchecked Sendable {
        let src: UnsafeRawPointer
        let dst: UnsafeMutablePointer<Float>
    }

    /// Single-threaded decode of `blocks` whole blocks.
    static func decode(_ type: GGMLType, _ src: UnsafeRawPointer, _ blocks: Int, _ dst: UnsafeMutablePointer<Float>,
                       kernels: any KernelSet.Type = CPUKernels.active) {
        guard blocks > 0, let format = type.weightFormat else { preconditionFailure("unsupported type \(type)") }
        let w = WeightMatrix(format: format, rows: 1, cols: blocks * type.blockSize, base: src)
        kernels.dequantize(w, rows: 0..<1, into: dst)
    }

    // MARK: - scalars

    /// IEEE half → Float, exact for all inputs (zero, subnormal, normal, inf, NaN), branch-free.
    @inline(__always) public static func halfToFloat(_ h: UInt16) -> Float {
        let magnitude = UInt32(h & 0x7FFF) << 13                   // exponent+mantissa in float position
        let scaled = Float(bitPattern: magnitude) * 0x1p112        // rebias exponent 15 → 127 (exact)
        let special = Float(bitPattern: magnitude | 0x7F80_0000)   // inf / NaN keep their payload
        let v = magnitude >= 0x0F80_0000 ? special : scaled
        return Float(bitPattern: v.bitPattern | (UInt32(h & 0x8000) << 16))
    }
}
