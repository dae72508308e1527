import Foundation
import Testing
import HDF5

/// Writes `hdf5/basic.h5` into $ABLAB_INTEROP_DIR with values given by formulas that
/// notebooks-scripts/check_interop.py (h5py + numpy) recomputes independently.
/// The round-trip assertions run even when the variable is unset; only the file is then not kept.
@Suite struct HDF5InteropTests {
    static func f32(_ i: Int, _ j: Int, _ k: Int) -> Float { Float(i * 20 + j * 5 + k) * 0.25 - 7 }

    @Test func writeInteropFile() throws {
        let tmp = try TempDir(); defer { tmp.cleanup() }
        let dir = try interopDirectory("hdf5") ?? tmp.path
        let path = dir + "/basic.h5"
        try? FileManager.default.removeItem(atPath: path)
        do {
            let f = try H5File.create(path)
            try f.setAttribute("formula", "see check_interop.py: check_hdf5_basic")
            // /f32 [3, 4, 5]: (i*20 + j*5 + k) * 0.25 - 7, chunked [1, 2, 5], shuffle + gzip
            var v: [Float] = []
            for i in 0..<3 { for j in 0..<4 { for k in 0..<5 { v.append(Self.f32(i, j, k)) } } }
            try f.createDataset("f32", type: .float32, shape: [3, 4, 5], chunk: [1, 2, 5], compression: .gzip).write(v)
            // /f16 [64]: float16(float32(i - 32) / 3)
            try f.createDataset("f16", type: .float16, shape: [64], compression: .gzip).write((0..<64).map { Float($0 - 32) / 3 })
            // /f16_special: float16 of these float32 values
            try f.createDataset("f16_special", type: .float16, shape: [9])
                .write([0, -0.0, 65504, 65519, 65520, 1e-8, 6e-8, .infinity, -.infinity] as [Float])
            // /i32 [2, 6]: (i*6 + j - 6) * 123456789 ; /i32_extremes: [min, max, 0, -1]
            try f.createDataset("i32", type: .int32, shape: [2, 6], compression: .init(shuffle: true, gzipLevel: 1))
                .write((0..<12).map { Int32($0 - 6) * 123_456_789 })
            try f.createDataset("i32_extremes", type: .int32, shape: [4]).write([Int32.min, Int32.max, 0, -1])
            // /strings [7], extendible, written in two appends: "" when i % 3 == 0 else "prompt {i} — ü ✓ 🚀"
            let strings = (0..<7).map { $0 % 3 == 0 ? "" : "prompt \($0) — ü ✓ 🚀" }
            let s = try f.createDataset("strings", type: .string, shape: [0], maxShape: [nil], chunk: [4])
            try s.extend(to: [4]); try s.write(Array(strings[0..<4]), offset: [0], count: [4])
            let at = try s.extend(dimension: 0, by: 3); try s.write(Array(strings[4...]), offset: [at], count: [3])
            // /grow [5, 3] from [0, 3], max [unlimited, 3], one row per extension: i*3 + j + 0.5
            let g = try f.createDataset("grow", type: .float32, shape: [0, 3], maxShape: [nil, 3], chunk: [2, 3])
            for i in 0..<5 {
                let row = try g.extend(dimension: 0, by: 1)
                try g.write((0..<3).map { Float(row * 3 + $0) + 0.5 }, offset: [row, 0], count: [1, 3])
            }
            // /slab [4, 6] written as four [2, 3] hyperslabs: i*10 + j
            let sl = try f.createDataset("slab", type: .float32, shape: [4, 6])
            for bi in 0..<2 { for bj in 0..<2 {
                var block: [Float] = []
                for i in 0..<2 { for j in 0..<3 { block.append(Float((bi * 2 + i) * 10 + bj * 3 + j)) } }
                try sl.write(block, offset: [bi * 2, bj * 3], count: [2, 3])
            } }
            // /a/b/c attributes
            let c = try f.createGroup("a/b/c")
            try c.setAttribute("answer", 42)
            try c.setAttribute("ratio", 0.1)
            try c.setAttribute("positions", [Int32](-5 ... -1))
            try c.setAttribute("weights", [Float]([0.5, -1.25, 3]))
            try c.setAttribute("name", "Ünïcødé ✓")
            try c.setAttribute("fixed", "fixed-ascii", fixedLength: true)
        }
        // Round trip in Swift too.
        let f = try H5File.open(path)
        #expect(try f.children() == ["a", "f16", "f16_special", "f32", "grow", "i32", "i32_extremes", "slab", "strings"])
        #expect(try f.openDataset("f32").readFloats(offset: [2, 3, 4], count: [1, 1, 1]) == [Self.f32(2, 3, 4)])
        #expect(try f.openDataset("grow").readFloats() == (0..<15).map { Float($0) + 0.5 })
        #expect(try f.openDataset("slab").readFloats() == (0..<24).map { Float(($0 / 6) * 10 + $0 % 6) })
        #expect(try f.openDataset("strings").readStrings()[4] == "prompt 4 — ü ✓ 🚀")
        #expect(try f.openGroup("a/b/c").stringAttribute("fixed") == "fixed-ascii")
    }
}
