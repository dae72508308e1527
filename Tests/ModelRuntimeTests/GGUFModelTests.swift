import Foundation
import Testing
@testable import ModelRuntime
import AblabCore

/// The default models read by our reader against gguf-py's `GGUFReader` + `gguf.quants.dequantize`
/// (fixtures: notebooks-scripts/fixtures_gguf.py → Fixtures/gguf/model-*.json).
@Suite("GGUF reader on the default models against gguf-py")
struct GGUFModelTests {
    struct Model: Sendable, CustomTestStringConvertible {
        let fixture: String, file: String
        var testDescription: String { file }
    }

    static let models = [
        Model(fixture: "model-smollm2-135m-q4_1.json", file: GGUFFixtures.smolFile),
        Model(fixture: "model-qwen2.5-coder-0.5b.json", file: GGUFFixtures.qwenFile),
    ].filter { GGUFFixtures.modelExists($0.file) }

    @Test("header, metadata and tensor table", arguments: models)
    func table(_ m: Model) throws {
        let j = try GGUFFixtures.json(m.fixture)
        let g = try GGUFFile(path: GGUFFixtures.modelPath(m.file))
        #expect(Int(g.version) == j["version"] as? Int)
        #expect(g.alignment == j["alignment"] as? Int)
        #expect(g.dataOffset == j["data_offset"] as? Int)
        #expect(g.fileSize == j["file_size"] as? Int)
        #expect(g.metadataKeys == j["metadata_keys"] as? [String])
        #expect(g.architecture == j["architecture"] as? String)

        let types = try #require(j["metadata_types"] as? [String: String])
        for (k, t) in types { #expect(g.metadata[k]?.typeName == t, "type of \(k)") }

        let scalars = try #require(j["scalars"] as? [String: Any])
        for (k, v) in scalars {
            let value = try #require(g.metadata[k], "\(k)")
            switch v {
            case let s as String: #expect(g.string(k) == s, "\(k)")
            case let d as [String: Any]:   // long string: compare sha256 and UTF-8 length
                let s = try #require(g.string(k))
                #expect(s.utf8.count == d["utf8_length"] as? Int, "\(k)")
                #expect(SHA256.hex(Array(s.utf8)) == d["string_sha256"] as? String, "\(k)")
            case let n as NSNumber:
                if case .bool(let b) = value { #expect(b == n.boolValue, "\(k)") }
                else if case .float32 = value { #expect(g.float(k) == Float(n.doubleValue), "\(k)") }
                else if case .float64 = value { #expect(g.double(k) == n.doubleValue, "\(k)") }
                else { #expect(g.int(k) == n.intValue, "\(k)") }
            default: Issue.record("unexpected fixture value for \(k)")
            }
        }

        let arrays = try #require(j["arrays"] as? [String: [String: Any]])
        for (k, a) in arrays {
            let count = try #require(a["count"] as? Int)
            let first = try #require(a["first"] as? [Any]), last = try #require(a["last"] as? [Any])
            if first.first is String {
                let s = try #require(g.stringArray(k), "\(k)")
                #expect(s.count == count)
                #expect(Array(s.prefix(first.count)) == first as? [String], "\(k)")
                #expect(Array(s.suffix(last.count)) == last as? [String], "\(k)")
            } else {
                let v = try #require(g.intArray(k), "\(k)")
                #expect(v.count == count)
                #expect(Array(v.prefix(first.count)) == (first as? [NSNumber])?.map(\.intValue), "\(k)")
                #expect(Array(v.suffix(last.count)) == (last as? [NSNumber])?.map(\.intValue), "\(k)")
            }
        }

        let tensors = try #require(j["tensors"] as? [[String: Any]])
        #expect(g.tensors.count == tensors.count)
        for (ours, ref) in zip(g.tensors, tensors) {
            #expect(ours.name == ref["name"] as? String)
            #expect(ours.type.name == ref["type"] as? String, "\(ours.name)")
            #expect(ours.dims == ref["dims"] as? [Int], "\(ours.name)")
            #expect(ours.shape == (ref["dims"] as? [Int])?.reversed(), "\(ours.name)")
            #expect(ours.offset == ref["offset"] as? Int, "\(ours.name)")
            #expect(ours.byteCount == ref["bytes"] as? Int, "\(ours.name)")
            #expect(g.tensorInfo(ours.name) == ours)
        }
    }

    @Test("one real tensor per type dequantizes like gguf-py", arguments: models)
    func samples(_ m: Model) throws {
        let j = try GGUFFixtures.json(m.fixture)
        let g = try GGUFFile(path: GGUFFixtures.modelPath(m.file))
        let samples = try #require(j["samples"] as? [String: [String: Any]])
        for (typeName, s) in samples.sorted(by: { $0.key < $1.key }) {
            let tname = try #require(s["tensor"] as? String)
            let t = try #require(g.tensorInfo(tname))
            #expect(t.type.name == typeName)
            #expect(t.shape == s["shape"] as? [Int])
            let full = try g.dequantize(t)
            #expect(full.count == t.elementCount)
            var sum = 0.0, sumAbs = 0.0, sumSq = 0.0
            for v in full { let d = Double(v); sum += d; sumAbs += abs(d); sumSq += d * d }
            let refAbs = try #require(s["sum_abs"] as? Double)
            #expect(abs(sum - (s["sum"] as? Double ?? .nan)) <= 1e-9 * refAbs + 1e-12, "\(t.name) sum")
            #expect(abs(sumAbs - refAbs) <= 1e-9 * refAbs, "\(t.name) sum |x|")
            let refSq = try #require(s["sum_squares"] as? Double)
            #expect(abs(sumSq - refSq) <= 1e-9 * refSq, "\(t.name) sum x²")

            for row in try #require(s["rows"] as? [[String: Any]]) {
                let r = try #require(row["row"] as? Int)
                let want = try GGUFFixtures.floats(row["first_values"])
                let got = try g.dequantize(t, rows: r..<(r + 1))
                #expect(got.count == t.rowElements)
                #expect(maxULPDiff(Array(got.prefix(want.count)), want) <= 1, "\(t.name) row \(r)")
                // the row slice equals the same part of the full tensor
                #expect(Array(full[(r * t.rowElements)..<((r + 1) * t.rowElements)]) == got)
                let rs = got.reduce(0.0) { $0 + Double($1) }
                let ra = got.reduce(0.0) { $0 + abs(Double($1)) }
                #expect(abs(rs - (row["sum"] as? Double ?? .nan)) <= 1e-9 * ra + 1e-12, "\(t.name) row \(r) sum")
            }
            // into-buffer variant gives the same numbers
            let buf = UnsafeMutablePointer<Float>.allocate(capacity: t.elementCount)
            defer { buf.deallocate() }
            try g.dequantize(t, into: buf)
            #expect(Array(UnsafeBufferPointer(start: buf, count: t.elementCount)) == full)
        }
    }

    @Test("raw data of a tensor is its bytes in the file", arguments: models)
    func rawData(_ m: Model) throws {
        let g = try GGUFFile(path: GGUFFixtures.modelPath(m.file))
        let t = try #require(g.tensors.last)
        let raw = try g.rawData(t)
        #expect(raw.count == t.byteCount)
        let h = try #require(FileHandle(forReadingAtPath: g.path))
        try h.seek(toOffset: UInt64(g.dataOffset + t.offset))
        let direct = try #require(try h.read(upToCount: min(4096, t.byteCount)))
        #expect(Array(raw.prefix(direct.count)) == Array(direct))
    }

    @Test("typed accessors and required keys", arguments: models)
    func accessors(_ m: Model) throws {
        let g = try GGUFFile(path: GGUFFixtures.modelPath(m.file))
        let arch = try g.requireString("general.architecture")
        #expect(try g.requireInt("\(arch).block_count") > 0)
        #expect(g.string("\(arch).block_count") == nil)
        #expect(throws: GGUFError.missingKey(file: g.path, key: "no.such.key")) { try g.requireInt("no.such.key") }
        #expect(throws: GGUFError.self) { try g.requireString("\(arch).block_count") }
        #expect(throws: GGUFError.self) { try g.requireStringArray("general.architecture") }
        #expect(throws: GGUFError.self) { try g.requireTensor("no.such.tensor") }
        let t = try #require(g.tensors.first)
        #expect(throws: GGUFError.self) { try g.dequantize(t, rows: 0..<(t.rowCount + 1)) }
    }

}
