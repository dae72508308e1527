import Foundation
import Testing
@testable import ModelRuntime

/// GGMLQuantizer against llama.cpp's reference quantizers (ggml_quantize_chunk, i.e. quantize_row_*_ref;
/// gguf-py agrees on the types it has), on the rows of notebooks-scripts/fixtures_quant.py: synthetic
/// rows that reach the branches (zero, constant, all-positive, tiny, subnormal-scale blocks) and real
/// SmolLM2 weights. Plus error bounds that follow from each format's definition.
@Suite("Quantizer")
struct QuantizerTests {
    struct Fixture {
        let rows: Int, cols: Int
        let input: [Float]
        let kinds: [String]
        func expected(_ type: GGMLType) throws -> [UInt8] {
            [UInt8](try Data(contentsOf: try QuantizerTests.url(type.name + ".bin")))
        }
    }

    static func url(_ name: String) throws -> URL {
        try #require(Bundle.module.url(forResource: "Fixtures/quant/" + name, withExtension: nil),
                     "fixture \(name) missing; run notebooks-scripts/fixtures_quant.py")
    }

    static func fixture() throws -> Fixture {
        let m = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: url("manifest.json"))) as? [String: Any])
        let rows = try #require(m["rows"] as? Int), cols = try #require(m["cols"] as? Int)
        let raw = try Data(contentsOf: url("input.f32"))
        #expect(raw.count == rows * cols * 4)
        let input = raw.withUnsafeBytes { b in (0..<rows * cols).map { Float(bitPattern: b.loadUnaligned(fromByteOffset: 4 * $0, as: UInt32.self)) } }
        return Fixture(rows: rows, cols: cols, input: input, kinds: m["kinds"] as? [String] ?? [])
    }

    static let types: [GGMLType] = [.f16, .bf16, .q8_0, .q4_0, .q4_1, .q5_0, .q5_1, .q4_K, .q5_K, .q6_K]

    @Test("byte-identical to llama.cpp's reference quantizer", arguments: types)
    func identical(_ type: GGMLType) throws {
        let f = try Self.fixture()
        let want = try f.expected(type)
        let got = try GGMLQuantizer.quantize(type, rows: f.rows, cols: f.cols, values: f.input)
        #expect(got.count == want.count)
        let bb = type.blockBytes, bpr = f.cols / type.blockSize
        var differing: [String] = []
        for b in 0..<min(got.count, want.count) / bb where got[b * bb..<(b + 1) * bb] != want[b * bb..<(b + 1) * bb] {
            differing.append("block \(b) (row \(b / bpr): \(f.kinds.indices.contains(b / bpr) ? f.kinds[b / bpr] : "?"))")
        }
        #expect(differing.isEmpty, "\(differing.count) of \(got.count / bb) \(type) blocks differ: \(differing.prefix(5))")
    }

    /// |d − half(d)| ≤ max(|d|·2⁻¹¹, 2⁻²⁵): half precision keeps 11 significant bits (nearest rounding),
    /// and its subnormals are spaced 2⁻²⁴.
    static func halfError(_ d: Float) -> Float { max(abs(d) * 0x1p-11, 0x1p-25) }

    /// The legacy formats' worst-case error per block, from their definitions (ggml-quants.c):
    /// - Q8_0: q = round(x/d), d = amax/127: |x − q·d_h| ≤ d/2 + 127·|d − d_h|.
    /// - Q4_0 / Q5_0: d = m/−2ᵇ⁻¹ for the value m of largest magnitude, levels −2ᵇ⁻¹…2ᵇ⁻¹−1: the value of
    ///   sign opposite to m may sit at +2ᵇ⁻¹ and is clamped, so |error| ≤ |d| + 2ᵇ⁻¹·|d − d_h|.
    /// - Q4_1 / Q5_1: d = (max − min)/(2ᵇ − 1), q = ⌊(x − min)/d + ½⌋: |error| ≤ d/2 + (2ᵇ − 1)·|d − d_h| + |min − half(min)|.
    /// Plus 2⁻²⁰·amax for Float32 arithmetic.
    static func legacyBound(_ type: GGMLType, _ x: ArraySlice<Float>) -> Float {
        let amax = x.map { abs($0) }.max()!, lo = x.min()!, hi = x.max()!
        let slack = amax * 0x1p-20
        switch type {
        case .q8_0: let d = amax / 127; return d / 2 + 127 * halfError(d) + slack
        case .q4_0: let d = amax / 8; return d + 8 * halfError(d) + slack
        case .q5_0: let d = amax / 16; return d + 16 * halfError(d) + slack
        case .q4_1: let d = (hi - lo) / 15; return d / 2 + 15 * halfError(d) + halfError(lo) + slack
        case .q5_1: let d = (hi - lo) / 31; return d / 2 + 31 * halfError(d) + halfError(lo) + slack
        default: fatalError()
        }
    }

    @Test("legacy formats: round-trip error within the format's bound", arguments: [GGMLType.q8_0, .q4_0, .q4_1, .q5_0, .q5_1])
    func legacyRoundTrip(_ type: GGMLType) throws {
        let f = try Self.fixture()
        let bytes = try GGMLQuantizer.quantize(type, rows: f.rows, cols: f.cols, values: f.input)
        var back = [Float](repeating: .nan, count: f.input.count)
        bytes.withUnsafeBytes { src in back.withUnsafeMutableBufferPointer {
            GGMLDequantizer.dequantize(type, from: src.baseAddress!, elements: f.input.count, into: $0.baseAddress!)
        } }
        var worst: Float = 0
        for b in 0..<f.input.count / 32 {
            let x = f.input[b * 32..<(b + 1) * 32]
            let bound = Self.legacyBound(type, x)
            for i in x.indices { worst = max(worst, abs(x[i] - back[i]) / max(bound, .leastNormalMagnitude)) }
        }
        #expect(worst <= 1, "worst error / bound = \(worst)")
    }

    /// The K formats' defining property: every level is the nearest point of its sub-block's grid
    /// (Q4_K/Q5_K: x ≈ D·q − M, q in 0…nmax; Q6_K: x ≈ D·(q − 32), q in 0…63), D and M as stored in the
    /// block — or the end level when x lies beyond the grid. Sub-blocks whose D is 0 hold −M only.
    @Test("K formats: every level is the nearest grid point of its stored scale", arguments: [GGMLType.q4_K, .q5_K, .q6_K])
    func kNearest(_ type: GGMLType) throws {
        let f = try Self.fixture()
        let y = try GGMLQuantizer.quantize(type, rows: f.rows, cols: f.cols, values: f.input)
        func half(_ o: Int) -> Float { Float(Float16(bitPattern: UInt16(y[o]) | UInt16(y[o + 1]) << 8)) }
        var bad: [String] = []
        var checked = 0
        for b in 0..<f.input.count / 256 {
            let o = b * type.blockBytes
            let x = Array(f.input[b * 256..<(b + 1) * 256])
            for i in 0..<256 {
                let (D, M, q, lo, hi): (Float, Float, Int, Int, Int)
                if type == .q6_K {
                    let ql = y[o + (i / 128) * 64 + (i % 64)], qh = y[o + 128 + (i / 128) * 32 + (i % 32)]
                    let low = (i % 128) < 64 ? ql & 0xF : ql >> 4
                    let high = (qh >> UInt8(2 * ((i % 128) / 32))) & 3
                    q = Int(low | high << 4) - 32
                    D = half(o + 208) * Float(Int8(bitPattern: y[o + 192 + i / 16]))
                    M = 0; lo = -32; hi = 31
                } else {
                    let j = i / 32, sc = o + 4
                    let (s, m): (UInt8, UInt8) = j < 4 ? (y[sc + j] & 63, y[sc + j + 4] & 63)
                        : ((y[sc + j + 4] & 0xF) | (y[sc + j - 4] >> 6) << 4, (y[sc + j + 4] >> 4) | (y[sc + j] >> 6) << 4)
                    D = half(o) * Float(s); M = half(o + 2) * Float(m)
                    let qs = type == .q4_K ? o + 16 : o + 48
                    let byte = y[qs + (i / 64) * 32 + (i % 32)]
                    var l = Int((i % 64) < 32 ? byte & 0xF : byte >> 4)
                    if type == .q5_K, (y[o + 16 + (i % 32)] >> UInt8(2 * (i / 64) + ((i % 64) < 32 ? 0 : 1))) & 1 == 1 { l += 16 }
                    q = l; lo = 0; hi = type == .q4_K ? 15 : 31
                }
                guard D != 0 else { continue }
                checked += 1
                let r = (x[i] + M) / D, l = Float(q)
                let ok = abs(r - l) <= 0.5 + 1e-3 || (q == lo && r < l) || (q == hi && r > l)
                if !ok { bad.append("block \(b) value \(i): x \(x[i]) level \(q) of D \(D) M \(M)") }
            }
        }
        #expect(checked > f.input.count / 2)
        #expect(bad.isEmpty, "\(bad.count) levels are not the nearest: \(bad.prefix(3))")
    }

    @Test("plain formats: F32 bits unchanged, F16 / BF16 decode within half a unit of their precision")
    func plain() throws {
        let f = try Self.fixture()
        let b32 = try GGMLQuantizer.quantize(.f32, rows: f.rows, cols: f.cols, values: f.input)
        #expect(b32 == f.input.flatMap { v in withUnsafeBytes(of: v.bitPattern.littleEndian) { Array($0) } })
        let b16 = try GGMLQuantizer.quantize(.bf16, rows: f.rows, cols: f.cols, values: f.input)
        for (i, x) in f.input.enumerated() {
            let v = Float(bitPattern: UInt32(b16[2 * i]) << 16 | UInt32(b16[2 * i + 1]) << 24)
            #expect(abs(v - x) <= abs(x) * 0x1p-8)   // 8 significant bits, nearest rounding
        }
    }

    @Test("bad input: a clear error, never a trap")
    func badInput() throws {
        #expect(throws: GGMLQuantizer.Failure.self) { try GGMLQuantizer.quantize(.q4_K, rows: 1, cols: 32, values: [Float](repeating: 1, count: 32)) }
        #expect(throws: GGMLQuantizer.Failure.self) { try GGMLQuantizer.quantize(.q2_K, rows: 1, cols: 256, values: [Float](repeating: 1, count: 256)) }
        #expect(throws: GGMLQuantizer.Failure.self) { try GGMLQuantizer.quantize(.q8_0, rows: 2, cols: 32, values: [Float](repeating: 1, count: 32)) }
        var v = [Float](repeating: 0.5, count: 64); v[40] = .nan
        do {
            _ = try GGMLQuantizer.quantize(.q4_0, rows: 2, cols: 32, values: v, tensor: "blk.0.x.weight")
            Issue.record("NaN accepted")
        } catch let e as GGMLQuantizer.Failure {
            #expect(e == .nonFinite(index: 40, tensor: "blk.0.x.weight"))
            #expect(e.description.hasPrefix("blk.0.x.weight: value 40"))
        }
    }
}
