/// Q4_K (256 elements, 144 bytes): d: f16, dmin: f16, scales: u8[12] (eight 6-bit scale/min pairs),
/// qs: u8[128]. Group g (64 elements): the first 32 are the low nibbles of qs[32g ..< 32g + 32] with
/// sub-block 2g's scale and min, the next 32 the high nibbles with sub-block 2g + 1's;
/// x = (d · sc) · q − (dmin · m).
enum Q4_KFormat: BlockDecoder {
    static var elements: Int { 256 }
    static var bytes: Int { 144 }

    /// Sub-block j's (scale, min) from the 12 packed bytes.
    @inline(__always) static func scaleMin(_ s: UnsafePointer<UInt8>, _ j: Int) -> (Float, Float) {
        if j < 4 { return (Float(s[j] & 63), Float(s[j + 4] & 63)) }
        let sc = (s[j + 4] & 0x0F) | ((s[j - 4] >> 6) << 4)
        let mn = (s[j + 4] >> 4) | ((s[j] >> 6) << 4)
        return (Float(sc), Float(mn))
    }

    static var pieces: Int { 8 }

    /// Sub-block j (elements 32j ..< 32j + 32): the low (j even) or high nibbles of qs[32(j/2) ..< +32].
    /// (d · sc) · q is exact (11 + 6 + 4 significant bits), so subtracting dmin · m in a fused multiply-add
    /// rounds once, as the product and then the difference do.
    @inline(__always) static func decode(_ p: UnsafeRawPointer, piece j: Int, _ out: UnsafeMutablePointer<V16>, _ lanes: U16) {
        let (sc, mn) = scaleMin((p + 4).assumingMemoryBound(to: UInt8.self), j)
        let dj = V16(repeating: blockScale(p, 0) * sc), dmj = V16(repeating: -(blockScale(p, 2) * mn))
        let qa = widenU8(p + 16 + 32 * (j >> 1)), qb = widenU8(p + 16 + 32 * (j >> 1) + 16)
        out[0] = dmj.addingProduct(dj, floatOf(j & 1 == 0 ? qa & 0x0F : qa &>> 4))
        out[1] = dmj.addingProduct(dj, floatOf(j & 1 == 0 ? qb & 0x0F : qb &>> 4))
    }

    /// The whole block: its eight pieces in order (the panel path decodes whole blocks), written out so
    /// that each piece's selections and shifts are constants (as a loop it ran 40 % slower).
    @inline(__always) static func decode(_ p: UnsafeRawPointer, _ out: UnsafeMutablePointer<V16>, _ lanes: U16) {
        decode(p, piece: 0, out, lanes); decode(p, piece: 1, out + 2, lanes)
        decode(p, piece: 2, out + 4, lanes); decode(p, piece: 3, out + 6, lanes)
        decode(p, piece: 4, out + 8, lanes); decode(p, piece: 5, out + 10, lanes)
        decode(p, piece: 6, out + 12, lanes); decode(p, piece: 7, out + 14, lanes)
    }
}
