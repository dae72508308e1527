/// Q5_0 (32 elements, 22 bytes): d: f16, qh: u32 (bit e = fifth bit of element e), qs: u8[16] as Q4_0;
/// x = d · (q − 16) (an exact product).
enum Q5_0Format: BlockDecoder {
    static var elements: Int { 32 }
    static var bytes: Int { 22 }
    @inline(__always) static func decode(_ p: UnsafeRawPointer, _ out: UnsafeMutablePointer<V16>, _ lanes: U16) {
        let d = V16(repeating: blockScale(p, 0))
        let qh = UInt32(littleEndian: p.loadUnaligned(fromByteOffset: 2, as: UInt32.self))   // bit e: element e
        let q = widenU8(p + 6)
        out[0] = d * floatOf((q & 0x0F) | fifthBits(qh &<< 4, lanes), minus: 16)
        out[1] = d * floatOf((q &>> 4) | fifthBits(qh &>> 12, lanes), minus: 16)
    }
}
