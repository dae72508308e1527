import KernelABI

// Vector helpers shared by every kernel file. This folder is compiled once per CPU path (see
// Package.swift): the same source, so every path computes the same bits.

typealias V16 = SIMD16<Float>
typealias I16 = SIMD16<Int32>
typealias U16 = SIMD16<UInt32>

@inline(__always) func load16(_ p: UnsafePointer<Float>) -> V16 { UnsafeRawPointer(p).loadUnaligned(as: V16.self) }
@inline(__always) func loadRaw16(_ p: UnsafeRawPointer) -> V16 { p.loadUnaligned(as: V16.self) }
@inline(__always) func store16(_ v: V16, _ p: UnsafeMutablePointer<Float>) { UnsafeMutableRawPointer(p).storeBytes(of: v, as: V16.self) }

/// 16 bytes as 16 unsigned 32-bit lanes (one vpmovzxbd where the CPU has it).
@inline(__always) func widenU8(_ p: UnsafeRawPointer) -> U16 {
    let b = p.assumingMemoryBound(to: UInt8.self)
    var v = U16()
    for i in 0..<16 { v[i] = UInt32(b[i]) }
    return v
}

/// 16 signed bytes as 16 signed 32-bit lanes.
@inline(__always) func widenI8(_ p: UnsafeRawPointer) -> I16 {
    let b = p.assumingMemoryBound(to: Int8.self)
    var v = I16()
    for i in 0..<16 { v[i] = Int32(b[i]) }
    return v
}

/// Exact Float of small non-negative integers (< 2²³): the bits of 2²³ + q, minus 2²³. Swift turns
/// SIMD integer-to-float conversions into calls; this is two vector instructions.
@inline(__always) func floatOf(_ q: U16) -> V16 {
    unsafeBitCast(q | 0x4B00_0000, to: V16.self) - V16(repeating: 8_388_608)
}

/// Exact Float of q − bias for small non-negative integers q (< 2²³) and an integer bias ≤ 2²³: the bits
/// of 2²³ + q minus (2²³ + bias), one subtraction of two floats of the same binade, so exact. The OR merges
/// with the masking that extracts q into one instruction where the CPU has a ternary logic op.
@inline(__always) func floatOf(_ q: U16, minus bias: Float) -> V16 {
    unsafeBitCast(q | 0x4B00_0000, to: V16.self) - V16(repeating: 8_388_608 + bias)
}

/// lane i = i, as a value the optimizer cannot see through. With the constant (`laneIndex()`), LLVM
/// splits variable shifts by it into pieces per lane range (inserts, permutes: several times the
/// instructions); from memory it stays one shift. Public and mutable so that no pass can assume its
/// value; never written. The kernels load it once per call and pass it to `BlockDecoder.decode`.
public nonisolated(unsafe) var opaqueLaneIndex = SIMD16<UInt32>(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15)

/// The fifth bits of Q5_0 / Q5_1 at bit 4 of each lane: lane i's bit sits at bit i + 4 of `word`
/// (the caller shifts the 32-bit qh into place), so one variable shift right by the lane index and one
/// mask, which merges with the caller's OR.
@inline(__always) func fifthBits(_ word: UInt32, _ lanes: U16) -> U16 {
    (U16(repeating: word) &>> lanes) & 0x10
}

/// The bits of every lane from bit s up, moved to start at bit 4 and kept by `mask` (0x10: one fifth bit,
/// Q5_K; 0x30: two high bits, Q6_K): one shift and one mask (s is a constant once the callers' loops are
/// unrolled).
@inline(__always) func bitsTo4(_ h: U16, _ s: Int, mask: UInt32) -> U16 {
    s <= 4 ? (h &<< UInt32(4 - s)) & mask : (h &>> UInt32(s - 4)) & mask
}

/// Exact Float of small signed integers (|q| < 2²²): the bits of 1.5·2²³ + q, minus 1.5·2²³.
@inline(__always) func floatOf(_ q: I16) -> V16 {
    unsafeBitCast(q &+ 0x4B40_0000, to: V16.self) - V16(repeating: 12_582_912)
}

/// IEEE half → Float for 16 lanes, exact for every input (zero, subnormal, normal, inf, NaN), branch-free:
/// the same arithmetic as the scalar `halfToFloat`.
@inline(__always) func halfToFloat16(_ h: U16) -> V16 {
    let magnitude = (h & 0x7FFF) &<< 13
    let scaled = unsafeBitCast(magnitude, to: V16.self) * V16(repeating: 0x1p112)
    let special = magnitude | 0x7F80_0000
    let isSpecial = magnitude .>= U16(repeating: 0x0F80_0000)
    let bits = unsafeBitCast(scaled, to: U16.self).replacing(with: special, where: isSpecial)
    return unsafeBitCast(bits | ((h & 0x8000) &<< 16), to: V16.self)
}

/// Scalar IEEE half → Float (same arithmetic).
@inline(__always) func halfToFloat(_ h: UInt16) -> Float {
    let magnitude = UInt32(h & 0x7FFF) << 13
    let scaled = Float(bitPattern: magnitude) * 0x1p112
    let v = magnitude >= 0x0F80_0000 ? Float(bitPattern: magnitude | 0x7F80_0000) : scaled
    return Float(bitPattern: v.bitPattern | (UInt32(h & 0x8000) << 16))
}

/// f16 → Float for block scales: one vcvtph2ps where the build has F16C (`f16cScales`, Variant.swift),
/// the portable arithmetic otherwise; exact either way.
@inline(__always) func halfScale(_ h: UInt16) -> Float {
    #if arch(x86_64) && os(macOS)
    return halfToFloat(h)
    #else
    return f16cScales ? Float(Float16(bitPattern: h)) : halfToFloat(h)
    #endif
}

@inline(__always) func half(_ p: UnsafeRawPointer, _ o: Int) -> Float {
    halfToFloat(UInt16(littleEndian: p.loadUnaligned(fromByteOffset: o, as: UInt16.self)))
}

/// A block's f16 scale or minimum at byte offset o. Every use multiplies or adds it, so a signalling NaN
/// is quieted either way and the products carry the same bits whichever conversion `halfScale` uses
/// (Variant.swift: F16C's vcvtph2ps where the build has it, `halfToFloat` otherwise; both exact).
@inline(__always) func blockScale(_ p: UnsafeRawPointer, _ o: Int) -> Float {
    halfScale(UInt16(littleEndian: p.loadUnaligned(fromByteOffset: o, as: UInt16.self)))
}

/// 16 consecutive little-endian UInt16 as lanes.
@inline(__always) func widenU16(_ p: UnsafeRawPointer) -> U16 {
    let b = p.assumingMemoryBound(to: UInt16.self)
    var v = U16()
    for i in 0..<16 { v[i] = UInt32(UInt16(littleEndian: b[i])) }
    return v
}

/// lane i = i, for per-lane bit positions.
@inline(__always) func laneIndex() -> U16 { U16(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15) }

/// A stored format, decoded one block at a time into 16-lane vectors.
protocol BlockDecoder {
    /// Elements of one block (16 for the float types, whose "block" is one vector).
    static var elements: Int { get }
    /// Bytes of one block.
    static var bytes: Int { get }
    /// The block at `p` as elements/16 vectors.
    static func decode(_ p: UnsafeRawPointer, _ out: UnsafeMutablePointer<V16>, _ lanes: U16)
    /// Element e of a row (float types only: the tail past the last whole vector).
    static func element(_ row: UnsafeRawPointer, _ e: Int) -> Float
    /// Pieces of a block for the few-rows path: the K-quants decode one 32-element sub-block at a time,
    /// so that four rows' pieces stay in registers (a whole 256-element block of four rows is 64
    /// vectors: through the stack). Elements stay in order, so the sums are those of whole blocks.
    static var pieces: Int { get }
    /// Piece `piece` of the block at `p` as elements/16/pieces vectors.
    static func decode(_ p: UnsafeRawPointer, piece: Int, _ out: UnsafeMutablePointer<V16>, _ lanes: U16)
}

extension BlockDecoder {
    static var pieces: Int { 1 }
    @inline(__always) static func decode(_ p: UnsafeRawPointer, piece: Int, _ out: UnsafeMutablePointer<V16>, _ lanes: U16) {
        decode(p, out, lanes)
    }
    static func element(_ row: UnsafeRawPointer, _ e: Int) -> Float { preconditionFailure("block formats have no tail") }
}

/// The sixteen lanes reduced in the canonical order (KernelABI): halves added lane by lane (lane i +
/// lane i + 8), then again (i + i + 4), again (i + i + 2), then the last two. Four shuffles and four
/// additions instead of fifteen dependent additions and their lane extractions (for k = 576, a third
/// of the time of a 4 × 4 tile went to summing left to right); every build runs the same additions.
@inline(__always) func hsum(_ v: V16) -> Float {
    let s8 = v.lowHalf + v.highHalf
    let s4 = s8.lowHalf + s8.highHalf
    let s2 = s4.lowHalf + s4.highHalf
    return s2[0] + s2[1]
}

/// Four accumulators reduced at once, lane c of the result being `hsum` of the c-th: the same additions
/// of the same operands in the same order, with their lanes laid side by side so that one vector
/// addition does each step for all four (three shuffles an accumulator instead of four and a
/// scalar extraction; one vector store of four outputs).
@inline(__always) func hsum4(_ a: V16, _ b: V16, _ c: V16, _ d: V16) -> SIMD4<Float> {
    let s4 = quarters(halves(a, b), halves(c, d))   // chunk q: s4 of the q-th accumulator
    // As pairs (64-bit lanes): the even pairs are (s4[0], s4[1]) of each accumulator, the odd (s4[2], s4[3]).
    let pairs = unsafeBitCast(s4, to: SIMD8<Double>.self)
    let s2 = unsafeBitCast(pairs.evenHalf, to: SIMD8<Float>.self) + unsafeBitCast(pairs.oddHalf, to: SIMD8<Float>.self)
    return s2.evenHalf + s2.oddHalf
}

/// Four outputs of one row: p[c] (+)= hsum4(…)[c] + tail[c], the additions `finish` makes one by one
/// (the tail is added even when it is zero, as there: −0 + 0 is +0).
@inline(__always) func finish4(_ a: V16, _ b: V16, _ c: V16, _ d: V16, tail: SIMD4<Float>, into p: UnsafeMutablePointer<Float>, accumulate: Bool) {
    store4(hsum4(a, b, c, d) + tail, into: p, accumulate: accumulate)
}

/// p[0 ..< 4] = r, or p[c] += r[c] with `accumulate` (one vector load, addition and store).
@inline(__always) func store4(_ r: SIMD4<Float>, into p: UnsafeMutablePointer<Float>, accumulate: Bool) {
    let raw = UnsafeMutableRawPointer(p)
    raw.storeBytes(of: accumulate ? raw.loadUnaligned(as: SIMD4<Float>.self) + r : r, as: SIMD4<Float>.self)
}

/// Lane i of the result: a[i] + a[i + 8] for i < 8, b[i − 8] + b[i] for i ≥ 8 (the first step of `hsum` for two
/// accumulators side by side).
@inline(__always) func halves(_ a: V16, _ b: V16) -> V16 {
    V16(lowHalf: a.lowHalf, highHalf: b.lowHalf) + V16(lowHalf: a.highHalf, highHalf: b.highHalf)
}

/// From two `halves` results (four accumulators): chunk c (lanes 4c…4c + 3) holds the second step of the
/// c-th accumulator (s8[i] + s8[i + 4]).
@inline(__always) func quarters(_ ab: V16, _ cd: V16) -> V16 {
    V16(lowHalf: SIMD8(lowHalf: ab.lowHalf.lowHalf, highHalf: ab.highHalf.lowHalf),
        highHalf: SIMD8(lowHalf: cd.lowHalf.lowHalf, highHalf: cd.highHalf.lowHalf))
        + V16(lowHalf: SIMD8(lowHalf: ab.lowHalf.highHalf, highHalf: ab.highHalf.highHalf),
              highHalf: SIMD8(lowHalf: cd.lowHalf.highHalf, highHalf: cd.highHalf.highHalf))
}

/// From two `quarters` results (eight accumulators): lanes 2t, 2t + 1 hold the third step of the t-th
/// (s4[0] + s4[2], s4[1] + s4[3]), by pairs of lanes taken as 64-bit elements.
@inline(__always) func eighths(_ p: V16, _ q: V16) -> V16 {
    let a = unsafeBitCast(p, to: SIMD8<Double>.self), b = unsafeBitCast(q, to: SIMD8<Double>.self)
    return unsafeBitCast(SIMD8<Double>(lowHalf: a.evenHalf, highHalf: b.evenHalf), to: V16.self)
        + unsafeBitCast(SIMD8<Double>(lowHalf: a.oddHalf, highHalf: b.oddHalf), to: V16.self)
}

/// Eight accumulators reduced at once: lane t of the result is `hsum` of the t-th, by the same additions.
@inline(__always) func hsum8(_ a0: V16, _ a1: V16, _ a2: V16, _ a3: V16, _ a4: V16, _ a5: V16, _ a6: V16, _ a7: V16) -> SIMD8<Float> {
    let e = eighths(quarters(halves(a0, a1), halves(a2, a3)), quarters(halves(a4, a5), halves(a6, a7)))
    return e.evenHalf + e.oddHalf
}

/// Sixteen accumulators reduced at once: lane t of the result is `hsum` of the t-th, by the same
/// additions of the same operands (about 45 vector instructions instead of 16 × 8).
@inline(__always) func hsum16(_ a0: V16, _ a1: V16, _ a2: V16, _ a3: V16, _ a4: V16, _ a5: V16, _ a6: V16, _ a7: V16,
                              _ a8: V16, _ a9: V16, _ a10: V16, _ a11: V16, _ a12: V16, _ a13: V16, _ a14: V16, _ a15: V16) -> V16 {
    let e0 = eighths(quarters(halves(a0, a1), halves(a2, a3)), quarters(halves(a4, a5), halves(a6, a7)))
    let e1 = eighths(quarters(halves(a8, a9), halves(a10, a11)), quarters(halves(a12, a13), halves(a14, a15)))
    return V16(lowHalf: e0.evenHalf, highHalf: e1.evenHalf) + V16(lowHalf: e0.oddHalf, highHalf: e1.oddHalf)
}
