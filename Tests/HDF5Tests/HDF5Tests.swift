import Foundation
import Testing
import HDF5

@Suite struct HDF5RoundTripTests {
    @Test func float32ChunkedCompressedRoundTrip() throws {
        let tmp = try TempDir(); defer { tmp.cleanup() }
        let path = tmp.file("f32.h5")
        // value(i, j, k) = (i*20 + j*5 + k) / 4 - 7: exact in binary32.
        let values: [Float] = (0..<60).map { Float($0) / 4 - 7 }
        do {
            let f = try H5File.create(path)
            let d = try f.createDataset("x/y/f32", type: .float32, shape: [3, 4, 5], chunk: [1, 2, 5], compression: .gzip)
            try d.write(values)
            try f.flush()
        }
        let f = try H5File.open(path)
        let d = try f.openDataset("/x/y/f32")
        #expect(d.elementType == .float32)
        #expect(try d.shape() == [3, 4, 5])
        #expect(try d.chunkShape() == [1, 2, 5])
        #expect(try d.maxShape() == [3, 4, 5])
        #expect(try d.readFloats() == values)
    }

    @Test func float16StoresNearestHalf() throws {
        let tmp = try TempDir(); defer { tmp.cleanup() }
        let path = tmp.file("f16.h5")
        // Exactly representable halves come back unchanged; others come back as the nearest half.
        let exact: [Float] = [0, -0.0, 1, -2.5, 65504, 0x1p-24, 0.099975586, -1000.5]
        // 1 + 2^-11 is halfway between 1 and 1 + 2^-10: ties-to-even gives 1. 1 + 3·2^-11 rounds up to 1 + 2^-9.
        // 65520 is halfway between 65504 and 2^16 (which overflows): IEEE rounds to infinity.
        let inexact: [Float] = [1 + 0x1p-11, 1 + 3 * 0x1p-11, 65520, 1e-9, 0.1]
        let expected: [Float] = [1, 1 + 0x1p-9, .infinity, 0, 0.099975586]
        do {
            let f = try H5File.create(path)
            let d = try f.createDataset("h", type: .float16, shape: [exact.count + inexact.count], maxShape: [nil], compression: .gzip)
            try d.write(exact + inexact)
        }
        let f = try H5File.open(path)
        let d = try f.openDataset("h")
        #expect(d.elementType == .float16)
        let back = try d.readFloats()
        #expect(Array(back.prefix(exact.count)) == exact)
        #expect(back[1].sign == .minus)
        #expect(Array(back.suffix(inexact.count)) == expected)
    }

    @Test func rawAccessIsTheStoredRepresentation() throws {
        let tmp = try TempDir(); defer { tmp.cleanup() }
        let f = try H5File.create(tmp.file("raw.h5"))
        let h = try f.createDataset("h", type: .float16, shape: [2, 2])
        try h.write([1, -2, 0.5, 65504] as [Float])
        #expect(h.storedElementSize == 2)
        var bits = [UInt16](repeating: 0, count: 2)
        try bits.withUnsafeMutableBytes { try h.readRaw(into: $0, offset: [1, 0], count: [1, 2]) }
        #expect(bits == [0x3800, 0x7bff]) // binary16 of 0.5 and 65504
        let g = try f.createDataset("g", type: .float16, shape: [2])
        try bits.withUnsafeBytes { try g.writeRaw($0) }
        #expect(try g.readFloats() == [0.5, 65504])
        #expect(throws: HDF5Error.self) { try bits.withUnsafeBytes { try g.writeRaw(UnsafeRawBufferPointer(rebasing: $0[0..<2])) } }
    }

    @Test func int32RoundTripIncludingExtremes() throws {
        let tmp = try TempDir(); defer { tmp.cleanup() }
        let path = tmp.file("i32.h5")
        let values: [Int32] = [Int32.min, -1, 0, 1, Int32.max, 123_456_789]
        do {
            let f = try H5File.create(path)
            try f.createDataset("i", type: .int32, shape: [2, 3], compression: .init(shuffle: true, gzipLevel: 9)).write(values)
        }
        let d = try H5File.open(path).openDataset("i")
        #expect(d.elementType == .int32)
        #expect(try d.readInt32() == values)
        #expect(try d.readInt32(offset: [1, 1], count: [1, 2]) == [Int32.max, 123_456_789])
    }

    @Test func variableLengthUTF8StringsExtendible() throws {
        let tmp = try TempDir(); defer { tmp.cleanup() }
        let path = tmp.file("s.h5")
        let first = ["", "ascii", "Grüße — ✓"]
        let second = ["🚀 emoji", String(repeating: "long ", count: 400)]
        do {
            let f = try H5File.create(path)
            let d = try f.createDataset("prompts/text", type: .string, shape: [0], maxShape: [nil], chunk: [4])
            try d.extend(to: [3])
            try d.write(first, offset: [0], count: [3])
            let at = try d.extend(dimension: 0, by: 3) // one more than written: the last reads as ""
            #expect(at == 3)
            try d.write(second, offset: [3], count: [2])
        }
        let d = try H5File.open(path).openDataset("prompts/text")
        #expect(try d.shape() == [6])
        #expect(try d.readStrings() == first + second + [""])
        #expect(try d.readStrings(offset: [2], count: [2]) == ["Grüße — ✓", "🚀 emoji"])
    }

    @Test(arguments: [H5ElementType.float32, .float16])
    func hyperslabsOnRank4(type: H5ElementType) throws {
        let tmp = try TempDir(); defer { tmp.cleanup() }
        let path = tmp.file("slab.h5")
        let shape = [3, 5, 2, 4]
        // value at (a, b, c, d) = a*100 + b*10 + c*2 + d/4: exact in binary16 too (< 2048 with 2 fractional bits... ≤ 11 bits).
        func v(_ a: Int, _ b: Int, _ c: Int, _ d: Int) -> Float { Float(a * 100 + b * 10 + c * 2) + Float(d) / 4 }
        do {
            let f = try H5File.create(path)
            let ds = try f.createDataset("r", type: type, shape: shape, chunk: [1, 2, 2, 4], compression: .gzip)
            // Write one [1, 5, 2, 4] slab per a, in reverse order, then overwrite a [2, 2, 1, 3] block with -1.
            for a in (0..<3).reversed() {
                var slab: [Float] = []
                for b in 0..<5 { for c in 0..<2 { for d in 0..<4 { slab.append(v(a, b, c, d)) } } }
                try ds.write(slab, offset: [a, 0, 0, 0], count: [1, 5, 2, 4])
            }
            try ds.write([Float](repeating: -1, count: 12), offset: [1, 3, 1, 1], count: [2, 2, 1, 3])
        }
        let ds = try H5File.open(path).openDataset("r")
        let all = try ds.readFloats()
        var i = 0
        for a in 0..<3 { for b in 0..<5 { for c in 0..<2 { for d in 0..<4 {
            let inBlock = (1...2).contains(a) && (3...4).contains(b) && c == 1 && (1...3).contains(d)
            #expect(all[i] == (inBlock ? -1 : v(a, b, c, d)), "at \([a, b, c, d])")
            i += 1
        } } } }
        // A strided-looking read: one position across all of (a, b).
        let column = try ds.readFloats(offset: [0, 0, 0, 2], count: [3, 5, 1, 1])
        #expect(column == (0..<3).flatMap { a in (0..<5).map { b in v(a, b, 0, 2) } })
    }

    @Test func extendAlongTwoDimensions() throws {
        let tmp = try TempDir(); defer { tmp.cleanup() }
        let path = tmp.file("grow.h5")
        do {
            let f = try H5File.create(path)
            let d = try f.createDataset("g", type: .float32, shape: [1, 2], maxShape: [nil, 4], chunk: [2, 2])
            try d.write([Float]([1, 2]))
            try d.extend(to: [3, 4])
            try d.write([Float]([9, 9]), offset: [2, 2], count: [1, 2])
            #expect(throws: HDF5Error.self) { try d.extend(to: [3, 5]) } // beyond the maximum shape
        }
        let d = try H5File.open(path).openDataset("g")
        #expect(try d.shape() == [3, 4])
        #expect(try d.maxShape() == [nil, 4])
        #expect(try d.readFloats() == [1, 2, 0, 0, 0, 0, 0, 0, 0, 0, 9, 9])
    }

    @Test func attributesOfEveryKind() throws {
        let tmp = try TempDir(); defer { tmp.cleanup() }
        let path = tmp.file("attr.h5")
        do {
            let f = try H5File.create(path)
            let g = try f.createGroup("a/b/c")
            try g.setAttribute("answer", 42)
            try g.setAttribute("answer", -7) // replaces
            try g.setAttribute("ratio", 0.1)
            try g.setAttribute("positions", [Int32](-5 ... -1))
            try g.setAttribute("weights", [Float]([0.5, -1.25, 3]))
            try g.setAttribute("empty", [Float]())
            try g.setAttribute("name", "Ünïcødé ✓")
            try g.setAttribute("fixed", "fixed ✓", fixedLength: true)
            let d = try f.createDataset("d", type: .int32, shape: [1])
            try d.setAttribute("unit", "count")
        }
        let f = try H5File.open(path)
        let g = try f.openGroup("/a/b/c")
        #expect(try g.attributeNames() == ["answer", "empty", "fixed", "name", "positions", "ratio", "weights"])
        #expect(try g.intAttribute("answer") == -7)
        #expect(try g.doubleAttribute("ratio") == 0.1)
        #expect(try g.int32ArrayAttribute("positions") == [-5, -4, -3, -2, -1])
        #expect(try g.floatArrayAttribute("weights") == [0.5, -1.25, 3])
        #expect(try g.floatArrayAttribute("empty") == [])
        #expect(try g.stringAttribute("name") == "Ünïcødé ✓")
        #expect(try g.stringAttribute("fixed") == "fixed ✓")
        #expect(try f.openDataset("d").stringAttribute("unit") == "count")
        #expect(try g.hasAttribute("nope") == false)
        let missing = #expect(throws: HDF5Error.self) { try g.stringAttribute("nope") }
        #expect(missing?.kind == .missingObject)
        #expect(missing?.description.contains("attr.h5") == true)
        #expect(missing?.description.contains("/a/b/c/@nope") == true)
        let wrongType = #expect(throws: HDF5Error.self) { try g.intAttribute("name") }
        #expect(wrongType?.kind == .typeMismatch)
    }

    @Test func groupsChildrenAndExists() throws {
        let tmp = try TempDir(); defer { tmp.cleanup() }
        let path = tmp.file("groups.h5")
        let f = try H5File.create(path)
        try f.createGroup("hooks/x")
        try f.createDataset("hooks/blocks.3.hook_attn_out", type: .float32, shape: [2])
        try f.createGroup("prompts")
        #expect(try f.children() == ["hooks", "prompts"])
        #expect(try f.openGroup("hooks").children() == ["blocks.3.hook_attn_out", "x"])
        #expect(try f.exists("hooks/x"))
        #expect(try f.exists("/hooks/blocks.3.hook_attn_out"))
        #expect(try !f.exists("hooks/y/z"))
        #expect(try !f.exists("hooks/blocks.3.hook_attn_out/inside")) // below a dataset
        #expect(try f.kind(of: "hooks") == .group)
        #expect(try f.kind(of: "hooks/blocks.3.hook_attn_out") == .dataset)
        #expect(try f.kind(of: "nothing") == nil)
        #expect(try f.createGroup("hooks", existOK: true).objectPath == "/hooks")
        #expect(throws: HDF5Error.self) { try f.createGroup("hooks") }
        #expect(throws: HDF5Error.self) { try f.createGroup("a/../b") }
        try f.remove("prompts")
        #expect(try f.children() == ["hooks"])
    }
}

@Suite struct HDF5ErrorTests {
    @Test func missingFileIsTyped() throws {
        let tmp = try TempDir(); defer { tmp.cleanup() }
        let e = #expect(throws: HDF5Error.self) { try H5File.open(tmp.file("absent.h5")) }
        #expect(e?.kind == .fileNotFound)
        #expect(e?.description.contains("absent.h5") == true)
    }

    @Test func textFileIsNotHDF5() throws {
        let tmp = try TempDir(); defer { tmp.cleanup() }
        let path = tmp.file("text.h5")
        try "not an hdf5 file\n".write(toFile: path, atomically: true, encoding: .utf8)
        let e = #expect(throws: HDF5Error.self) { try H5File.open(path) }
        #expect(e?.kind == .notHDF5)
    }

    @Test func truncatedFileIsTyped() throws {
        let tmp = try TempDir(); defer { tmp.cleanup() }
        let path = tmp.file("trunc.h5")
        do {
            let f = try H5File.create(path)
            try f.createDataset("big", type: .float32, shape: [4096]).write([Float](repeating: 1.5, count: 4096))
        }
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        try data.prefix(data.count / 2).write(to: URL(fileURLWithPath: path))
        let e = #expect(throws: HDF5Error.self) {
            let f = try H5File.open(path)
            _ = try f.openDataset("big").readFloats()
        }
        #expect(e?.kind == .notHDF5 || e?.kind == .library)
        #expect(e?.description.contains("trunc.h5") == true)
    }

    @Test func misuseIsTyped() throws {
        let tmp = try TempDir(); defer { tmp.cleanup() }
        let path = tmp.file("m.h5")
        do {
            let f = try H5File.create(path)
            let d = try f.createDataset("d", type: .float32, shape: [2, 2])
            #expect(throws: HDF5Error.self) { try d.write([Float]([1, 2, 3])) }                                  // wrong count
            #expect(throws: HDF5Error.self) { try d.write([Float]([1, 2]), offset: [1, 1], count: [1, 2]) }   // out of bounds
            #expect(throws: HDF5Error.self) { try d.write(["s"]) }                                    // wrong type
            #expect(throws: HDF5Error.self) { try d.readInt32() }
            #expect(throws: HDF5Error.self) { try f.createDataset("d", type: .int32, shape: [1]) }    // exists
            #expect(throws: HDF5Error.self) { try H5File.create(path) }                              // exists
        }
        let ro = try H5File.open(path)
        let e = #expect(throws: HDF5Error.self) { try ro.openDataset("d").write([Float]([1, 2, 3, 4])) }
        #expect(e?.kind == .library)
        let m = #expect(throws: HDF5Error.self) { try ro.openDataset("nope") }
        #expect(m?.kind == .missingObject)
        #expect(m?.object == "/nope")
        ro.close() // HDF5 refuses to open a file read-write while this process has it open read-only
        let rw = try H5File.open(path, mode: .readWrite)
        try rw.openDataset("d").write([Float]([1, 2, 3, 4]))
        #expect(try rw.openDataset("d").readFloats() == [1, 2, 3, 4])
    }
}

#if !(os(macOS) && arch(x86_64))
/// `Half` against the standard library's `Float16` (an independent IEEE 754 implementation).
@Suite struct HalfConversionTests {
    @Test func decodesEveryBitPattern() {
        for b in 0...UInt16.max {
            let mine = Half.float(from: b)
            let std = Float(Float16(bitPattern: b))
            if std.isNaN { #expect(mine.isNaN) } else { #expect(mine.bitPattern == std.bitPattern, "bits \(b)") }
        }
    }

    @Test func encodesLikeFloat16() {
        // Every half, every midpoint between neighbours (ties), their float neighbours, and a sweep of floats.
        var samples: [Float] = [.infinity, -.infinity, .greatestFiniteMagnitude, 65519.996, 65520, 65536, 1e-30, -1e-30]
        for b in UInt16(0)..<0x7c00 {
            let x = Float(Float16(bitPattern: b)), y = Float(Float16(bitPattern: b + 1))
            let mid = (x + y) / 2
            samples += [x, -x, mid, -mid, mid.nextUp, mid.nextDown]
        }
        var seed: UInt32 = 12345
        for _ in 0..<200_000 {
            seed = seed &* 1_664_525 &+ 1_013_904_223
            let f = Float(bitPattern: seed)
            if !f.isNaN { samples.append(f) }
        }
        var bad = 0
        for x in samples where Half.bits(from: x) != Float16(x).bitPattern { bad += 1 }
        #expect(bad == 0)
        #expect(Half.float(from: Half.bits(from: .nan)).isNaN)
    }
}
#endif
