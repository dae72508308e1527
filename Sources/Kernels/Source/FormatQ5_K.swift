/// Q5_K (256 elements, 176 bytes): d, dmin, scales[12] as Q4_K, qh: u8[32] (bit k of qh[l] is the fifth
/// bit of element 32k + l), qs: u8[128] as Q4_K; x = (d · sc) · q − (dmin · m).
enum Q5_KFormat: BlockDecoder {
    static var elements: Int { 256 }
    static var bytes: Int { 176 }

    static var pieces: Int { 8 }

    /// Sub-block j (elements 32j ..< 32j + 32): nibbles as Q4_K, fifth bits = bit j of qh[0 ..< 32].
    /// (d · sc) · q is exact (11 + 6 + 5 significant bits): one rounding, fused or not.
    @inline(__always) static func decode(_ p: UnsafeRawPointer, piece j: Int, _ out: UnsafeMutablePointer<V16>, _ lanes: U16) {
        let (sc, mn) = Q4_KFormat.scaleMin((p + 4).assumingMemoryBound(to: UInt8.self), j)
        let dj = V16(repeating: blockScale(p, 0) * sc), dmj = V16(repeating: -(blockScale(p, 2) * mn))
        let ha = widenU8(p + 16), hb = widenU8(p + 32)
        let qa = widenU8(p + 48 + 32 * (j >> 1)), qb = widenU8(p + 48 + 32 * (j >> 1) + 16)
        out[0] = dmj.addingProduct(dj, floatOf((j & 1 == 0 ? qa & 0x0F : qa &>> 4) | bitsTo4(ha, j, mask: 0x10)))
        out[1] = dmj.addingProduct(dj, floatOf((j & 1 == 0 ? qb & 0x0F : qb &>> 4) | bitsTo4(hb, j, mask: 0x10)))
    }

    /// The whole block: its eight pieces in order (the panel path decodes whole blocks).
    @inline(__always) static func decode(_ p: UnsafeRawPointer, _ out: UnsafeMutablePointer<V16>, _ lanes: U16) {
        for j in 0..<8 { decode(p, piece: j, out + 2 * j, lanes) }
    }
}
