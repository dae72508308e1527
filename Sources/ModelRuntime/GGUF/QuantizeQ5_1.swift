/// Q5_1 (ggml `quantize_row_q5_1_ref`): 32 values, d = (max − min) / 31, m = min, q = trunc((x − min)/d
/// + 0.5) (no clamp, as in ggml), value = d·q + m. Block: d, m (2 bytes each), qh (4 bytes), 16 bytes
/// of low nibbles.
enum Q5_1 {
    @inline(__always) static func block(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<UInt8>) {
        var min = Float.greatestFiniteMagnitude, max = -Float.greatestFiniteMagnitude
        for j in 0..<32 {
            if x[j] < min { min = x[j] }
            if x[j] > max { max = x[j] }
        }
        let d = (max - min) / 31
        let id: Float = d != 0 ? 1 / d : 0
        storeU16(fp16(d), y)
        storeU16(fp16(min), y + 2)
        var qh: UInt32 = 0
        for j in 0..<16 {
            let a = UInt8(truncatingIfNeeded: cTruncInt32((x[j] - min) * id + 0.5))
            let b = UInt8(truncatingIfNeeded: cTruncInt32((x[j + 16] - min) * id + 0.5))
            y[8 + j] = (a & 0x0F) | ((b & 0x0F) << 4)
            qh |= UInt32((a & 0x10) >> 4) << UInt32(j)
            qh |= UInt32((b & 0x10) >> 4) << UInt32(j + 16)
        }
        Q5_0.storeU32(qh, y + 4)
    }
}
