/// Q5_1 (32 elements, 24 bytes): d: f16, m: f16, qh: u32, qs: u8[16]; x = d · q + m.
enum Q5_1Format: BlockDecoder {
    static var elements: Int { 32 }
    static var bytes: Int { 24 }
    @inline(__always) static func decode(_ p: UnsafeRawPointer, _ out: UnsafeMutablePointer<V16>) {
        let d = V16(repeating: blockScale(p, 0)), m = V16(repeating: blockScale(p, 2))
        let qh = U16(repeating: UInt32(littleEndian: p.loadUnaligned(fromByteOffset: 4, as: UInt32.self)))
        let q = widenU8(p + 8)
        let lane = laneIndex()
        let lo = (q & 0x0F) | (((qh &>> lane) & 1) &<< 4)
        let hi = (q &>> 4) | (((qh &>> (lane &+ 16)) & 1) &<< 4)
        out[0] = d * floatOf(lo) + m
        out[1] = d * floatOf(hi) + m
    }
}
