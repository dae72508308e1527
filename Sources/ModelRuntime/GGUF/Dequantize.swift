import Foundation

/// Conversion of ggml blocks to Float32. Layouts follow the ggml block definitions:
/// every quantized block stores `blockSize` consecutive elements of a row in `blockBytes` bytes,
/// all numbers little-endian, scales as IEEE half precision.
public enum GGMLDequantizer {
    /// Dequantizes `elements` elements (a whole number of blocks) of `type` starting at `src` into `dst`.
    /// Throws nothing: callers check `type.canDequantize` and block alignment first (see `GGUFFile`).
    /// Large inputs are split across the available cores.
    public static func dequantize(_ type: GGMLType, from src: UnsafeRawPointer, elements: Int,
                                  into dst: UnsafeMutablePointer<Float>) {
        precondition(type.canDequantize && elements % type.blockSize == 0)
        let blocks = elements / type.blockSize
        let minParallel = 1 << 20
        let cores = ProcessInfo.processInfo.activeProcessorCount
        if elements < minParallel || cores < 2 {
            decode(type, src, blocks, dst)
            return
        }
        let chunks = min(cores * 4, max(1, elements / (minParallel / 4)))
        let per = (blocks + chunks - 1) / chunks
        let s = SendablePointers(src: src, dst: dst)
        DispatchQueue.concurrentPerform(iterations: chunks) { c in
            let b0 = c * per, b1 = min(blocks, b0 + per)
            guard b0 < b1 else { return }
            decode(type, s.src + b0 * type.blockBytes, b1 - b0, s.dst + b0 * type.blockSize)
        }
    }

    private struct SendablePointers: @unchecked Sendable {
        let src: UnsafeRawPointer
        let dst: UnsafeMutablePointer<Float>
    }

    /// Single-threaded decode of `blocks` whole blocks.
    static func decode(_ type: GGMLType, _ src: UnsafeRawPointer, _ blocks: Int, _ dst: UnsafeMutablePointer<Float>) {
        switch type {
        case .f32: memcpy(dst, src, blocks * 4)
        case .f16: f16(src, blocks, dst)
        case .bf16: bf16(src, blocks, dst)
        case .q8_0: q8_0(src, blocks, dst)
        case .q4_0: q4_0(src, blocks, dst)
        case .q4_1: q4_1(src, blocks, dst)
        case .q5_0: q5_0(src, blocks, dst)
        case .q5_1: q5_1(src, blocks, dst)
        case .q4_K: q4_K(src, blocks, dst)
        case .q5_K: q5_K(src, blocks, dst)
        case .q6_K: q6_K(src, blocks, dst)
        default: preconditionFailure("unsupported type \(type)")
        }
    }

    // MARK: - scalars

    /// IEEE half → Float, exact for all inputs (zero, subnormal, normal, inf, NaN), branch-free.
    @inline(__always) public static func halfToFloat(_ h: UInt16) -> Float {
        let magnitude = UInt32(h & 0x7FFF) << 13                   // exponent+mantissa in float position
        let scaled = Float(bitPattern: magnitude) * 0x1p112        // rebias exponent 15 → 127 (exact)
        let special = Float(bitPattern: magnitude | 0x7F80_0000)   // inf / NaN keep their payload
        let v = magnitude >= 0x0F80_0000 ? special : scaled
        return Float(bitPattern: v.bitPattern | (UInt32(h & 0x8000) << 16))
    }

    @inline(__always) static func u16(_ p: UnsafeRawPointer, _ o: Int) -> UInt16 {
        UInt16(littleEndian: p.loadUnaligned(fromByteOffset: o, as: UInt16.self))
    }
    @inline(__always) static func half(_ p: UnsafeRawPointer, _ o: Int) -> Float { halfToFloat(u16(p, o)) }

    // MARK: - plain types

    static func f16(_ src: UnsafeRawPointer, _ n: Int, _ dst: UnsafeMutablePointer<Float>) {
        let s = src.assumingMemoryBound(to: UInt8.self)
        for i in 0..<n {
            let h = UInt16(s[2 * i]) | (UInt16(s[2 * i + 1]) << 8)
            dst[i] = halfToFloat(h)
        }
    }

    static func bf16(_ src: UnsafeRawPointer, _ n: Int, _ dst: UnsafeMutablePointer<Float>) {
        let s = src.assumingMemoryBound(to: UInt8.self)
        for i in 0..<n {
            let h = UInt32(s[2 * i]) | (UInt32(s[2 * i + 1]) << 8)
            dst[i] = Float(bitPattern: h << 16)
        }
    }

    // MARK: - 32-element blocks

    // Q8_0: d:f16, qs:int8[32]; x = d * q
    static func q8_0(_ src: UnsafeRawPointer, _ blocks: Int, _ dst: UnsafeMutablePointer<Float>) {
        for b in 0..<blocks {
            let p = src + b * 34
            let d = half(p, 0)
            let q = (p + 2).assumingMemoryBound(to: Int8.self)
            let o = dst + b * 32
            for i in 0..<32 { o[i] = Float(q[i]) * d }
        }
    }

    // Q4_0: d:f16, qs:u8[16]; element j (j<16) = low nibble of qs[j], j+16 = high nibble; x = d * (q - 8)
    static func q4_0(_ src: UnsafeRawPointer, _ blocks: Int, _ dst: UnsafeMutablePointer<Float>) {
        for b in 0..<blocks {
            let p = src + b * 18
            let d = half(p, 0)
            let q = (p + 2).assumingMemoryBound(to: UInt8.self)
            let o = dst + b * 32
            for j in 0..<16 {
                o[j] = d * Float(Int32(q[j] & 0x0F) - 8)
                o[j + 16] = d * Float(Int32(q[j] >> 4) - 8)
            }
        }
    }

    // Q4_1: d:f16, m:f16, qs:u8[16]; x = d * q + m
    static func q4_1(_ src: UnsafeRawPointer, _ blocks: Int, _ dst: UnsafeMutablePointer<Float>) {
        for b in 0..<blocks {
            let p = src + b * 20
            let d = half(p, 0), m = half(p, 2)
            let q = (p + 4).assumingMemoryBound(to: UInt8.self)
            let o = dst + b * 32
            for j in 0..<16 {
                o[j] = d * Float(q[j] & 0x0F) + m
                o[j + 16] = d * Float(q[j] >> 4) + m
            }
        }
    }

    // Q5_0: d:f16, qh:u32 (bit e = 5th bit of element e), qs:u8[16] as Q4_0; x = d * (q - 16)
    static func q5_0(_ src: UnsafeRawPointer, _ blocks: Int, _ dst: UnsafeMutablePointer<Float>) {
        for b in 0..<blocks {
            let p = src + b * 22
            let d = half(p, 0)
            let qh = UInt32(littleEndian: p.loadUnaligned(fromByteOffset: 2, as: UInt32.self))
            let q = (p + 6).assumingMemoryBound(to: UInt8.self)
            let o = dst + b * 32
            for j in 0..<16 {
                let lo = Int32(q[j] & 0x0F) | Int32((qh >> UInt32(j)) & 1) << 4
                let hi = Int32(q[j] >> 4) | Int32((qh >> UInt32(j + 16)) & 1) << 4
                o[j] = d * Float(lo - 16)
                o[j + 16] = d * Float(hi - 16)
            }
        }
    }

    // Q5_1: d:f16, m:f16, qh:u32, qs:u8[16]; x = d * q + m
    static func q5_1(_ src: UnsafeRawPointer, _ blocks: Int, _ dst: UnsafeMutablePointer<Float>) {
        for b in 0..<blocks {
            let p = src + b * 24
            let d = half(p, 0), m = half(p, 2)
            let qh = UInt32(littleEndian: p.loadUnaligned(fromByteOffset: 4, as: UInt32.self))
            let q = (p + 8).assumingMemoryBound(to: UInt8.self)
            let o = dst + b * 32
            for j in 0..<16 {
                let lo = UInt32(q[j] & 0x0F) | ((qh >> UInt32(j)) & 1) << 4
                let hi = UInt32(q[j] >> 4) | ((qh >> UInt32(j + 16)) & 1) << 4
                o[j] = d * Float(lo) + m
                o[j + 16] = d * Float(hi) + m
            }
        }
    }

    // MARK: - 256-element super-blocks (K quants)

    /// The 8 six-bit (scale, min) pairs of Q4_K / Q5_K packed in 12 bytes:
    /// bytes 0-3 hold scales 0-3 (low 6 bits) and the top 2 bits of scales 4-7; bytes 4-7 the same for
    /// mins; bytes 8-11 the low 4 bits of scales 4-7 (low nibble) and mins 4-7 (high nibble).
    @inline(__always) static func scaleMin(_ s: UnsafePointer<UInt8>, _ j: Int) -> (Float, Float) {
        if j < 4 {
            return (Float(s[j] & 63), Float(s[j + 4] & 63))
        }
        let sc = (s[j + 4] & 0x0F) | ((s[j - 4] >> 6) << 4)
        let mn = (s[j + 4] >> 4) | ((s[j] >> 6) << 4)
        return (Float(sc), Float(mn))
    }

    // Q4_K: d:f16, dmin:f16, scales:u8[12], qs:u8[128]. Sub-block k (32 elements) = nibble (k&1) of
    // qs[32*(k/2) ..< 32*(k/2)+32]; x = (d*sc[k]) * q - (dmin*m[k])
    static func q4_K(_ src: UnsafeRawPointer, _ blocks: Int, _ dst: UnsafeMutablePointer<Float>) {
        for b in 0..<blocks {
            let p = src + b * 144
            let d = half(p, 0), dmin = half(p, 2)
            let s = (p + 4).assumingMemoryBound(to: UInt8.self)
            let q = (p + 16).assumingMemoryBound(to: UInt8.self)
            let o = dst + b * 256
            for g in 0..<4 {
                let (sc0, m0) = scaleMin(s, 2 * g), (sc1, m1) = scaleMin(s, 2 * g + 1)
                let d0 = d * sc0, dm0 = dmin * m0, d1 = d * sc1, dm1 = dmin * m1
                let qq = q + 32 * g, oo = o + 64 * g
                for l in 0..<32 {
                    oo[l] = d0 * Float(qq[l] & 0x0F) - dm0
                    oo[l + 32] = d1 * Float(qq[l] >> 4) - dm1
                }
            }
        }
    }

    // Q5_K: d, dmin, scales[12], qh:u8[32] (bit k of qh[l] = 5th bit of element 32k+l), qs[128] as Q4_K
    static func q5_K(_ src: UnsafeRawPointer, _ blocks: Int, _ dst: UnsafeMutablePointer<Float>) {
        for b in 0..<blocks {
            let p = src + b * 176
            let d = half(p, 0), dmin = half(p, 2)
            let s = (p + 4).assumingMemoryBound(to: UInt8.self)
            let qh = (p + 16).assumingMemoryBound(to: UInt8.self)
            let q = (p + 48).assumingMemoryBound(to: UInt8.self)
            let o = dst + b * 256
            for g in 0..<4 {
                let (sc0, m0) = scaleMin(s, 2 * g), (sc1, m1) = scaleMin(s, 2 * g + 1)
                let d0 = d * sc0, dm0 = dmin * m0, d1 = d * sc1, dm1 = dmin * m1
                let qq = q + 32 * g, oo = o + 64 * g
                let sh0 = UInt8(2 * g), sh1 = UInt8(2 * g + 1)
                for l in 0..<32 {
                    let h0 = ((qh[l] >> sh0) & 1) << 4, h1 = ((qh[l] >> sh1) & 1) << 4
                    oo[l] = d0 * Float((qq[l] & 0x0F) | h0) - dm0
                    oo[l + 32] = d1 * Float((qq[l] >> 4) | h1) - dm1
                }
            }
        }
    }

    // Q6_K: ql:u8[128], qh:u8[64], scales:int8[16], d:f16. Half h (128 elements), j in 0..<128:
    // low 4 bits = nibble (j/64) of ql[64h + j%64], high 2 bits = bits 2*(j/32) of qh[32h + j%32];
    // x = (d * scales[e/16]) * (q - 32)
    static func q6_K(_ src: UnsafeRawPointer, _ blocks: Int, _ dst: UnsafeMutablePointer<Float>) {
        for b in 0..<blocks {
            let p = src + b * 210
            let ql = p.assumingMemoryBound(to: UInt8.self)
            let qh = (p + 128).assumingMemoryBound(to: UInt8.self)
            let sc = (p + 192).assumingMemoryBound(to: Int8.self)
            let d = half(p, 208)
            let o = dst + b * 256
            for h in 0..<2 {
                let l0 = ql + 64 * h, h0 = qh + 32 * h, oo = o + 128 * h
                for k in 0..<4 {  // 32-element quarter k of this half
                    let lsh = UInt8(4 * (k >> 1)), hsh = UInt8(2 * k)
                    let lbase = l0 + 32 * (k & 1)
                    let ds0 = d * Float(sc[8 * h + 2 * k]), ds1 = d * Float(sc[8 * h + 2 * k + 1])
                    let ob = oo + 32 * k
                    for l in 0..<16 {
                        let q = Int32((lbase[l] >> lsh) & 0x0F) | Int32((h0[l] >> hsh) & 3) << 4
                        ob[l] = ds0 * Float(q - 32)
                    }
                    for l in 16..<32 {
                        let q = Int32((lbase[l] >> lsh) & 0x0F) | Int32((h0[l] >> hsh) & 3) << 4
                        ob[l] = ds1 * Float(q - 32)
                    }
                }
            }
        }
    }
}
