/// What the K-quant reference quantizers share: their per-block work arrays and ggml's two scale
/// searches, `make_qkx2_quants` (scale and minimum of an asymmetric sub-block, Q4_K / Q5_K) and
/// `make_qx_quants` (scale of a symmetric sub-block, Q6_K). Arithmetic is Float32 in ggml's order.
final class KQuantScratch {
    let L = UnsafeMutablePointer<UInt8>.allocate(capacity: 256)
    let Laux = UnsafeMutablePointer<UInt8>.allocate(capacity: 32)
    let weights = UnsafeMutablePointer<Float>.allocate(capacity: 32)
    let scales = UnsafeMutablePointer<Float>.allocate(capacity: 16)
    let mins = UnsafeMutablePointer<Float>.allocate(capacity: 16)
    let L8 = UnsafeMutablePointer<Int8>.allocate(capacity: 256)

    deinit {
        L.deallocate(); Laux.deallocate(); weights.deallocate(); scales.deallocate(); mins.deallocate(); L8.deallocate()
    }
}

enum KQuant {
    /// ggml's GROUP_MAX_EPS: below it a group counts as all zero.
    static let groupMaxEps: Float = 1e-15

    /// `make_qkx2_quants`: levels L[i] in 0…nmax with x ≈ scale·L − theMin, searching nstep + 1 trial
    /// inverse scales (rmin + rdelta·is + nmax)/(max − min) and refitting scale and minimum by weighted
    /// least squares; keeps the fit of least weighted error (|·| if `useMAD`, else squared).
    static func makeQKX2(_ n: Int, _ nmax: Int32, _ x: UnsafePointer<Float>, _ weights: UnsafePointer<Float>,
                         _ L: UnsafeMutablePointer<UInt8>, _ theMin: inout Float, _ Laux: UnsafeMutablePointer<UInt8>,
                         _ rmin: Float, _ rdelta: Float, _ nstep: Int, _ useMAD: Bool) -> Float {
        var min = x[0], max = x[0]
        var sumW = weights[0]
        var sumX = sumW * x[0]
        for i in 1..<n {
            if x[i] < min { min = x[i] }
            if x[i] > max { max = x[i] }
            let w = weights[i]
            sumW += w
            sumX += w * x[i]
        }
        if min > 0 { min = 0 }
        if max == min {
            for i in 0..<n { L[i] = 0 }
            theMin = -min
            return 0
        }
        let fmax = Float(nmax)
        var iscale = fmax / (max - min)
        var scale = 1 / iscale
        var bestError: Float = 0
        for i in 0..<n {
            let l = ggmlNearestInt(iscale * (x[i] - min))
            L[i] = UInt8(truncatingIfNeeded: Swift.max(0, Swift.min(nmax, l)))
            var diff = scale * Float(L[i]) + min - x[i]
            diff = useMAD ? abs(diff) : diff * diff
            bestError += weights[i] * diff
        }
        if nstep < 1 {
            theMin = -min
            return scale
        }
        for step in 0...nstep {
            iscale = (rmin + rdelta * Float(step) + fmax) / (max - min)
            var sumL: Float = 0, sumL2: Float = 0, sumXL: Float = 0
            for i in 0..<n {
                let l = Swift.max(0, Swift.min(nmax, ggmlNearestInt(iscale * (x[i] - min))))
                Laux[i] = UInt8(truncatingIfNeeded: l)
                let w = weights[i], fl = Float(l)
                sumL += w * fl
                sumL2 += w * fl * fl
                sumXL += w * fl * x[i]
            }
            let D = sumW * sumL2 - sumL * sumL
            if D > 0 {
                var thisScale = (sumW * sumXL - sumX * sumL) / D
                var thisMin = (sumL2 * sumX - sumL * sumXL) / D
                if thisMin > 0 {
                    thisMin = 0
                    thisScale = sumXL / sumL2
                }
                var curError: Float = 0
                for i in 0..<n {
                    var diff = thisScale * Float(Laux[i]) + thisMin - x[i]
                    diff = useMAD ? abs(diff) : diff * diff
                    curError += weights[i] * diff
                }
                if curError < bestError {
                    for i in 0..<n { L[i] = Laux[i] }
                    bestError = curError
                    scale = thisScale
                    min = thisMin
                }
            }
        }
        theMin = -min
        return scale
    }

    /// `make_qx_quants` with rmse_type 1 and no importance weights (weights x²): levels L[i] in 0…2·nmax−1
    /// (x ≈ scale·(L − nmax)), trying inverse scales −(nmax + 0.1·is)/max for is = −9…9 and keeping the
    /// one of largest (Σwxl)²/Σwl².
    static func makeQX(_ n: Int, _ nmax: Int32, _ x: UnsafePointer<Float>, _ L: UnsafeMutablePointer<Int8>) -> Float {
        var max: Float = 0, amax: Float = 0
        for i in 0..<n {
            let ax = abs(x[i])
            if ax > amax { amax = ax; max = x[i] }
        }
        if amax < groupMaxEps {
            for i in 0..<n { L[i] = 0 }
            return 0
        }
        let fmax = Float(nmax)
        @inline(__always) func level(_ iscale: Float, _ v: Float) -> Int32 {
            Swift.max(-nmax, Swift.min(nmax - 1, ggmlNearestInt(iscale * v)))
        }
        var iscale = -fmax / max
        var sumLX: Float = 0, sumL2: Float = 0
        for i in 0..<n {
            let l = level(iscale, x[i])
            L[i] = Int8(truncatingIfNeeded: l + nmax)
            let w = x[i] * x[i], fl = Float(l)
            sumLX += w * x[i] * fl
            sumL2 += w * fl * fl
        }
        var scale: Float = sumL2 != 0 ? sumLX / sumL2 : 0
        var best = scale * sumLX
        for step in -9...9 where step != 0 {
            iscale = -(fmax + 0.1 * Float(step)) / max
            sumLX = 0; sumL2 = 0
            for i in 0..<n {
                let l = level(iscale, x[i])
                let w = x[i] * x[i], fl = Float(l)
                sumLX += w * x[i] * fl
                sumL2 += w * fl * fl
            }
            if sumL2 > 0 && sumLX * sumLX > best * sumL2 {
                for i in 0..<n { L[i] = Int8(truncatingIfNeeded: nmax + level(iscale, x[i])) }
                scale = sumLX / sumL2
                best = scale * sumLX
            }
        }
        return scale
    }

    /// The 6-bit scale and minimum of sub-block j in the 12 packed bytes of a Q4_K / Q5_K block
    /// (ggml `get_scale_min_k4`).
    @inline(__always) static func scaleMin(_ j: Int, _ q: UnsafePointer<UInt8>) -> (UInt8, UInt8) {
        if j < 4 { return (q[j] & 63, q[j + 4] & 63) }
        return ((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4), (q[j + 4] >> 4) | ((q[j] >> 6) << 4))
    }

    /// Q4_K / Q5_K common part: for each of the 8 sub-blocks of 32, weights av + |x| (av = RMS of the
    /// sub-block), `makeQKX2`, then the scales and minimums as 6-bit multiples of two half-precision
    /// super-block values (d, dmin) packed into 12 bytes, and the final levels requantized from those.
    /// Writes d, dmin and the 12 scale bytes at y[0..<16]; leaves the levels (0…nmax) in s.L.
    static func superBlock(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<UInt8>, _ s: KQuantScratch,
                           nmax: Int32, rmin: Float, rdelta: Float, nstep: Int) {
        var maxScale: Float = 0, maxMin: Float = 0
        for j in 0..<8 {
            let xj = x + 32 * j
            var sumX2: Float = 0
            for l in 0..<32 { sumX2 += xj[l] * xj[l] }
            let av = (sumX2 / 32).squareRoot()
            for l in 0..<32 { s.weights[l] = av + abs(xj[l]) }
            var m: Float = 0
            let scale = makeQKX2(32, nmax, xj, s.weights, s.L + 32 * j, &m, s.Laux, rmin, rdelta, nstep, false)
            s.scales[j] = scale; s.mins[j] = m
            if scale > maxScale { maxScale = scale }
            if m > maxMin { maxMin = m }
        }
        let invScale: Float = maxScale > 0 ? 63 / maxScale : 0
        let invMin: Float = maxMin > 0 ? 63 / maxMin : 0
        let sc = y + 4
        for j in 0..<8 {
            let ls = Swift.min(63, UInt8(truncatingIfNeeded: ggmlNearestInt(invScale * s.scales[j])))
            let lm = Swift.min(63, UInt8(truncatingIfNeeded: ggmlNearestInt(invMin * s.mins[j])))
            if j < 4 {
                sc[j] = ls; sc[j + 4] = lm
            } else {
                sc[j + 4] = (ls & 0xF) | ((lm & 0xF) << 4)
                sc[j - 4] |= (ls >> 4) << 6
                sc[j] |= (lm >> 4) << 6
            }
        }
        let dh = fp16(maxScale / 63), mh = fp16(maxMin / 63)
        storeU16(dh, y); storeU16(mh, y + 2)
        let dAll = fp32(dh), mAll = fp32(mh)
        for j in 0..<8 {
            let (scj, mj) = scaleMin(j, UnsafePointer(sc))
            let d = dAll * Float(scj)
            if d == 0 { continue }
            let dm = mAll * Float(mj)
            for ii in 0..<32 {
                let l = ggmlNearestInt((x[32 * j + ii] + dm) / d)
                s.L[32 * j + ii] = UInt8(truncatingIfNeeded: Swift.max(0, Swift.min(nmax, l)))
            }
        }
    }
}
