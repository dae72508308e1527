/// Q5_0 (32 elements, 22 bytes): d: f16, qh: u32 (bit e = fifth bit of element e), qs: u8[16] as Q4_0;
/// x = d · (q − 16).
enum Q5_0Format: BlockDecoder {
    static var elements: Int { 32 }
    static var bytes: Int { 22 }
    @inline(__always) static func decode(_ p: UnsafeRawPointer, _ out: UnsafeMutablePointer<V16>) {
        let d = V16(repeating: blockScale(p, 0))
        let qh = U16(repeating: UInt32(littleEndian: p.loadUnaligned(fromByteOffset: 2, as: UInt32.self)))
        let q = widenU8(p + 6)
        let lane = laneIndex()
        let lo = (q & 0x0F) | (((qh &>> lane) & 1) &<< 4)
        let hi = (q &>> 4) | (((qh &>> (lane &+ 16)) & 1) &<< 4)
        out[0] = d * floatOf(unsafeBitCast(lo, to: I16.self) &- 16)
        out[1] = d * floatOf(unsafeBitCast(hi, to: I16.self) &- 16)
    }
}
