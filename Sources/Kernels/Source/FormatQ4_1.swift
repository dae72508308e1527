/// Q4_1 (32 elements, 20 bytes): d: f16, m: f16, qs: u8[16] as Q4_0; x = d · q + m (product, then sum).
enum Q4_1Format: BlockDecoder {
    static var elements: Int { 32 }
    static var bytes: Int { 20 }
    @inline(__always) static func decode(_ p: UnsafeRawPointer, _ out: UnsafeMutablePointer<V16>) {
        let d = V16(repeating: blockScale(p, 0)), m = V16(repeating: blockScale(p, 2))
        let q = widenU8(p + 4)
        out[0] = d * floatOf(q & 0x0F) + m
        out[1] = d * floatOf(q &>> 4) + m
    }
}
