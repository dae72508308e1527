import Foundation
import Testing
import ModelRuntime

/// Header validation of safetensors files: damaged files fail with an error naming file and tensor.
@Suite struct ForwardCheckpointTests {
    /// Writes a safetensors file with the given header JSON and `dataBytes` zero bytes of data.
    func write(header: String, dataBytes: Int) throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("st-\(UUID().uuidString).safetensors").path
        var d = Data()
        var len = UInt64(header.utf8.count).littleEndian
        d.append(Data(bytes: &len, count: 8))
        d.append(header.data(using: .utf8)!)
        d.append(Data(count: dataBytes))
        try d.write(to: URL(fileURLWithPath: path))
        return path
    }

    @Test func readsValidF32F16BF16() throws {
        // F32 [2] = [1, -2]; F16 [2] = [1.5, 2^-24 (subnormal)]; BF16 [1] = -3
        let header = #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F16","shape":[2],"data_offsets":[8,12]},"c":{"dtype":"BF16","shape":[1],"data_offsets":[12,14]},"__metadata__":{"format":"pt"}}"#
        let path = try write(header: header, dataBytes: 0)
        var bytes = try Data(contentsOf: URL(fileURLWithPath: path))
        var payload: [UInt8] = []
        for f in [Float(1), -2] { withUnsafeBytes(of: f.bitPattern.littleEndian) { payload += $0 } }
        payload += [0x00, 0x3e, 0x01, 0x00]         // 1.5 = 0x3e00, 2^-24 = 0x0001 (little endian)
        payload += [0x40, 0xc0]                     // bf16 -3 = 0xc040
        bytes.append(contentsOf: payload)
        try bytes.write(to: URL(fileURLWithPath: path))
        let f = try SafetensorsFile(path: path)
        var out = [Float](repeating: 0, count: 2)
        out.withUnsafeMutableBufferPointer { f.read(f.tensors["a"]!, into: $0.baseAddress!) }
        #expect(out == [1, -2])
        out.withUnsafeMutableBufferPointer { f.read(f.tensors["b"]!, into: $0.baseAddress!) }
        #expect(out == [1.5, Float(sign: .plus, exponent: -24, significand: 1)])
        out.withUnsafeMutableBufferPointer { f.read(f.tensors["c"]!, into: $0.baseAddress!) }
        #expect(out[0] == -3)
    }

    @Test func rejectsShapeByteMismatch() throws {
        let path = try write(header: #"{"w":{"dtype":"F32","shape":[2,3],"data_offsets":[0,20]}}"#, dataBytes: 24)
        let e = try #require(throws: ModelError.self) { try SafetensorsFile(path: path) }
        #expect(e.tensor == "w" && e.file == path)
    }

    @Test func rejectsOffsetsOutsideFile() throws {
        let path = try write(header: #"{"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}"#, dataBytes: 8)
        let e = try #require(throws: ModelError.self) { try SafetensorsFile(path: path) }
        #expect(e.tensor == "w")
    }

    @Test func rejectsHugeHeaderLengthAndUnknownDType() throws {
        let path = try write(header: #"{"w":{"dtype":"I64","shape":[1],"data_offsets":[0,8]}}"#, dataBytes: 8)
        let e = try #require(throws: ModelError.self) { try SafetensorsFile(path: path) }
        #expect(e.description.contains("I64"))
        // header length larger than the file
        var d = Data(); var len = UInt64(1 << 40).littleEndian
        d.append(Data(bytes: &len, count: 8)); d.append(Data(count: 16))
        let p2 = FileManager.default.temporaryDirectory.appendingPathComponent("st-\(UUID().uuidString).safetensors").path
        try d.write(to: URL(fileURLWithPath: p2))
        #expect(throws: ModelError.self) { try SafetensorsFile(path: p2) }
    }

    @Test func missingShardIsNamed() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("ckpt-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        try #"{"model_type":"llama"}"#.write(to: dir.appendingPathComponent("config.json"), atomically: true, encoding: .utf8)
        try #"{"weight_map":{"w":"model-00001-of-00002.safetensors"}}"#.write(to: dir.appendingPathComponent("model.safetensors.index.json"), atomically: true, encoding: .utf8)
        let e = try #require(throws: (any Error).self) { try HFCheckpoint(directory: dir.path) }
        #expect("\(e)".contains("model-00001-of-00002.safetensors"))
    }
}
