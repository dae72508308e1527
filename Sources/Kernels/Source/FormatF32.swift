/// F32: 16 floats per vector, loaded as stored.
enum F32Format: BlockDecoder {
    static var elements: Int { 16 }
    static var bytes: Int { 64 }
    @inline(__always) static func decode(_ p: UnsafeRawPointer, _ out: UnsafeMutablePointer<V16>, _ lanes: U16) { out[0] = loadRaw16(p) }
    @inline(__always) static func element(_ row: UnsafeRawPointer, _ e: Int) -> Float {
        row.loadUnaligned(fromByteOffset: 4 * e, as: Float.self)
    }
}
