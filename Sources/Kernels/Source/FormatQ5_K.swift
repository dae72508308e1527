/// Q5_K (256 elements, 176 bytes): d, dmin, scales[12] as Q4_K, qh: u8[32] (bit k of qh[l] is the fifth
/// bit of element 32k + l), qs: u8[128] as Q4_K; x = (d · sc) · q − (dmin · m).
enum Q5_KFormat: BlockDecoder {
    static var elements: Int { 256 }
    static var bytes: Int { 176 }

    static var pieces: Int { 8 }

    /// Sub-block j (elements 32j ..< 32j + 32): nibbles as Q4_K, fifth bits = bit j of qh[0 ..< 32].
    @inline(__always) static func decode(_ p: UnsafeRawPointer, piece j: Int, _ out: UnsafeMutablePointer<V16>, _ lanes: U16) {
        let (sc, mn) = Q4_KFormat.scaleMin((p + 4).assumingMemoryBound(to: UInt8.self), j)
        let dj = V16(repeating: blockScale(p, 0) * sc), dmj = V16(repeating: -(blockScale(p, 2) * mn))
        let ha = widenU8(p + 16), hb = widenU8(p + 32)
        let qa = widenU8(p + 48 + 32 * (j >> 1)), qb = widenU8(p + 48 + 32 * (j >> 1) + 16)
        out[0] = dmj.addingProduct(dj, floatOf((j & 1 == 0 ? qa & 0x0F : qa &>> 4) | bitTo4(ha, j)))
        out[1] = dmj.addingProduct(dj, floatOf((j & 1 == 0 ? qb & 0x0F : qb &>> 4) | bitTo4(hb, j)))
    }

    @inline(__always) static func decode(_ p: UnsafeRawPointer, _ out: UnsafeMutablePointer<V16>, _ lanes: U16) {
        let d = blockScale(p, 0), dmin = blockScale(p, 2)
        let s = (p + 4).assumingMemoryBound(to: UInt8.self)
        let ha = widenU8(p + 16), hb = widenU8(p + 32)   // qh[0..<16], qh[16..<32]
        for g in 0..<4 {
            // (d · sc) · q exact (11 + 6 + 5 significant bits): one rounding, fused or not.
            let (sc0, m0) = Q4_KFormat.scaleMin(s, 2 * g), (sc1, m1) = Q4_KFormat.scaleMin(s, 2 * g + 1)
            let d0 = V16(repeating: d * sc0), dm0 = V16(repeating: -(dmin * m0))
            let d1 = V16(repeating: d * sc1), dm1 = V16(repeating: -(dmin * m1))
            let qa = widenU8(p + 48 + 32 * g), qb = widenU8(p + 48 + 32 * g + 16)
            let o = out + 4 * g
            o[0] = dm0.addingProduct(d0, floatOf((qa & 0x0F) | bitTo4(ha, 2 * g)))
            o[1] = dm0.addingProduct(d0, floatOf((qb & 0x0F) | bitTo4(hb, 2 * g)))
            o[2] = dm1.addingProduct(d1, floatOf((qa &>> 4) | bitTo4(ha, 2 * g + 1)))
            o[3] = dm1.addingProduct(d1, floatOf((qb &>> 4) | bitTo4(hb, 2 * g + 1)))
        }
    }
}
