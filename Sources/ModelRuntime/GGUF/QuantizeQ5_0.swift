/// Q5_0 (ggml `quantize_row_q5_0_ref`): 32 values; m = the value of largest magnitude, d = m / −16,
/// q = min(31, trunc(x/d + 16.5)), value = d·(q − 16). Block: d (2 bytes), qh (4 bytes: bit j = the
/// fifth bit of value j), 16 bytes of low nibbles (values j low, j + 16 high).
enum Q5_0 {
    @inline(__always) static func block(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<UInt8>) {
        var amax: Float = 0, max: Float = 0
        for j in 0..<32 where amax < abs(x[j]) { amax = abs(x[j]); max = x[j] }
        let d = max / -16
        let id: Float = d != 0 ? 1 / d : 0
        storeU16(fp16(d), y)
        var qh: UInt32 = 0
        for j in 0..<16 {
            let a = q(x[j] * id + 16.5), b = q(x[j + 16] * id + 16.5)
            y[6 + j] = (a & 0x0F) | ((b & 0x0F) << 4)
            qh |= UInt32((a & 0x10) >> 4) << UInt32(j)
            qh |= UInt32((b & 0x10) >> 4) << UInt32(j + 16)
        }
        Q5_0.storeU32(qh, y + 2)
    }

    /// `MIN(31, (int8_t)v)` stored in a uint8_t.
    @inline(__always) static func q(_ v: Float) -> UInt8 {
        UInt8(truncatingIfNeeded: Swift.min(31, Int(Int8(truncatingIfNeeded: cTruncInt32(v)))))
    }

    @inline(__always) static func storeU32(_ v: UInt32, _ p: UnsafeMutablePointer<UInt8>) {
        for k in 0..<4 { p[k] = UInt8(truncatingIfNeeded: v >> UInt32(8 * k)) }
    }
}
