// The AVX2 + FMA build (LLVM CPU "haswell"): 16 ymm registers, so tiles of one row of x × four of W.
extension Impl {
    public static var name: String { "avx2" }
}
/// Rows of x per register tile of the panel path.
let tileX = 1

/// Block scales through F16C's vcvtph2ps (`halfScale`, Lanes.swift).
let f16cScales = true

/// Whether dot products of attention scores are reduced sixteen at a time (`hsum16`: the same bits; it
/// needs the registers of AVX-512 to hold sixteen accumulators).
let jointReductions = false
