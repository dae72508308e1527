import Foundation
import Testing
import KernelABI
@testable import ModelRuntime

/// Our dequantizer against gguf-py's `gguf.quants.dequantize` on the same block bytes
/// (fixture: notebooks-scripts/fixtures_gguf.py → Fixtures/gguf/blocks.json).
@Suite("GGUF dequantization against gguf-py")
struct GGUFDequantTests {
    struct Case: Sendable, CustomTestStringConvertible {
        let type: String, source: String, elements: Int, bytes: [UInt8], expected: [Float]
        var testDescription: String { "\(type) (\(source))" }
    }

    static func cases() throws -> [Case] {
        let j = try GGUFFixtures.json("blocks.json")
        let list = try #require(j["cases"] as? [[String: Any]])
        return try list.map { c in
            let b64 = try #require(c["bytes_base64"] as? String)
            return Case(type: try #require(c["type"] as? String), source: try #require(c["source"] as? String),
                        elements: try #require(c["elements"] as? Int),
                        bytes: Array(try #require(Data(base64Encoded: b64))),
                        expected: try GGUFFixtures.floats(c["expected"]))
        }
    }

    @Test("fixture covers every dequantizable type")
    func coverage() throws {
        let types = Set(try Self.cases().map(\.type))
        let supported = Set(GGMLType.allCases.filter(\.canDequantize).map(\.name)).subtracting(["F32"])
        #expect(supported.isSubset(of: types))
    }

    @Test("blocks dequantize like gguf-py, with every kernel build the CPU runs",
          arguments: try cases().flatMap { c in CPUKernels.available.map { (c, $0) } })
    func blocks(_ c: Case, _ path: KernelPath) throws {
        let type = try #require(GGMLType.allCases.first { $0.name == c.type })
        #expect(c.bytes.count == type.byteCount(elements: c.elements))
        #expect(c.expected.count == c.elements)
        var out = [Float](repeating: .nan, count: c.elements)
        c.bytes.withUnsafeBytes { src in
            out.withUnsafeMutableBufferPointer { dst in
                GGMLDequantizer.dequantize(type, from: src.baseAddress!, elements: c.elements, into: dst.baseAddress!,
                                           kernels: CPUKernels.kernels(for: path))
            }
        }
        // Same operations in the same order as the reference: equal up to float32 rounding.
        #expect(maxULPDiff(out, c.expected) <= 1, "max ulp difference \(maxULPDiff(out, c.expected))")
    }

    @Test("half precision special values (IEEE 754 binary16 definitions)")
    func halfSpecials() {
        #expect(GGMLDequantizer.halfToFloat(0x7C00) == .infinity)
        #expect(GGMLDequantizer.halfToFloat(0xFC00) == -.infinity)
        #expect(GGMLDequantizer.halfToFloat(0x7E00).isNaN)
        #expect(GGMLDequantizer.halfToFloat(0x0001) == 0x1p-24)       // smallest subnormal
        #expect(GGMLDequantizer.halfToFloat(0x03FF) == 1023 * 0x1p-24) // largest subnormal
        #expect(GGMLDequantizer.halfToFloat(0x3C00) == 1)
        #expect(GGMLDequantizer.halfToFloat(0xC000) == -2)
        #expect(GGMLDequantizer.halfToFloat(0x7BFF) == 65504)
        #expect(GGMLDequantizer.halfToFloat(0x8000).sign == .minus)
    }
}
