/// Q5_K (256 elements, 176 bytes): d, dmin, scales[12] as Q4_K, qh: u8[32] (bit k of qh[l] is the fifth
/// bit of element 32k + l), qs: u8[128] as Q4_K; x = (d · sc) · q − (dmin · m).
enum Q5_KFormat: BlockDecoder {
    static var elements: Int { 256 }
    static var bytes: Int { 176 }

    @inline(__always) static func decode(_ p: UnsafeRawPointer, _ out: UnsafeMutablePointer<V16>) {
        let d = blockScale(p, 0), dmin = blockScale(p, 2)
        let s = (p + 4).assumingMemoryBound(to: UInt8.self)
        let ha = widenU8(p + 16), hb = widenU8(p + 32)   // qh[0..<16], qh[16..<32]
        for g in 0..<4 {
            let (sc0, m0) = Q4_KFormat.scaleMin(s, 2 * g), (sc1, m1) = Q4_KFormat.scaleMin(s, 2 * g + 1)
            let d0 = V16(repeating: d * sc0), dm0 = V16(repeating: dmin * m0)
            let d1 = V16(repeating: d * sc1), dm1 = V16(repeating: dmin * m1)
            let qa = widenU8(p + 48 + 32 * g), qb = widenU8(p + 48 + 32 * g + 16)
            let s0 = U16(repeating: UInt32(2 * g)), s1 = U16(repeating: UInt32(2 * g + 1))
            let o = out + 4 * g
            o[0] = d0 * floatOf((qa & 0x0F) | (((ha &>> s0) & 1) &<< 4)) - dm0
            o[1] = d0 * floatOf((qb & 0x0F) | (((hb &>> s0) & 1) &<< 4)) - dm0
            o[2] = d1 * floatOf((qa &>> 4) | (((ha &>> s1) & 1) &<< 4)) - dm1
            o[3] = d1 * floatOf((qb &>> 4) | (((hb &>> s1) & 1) &<< 4)) - dm1
        }
    }
}
