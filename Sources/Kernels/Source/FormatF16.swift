/// F16 (IEEE half): 16 halves per vector, widened exactly.
enum F16Format: BlockDecoder {
    static var elements: Int { 16 }
    static var bytes: Int { 32 }
    @inline(__always) static func decode(_ p: UnsafeRawPointer, _ out: UnsafeMutablePointer<V16>, _ lanes: U16) { out[0] = halfToFloat16(widenU16(p)) }
    @inline(__always) static func element(_ row: UnsafeRawPointer, _ e: Int) -> Float { half(row, 2 * e) }
}
