// The AVX-512 build (LLVM CPU "skylake-avx512": F, CD, BW, DQ, VL): 32 zmm registers, tiles of four
// rows of x × four of W.
extension Impl {
    public static var name: String { "avx512" }
}
/// Rows of x per register tile of the panel path.
let tileX = 4

/// f16 → Float for block scales: one vcvtph2ps (F16C), exact like `halfToFloat`.
@inline(__always) func halfScale(_ h: UInt16) -> Float {
    #if arch(x86_64) && os(macOS)
    return halfToFloat(h)
    #else
    return Float(Float16(bitPattern: h))
    #endif
}
