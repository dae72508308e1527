import Foundation
import Testing
@testable import ModelRuntime

/// Malformed files must give a typed `GGUFError` (never a crash, never a huge allocation).
@Suite("GGUF reader on hostile input")
struct GGUFHostileTests {
    @Test("the hand-made valid file reads as built")
    func valid() throws {
        let dir = try GGUFFixtures.tempDir()
        let g = try GGUFFile(path: try RawGGUF.valid().write(dir, "ok.gguf"))
        #expect(g.version == 3 && g.alignment == 32 && g.dataOffset % 32 == 0)
        #expect(g.metadataKeys == ["general.architecture", "test.count"])
        #expect(g.int("test.count") == 7)
        let w = try #require(g.tensorInfo("w"))
        #expect(w.dims == [4, 2] && w.shape == [2, 4] && w.rowCount == 2 && w.rowElements == 4)
        #expect(try g.dequantize(w) == (0..<8).map { Float($0) * 0.5 - 1 })
        #expect(try g.dequantize(w, rows: 1..<2) == [1, 1.5, 2, 2.5])
        let h = try #require(g.tensorInfo("h"))
        #expect(try g.dequantize(h) == (0..<8).map { Float($0) - 3 })
        #expect(try g.dequantize(h, rows: 3..<5) == [0, 1])   // 1-D: rows are single elements
    }

    @Test("a file cut at any point throws a typed error")
    func truncated() throws {
        let dir = try GGUFFixtures.tempDir()
        let full = RawGGUF.valid().bytes
        // every cut inside the header and tables, and some inside the data
        for cut in Array(0..<min(full.count, 260)) + [full.count - 1, full.count - 17, full.count - 33] {
            var g = RawGGUF(); g.bytes = Array(full.prefix(cut))
            let p = try g.write(dir, "cut\(cut).gguf")
            #expect(throws: GGUFError.self, "cut at \(cut)") { _ = try GGUFFile(path: p) }
        }
    }

    @Test("a real model cut short throws a typed error", .enabled(if: GGUFFixtures.modelExists(GGUFFixtures.smolFile)))
    func truncatedModel() throws {
        let dir = try GGUFFixtures.tempDir()
        let h = try #require(FileHandle(forReadingAtPath: GGUFFixtures.modelPath(GGUFFixtures.smolFile)))
        let head = try #require(try h.read(upToCount: 3_000_000))
        for cut in [10, 100, 1000, 20_000, 500_000, 2_999_999] {
            let p = dir + "/m\(cut).gguf"
            try head.prefix(cut).write(to: URL(fileURLWithPath: p))
            #expect(throws: GGUFError.self, "cut at \(cut)") { _ = try GGUFFile(path: p) }
        }
    }

    @Test("wrong magic, bad version, empty file, missing file, folder")
    func headerErrors() throws {
        let dir = try GGUFFixtures.tempDir()
        var g = RawGGUF.valid(); g.bytes[0] = UInt8(ascii: "X")
        let magic = try g.write(dir, "magic.gguf")
        #expect(throws: GGUFError.badMagic(file: magic)) { _ = try GGUFFile(path: magic) }
        for v: UInt32 in [0, 1, 4, 0xFFFF_FFFF] {
            var b = RawGGUF.valid()
            withUnsafeBytes(of: v.littleEndian) { b.bytes.replaceSubrange(4..<8, with: $0) }
            let p = try b.write(dir, "v\(v).gguf")
            #expect(throws: GGUFError.unsupportedVersion(file: p, version: v)) { _ = try GGUFFile(path: p) }
        }
        var v2 = RawGGUF.valid(); v2.bytes[4] = 2
        #expect(try GGUFFile(path: v2.write(dir, "v2.gguf")).version == 2)
        let empty = try RawGGUF().write(dir, "empty.gguf")
        #expect(throws: GGUFError.self) { _ = try GGUFFile(path: empty) }
        #expect(throws: GGUFError.self) { _ = try GGUFFile(path: dir + "/absent.gguf") }
        #expect(throws: GGUFError.self) { _ = try GGUFFile(path: dir) }
    }

    @Test("unknown tensor type names the tensor")
    func unknownTensorType() throws {
        let dir = try GGUFFixtures.tempDir()
        var g = RawGGUF(); g.header(tensors: 1, kvs: 0)
        g.tensorInfo("weird", dims: [32], type: 99, offset: 0); g.pad()
        g.bytes += [UInt8](repeating: 0, count: 128)
        let p = try g.write(dir, "t.gguf")
        #expect(throws: GGUFError.unsupportedTensorType(file: p, tensor: "weird", typeID: 99)) { _ = try GGUFFile(path: p) }
    }

    @Test("known but not dequantizable type reads, but dequantize throws")
    func notDequantizable() throws {
        let dir = try GGUFFixtures.tempDir()
        var g = RawGGUF(); g.header(tensors: 1, kvs: 0)
        g.tensorInfo("q2", dims: [256], type: GGMLType.q2_K.rawValue, offset: 0); g.pad()
        g.bytes += [UInt8](repeating: 0, count: GGMLType.q2_K.blockBytes)
        let f = try GGUFFile(path: try g.write(dir, "q2.gguf"))
        let t = try #require(f.tensorInfo("q2"))
        #expect(throws: GGUFError.self) { _ = try f.dequantize(t) }
        #expect(try f.rawData(t).count == GGMLType.q2_K.blockBytes)
    }

    @Test("tensor data outside the file", arguments: [UInt64(32), 64, 1 << 40, UInt64.max - 31])
    func outOfBounds(offset: UInt64) throws {
        let dir = try GGUFFixtures.tempDir()
        var g = RawGGUF(); g.header(tensors: 1, kvs: 0)
        g.tensorInfo("w", dims: [8], type: 0, offset: offset); g.pad()
        g.bytes += [UInt8](repeating: 0, count: 40)   // 32 bytes are needed at `offset`
        let p = try g.write(dir, "oob.gguf")
        #expect(throws: GGUFError.tensorOutOfBounds(file: p, tensor: "w")) { _ = try GGUFFile(path: p) }
    }

    @Test("huge dimensions, misaligned offsets, too many dims, ragged blocks")
    func badTensorInfos() throws {
        let dir = try GGUFFixtures.tempDir()
        let bad: [(String, [UInt64], UInt32, UInt64)] = [
            ("huge", [1 << 40, 1 << 40], 0, 0),
            ("overflow", [UInt64.max, 2], 0, 0),
            ("misaligned", [4], 0, 4),
            ("fivedims", [1, 1, 1, 1, 1], 0, 0),
            ("ragged", [33], GGMLType.q8_0.rawValue, 0),
        ]
        for (name, dims, type, off) in bad {
            var g = RawGGUF(); g.header(tensors: 1, kvs: 0)
            g.tensorInfo(name, dims: dims, type: type, offset: off); g.pad()
            g.bytes += [UInt8](repeating: 0, count: 256)
            let p = try g.write(dir, name + ".gguf")
            #expect(throws: GGUFError.self, "\(name)") { _ = try GGUFFile(path: p) }
        }
    }

    @Test("absurd counts and lengths are rejected before allocating")
    func absurdCounts() throws {
        let dir = try GGUFFixtures.tempDir()
        var files: [String: RawGGUF] = [:]
        var a = RawGGUF(); a.header(tensors: UInt64.max, kvs: 0); files["tensors"] = a
        var b = RawGGUF(); b.header(tensors: 0, kvs: 1 << 60); files["kvs"] = b
        var c = RawGGUF(); c.header(tensors: 0, kvs: 1); c.u64(UInt64.max); files["keylen"] = c
        var d = RawGGUF(); d.header(tensors: 0, kvs: 1); d.str("k"); d.u32(8); d.u64(1 << 50); files["strlen"] = d
        var e = RawGGUF(); e.header(tensors: 0, kvs: 1); e.str("k"); e.u32(9); e.u32(4); e.u64(1 << 61); files["arraylen"] = e
        var f = RawGGUF(); f.header(tensors: 0, kvs: 1); f.str("k"); f.u32(9); f.u32(8); f.u64(UInt64.max); files["strarray"] = f
        var n = RawGGUF(); n.header(tensors: 0, kvs: 1); n.str("k")
        for _ in 0..<1000 { n.u32(9); n.u32(9); n.u64(1) }     // arrays nested 1000 deep
        files["nesting"] = n
        var t = RawGGUF(); t.header(tensors: 0, kvs: 1); t.str("k"); t.u32(77); t.u32(0); files["valuetype"] = t
        var at = RawGGUF(); at.header(tensors: 0, kvs: 1); at.str("k"); at.u32(9); at.u32(77); at.u64(1); at.u32(0); files["arraytype"] = at
        var bo = RawGGUF(); bo.header(tensors: 0, kvs: 1); bo.str("k"); bo.u32(7); bo.u8(5); files["bool"] = bo
        var al = RawGGUF(); al.header(tensors: 0, kvs: 1); al.kvU32("general.alignment", 3); files["alignment"] = al
        var dup = RawGGUF(); dup.header(tensors: 0, kvs: 2); dup.kvU32("x", 1); dup.kvU32("x", 2); files["dupkey"] = dup
        for (name, g) in files {
            var g = g; g.bytes += [UInt8](repeating: 0, count: 64)
            let p = try g.write(dir, name + ".gguf")
            #expect(throws: GGUFError.self, "\(name)") { _ = try GGUFFile(path: p) }
        }
    }

    @Test("random corruption of the header never crashes")
    func fuzz() throws {
        let dir = try GGUFFixtures.tempDir()
        let base = RawGGUF.valid().bytes
        var rng = SystemRandomNumberGenerator()
        for i in 0..<300 {
            var b = base
            for _ in 0..<(1 + i % 4) {
                let at = Int.random(in: 0..<min(b.count, 140), using: &rng)
                b[at] = UInt8.random(in: 0...255, using: &rng)
            }
            var g = RawGGUF(); g.bytes = b
            let p = try g.write(dir, "f.gguf")
            if let f = try? GGUFFile(path: p) {   // still valid: reading every tensor must not crash
                for t in f.tensors where t.type.canDequantize { _ = try f.dequantize(t) }
            }
        }
    }

    @Test("error messages name the file and the item")
    func messages() {
        let e = GGUFError.tensorOutOfBounds(file: "m.gguf", tensor: "blk.0.w")
        #expect(e.description.contains("m.gguf") && e.description.contains("blk.0.w"))
        #expect(GGUFError.missingKey(file: "m.gguf", key: "a.b").description.contains("a.b"))
    }
}
