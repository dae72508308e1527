/// Q4_K (ggml `quantize_row_q4_K_ref`): super-blocks of 256 = 8 sub-blocks of 32, x ≈ d·sc·q − dmin·m
/// with q in 0…15 and 6-bit sc, m per sub-block (`KQuant.superBlock`, search rmin −1, rdelta 0.1, 20
/// steps). Block: d, dmin (half), 12 scale bytes, 128 bytes: each 64 values as 32 bytes, values
/// 0…31 in the low nibbles and 32…63 in the high ones.
enum Q4_K {
    static func block(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<UInt8>, _ s: inout KQuantScratch) {
        KQuant.superBlock(x, y, s, nmax: 15, rmin: -1, rdelta: 0.1, nstep: 20)
        let q = y + 16
        for j in stride(from: 0, to: 256, by: 64) {
            for l in 0..<32 { q[j / 2 + l] = s.L[j + l] | (s.L[j + l + 32] << 4) }
        }
    }
}
