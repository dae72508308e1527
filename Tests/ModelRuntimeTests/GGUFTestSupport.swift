import Foundation
import Testing
@testable import ModelRuntime

/// Shared helpers for the GGUF tests.
enum GGUFFixtures {
    static let packageRoot: URL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    static var modelsDir: String {
        ProcessInfo.processInfo.environment["ABLAB_MODELS_DIR"] ?? packageRoot.appendingPathComponent("models").path
    }

    static let smolFile = "SmolLM2-135M-Instruct.Q4_1.gguf"
    static let qwenFile = "Qwen2.5-Coder-0.5B-Instruct.gguf"

    static func modelPath(_ file: String) -> String { modelsDir + "/" + file }
    static func modelExists(_ file: String) -> Bool { FileManager.default.fileExists(atPath: modelPath(file)) }

    static func url(_ name: String) throws -> URL {
        try #require(Bundle.module.url(forResource: "Fixtures/gguf/" + name, withExtension: nil),
                     "fixture \(name) missing; run notebooks-scripts/fixtures_gguf.py")
    }

    static func json(_ name: String) throws -> [String: Any] {
        let data = try Data(contentsOf: try url(name))
        return try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
    }

    static func floats(_ any: Any?) throws -> [Float] {
        let a = try #require(any as? [NSNumber])
        return a.map { Float($0.doubleValue) }
    }

    static func ints(_ any: Any?) throws -> [Int] {
        let a = try #require(any as? [NSNumber])
        return a.map { $0.intValue }
    }

    /// A fresh temporary folder for one test.
    static func tempDir() throws -> String {
        let d = NSTemporaryDirectory() + "ablab-gguf-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true)
        return d
    }
}

/// Max |a-b| over two arrays, and whether they are equal within float32 rounding (a few ulps of
/// the larger magnitude).
func maxULPDiff(_ a: [Float], _ b: [Float]) -> Float {
    var worst: Float = 0
    for (x, y) in zip(a, b) {
        if x == y { continue }
        let ulp = max(x.magnitude, y.magnitude).ulp
        worst = max(worst, (x - y).magnitude / ulp)
    }
    return worst
}

/// Byte-level builder for hand-made (also deliberately malformed) GGUF files. Independent of
/// `GGUFWriter` so reader tests do not depend on the writer being right.
struct RawGGUF {
    var bytes = [UInt8]()
    mutating func u8(_ v: UInt8) { bytes.append(v) }
    mutating func u32(_ v: UInt32) { withUnsafeBytes(of: v.littleEndian) { bytes.append(contentsOf: $0) } }
    mutating func u64(_ v: UInt64) { withUnsafeBytes(of: v.littleEndian) { bytes.append(contentsOf: $0) } }
    mutating func f32(_ v: Float) { u32(v.bitPattern) }
    mutating func str(_ s: String) { u64(UInt64(s.utf8.count)); bytes.append(contentsOf: s.utf8) }
    mutating func header(version: UInt32 = 3, tensors: UInt64, kvs: UInt64) {
        bytes.append(contentsOf: Array("GGUF".utf8)); u32(version); u64(tensors); u64(kvs)
    }
    mutating func kvU32(_ k: String, _ v: UInt32) { str(k); u32(4); u32(v) }
    mutating func kvString(_ k: String, _ v: String) { str(k); u32(8); str(v) }
    mutating func tensorInfo(_ name: String, dims: [UInt64], type: UInt32, offset: UInt64) {
        str(name); u32(UInt32(dims.count)); for d in dims { u64(d) }; u32(type); u64(offset)
    }
    mutating func pad(to a: Int = 32) { while bytes.count % a != 0 { bytes.append(0) } }

    /// A valid small file: 2 metadata keys, an F32 tensor [4, 2] (torch shape [2, 4]) and an F16 [8].
    static func valid() -> RawGGUF {
        var g = RawGGUF()
        g.header(tensors: 2, kvs: 2)
        g.kvString("general.architecture", "test")
        g.kvU32("test.count", 7)
        g.tensorInfo("w", dims: [4, 2], type: 0, offset: 0)
        g.tensorInfo("h", dims: [8], type: 1, offset: 32)
        g.pad()
        for i in 0..<8 { g.f32(Float(i) * 0.5 - 1) }   // 32 bytes
        for i in 0..<8 { withUnsafeBytes(of: Float16(Float(i) - 3).bitPattern.littleEndian) { g.bytes.append(contentsOf: $0) } }
        return g
    }

    func write(_ dir: String, _ name: String) throws -> String {
        let p = dir + "/" + name
        try Data(bytes).write(to: URL(fileURLWithPath: p))
        return p
    }
}
