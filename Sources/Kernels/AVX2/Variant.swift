// The AVX2 + FMA build (LLVM CPU "haswell"): 16 ymm registers, so tiles of one row of x × four of W.
extension Impl {
    public static var name: String { "avx2" }
}
/// Rows of x per register tile of the panel path.
let tileX = 1

/// f16 → Float for block scales: one vcvtph2ps (F16C), exact like `halfToFloat`.
@inline(__always) func halfScale(_ h: UInt16) -> Float {
    #if arch(x86_64) && os(macOS)
    return halfToFloat(h)
    #else
    return Float(Float16(bitPattern: h))
    #endif
}
