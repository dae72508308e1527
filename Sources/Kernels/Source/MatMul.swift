import KernelABI

// out[i, j] (+)= x[i, :] · W[j, :] for every stored format, in the canonical order (see KernelABI):
// lane l of a 16-lane accumulator sums the products of elements p ≡ l (mod 16), then the lanes are
// reduced pairwise (`hsum`), then the tail past the last multiple of 16 (float formats only) is added.
//
// Two ways to the same numbers:
// - few rows of x (decoding): blocks of four rows of W are decoded in registers and multiplied at once;
// - many rows (prefill): `panelRows` rows of W are decoded once into a Float32 panel, then register
//   tiles of rows of x × rows of the panel (`tileX` × 4, chosen per CPU path in Variant.swift). Eight
//   rows of W and one tile's rows of x stay in L1 together (sixteen rows did not, and ran 7 % slower).
// A decoded value is the same wherever it is decoded, and each output has one accumulator in either
// case, so the choice changes speed only.

/// Rows of x from which the panel path is used.
let panelFromRows = 4

/// Rows of x per block of the panel path for rows of k floats: the block (at most `l2BlockBytes`) stays in
/// L2 while the panels stream past; at most `panelBlockRows`, at least 24, a multiple of 12 (tiles are 6
/// or 4 rows high, and a block of 256 rows left 4 rows to slower tiles). For k = 1536, 252 rows (1.5 MB) ran 10 % slower than 128.
@inline(__always) func blockRows(k: Int) -> Int {
    max(24, min(panelBlockRows, l2BlockBytes / (4 * k)) / 12 * 12)
}

/// The share of a core's L2 that a block of x rows may fill.
let l2BlockBytes = 768 * 1024

/// How far ahead of its use the few-rows path prefetches weight bytes (at least one group of four rows).
let prefetchBytes = 2048

/// A hint to bring the cache line at p into the caches (no fault for any address; LLVM's intrinsic,
/// one `prefetcht0` on x86-64).
@_silgen_name("llvm.prefetch.p0")
func llvmPrefetch(_ p: UnsafeRawPointer, _ rw: Int32, _ locality: Int32, _ cacheType: Int32)

@inline(__always) func prefetch(_ p: UnsafeRawPointer) { llvmPrefetch(p, 0, 3, 1) }

@inline(__always) func finish(_ acc: V16, tail: Float, into p: UnsafeMutablePointer<Float>, accumulate: Bool) {
    let r = hsum(acc) + tail
    if accumulate { p.pointee += r } else { p.pointee = r }
}

/// The dot product's scalar tail (elements ≥ k16), fused multiply-adds in order.
@inline(__always) func tailDot(_ x: UnsafePointer<Float>, _ w: UnsafePointer<Float>, from k16: Int, to k: Int) -> Float {
    var s: Float = 0
    var p = k16
    while p < k { s = s.addingProduct(x[p], w[p]); p += 1 }
    return s
}

extension Impl {
    @inline(__always)
    static func matmulTyped<D: BlockDecoder>(_: D.Type, _ w: WeightMatrix, columns: Range<Int>, x: UnsafePointer<Float>, m: Int, ldx: Int,
                                              out: UnsafeMutablePointer<Float>, ldo: Int, accumulate: Bool,
                                              panel: UnsafeMutablePointer<Float>) {
        if m >= panelFromRows {
            // Blocks of `panelBlockRows` rows of x, each against every panel of the columns: a block stays in
            // the caches while the panels stream past it (x streamed whole per panel: 4096 rows of SmolLM2
            // were 30 % slower than 256). Panels are decoded once per block (decoding 16 rows of W costs
            // a few percent of multiplying them with 256 rows). Each output still has one accumulator.
            var i0 = 0
            while i0 < m {
                let mi = min(blockRows(k: w.cols), m - i0)
                var j = columns.lowerBound
                while j < columns.upperBound {
                    let nj = min(panelRows, columns.upperBound - j)
                    let rows: UnsafePointer<Float>
                    if D.self == F32Format.self {
                        rows = (w.base + j * w.rowBytes).assumingMemoryBound(to: Float.self)
                    } else {
                        decodeRows(D.self, w, rows: j..<(j + nj), into: panel)
                        rows = UnsafePointer(panel)
                    }
                    panelProduct(rows, nj: nj, k: w.cols, x: x + i0 * ldx, m: mi, ldx: ldx, out: out + i0 * ldo + j, ldo: ldo,
                                 accumulate: accumulate)
                    j += nj
                }
                i0 += mi
            }
            return
        }
        registerProduct(D.self, w, columns: columns, x: x, m: m, ldx: ldx, out: out, ldo: ldo, accumulate: accumulate)
    }

    /// Rows of W decoded to Float32 [rows, cols].
    @inline(__always)
    static func decodeRows<D: BlockDecoder>(_: D.Type, _ w: WeightMatrix, rows: Range<Int>, into out: UnsafeMutablePointer<Float>) {
        let k = w.cols
        let nb = k / D.elements
        let k16 = nb * D.elements
        let lanes = opaqueLaneIndex
        // The rows are contiguous: their bytes are prefetched `prefetchBytes` ahead of decoding, a cache
        // line per 64 bytes decoded (decoding 16 rows of batched decoding otherwise waits on memory).
        var pf = w.base + rows.lowerBound * w.rowBytes + prefetchBytes
        for (r, j) in rows.enumerated() {
            let row = w.base + j * w.rowBytes
            let o = out + r * k
            var b = 0
            while b < nb {
                let at = row + (b + 1) * D.bytes + prefetchBytes
                while pf < at { prefetch(pf); pf += 64 }
                decodeInto(D.self, row + b * D.bytes, o + b * D.elements, lanes)
                b += 1
            }
            var e = k16
            while e < k { o[e] = D.element(row, e); e += 1 }
        }
    }

    @inline(__always)
    static func decodeInto<D: BlockDecoder>(_: D.Type, _ p: UnsafeRawPointer, _ o: UnsafeMutablePointer<Float>, _ lanes: U16) {
        withUnsafeTemporaryAllocation(of: V16.self, capacity: D.elements / 16) { buf in
            D.decode(p, buf.baseAddress!, lanes)
            for s in 0..<(D.elements / 16) { store16(buf[s], o + 16 * s) }
        }
    }

    /// Few rows of x: four rows of W decoded block by block, each x row against them (the four rows stay
    /// in L1 for the rows of x). While a group is multiplied, the bytes of a group further on are
    /// prefetched, a block's worth at a time, so the weights stream in ahead of their use.
    @inline(__always)
    static func registerProduct<D: BlockDecoder>(_: D.Type, _ w: WeightMatrix, columns: Range<Int>, x: UnsafePointer<Float>, m: Int, ldx: Int,
                                                 out: UnsafeMutablePointer<Float>, ldo: Int, accumulate: Bool) {
        let k = w.cols
        let S = D.elements / 16
        let P = S / D.pieces   // vectors per piece
        let nb = k / D.elements
        let k16 = nb * D.elements
        let groupBytes = 4 * w.rowBytes
        let ahead = groupBytes * max(1, (prefetchBytes + groupBytes - 1) / groupBytes)
        let lanes = opaqueLaneIndex
        withUnsafeTemporaryAllocation(of: V16.self, capacity: 4 * S) { tmp in
            let wb = tmp.baseAddress!
            var j = columns.lowerBound
            while j + 4 <= columns.upperBound {
                let r0 = w.base + j * w.rowBytes, r1 = r0 + w.rowBytes, r2 = r1 + w.rowBytes, r3 = r2 + w.rowBytes
                for i in 0..<m {
                    let xi = x + i * ldx
                    var a0 = V16(), a1 = V16(), a2 = V16(), a3 = V16()
                    var pf = r0 + ahead, pfEnd = pf
                    var b = 0
                    while b < nb {
                        if i == 0 {
                            pfEnd += 4 * D.bytes
                            while pf < pfEnd { prefetch(pf); pf += 64 }
                        }
                        let o = b * D.bytes
                        for piece in 0..<D.pieces {
                            D.decode(r0 + o, piece: piece, wb, lanes); D.decode(r1 + o, piece: piece, wb + P, lanes)
                            D.decode(r2 + o, piece: piece, wb + 2 * P, lanes); D.decode(r3 + o, piece: piece, wb + 3 * P, lanes)
                            let xb = xi + b * D.elements + piece * 16 * P
                            for s in 0..<P {
                                let xv = load16(xb + 16 * s)
                                a0.addProduct(xv, wb[s]); a1.addProduct(xv, wb[P + s])
                                a2.addProduct(xv, wb[2 * P + s]); a3.addProduct(xv, wb[3 * P + s])
                            }
                        }
                        b += 1
                    }
                    var t0: Float = 0, t1: Float = 0, t2: Float = 0, t3: Float = 0
                    var e = k16
                    while e < k {
                        let xe = xi[e]
                        t0 = t0.addingProduct(xe, D.element(r0, e)); t1 = t1.addingProduct(xe, D.element(r1, e))
                        t2 = t2.addingProduct(xe, D.element(r2, e)); t3 = t3.addingProduct(xe, D.element(r3, e))
                        e += 1
                    }
                    let o = out + i * ldo + j
                    finish(a0, tail: t0, into: o, accumulate: accumulate); finish(a1, tail: t1, into: o + 1, accumulate: accumulate)
                    finish(a2, tail: t2, into: o + 2, accumulate: accumulate); finish(a3, tail: t3, into: o + 3, accumulate: accumulate)
                }
                j += 4
            }
            while j < columns.upperBound {
                let r0 = w.base + j * w.rowBytes
                for i in 0..<m {
                    let xi = x + i * ldx
                    var a0 = V16()
                    var b = 0
                    while b < nb {
                        D.decode(r0 + b * D.bytes, wb, lanes)
                        let xb = xi + b * D.elements
                        for s in 0..<S { a0.addProduct(load16(xb + 16 * s), wb[s]) }
                        b += 1
                    }
                    var t0: Float = 0
                    var e = k16
                    while e < k { t0 = t0.addingProduct(xi[e], D.element(r0, e)); e += 1 }
                    finish(a0, tail: t0, into: out + i * ldo + j, accumulate: accumulate)
                }
                j += 1
            }
        }
    }

    /// x [m, ldx] against nj Float32 rows [nj, k]: bands of register tiles tileX rows high, then (where
    /// tileX > 4) one band of 4 rows (16 rows of batched decoding are 6 + 6 + 4), then rows one by one.
    @inline(__always)
    static func panelProduct(_ wr: UnsafePointer<Float>, nj: Int, k: Int, x: UnsafePointer<Float>, m: Int, ldx: Int,
                             out: UnsafeMutablePointer<Float>, ldo: Int, accumulate: Bool) {
        let k16 = k & ~15
        var i = 0
        while i + tileX <= m {
            band(tileX, wr, nj: nj, k: k, k16: k16, x: x + i * ldx, ldx: ldx, out: out + i * ldo, ldo: ldo, accumulate: accumulate)
            i += tileX
        }
        if tileX > 4 && i + 4 <= m {
            band(4, wr, nj: nj, k: k, k16: k16, x: x + i * ldx, ldx: ldx, out: out + i * ldo, ldo: ldo, accumulate: accumulate)
            i += 4
        }
        while i < m {
            band(1, wr, nj: nj, k: k, k16: k16, x: x + i * ldx, ldx: ldx, out: out + i * ldo, ldo: ldo, accumulate: accumulate)
            i += 1
        }
    }

    /// h rows of x against the nj panel rows: tiles of h × 4, the columns past the last multiple of 4 one by one.
    @inline(__always)
    static func band(_ h: Int, _ wr: UnsafePointer<Float>, nj: Int, k: Int, k16: Int, x: UnsafePointer<Float>, ldx: Int,
                     out: UnsafeMutablePointer<Float>, ldo: Int, accumulate: Bool) {
        var j = 0
        while j + 4 <= nj {
            tile(h, wr + j * k, k: k, k16: k16, x: x, ldx: ldx, out: out + j, ldo: ldo, accumulate: accumulate)
            j += 4
        }
        while j < nj {
            for ii in 0..<h { single(wr + j * k, k: k, k16: k16, x: x + ii * ldx, out: out + ii * ldo + j, accumulate: accumulate) }
            j += 1
        }
    }

    @inline(__always)
    static func single(_ w: UnsafePointer<Float>, k: Int, k16: Int, x: UnsafePointer<Float>, out: UnsafeMutablePointer<Float>, accumulate: Bool) {
        var a = V16()
        var p = 0
        while p < k16 { a.addProduct(load16(x + p), load16(w + p)); p += 16 }
        finish(a, tail: tailDot(x, w, from: k16, to: k), into: out, accumulate: accumulate)
    }

    /// One row of x against four rows of W.
    @inline(__always)
    static func row4(_ w: UnsafePointer<Float>, k: Int, k16: Int, x: UnsafePointer<Float>, out: UnsafeMutablePointer<Float>, accumulate: Bool) {
        let w0 = w, w1 = w + k, w2 = w + 2 * k, w3 = w + 3 * k
        var a0 = V16(), a1 = V16(), a2 = V16(), a3 = V16()
        var p = 0
        while p < k16 {
            let xv = load16(x + p)
            a0.addProduct(xv, load16(w0 + p)); a1.addProduct(xv, load16(w1 + p))
            a2.addProduct(xv, load16(w2 + p)); a3.addProduct(xv, load16(w3 + p))
            p += 16
        }
        finish(a0, tail: tailDot(x, w0, from: k16, to: k), into: out, accumulate: accumulate)
        finish(a1, tail: tailDot(x, w1, from: k16, to: k), into: out + 1, accumulate: accumulate)
        finish(a2, tail: tailDot(x, w2, from: k16, to: k), into: out + 2, accumulate: accumulate)
        finish(a3, tail: tailDot(x, w3, from: k16, to: k), into: out + 3, accumulate: accumulate)
    }
}
