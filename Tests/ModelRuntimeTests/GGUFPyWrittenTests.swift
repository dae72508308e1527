import Foundation
import Testing
@testable import ModelRuntime

/// A tiny file written by gguf-py's GGUFWriter, read by our reader, compared with what gguf-py's
/// reader saw (fixture: notebooks-scripts/fixtures_gguf.py → gguf-py-written.{gguf,json}).
@Suite("GGUF written by gguf-py")
struct GGUFPyWrittenTests {
    @Test("metadata of every type, nested arrays and tensors")
    func read() throws {
        let j = try GGUFFixtures.json("gguf-py-written.json")
        let g = try GGUFFile(path: try GGUFFixtures.url("gguf-py-written.gguf").path)
        #expect(Int(g.version) == j["version"] as? Int)
        #expect(g.alignment == j["alignment"] as? Int)
        #expect(g.dataOffset == j["data_offset"] as? Int)
        #expect(g.metadataKeys == j["metadata_keys"] as? [String])
        let meta = try #require(j["metadata"] as? [String: [String: Any]])
        for (k, m) in meta { #expect(g.metadata[k]?.typeName == m["type"] as? String, "\(k)") }

        #expect(g.metadata["test.u8"] == .uint8(200))
        #expect(g.metadata["test.i8"] == .int8(-100))
        #expect(g.metadata["test.u16"] == .uint16(60000))
        #expect(g.metadata["test.i16"] == .int16(-30000))
        #expect(g.metadata["test.u32"] == .uint32(4_000_000_000))
        #expect(g.metadata["test.i32"] == .int32(-2_000_000_000))
        #expect(g.metadata["test.u64"] == .uint64(18_000_000_000_000_000_000))
        #expect(g.int("test.u64") == nil)   // above Int.max
        #expect(g.metadata["test.i64"] == .int64(-9_000_000_000_000_000_000))
        #expect(g.float("test.f32") == Float((meta["test.f32"]?["value"] as? Double) ?? .nan))
        #expect(g.double("test.f64") == 0.1)
        #expect(g.bool("test.bool_true") == true && g.bool("test.bool_false") == false)
        #expect(g.string("test.string") == meta["test.string"]?["value"] as? String)
        #expect(g.string("test.empty_string") == "")
        #expect(g.intArray("test.int_array") == [1, -2, 3])
        #expect(g.floatArray("test.float_array") == [0.5, -1.25, 3.0])
        #expect(g.stringArray("test.string_array") == ["a", "bc", ""])
        #expect(g.metadata["test.bool_array"]?.arrayValue == [.bool(true), .bool(false)])
        let nested = try #require(g.metadata["test.nested"]?.arrayValue)
        #expect(nested.map { $0.arrayValue?.compactMap(\.intValue) } == [[1, 2], [3]])

        let tensors = try #require(j["tensors"] as? [[String: Any]])
        #expect(g.tensors.map(\.name) == tensors.map { $0["name"] as? String ?? "" })
        for ref in tensors {
            let tname = try #require(ref["name"] as? String)
            let t = try #require(g.tensorInfo(tname))
            #expect(t.type.name == ref["type"] as? String)
            #expect(t.dims == ref["dims"] as? [Int])
            #expect(t.offset == ref["offset"] as? Int)
            #expect(t.byteCount == ref["bytes"] as? Int)
            #expect(try g.dequantize(t) == (try GGUFFixtures.floats(ref["values"])), "\(t.name)")
        }
        // torch shape [3, 5] was written; GGUF dims are [5, 3]; row 2 is the torch row a[2, :]
        let a = try #require(g.tensorInfo("a.f32"))
        #expect(a.shape == [3, 5])
        let all = try g.dequantize(a)
        #expect(try g.dequantize(a, rows: 2..<3) == Array(all[10..<15]))
    }
}
