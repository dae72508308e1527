/// Plain float formats: F32 (little-endian bits), F16 (round to nearest even, ±inf on overflow) and
/// BF16 (ggml's `ggml_compute_fp32_to_bf16`: round to nearest even on the upper 16 bits, NaN made quiet).
enum FloatFormats {
    static func f32(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<UInt8>, count: Int) {
        for i in 0..<count {
            let b = x[i].bitPattern
            y[4 * i] = UInt8(truncatingIfNeeded: b); y[4 * i + 1] = UInt8(truncatingIfNeeded: b >> 8)
            y[4 * i + 2] = UInt8(truncatingIfNeeded: b >> 16); y[4 * i + 3] = UInt8(truncatingIfNeeded: b >> 24)
        }
    }

    static func f16(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<UInt8>, count: Int) {
        for i in 0..<count { storeU16(fp16(x[i]), y + 2 * i) }
    }

    static func bf16(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<UInt8>, count: Int) {
        for i in 0..<count { storeU16(bf16Bits(x[i]), y + 2 * i) }
    }

    @inline(__always) static func bf16Bits(_ f: Float) -> UInt16 {
        let u = f.bitPattern
        if u & 0x7FFF_FFFF > 0x7F80_0000 { return UInt16(truncatingIfNeeded: (u >> 16) | 64) }   // quiet NaN
        return UInt16(truncatingIfNeeded: (UInt64(u) + UInt64(0x7FFF + ((u >> 16) & 1))) >> 16)
    }
}
