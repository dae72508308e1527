/// Q6_K (ggml `quantize_row_q6_K_ref`): super-blocks of 256 = 16 sub-blocks of 16, x ≈ d·sc·(q − 32) with
/// q in 0…63 and an int8 scale sc per sub-block (`KQuant.makeQX`, then sc = min(127, round(−128/s_max · s))
/// and d = s_max/−128 in half precision, and the levels requantized from d·sc). Block: ql (128 bytes of
/// low nibbles), qh (64 bytes of high 2-bit pairs), 16 int8 scales, d (half) — 210 bytes.
enum Q6_K {
    static func block(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<UInt8>, _ s: inout KQuantScratch) {
        let L = s.L8
        var maxScale: Float = 0, maxAbsScale: Float = 0
        for ib in 0..<16 {
            let scale = KQuant.makeQX(16, 32, x + 16 * ib, L + 16 * ib)
            s.scales[ib] = scale
            if abs(scale) > maxAbsScale { maxAbsScale = abs(scale); maxScale = scale }
        }
        if maxAbsScale < KQuant.groupMaxEps {
            for k in 0..<210 { y[k] = 0 }
            return
        }
        let iscale = -128 / maxScale
        let dh = fp16(1 / iscale)
        storeU16(dh, y + 208)
        let scales = y + 192
        for ib in 0..<16 {
            scales[ib] = UInt8(bitPattern: Int8(truncatingIfNeeded: Swift.min(127, ggmlNearestInt(iscale * s.scales[ib]))))
        }
        let dAll = fp32(dh)
        for j in 0..<16 {
            let d = dAll * Float(Int8(bitPattern: scales[j]))
            if d == 0 { continue }
            for ii in 0..<16 {
                let l = Swift.max(-32, Swift.min(31, ggmlNearestInt(x[16 * j + ii] / d)))
                L[16 * j + ii] = Int8(truncatingIfNeeded: l + 32)
            }
        }
        let ql = y, qh = y + 128
        for j in stride(from: 0, to: 256, by: 128) {
            let qlj = ql + j / 2, qhj = qh + j / 4
            for l in 0..<32 {
                let a = UInt8(bitPattern: L[j + l]), b = UInt8(bitPattern: L[j + l + 32])
                let c = UInt8(bitPattern: L[j + l + 64]), e = UInt8(bitPattern: L[j + l + 96])
                qlj[l] = (a & 0xF) | ((c & 0xF) << 4)
                qlj[l + 32] = (b & 0xF) | ((e & 0xF) << 4)
                qhj[l] = (a >> 4) | ((b >> 4) << 2) | ((c >> 4) << 4) | ((e >> 4) << 6)
            }
        }
    }
}
