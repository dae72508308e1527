import Foundation
import Testing
@testable import ModelRuntime

/// GGUFWriter output read back by our reader (whose correctness is established against gguf-py in the
/// other suites); F16 rounding against numpy. When ABLAB_INTEROP_DIR is set, the round-trip file is left
/// there for notebooks-scripts/check_gguf_writer.py (gguf-py reads it).
@Suite("GGUF writer")
struct GGUFWriterTests {
    static func sampleMetadata() -> [(String, GGUFValue)] {
        [
            ("general.architecture", .string("test")),
            ("t.u8", .uint8(250)), ("t.i8", .int8(-128)), ("t.u16", .uint16(65535)), ("t.i16", .int16(-32768)),
            ("t.u32", .uint32(.max)), ("t.i32", .int32(.min)), ("t.u64", .uint64(.max)), ("t.i64", .int64(.min)),
            ("t.f32", .float32(-1.5e-7)), ("t.f64", .float64(.pi)), ("t.true", .bool(true)), ("t.false", .bool(false)),
            ("t.string", .string("multi\nline ✓ \"quoted\"")), ("t.empty_string", .string("")),
            ("t.strings", .array(.string, [.string("a"), .string(""), .string("ü")])),
            ("t.ints", .array(.int32, [.int32(1), .int32(-2)])),
            ("t.floats", .array(.float32, [.float32(0.25), .float32(-8)])),
            ("t.empty", .array(.uint8, [])),
            ("t.nested", .array(.array, [.array(.int64, [.int64(1), .int64(2)]), .array(.string, [.string("x")])])),
        ]
    }

    @Test("F32 → F16 rounds like numpy (nearest even, overflow to inf)")
    func halfRounding() throws {
        let j = try GGUFFixtures.json("blocks.json")
        let f = try #require(j["f32_to_f16"] as? [String: Any])
        let inBits = try GGUFFixtures.ints(f["float32_bits"]), want = try GGUFFixtures.ints(f["float16_bits"])
        #expect(inBits.count == want.count && inBits.count > 400)
        for (b, w) in zip(inBits, want) {
            let got = GGUFWriter.floatToHalf(Float(bitPattern: UInt32(b)))
            #expect(Int(got) == w, "float bits \(String(b, radix: 16))")
        }
        #expect(GGUFDequantizerRoundTrip.allHalvesRoundTrip())
    }

    @Test("round trip of metadata and tensors through our reader", arguments: [32, 64])
    func roundTrip(alignment: Int) throws {
        var w = GGUFWriter(alignment: alignment)
        for (k, v) in Self.sampleMetadata() { w.set(k, v) }
        w.set("t.u8", .uint8(7))        // overwrite keeps position
        var rng = SystemRandomNumberGenerator()
        let a = (0..<(3 * 5)).map { _ in Float.random(in: -2...2, using: &rng) }
        let h = (0..<(4 * 8)).map { _ in Float.random(in: -100...100, using: &rng) }
        try w.addTensor(name: "a", dims: [5, 3], type: .f32, data: a)
        try w.addTensor(name: "h", dims: [8, 4], type: .f16, data: h)
        let q8 = try GGUFDequantTests.cases().first { $0.type == "Q8_0" }!
        try w.addRawTensor(name: "q", dims: [32, q8.elements / 32], type: .q8_0, bytes: q8.bytes)
        try w.addTensor(name: "s", dims: [1], type: .f32, data: [42])

        let dir = try GGUFFixtures.tempDir()
        let path = dir + "/rt.gguf"
        try w.write(to: path)
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir) == ["rt.gguf"])  // no temp left
        let g = try GGUFFile(path: path)
        #expect(g.version == 3 && g.alignment == alignment)
        var keys = Self.sampleMetadata().map(\.0)
        if alignment != 32 { keys.append("general.alignment") }
        #expect(g.metadataKeys == keys)
        for (k, v) in Self.sampleMetadata() where k != "t.u8" { #expect(g.metadata[k] == v, "\(k)") }
        #expect(g.metadata["t.u8"] == .uint8(7))
        #expect(g.tensors.map(\.name) == ["a", "h", "q", "s"])
        #expect(g.tensors.allSatisfy { $0.offset % alignment == 0 })
        #expect(try g.dequantize(g.requireTensor("a")) == a)
        #expect(try g.requireTensor("a").shape == [3, 5])
        #expect(try g.dequantize(g.requireTensor("h")) == h.map { GGMLDequantizer.halfToFloat(GGUFWriter.floatToHalf($0)) })
        #expect(try g.dequantize(g.requireTensor("q")) == q8.expected)
        #expect(try g.dequantize(g.requireTensor("s")) == [42])

        if let interop = ProcessInfo.processInfo.environment["ABLAB_INTEROP_DIR"], alignment == 64 {
            try? FileManager.default.createDirectory(atPath: interop, withIntermediateDirectories: true)
            try w.write(to: interop + "/gguf-writer-roundtrip.gguf")
            let expect: [String: Any] = ["a": a, "h": h.map { GGMLDequantizer.halfToFloat(GGUFWriter.floatToHalf($0)) },
                                         "q": q8.expected, "s": [Float(42)]]
            try JSONSerialization.data(withJSONObject: expect.mapValues { ($0 as! [Float]).map(Double.init) })
                .write(to: URL(fileURLWithPath: interop + "/gguf-writer-roundtrip.json"))
        }
    }

    @Test("copy of a real model: replaced tensors get new data, others stay byte-identical",
          .enabled(if: GGUFFixtures.modelExists(GGUFFixtures.smolFile)))
    func copyModel() throws {
        let src = try GGUFFile(path: GGUFFixtures.modelPath(GGUFFixtures.smolFile))
        let t16 = try #require(src.tensors.first { $0.dims.count == 2 && $0.type != .f32 })
        let t32 = try #require(src.tensors.first { $0.type == .f32 })
        let d16 = try src.dequantize(t16).map { $0 * 0.5 }
        let d32 = try src.dequantize(t32).map { $0 + 1 }
        // With ABLAB_INTEROP_DIR set the copy is kept there for check_gguf_writer.py (gguf-py reads it).
        let interop = ProcessInfo.processInfo.environment["ABLAB_INTEROP_DIR"]
        let dir = try interop ?? GGUFFixtures.tempDir()
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { if interop == nil { try? FileManager.default.removeItem(atPath: dir) } }
        let path = dir + "/gguf-writer-copy.gguf"
        try GGUFWriter.copy(from: src, replacing: [t16.name: (t16.dims, .f16, d16), t32.name: (t32.dims, .f32, d32)],
                            extraMetadata: ["ablab.edited": .bool(true), "general.name": .string("edited")], to: path)
        let g = try GGUFFile(path: path)
        #expect(g.metadataKeys == src.metadataKeys + ["ablab.edited"])
        #expect(g.string("general.name") == "edited" && g.bool("ablab.edited") == true)
        for k in src.metadataKeys where k != "general.name" { #expect(g.metadata[k] == src.metadata[k], "\(k)") }
        #expect(g.tensors.map(\.name) == src.tensors.map(\.name))
        for t in src.tensors where t.name != t16.name && t.name != t32.name {
            let n = try #require(g.tensorInfo(t.name))
            #expect(n.type == t.type && n.dims == t.dims)
            #expect(try g.rawData(n).elementsEqual(try src.rawData(t)), "\(t.name)")
        }
        let n16 = try g.requireTensor(t16.name)
        #expect(n16.type == .f16 && n16.dims == t16.dims)
        #expect(try g.dequantize(n16) == d16.map { GGMLDequantizer.halfToFloat(GGUFWriter.floatToHalf($0)) })
        #expect(try g.dequantize(g.requireTensor(t32.name)) == d32)
        if interop != nil {
            let expect: [String: Any] = [
                "source": src.path, "replaced_f16": t16.name, "replaced_f32": t32.name,
                "f16_first": d16.prefix(256).map { Double(GGMLDequantizer.halfToFloat(GGUFWriter.floatToHalf($0))) },
                "f32_first": d32.prefix(256).map(Double.init)]
            try JSONSerialization.data(withJSONObject: expect).write(to: URL(fileURLWithPath: dir + "/gguf-writer-copy.json"))
        }
    }

    @Test("invalid requests are typed errors and leave no file behind")
    func errors() throws {
        var w = GGUFWriter()
        try w.addTensor(name: "x", dims: [2], data: [1, 2])
        #expect(throws: GGUFError.self) { try w.addTensor(name: "x", dims: [2], data: [1, 2]) }
        #expect(throws: GGUFError.self) { try w.addTensor(name: "y", dims: [3], data: [1, 2]) }
        #expect(throws: GGUFError.self) { try w.addTensor(name: "y", dims: [32], type: .q8_0, data: Array(repeating: 0, count: 32)) }
        #expect(throws: GGUFError.self) { try w.addRawTensor(name: "y", dims: [32], type: .q8_0, bytes: [1, 2, 3]) }
        #expect(throws: GGUFError.self) { try w.addRawTensor(name: "y", dims: [33], type: .q8_0, bytes: []) }
        #expect(throws: GGUFError.self) { try w.addTensor(name: String(repeating: "n", count: 64), dims: [1], data: [0]) }
        #expect(throws: GGUFError.self) { try w.addTensor(name: "z", dims: [1, 1, 1, 1, 1], data: [0]) }
        w.set("bad", .array(.int32, [.int32(1), .string("no")]))
        let dir = try GGUFFixtures.tempDir()
        #expect(throws: GGUFError.self) { try w.write(to: dir + "/bad.gguf") }
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir).isEmpty)
        let src = try GGUFFile(path: try RawGGUF.valid().write(dir, "v.gguf"))
        #expect(throws: GGUFError.missingTensor(file: src.path, tensor: "nope")) {
            _ = try GGUFWriter.copy(from: src, replacing: ["nope": ([1], .f32, [0])])
        }
    }
}

enum GGUFDequantizerRoundTrip {
    /// Every finite half → float → half is the identity (both conversions are exact there).
    static func allHalvesRoundTrip() -> Bool {
        for h in 0...0xFFFF {
            let f = GGMLDequantizer.halfToFloat(UInt16(h))
            if f.isNaN { continue }
            if GGUFWriter.floatToHalf(f) != UInt16(h) { return false }
        }
        return true
    }
}
