/// Q6_K (256 elements, 210 bytes): ql: u8[128], qh: u8[64], scales: int8[16], d: f16. Half h (128
/// elements), element j < 128 of it: low 4 bits = nibble j/64 of ql[64h + j%64], high 2 bits = bits
/// 2(j/32) of qh[32h + j%32]; x = (d · scales[e/16]) · (q − 32).
enum Q6_KFormat: BlockDecoder {
    static var elements: Int { 256 }
    static var bytes: Int { 210 }

    static var pieces: Int { 8 }

    /// Piece j = 4h + k (elements 32j ..< 32j + 32) of half h. d · scales[i] is exact (11 significant bits
    /// times 7), and so is (d · sc) · (q − 32) (18 + 6 bits).
    @inline(__always) static func decode(_ p: UnsafeRawPointer, piece j: Int, _ out: UnsafeMutablePointer<V16>, _ lanes: U16) {
        let h = j >> 2, k = j & 3
        let d = blockScale(p, 208)
        let sc = (p + 192).assumingMemoryBound(to: Int8.self)
        let qh = p + 128 + 32 * h, lbase = p + 64 * h + 32 * (k & 1)
        let la = widenU8(lbase), lb = widenU8(lbase + 16)
        let qa = ((k < 2 ? la : la &>> 4) & 0x0F) | bitsTo4(widenU8(qh), 2 * k, mask: 0x30)
        let qb = ((k < 2 ? lb : lb &>> 4) & 0x0F) | bitsTo4(widenU8(qh + 16), 2 * k, mask: 0x30)
        out[0] = V16(repeating: d * Float(sc[2 * j])) * floatOf(qa, minus: 32)
        out[1] = V16(repeating: d * Float(sc[2 * j + 1])) * floatOf(qb, minus: 32)
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
