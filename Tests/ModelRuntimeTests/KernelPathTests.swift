import Foundation
import Testing
import KernelABI
import AblabCore
@testable import ModelRuntime

/// The matrix kernels over every stored format: products equal their definition (Σ x · dequantized W
/// in double precision; the dequantized values themselves are checked against gguf-py in
/// GGUFDequantTests), and the canonical order makes every output bit-identical whatever the kernel build
/// (CPU path), the number of rows multiplied together, the split of the columns (threads) or whether the
/// product is accumulated.
@Suite("Matrix kernels: definition and bit-identity across CPU paths, rows and splits")
struct KernelPathTests {
    /// A random matrix [rows, cols] stored in `format`: random bytes, with every f16 scale field set to a
    /// finite value of moderate size (random bytes there could be inf/NaN, which a real file does not hold).
    static func matrix(_ format: WeightFormat, rows: Int, cols: Int, seed: UInt64) -> [UInt8] {
        var rng = SplitMix64(seed: seed)
        let rowBytes = format.rowBytes(cols: cols)!
        var bytes = (0..<(rows * rowBytes)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
        func half(_ v: Float) -> (UInt8, UInt8) { let h = Float16(v).bitPattern; return (UInt8(h & 0xFF), UInt8(h >> 8)) }
        func setHalf(_ at: Int, _ v: Float) { let (a, b) = half(v); bytes[at] = a; bytes[at + 1] = b }
        let nb = rows * (cols / format.blockSize)
        for b in 0..<nb {
            let o = b * format.blockBytes
            let scale = Float(rng.next() % 1000 + 1) / 16_000, other = Float(Int(rng.next() % 2000) - 1000) / 16_000
            switch format {
            case .f32: bytes.replaceSubrange(o..<(o + 4), with: withUnsafeBytes(of: (Float(rng.next() % 20_001) / 10_000 - 1)) { Array($0) })
            case .f16: setHalf(o, Float(rng.next() % 20_001) / 10_000 - 1)
            case .bf16: let f = Float(rng.next() % 20_001) / 10_000 - 1; let bits = f.bitPattern >> 16
                bytes[o] = UInt8(bits & 0xFF); bytes[o + 1] = UInt8(bits >> 8)
            case .q8_0, .q4_0, .q5_0: setHalf(o, scale)
            case .q4_1, .q5_1, .q4_K, .q5_K: setHalf(o, scale); setHalf(o + 2, other)
            case .q6_K: setHalf(o + 208, scale)
            }
        }
        return bytes
    }

    static func floats(_ n: Int, seed: UInt64) -> [Float] {
        var rng = SplitMix64(seed: seed)
        return (0..<n).map { _ in Float(Int(rng.next() % 20_001) - 10_000) / 10_000 }
    }

    /// out [m, n] = x [m, k] · Wᵀ with the given kernels, columns split in `split` pieces.
    static func product(_ K: any KernelSet.Type, _ w: WeightMatrix, _ x: [Float], m: Int, split: Int = 1,
                        accumulateOnto: [Float]? = nil) -> [Float] {
        var out = accumulateOnto ?? [Float](repeating: .nan, count: m * w.rows)
        let panel = UnsafeMutablePointer<Float>.allocate(capacity: panelRows * w.cols)
        defer { panel.deallocate() }
        let per = (w.rows + split - 1) / split
        x.withUnsafeBufferPointer { xp in
            out.withUnsafeMutableBufferPointer { op in
                for s in 0..<split {
                    let lo = s * per, hi = min(w.rows, lo + per)
                    if lo < hi {
                        K.matmul(w, columns: lo..<hi, x: xp.baseAddress!, m: m, ldx: w.cols, out: op.baseAddress!, ldo: w.rows,
                                 accumulate: accumulateOnto != nil, panel: panel)
                    }
                }
            }
        }
        return out
    }

    static let shapes: [(WeightFormat, Int, Int)] = WeightFormat.allCases.flatMap { f -> [(WeightFormat, Int, Int)] in
        switch f.blockSize {
        case 1: return [(f, 21, 37), (f, 9, 64)]        // tails past the last 16 values, and none
        case 32: return [(f, 21, 96)]
        default: return [(f, 19, 512)]
        }
    }

    @Test("x · Wᵀ equals Σ x · dequantized W (double precision) for every format and path",
          arguments: shapes.flatMap { s in CPUKernels.available.map { (s.0, s.1, s.2, $0) } })
    func definition(_ format: WeightFormat, _ rows: Int, _ cols: Int, _ path: KernelPath) {
        let K = CPUKernels.kernels(for: path)
        let bytes = Self.matrix(format, rows: rows, cols: cols, seed: 7)
        let m = 6
        let x = Self.floats(m * cols, seed: 8)
        bytes.withUnsafeBytes { raw in
            let w = WeightMatrix(format: format, rows: rows, cols: cols, base: raw.baseAddress!)
            var deq = [Float](repeating: 0, count: rows * cols)
            deq.withUnsafeMutableBufferPointer { K.dequantize(w, rows: 0..<rows, into: $0.baseAddress!) }
            for mm in [1, m] {   // the decoding path and the panel path
                let out = Self.product(K, w, x, m: mm)
                for i in 0..<mm {
                    for j in 0..<rows {
                        var want = 0.0, mag = 0.0
                        for p in 0..<cols { let t = Double(x[i * cols + p]) * Double(deq[j * cols + p]); want += t; mag += abs(t) }
                        #expect(abs(Double(out[i * rows + j]) - want) <= 1e-6 * mag + 1e-30, "\(format) m \(mm) [\(i), \(j)]")
                    }
                }
            }
        }
    }

    @Test("every output is bit-identical across CPU paths, row counts, column splits and accumulation",
          arguments: shapes)
    func bitIdentity(_ format: WeightFormat, _ rows: Int, _ cols: Int) {
        let bytes = Self.matrix(format, rows: rows, cols: cols, seed: 11)
        let m = 17   // AVX-512's tiles: 6 + 6 rows, then 4, then one
        let x = Self.floats(m * cols, seed: 12)
        bytes.withUnsafeBytes { raw in
            let w = WeightMatrix(format: format, rows: rows, cols: cols, base: raw.baseAddress!)
            let reference = Self.product(CPUKernels.kernels(for: .portable), w, x, m: m)
            for path in CPUKernels.available {
                let K = CPUKernels.kernels(for: path)
                for split in [1, 2, 3, 7] {
                    let out = Self.product(K, w, x, m: m, split: split)
                    #expect(out.map(\.bitPattern) == reference.map(\.bitPattern), "\(format) \(path) split \(split)")
                }
                // each row alone (decoding) and in groups of every size (batches): the same bits
                for group in [1, 2, 3, 4, 5, 6, 10, 16] {
                    var i = 0
                    while i < m {
                        let g = min(group, m - i)
                        let part = Self.product(K, w, Array(x[(i * cols)..<((i + g) * cols)]), m: g)
                        #expect(part.map(\.bitPattern) == reference[(i * rows)..<((i + g) * rows)].map(\.bitPattern),
                                "\(format) \(path) rows \(i)..<\(i + g)")
                        i += g
                    }
                }
                // accumulate: out + (x · Wᵀ) rounds as computing the product first, then adding it
                let base = Self.floats(m * rows, seed: 13)
                let acc = Self.product(K, w, x, m: m, accumulateOnto: base)
                let want = zip(base, reference).map { $0 + $1 }
                #expect(acc.map(\.bitPattern) == want.map(\.bitPattern), "\(format) \(path) accumulate")
            }
        }
    }

    @Test("elementwise kernels and attention give the same bits on every CPU path")
    func elementwiseBitIdentity() {
        for (hd, visible) in [(64, 41), (80, 16), (128, 50), (40, 37)] { elementwiseBitIdentity(hd: hd, visible: visible) }
    }

    /// Head widths a multiple of 64 (register rows of weighted values), of 16 only, and of neither (the
    /// scalar tails); visible positions past and at a multiple of 16 (scores reduced sixteen at a time).
    func elementwiseBitIdentity(hd: Int, visible: Int) {
        let n = 903
        let x = Self.floats(n, seed: 21), w = Self.floats(n, seed: 22), gu = Self.floats(2 * n, seed: 23).map { $0 * 9 }
        let q = Self.floats(hd, seed: 24), k = Self.floats(visible * hd, seed: 25), v = Self.floats(visible * hd, seed: 26)
        func run(_ K: any KernelSet.Type) -> [UInt32] {
            var norm = [Float](repeating: 0, count: n), act = [Float](repeating: 0, count: n), sm = x
            var att = [Float](repeating: 0, count: hd), scores = [Float](repeating: 0, count: visible), e = [Float](repeating: 0, count: n)
            K.rmsNorm(x, w, offset: 1, &norm, n: n, eps: 1e-6, count: 1)
            K.swiglu(gu, &act, f: n, count: 1, ldgu: 2 * n)
            K.softmax(&sm, n: n)
            K.exp(x, &e, n: n)
            K.attend(q: q, k: k, v: v, stride: hd, visible: visible, hd: hd, scale: 0.125, scores: &scores, out: &att)
            return (norm + act + sm + e + att + [K.dot(x, w, n: n)]).map(\.bitPattern)
        }
        let reference = run(CPUKernels.kernels(for: .portable))
        for path in CPUKernels.available { #expect(run(CPUKernels.kernels(for: path)) == reference, "\(path) hd \(hd) visible \(visible)") }
    }

    @Test("the CPU paths this machine runs are found, and the one in use is the fastest of them")
    func selection() {
        #expect(CPUKernels.available.first == .portable)
        if ProcessInfo.processInfo.environment["ABLAB_KERNELS"] == nil {
            #expect(CPUKernels.path == CPUKernels.available.last)
        }
        #expect(CPUKernels.active.name == CPUKernels.path.rawValue)
        for p in CPUKernels.available { #expect(CPUKernels.kernels(for: p).name == p.rawValue) }
    }
}
