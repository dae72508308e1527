/// BF16: the high 16 bits of a Float32.
enum BF16Format: BlockDecoder {
    static var elements: Int { 16 }
    static var bytes: Int { 32 }
    @inline(__always) static func decode(_ p: UnsafeRawPointer, _ out: UnsafeMutablePointer<V16>, _ lanes: U16) {
        out[0] = unsafeBitCast(widenU16(p) &<< 16, to: V16.self)
    }
    @inline(__always) static func element(_ row: UnsafeRawPointer, _ e: Int) -> Float {
        Float(bitPattern: UInt32(UInt16(littleEndian: row.loadUnaligned(fromByteOffset: 2 * e, as: UInt16.self))) << 16)
    }
}
