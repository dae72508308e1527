/// Q5_1 (32 elements, 24 bytes): d: f16, m: f16, qh: u32, qs: u8[16]; x = d · q + m (d · q exact, so one
/// rounding, fused or not).
enum Q5_1Format: BlockDecoder {
    static var elements: Int { 32 }
    static var bytes: Int { 24 }
    @inline(__always) static func decode(_ p: UnsafeRawPointer, _ out: UnsafeMutablePointer<V16>, _ lanes: U16) {
        let d = V16(repeating: blockScale(p, 0)), m = V16(repeating: blockScale(p, 2))
        let qh = UInt32(littleEndian: p.loadUnaligned(fromByteOffset: 4, as: UInt32.self))   // bit e: element e
        let q = widenU8(p + 8)
        out[0] = m.addingProduct(d, floatOf((q & 0x0F) | fifthBits(qh &<< 4, lanes)))
        out[1] = m.addingProduct(d, floatOf((q &>> 4) | fifthBits(qh &>> 12, lanes)))
    }
}
