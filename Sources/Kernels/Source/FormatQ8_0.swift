/// Q8_0 (32 elements, 34 bytes): d: f16, qs: int8[32]; x = q · d.
enum Q8_0Format: BlockDecoder {
    static var elements: Int { 32 }
    static var bytes: Int { 34 }
    @inline(__always) static func decode(_ p: UnsafeRawPointer, _ out: UnsafeMutablePointer<V16>, _ lanes: U16) {
        let d = V16(repeating: blockScale(p, 0))
        out[0] = floatOf(widenI8(p + 2)) * d
        out[1] = floatOf(widenI8(p + 18)) * d
    }
}
