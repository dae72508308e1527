/// Q6_K (256 elements, 210 bytes): ql: u8[128], qh: u8[64], scales: int8[16], d: f16. Half h (128
/// elements), element j < 128 of it: low 4 bits = nibble j/64 of ql[64h + j%64], high 2 bits = bits
/// 2(j/32) of qh[32h + j%32]; x = (d · scales[e/16]) · (q − 32).
enum Q6_KFormat: BlockDecoder {
    static var elements: Int { 256 }
    static var bytes: Int { 210 }

    @inline(__always) static func decode(_ p: UnsafeRawPointer, _ out: UnsafeMutablePointer<V16>) {
        let d = blockScale(p, 208)
        let sc = (p + 192).assumingMemoryBound(to: Int8.self)
        for h in 0..<2 {
            let ql = p + 64 * h, qh = p + 128 + 32 * h
            let ha = widenU8(qh), hb = widenU8(qh + 16)
            for k in 0..<4 {
                let lsh = U16(repeating: UInt32(4 * (k >> 1))), hsh = U16(repeating: UInt32(2 * k))
                let lbase = ql + 32 * (k & 1)
                let la = widenU8(lbase), lb = widenU8(lbase + 16)
                let qa = ((la &>> lsh) & 0x0F) | (((ha &>> hsh) & 3) &<< 4)
                let qb = ((lb &>> lsh) & 0x0F) | (((hb &>> hsh) & 3) &<< 4)
                let ds0 = V16(repeating: d * Float(sc[8 * h + 2 * k])), ds1 = V16(repeating: d * Float(sc[8 * h + 2 * k + 1]))
                let o = out + 8 * h + 2 * k
                o[0] = ds0 * floatOf(unsafeBitCast(qa, to: I16.self) &- 32)
                o[1] = ds1 * floatOf(unsafeBitCast(qb, to: I16.self) &- 32)
            }
        }
    }
}
