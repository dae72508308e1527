// The portable build: no CPU-specific flags (SIMD16 becomes whatever vectors the baseline target has;
// fused multiply-adds are correctly rounded library calls where the CPU lacks them, so the bits are
// those of the other builds).
extension Impl {
    public static var name: String { "portable" }
}
/// Rows of x per register tile of the panel path.
let tileX = 1

/// Block scales by the portable arithmetic (`halfScale`, Lanes.swift): the baseline x86-64 has no F16C.
let f16cScales = false

/// Whether dot products of attention scores are reduced sixteen at a time (`hsum16`: the same bits; it
/// needs the registers of AVX-512 to hold sixteen accumulators).
let jointReductions = false
