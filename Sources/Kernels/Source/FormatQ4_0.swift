/// Q4_0 (32 elements, 18 bytes): d: f16, qs: u8[16]; element j < 16 is the low nibble of qs[j], element
/// j + 16 its high nibble; x = d · (q − 8) (an exact product: 11 significant bits times 4).
enum Q4_0Format: BlockDecoder {
    static var elements: Int { 32 }
    static var bytes: Int { 18 }
    @inline(__always) static func decode(_ p: UnsafeRawPointer, _ out: UnsafeMutablePointer<V16>, _ lanes: U16) {
        let d = V16(repeating: blockScale(p, 0))
        let q = widenU8(p + 2)
        out[0] = d * floatOf(q & 0x0F, minus: 8)
        out[1] = d * floatOf(q &>> 4, minus: 8)
    }
}
