/// Q8_0 (ggml `quantize_row_q8_0_ref`): 32 values, d = max|x| / 127 (half), q = round(x / d) as int8
/// (rounding half away from zero). Block: d (2 bytes), 32 signed bytes.
enum Q8_0 {
    @inline(__always) static func block(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<UInt8>) {
        var amax: Float = 0
        for j in 0..<32 { let a = abs(x[j]); amax = amax > a ? amax : a }
        let d = amax / 127
        let id: Float = d != 0 ? 1 / d : 0
        storeU16(fp16(d), y)
        for j in 0..<32 {
            y[2 + j] = UInt8(bitPattern: Int8(truncatingIfNeeded: cTruncInt32((x[j] * id).rounded(.toNearestOrAwayFromZero))))
        }
    }
}
