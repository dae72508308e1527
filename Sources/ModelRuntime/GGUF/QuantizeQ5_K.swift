/// Q5_K (ggml `quantize_row_q5_K_ref`): as Q4_K with q in 0…31 (search rmin −0.5, rdelta 0.1, 15 steps).
/// Block: d, dmin (half), 12 scale bytes, qh (32 bytes: for the 64 values starting at 64·k, bit 2k of
/// byte j is the fifth bit of value 64k + j and bit 2k + 1 that of 64k + 32 + j), 128 bytes of low
/// nibbles laid out as in Q4_K.
enum Q5_K {
    static func block(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<UInt8>, _ s: inout KQuantScratch) {
        KQuant.superBlock(x, y, s, nmax: 31, rmin: -0.5, rdelta: 0.1, nstep: 15)
        let qh = y + 16, ql = y + 48
        for j in 0..<32 { qh[j] = 0 }
        var m1: UInt8 = 1, m2: UInt8 = 2
        for n in stride(from: 0, to: 256, by: 64) {
            for j in 0..<32 {
                var l1 = s.L[n + j], l2 = s.L[n + j + 32]
                if l1 > 15 { l1 -= 16; qh[j] |= m1 }
                if l2 > 15 { l2 -= 16; qh[j] |= m2 }
                ql[n / 2 + j] = l1 | (l2 << 4)
            }
            m1 <<= 2; m2 <<= 2
        }
    }
}
