/// Q4_0 (ggml `quantize_row_q4_0_ref`): 32 values; m = the value of largest magnitude (first one on a
/// tie), d = m / −8 (half), q = min(15, trunc(x/d + 8.5)) in 0…15, value = d·(q − 8). Block: d (2 bytes),
/// 16 bytes holding values j (low nibble) and j + 16 (high nibble).
enum Q4_0 {
    @inline(__always) static func block(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<UInt8>) {
        var amax: Float = 0, max: Float = 0
        for j in 0..<32 where amax < abs(x[j]) { amax = abs(x[j]); max = x[j] }
        let d = max / -8
        let id: Float = d != 0 ? 1 / d : 0
        storeU16(fp16(d), y)
        for j in 0..<16 {
            let a = q(x[j] * id + 8.5), b = q(x[j + 16] * id + 8.5)
            y[2 + j] = a | (b << 4)
        }
    }

    /// `MIN(15, (int8_t)v)` stored in a uint8_t.
    @inline(__always) static func q(_ v: Float) -> UInt8 {
        UInt8(truncatingIfNeeded: Swift.min(15, Int(Int8(truncatingIfNeeded: cTruncInt32(v)))))
    }
}
