// The AVX-512 build (LLVM CPU "skylake-avx512": F, CD, BW, DQ, VL): 32 zmm registers, tiles of four
// rows of x × four of W.
extension Impl {
    public static var name: String { "avx512" }
}
/// Rows of x per register tile of the panel path.
let tileX = 6

/// Block scales through F16C's vcvtph2ps (`halfScale`, Lanes.swift).
let f16cScales = true

/// Whether dot products of attention scores are reduced sixteen at a time (`hsum16`: the same bits; it
/// needs the registers of AVX-512 to hold sixteen accumulators).
let jointReductions = true
