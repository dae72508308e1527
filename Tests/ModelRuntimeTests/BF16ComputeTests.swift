import Foundation
import Testing
import KernelABI
import AblabCore
@testable import ModelRuntime

/// `--compute bf16`: vdpbf16ps against its definition in Intel's manual, the weight products against
/// Σ bf16(x)·bf16(W) in double precision, bit-identity across threads, row counts and column splits, and
/// the refusal on CPUs without the instruction. The tests that run the instruction are skipped on CPUs
/// without avx512_bf16 (the refusal test runs everywhere, with injected CPU flags).
@Suite("bf16 compute: vdpbf16ps, products, determinism, missing CPU features")
struct BF16ComputeTests {
    static let runsHere = ComputeMode.bf16.missingCPUFlags(in: CPUKernels.cpuFlags()).isEmpty
    static let skipReason: Comment = "this CPU lacks avx512_bf16 (or the AVX-512 subsets it needs): the bf16 kernels cannot run here"

    // MARK: the definition of one vdpbf16ps (Intel SDM, VDPBF16PS)

    /// Denormal inputs count as zero (sign kept): the instruction's DAZ.
    static func daz(_ x: Float) -> Float { x.isSubnormal ? (x.sign == .minus ? -0.0 : 0.0) : x }

    /// One FMA as the instruction does it: exact a·b + c rounded to nearest even, a result tiny before
    /// rounding (|exact| < 2⁻¹²⁶) flushed to zero of its sign (FTZ; x86 detects tininess before rounding).
    static func fmaFTZ(_ a: Float, _ b: Float, _ c: Float) -> Float {
        let r = c.addingProduct(a, b)
        let tiny = Float.leastNormalMagnitude
        // r = ±2⁻¹²⁶ can be the rounding of an exact value just below it: decide with the (here exact
        // enough) double-precision value.
        let exactBelow = abs(r) == tiny && abs(Double(a) * Double(b) + Double(c)) < Double(tiny)
        if r != 0 && (abs(r) < tiny || exactBelow) { return r.sign == .minus ? -0.0 : 0.0 }
        return r
    }

    static func float(bf16 h: UInt16) -> Float { Float(bitPattern: UInt32(h) << 16) }

    /// acc[l] += a[2l+1]·b[2l+1], then += a[2l]·b[2l], each an FMA with DAZ inputs and FTZ result.
    static func definition(acc: [Float], a: [UInt16], b: [UInt16]) -> [Float] {
        (0..<16).map { l in
            var c = daz(acc[l])
            c = fmaFTZ(daz(float(bf16: a[2 * l + 1])), daz(float(bf16: b[2 * l + 1])), c)
            c = fmaFTZ(daz(float(bf16: a[2 * l])), daz(float(bf16: b[2 * l])), daz(c))
            return c
        }
    }

    /// A random finite bf16: zero, subnormal, tiny (products underflow Float32), or of moderate size.
    static func randomBF16(_ rng: inout SplitMix64) -> UInt16 {
        let sign = UInt16(rng.next() & 1) << 15, mant = UInt16(rng.next() & 0x7F)
        let exp: UInt16
        switch rng.next() % 8 {
        case 0: exp = 0                                        // zero or subnormal
        case 1: exp = UInt16(1 + rng.next() % 20)              // near the bottom of the range
        default: exp = UInt16(110 + rng.next() % 34)           // about 2⁻¹⁷ … 2¹⁶
        }
        return sign | exp << 7 | mant
    }

    static func randomAccumulator(_ rng: inout SplitMix64) -> Float {
        switch rng.next() % 6 {
        case 0: return Float(bitPattern: UInt32(truncatingIfNeeded: rng.next()) & 0x807F_FFFF)   // subnormal or zero
        case 1: return Float(bitPattern: UInt32(truncatingIfNeeded: rng.next()) & 0x81FF_FFFF)   // tiny normal
        default: return Float(Int(rng.next() % 2_000_001) - 1_000_000) / 1000
        }
    }

    @Test("vdpbf16ps gives exactly the bits of its definition (two FMAs per lane, odd pair first, DAZ/FTZ), subnormals included",
          .enabled(if: runsHere, skipReason))
    func instructionMatchesDefinition() {
        var rng = SplitMix64(seed: 2024)
        var mismatches: [String] = []
        var sawSubnormal = false, sawFlush = false
        for trial in 0..<20_000 {
            let a = (0..<32).map { _ in Self.randomBF16(&rng) }, b = (0..<32).map { _ in Self.randomBF16(&rng) }
            let acc = (0..<16).map { _ in Self.randomAccumulator(&rng) }
            var got = acc
            BF16Product.instruction(acc: &got, a: a, b: b)
            let want = Self.definition(acc: acc, a: a, b: b)
            for l in 0..<16 where got[l].bitPattern != want[l].bitPattern {
                if mismatches.count < 5 {
                    mismatches.append("trial \(trial) lane \(l): acc \(acc[l]) a \(a[2 * l + 1]),\(a[2 * l]) b \(b[2 * l + 1]),\(b[2 * l]): got \(got[l]) want \(want[l])")
                }
            }
            sawSubnormal = sawSubnormal || acc.contains { $0.isSubnormal } || a.contains { $0 & 0x7F80 == 0 && $0 & 0x7F != 0 }
            sawFlush = sawFlush || (0..<16).contains { l in
                let p = Double(Self.float(bf16: a[2 * l])) * Double(Self.float(bf16: b[2 * l]))
                return p != 0 && abs(p) < Double(Float.leastNormalMagnitude)
            }
        }
        #expect(sawSubnormal && sawFlush, "the inputs must exercise denormal inputs and underflowing products")
        #expect(mismatches.isEmpty, "\(mismatches.joined(separator: "; "))")
    }

    // MARK: weight products

    /// bf16 round to nearest even by arithmetic on the value (not the bit trick the kernel uses): the
    /// multiple of 2^(e−7) nearest x, ties to even; finite normal inputs only.
    static func bf16(_ x: Float) -> Double {
        guard x != 0 else { return 0 }
        let ulp = Double(sign: .plus, exponent: Int(x.exponent) - 7, significand: 1)
        return (Double(x) / ulp).rounded(.toNearestOrEven) * ulp
    }

    /// out [m, n] from `LinearProduct` in bf16 mode with `threads` threads (the Transformer's path).
    static func product(_ w: WeightMatrix, _ x: [Float], m: Int, threads: Int, accumulateOnto: [Float]? = nil) -> [Float] {
        var out = accumulateOnto ?? [Float](repeating: .nan, count: m * w.rows)
        let lin = Linear(weight: w, owner: NSObject())
        x.withUnsafeBufferPointer { xp in
            out.withUnsafeMutableBufferPointer { op in
                LinearProduct.run([.init(linear: lin, outOffset: 0)], x: xp.baseAddress!, m: m, ldx: w.cols, out: op.baseAddress!,
                                  ldo: w.rows, accumulate: accumulateOnto != nil, scratch: LinearProduct.Scratch(), threads: threads,
                                  compute: .bf16)
            }
        }
        return out
    }

    /// Shapes with a tail past the last 32 values (float formats) and block formats.
    static let shapes: [(WeightFormat, Int, Int)] = [(.f32, 21, 37), (.f16, 9, 64), (.bf16, 18, 70), (.q8_0, 21, 96),
                                                     (.q4_1, 40, 64), (.q4_K, 19, 512), (.q6_K, 17, 256)]

    @Test("x · Wᵀ in bf16 equals Σ bf16(x)·bf16(W) in double precision within Float32 accumulation's bound",
          .enabled(if: runsHere, skipReason), arguments: shapes)
    func definition(_ format: WeightFormat, _ rows: Int, _ cols: Int) {
        let bytes = KernelPathTests.matrix(format, rows: rows, cols: cols, seed: 31)
        let m = 7
        let x = KernelPathTests.floats(m * cols, seed: 32)
        bytes.withUnsafeBytes { raw in
            let w = WeightMatrix(format: format, rows: rows, cols: cols, base: raw.baseAddress!)
            var deq = [Float](repeating: 0, count: rows * cols)
            deq.withUnsafeMutableBufferPointer { CPUKernels.active.dequantize(w, rows: 0..<rows, into: $0.baseAddress!) }
            // Each output: ⌈k/32⌉ chunks of two FMAs per lane, then 15 additions; every rounding is at most
            // 2⁻²⁴ relative of a partial sum bounded by Σ|t|, so |error| ≤ (2⌈k/32⌉ + 15) · 2⁻²⁴ · Σ|t| (first order).
            let ops = Double(2 * ((cols + 31) / 32) + 15)
            for mm in [1, m] {
                let out = Self.product(w, x, m: mm, threads: 1)
                var worst = 0.0
                for i in 0..<mm {
                    for j in 0..<rows {
                        var want = 0.0, mag = 0.0, f32 = 0.0
                        for p in 0..<cols {
                            let t = Self.bf16(x[i * cols + p]) * Self.bf16(deq[j * cols + p])
                            want += t; mag += abs(t); f32 += Double(x[i * cols + p]) * Double(deq[j * cols + p])
                        }
                        let err = abs(Double(out[i * rows + j]) - want)
                        #expect(err <= 1.01 * ops * 0x1p-24 * mag + 1e-30, "\(format) m \(mm) [\(i), \(j)]: \(out[i * rows + j]) vs \(want)")
                        worst = max(worst, abs(Double(out[i * rows + j]) - f32) / max(mag, 1e-30))
                    }
                }
                // and it is bf16, not Float32: operands rounded to 8 significant bits move the result
                #expect(worst > 1e-5, "\(format): the bf16 product equals the Float32 one to \(worst); were the operands rounded?")
            }
        }
    }

    @Test("every bf16 output is bit-identical across thread counts, row groups and accumulation",
          .enabled(if: runsHere, skipReason), arguments: shapes)
    func bitIdentity(_ format: WeightFormat, _ rows: Int, _ cols: Int) {
        let bytes = KernelPathTests.matrix(format, rows: rows, cols: cols, seed: 41)
        let m = 9
        let x = KernelPathTests.floats(m * cols, seed: 42)
        bytes.withUnsafeBytes { raw in
            let w = WeightMatrix(format: format, rows: rows, cols: cols, base: raw.baseAddress!)
            let reference = Self.product(w, x, m: m, threads: 1)
            for threads in [2, 3, 5] {
                #expect(Self.product(w, x, m: m, threads: threads).map(\.bitPattern) == reference.map(\.bitPattern), "\(format) threads \(threads)")
            }
            for group in [1, 2, 3, 4, 5] {
                var i = 0
                while i < m {
                    let g = min(group, m - i)
                    let part = Self.product(w, Array(x[(i * cols)..<((i + g) * cols)]), m: g, threads: 2)
                    #expect(part.map(\.bitPattern) == reference[(i * rows)..<((i + g) * rows)].map(\.bitPattern), "\(format) rows \(i)..<\(i + g)")
                    i += g
                }
            }
            let base = KernelPathTests.floats(m * rows, seed: 43)
            let acc = Self.product(w, x, m: m, threads: 2, accumulateOnto: base)
            #expect(acc.map(\.bitPattern) == zip(base, reference).map { $0 + $1 }.map(\.bitPattern), "\(format) accumulate")
        }
    }

    // MARK: refusal

    @Test("--compute bf16 on a CPU without avx512_bf16 is a typed error naming the missing features (injected CPU flags)")
    func missingFeature() throws {
        let avx512 = Set(["avx2", "fma", "f16c", "bmi2", "avx512f", "avx512cd", "avx512bw", "avx512dq", "avx512vl"])
        let e = try #require(throws: ComputeModeError.self) { try ComputeMode.bf16.check(cpuFlags: avx512) }
        #expect(e.missing == ["avx512_bf16"])
        #expect(e.description.contains("avx512_bf16") && e.description.contains("--compute f32"), "\(e)")
        #expect(e.exitCode == ExitCode.badInput)
        let avx2 = try #require(throws: ComputeModeError.self) { try ComputeMode.bf16.check(cpuFlags: ["avx2", "fma", "f16c"]) }
        #expect(avx2.missing == ["avx512f", "avx512bw", "avx512dq", "avx512vl", "avx512_bf16"])
        // f32 needs nothing; bf16 passes with the features present
        try ComputeMode.f32.check(cpuFlags: [])
        #if arch(x86_64)
        try ComputeMode.bf16.check(cpuFlags: avx512.union(["avx512_bf16"]))
        #endif
        #expect(throws: InputError.self) { try ComputeMode(parsing: "fp8") }
        #expect(try ComputeMode(parsing: "BF16") == .bf16)
    }

    @Test("a model refuses bf16 on a CPU without it and keeps computing in f32")
    func modelRefuses() throws {
        guard let path = TestModels.ggufFile(TestModels.smol) else { return }
        let m = try Transformer.load(path: path)
        #expect(throws: ComputeModeError.self) { try m.setCompute(.bf16, cpuFlags: ["avx2", "fma"]) }
        #expect(m.compute == .f32)
    }

    @Test("bf16 greedy generation on SmolLM2 does not depend on --batch (rows per product)",
          .enabled(if: runsHere, skipReason))
    func generationIndependentOfBatch() throws {
        guard let path = TestModels.ggufFile(TestModels.smol) else { return }
        let m = try Transformer.load(path: path)
        try m.setCompute(.bf16)
        let prompts = (0..<5).map { s in (0..<(6 + 3 * s)).map { (($0 + 1) * 7919 + s * 104_729) % 40_000 + 100 } }
        let gen = Generator(model: m)
        func run(batch: Int) throws -> [[Int]] {
            try gen.generate(prompts: prompts, options: GenerationOptions(maxNewTokens: 12, eosIds: [], maxBatch: batch)).map(\.tokens)
        }
        // (the global thread count is left alone: other suites run concurrently; `bitIdentity` varies threads)
        let all = try run(batch: 5)
        let pairs = try run(batch: 2), single = try run(batch: 1)
        #expect(pairs == all && single == all)
    }
}
