/// Q4_1 (32 elements, 20 bytes): d: f16, m: f16, qs: u8[16] as Q4_0; x = d · q + m. d · q is exact (11
/// significant bits times 4), so the fused multiply-add rounds once, as the product and then the sum do.
enum Q4_1Format: BlockDecoder {
    static var elements: Int { 32 }
    static var bytes: Int { 20 }
    @inline(__always) static func decode(_ p: UnsafeRawPointer, _ out: UnsafeMutablePointer<V16>, _ lanes: U16) {
        let d = V16(repeating: blockScale(p, 0)), m = V16(repeating: blockScale(p, 2))
        let q = widenU8(p + 4)
        out[0] = m.addingProduct(d, floatOf(q & 0x0F))
        out[1] = m.addingProduct(d, floatOf(q &>> 4))
    }
}
