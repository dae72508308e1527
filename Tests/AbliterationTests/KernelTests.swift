import Foundation
import Testing
@testable import Abliteration

/// The edits against their definitions, computed naively in Double here.
@Suite struct KernelTests {
    @Test(arguments: [1, 7, 8, 31, 32, 33, 576, 896])
    func dotAndProjection(_ n: Int) throws {
        var rng = TestRNG(UInt64(n))
        let x = rng.vector(n), r = rng.vector(n)
        let got = x.withUnsafeBufferPointer { a in r.withUnsafeBufferPointer { b in Kernels.dot(a.baseAddress!, b.baseAddress!, n) } }
        #expect(abs(Double(got) - dot(x, r)) <= 1e-5 * norm(x) * norm(r))

        let u = try UnitDirection(r)
        let uhat = unitVector(r)
        for alpha in [Float(1), 0.5, 0, 1.5] {
            var y = x
            y.withUnsafeMutableBufferPointer { Orthogonalization.projectRows($0.baseAddress!, count: 1, unit: u, alpha: alpha) }
            // x − α (x·r̂) r̂, so y·r̂ = (1 − α) x·r̂ and the orthogonal part is unchanged.
            let c = dot(x, uhat)
            for j in 0..<n {
                let want = Double(x[j]) - Double(alpha) * c * Double(uhat[j])
                #expect(abs(Double(y[j]) - want) <= 1e-5 * norm(x))
            }
            #expect(abs(dot(y, uhat) - (1 - Double(alpha)) * c) <= 1e-5 * norm(x))
            if alpha == 0 { #expect(y == x) }
        }
    }

    @Test(arguments: [(5, 3), (64, 48), (576, 100)])
    func outputIndexEdit(_ d: Int, _ cols: Int) throws {
        var rng = TestRNG(UInt64(d * 1000 + cols))
        let w = rng.vector(d * cols), r = rng.vector(d)
        let uhat = unitVector(r)
        for alpha in [Float(1), 0.25] {
            var e = w
            e.withUnsafeMutableBufferPointer {
                Orthogonalization.projectOutputIndex($0.baseAddress!, cols: cols, unit: try! UnitDirection(r), alpha: alpha)
            }
            // (I − α r̂ r̂ᵀ) W, naively.
            var maxErr = 0.0
            for j in 0..<cols {
                var s = 0.0
                for i in 0..<d { s += Double(uhat[i]) * Double(w[i * cols + j]) }
                for i in 0..<d {
                    let want = Double(w[i * cols + j]) - Double(alpha) * Double(uhat[i]) * s
                    maxErr = max(maxErr, abs(want - Double(e[i * cols + j])))
                }
            }
            #expect(maxErr < 1e-4)
            // Any output W h of the edited matrix has r̂ component (1 − α) times the original's.
            let h = rng.vector(cols)
            func apply(_ m: [Float]) -> [Float] { (0..<d).map { i in Float(dot(m[(i * cols)..<((i + 1) * cols)], h)) } }
            let yo = apply(w), ye = apply(e)
            #expect(abs(dot(ye, uhat) - (1 - Double(alpha)) * dot(yo, uhat)) <= 1e-4 * norm(yo))
        }
    }

    @Test func badDirectionsThrow() {
        #expect(throws: AbliterationError.self) { try UnitDirection([]) }
        #expect(throws: AbliterationError.self) { try UnitDirection([0, 0, 0]) }
        #expect(throws: AbliterationError.self) { try UnitDirection([1, .nan]) }
        #expect(throws: AbliterationError.self) { try Ablation.hooks(direction: [1, 2], alpha: 0.5, nLayers: 2, everyResidPre: true) }
        #expect(throws: AbliterationError.self) { try UnitDirection([1, 2]).check(dModel: 3, source: "m") }
    }
}

@Suite struct DirectionFileTests {
    @Test func npyRoundTripAndHandBuiltFloat64() throws {
        let dir = try TestModels.tempDir("npy")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let v: [Float] = [1.5, -2, 0.25, 3e-8]
        try DirectionFile.writeNPY(v, to: dir + "/a.npy")
        #expect(try DirectionFile.load(dir + "/a.npy") == v)
        // A float64 (1, 3) array laid out as the NPY 1.0 format specifies.
        var header = "{'descr': '<f8', 'fortran_order': False, 'shape': (1, 3), }"
        while (10 + header.utf8.count + 1) % 64 != 0 { header += " " }
        header += "\n"
        var d = Data([0x93] + Array("NUMPY".utf8) + [1, 0, UInt8(header.utf8.count), 0])
        d.append(contentsOf: Array(header.utf8))
        for x in [0.5, -1.0, 2.0] { withUnsafeBytes(of: x.bitPattern.littleEndian) { d.append(contentsOf: $0) } }
        try d.write(to: URL(fileURLWithPath: dir + "/b.npy"))
        #expect(try DirectionFile.load(dir + "/b.npy") == [0.5, -1, 2])
        // Truncated data.
        try d.prefix(d.count - 4).write(to: URL(fileURLWithPath: dir + "/c.npy"))
        #expect(throws: AbliterationError.self) { try DirectionFile.load(dir + "/c.npy") }
    }

    @Test func json() throws {
        let dir = try TestModels.tempDir("json")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try Data("[1, 2.5, -3]".utf8).write(to: URL(fileURLWithPath: dir + "/a.json"))
        #expect(try DirectionFile.load(dir + "/a.json") == [1, 2.5, -3])
        try Data("{\"direction\": [0.5, 1]}".utf8).write(to: URL(fileURLWithPath: dir + "/b.json"))
        #expect(try DirectionFile.load(dir + "/b.json") == [0.5, 1])
        try Data("{\"direction\": [0.5, \"x\"]}".utf8).write(to: URL(fileURLWithPath: dir + "/c.json"))
        #expect(throws: AbliterationError.self) { try DirectionFile.load(dir + "/c.json") }
    }

    @Test("an all-zero direction is refused with the file's name (it would ablate nothing)")
    func zeroDirection() throws {
        let dir = try TestModels.tempDir("zero")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try Data("[0, -0.0, 0]".utf8).write(to: URL(fileURLWithPath: dir + "/z.json"))
        try DirectionFile.writeNPY([0, 0, 0, 0], to: dir + "/z.npy")
        for f in ["z.json", "z.npy"] {
            let e = #expect(throws: AbliterationError.self) { try DirectionFile.load(dir + "/" + f) }
            #expect(e?.file == dir + "/" + f)
            #expect(e?.message.contains("all zeros") == true, "\(f): \(String(describing: e))")
        }
    }
}
