/// IEEE 754 binary16 conversion, portable to platforms without `Float16` (Intel macOS).
/// Rounding is round-to-nearest, ties-to-even, as IEEE 754 and numpy's `float16` do.
public enum Half {
    /// The binary16 bit pattern nearest to `x` (NaN stays NaN, overflow becomes ±infinity).
    @inline(__always)
    public static func bits(from x: Float) -> UInt16 {
        let b = x.bitPattern
        let sign = UInt16(truncatingIfNeeded: (b >> 16) & 0x8000)
        let exp = Int((b >> 23) & 0xff)
        var mant = b & 0x7f_ffff
        if exp == 0xff { // infinity or NaN; keep NaN quiet and non-zero
            return sign | 0x7c00 | (mant != 0 ? UInt16(truncatingIfNeeded: 0x200 | (mant >> 13)) : 0)
        }
        let e = exp - 127 + 15
        if e >= 0x1f { return sign | 0x7c00 }
        if e <= 0 {
            if e < -10 { return sign } // below half of the smallest subnormal
            mant |= 0x80_0000
            let shift = UInt32(14 - e)
            var h = mant >> shift
            let rem = mant & ((1 << shift) - 1)
            let halfway: UInt32 = 1 << (shift - 1)
            if rem > halfway || (rem == halfway && (h & 1) == 1) { h += 1 }
            return sign | UInt16(truncatingIfNeeded: h)
        }
        var h = UInt32(e) << 10 | (mant >> 13)
        let rem = mant & 0x1fff
        if rem > 0x1000 || (rem == 0x1000 && (h & 1) == 1) { h += 1 } // a carry may reach infinity: correct
        return sign | UInt16(truncatingIfNeeded: h)
    }

    /// The Float equal to the binary16 value with bit pattern `h` (exact: every half is a float).
    @inline(__always)
    public static func float(from h: UInt16) -> Float {
        let sign = UInt32(h & 0x8000) << 16
        let exp = UInt32((h >> 10) & 0x1f)
        let mant = UInt32(h & 0x3ff)
        if exp == 0 {
            if mant == 0 { return Float(bitPattern: sign) }
            let v = Float(mant) * 0x1p-24
            return sign != 0 ? -v : v
        }
        if exp == 31 { return Float(bitPattern: sign | 0x7f80_0000 | (mant << 13)) }
        return Float(bitPattern: sign | ((exp + 112) << 23) | (mant << 13))
    }
}
