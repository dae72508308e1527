/// Q4_1 (ggml `quantize_row_q4_1_ref`): 32 values, d = (max − min) / 15, m = min (both half),
/// q = min(15, trunc((x − min)/d + 0.5)), value = d·q + m. Block: d, m (2 bytes each), 16 bytes of
/// nibbles (values j low, j + 16 high).
enum Q4_1 {
    @inline(__always) static func block(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<UInt8>) {
        var min = Float.greatestFiniteMagnitude, max = -Float.greatestFiniteMagnitude
        for j in 0..<32 {
            if x[j] < min { min = x[j] }
            if x[j] > max { max = x[j] }
        }
        let d = (max - min) / 15
        let id: Float = d != 0 ? 1 / d : 0
        storeU16(fp16(d), y)
        storeU16(fp16(min), y + 2)
        for j in 0..<16 {
            let a = Q4_0.q((x[j] - min) * id + 0.5), b = Q4_0.q((x[j + 16] - min) * id + 0.5)
            y[4 + j] = a | (b << 4)
        }
    }
}
