import Foundation
import Testing
import AblabCore
@testable import ModelRuntime

/// `ablab quantize` (ModelQuantization) on SmolLM2 against llama.cpp's llama_model_quantize of the same
/// file (notebooks-scripts/fixtures_quant_model.py keeps each tensor's type and sha256): the same type
/// for every tensor and the same bytes. The output then loads and generates in ablab, and — where the
/// bench venv (llama-cpp-python) exists — in llama.cpp.
@Suite("Model quantization", .serialized, .enabled(if: GGUFFixtures.modelExists(GGUFFixtures.smolFile), "needs SmolLM2 (make models-smol)"))
struct ModelQuantizationTests {
    static func reference() throws -> [String: Any] {
        let url = try #require(Bundle.module.url(forResource: "Fixtures/quant/model-smollm2.json", withExtension: nil),
                               "run notebooks-scripts/fixtures_quant_model.py")
        return try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as? [String: Any])
    }

    static func tempDir() throws -> String {
        let d = FileManager.default.temporaryDirectory.appendingPathComponent("ablab-quant-\(getpid())-\(UInt32.random(in: 0...UInt32.max))").path
        try FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true)
        return d
    }

    @Test("same tensor types and bytes as llama_model_quantize", arguments: [GGMLType.q4_0, .q8_0, .q4_K])
    func matchesLlamaCpp(_ type: GGMLType) throws {
        let ref = try #require((try Self.reference()["types"] as? [String: Any])?[type.name] as? [String: Any])
        let tensors = try #require(ref["tensors"] as? [String: [String: String]])
        let dir = try Self.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let out = dir + "/q.gguf"
        try ModelQuantization.quantize(source: GGUFFixtures.modelPath(GGUFFixtures.smolFile), target: type, to: out, progress: false)
        let f = try GGUFFile(path: out)
        #expect(f.int("general.file_type") == ref["file_type"] as? Int)
        #expect(Set(f.tensors.map(\.name)) == Set(tensors.keys))
        var wrongType: [String] = [], wrongBytes: [String] = []
        for t in f.tensors {
            guard let r = tensors[t.name] else { continue }
            if t.type.name != r["type"] { wrongType.append("\(t.name): \(t.type) vs \(r["type"] ?? "?")"); continue }
            if SHA256.hex(try f.rawData(t)) != r["sha256"] { wrongBytes.append(t.name) }
        }
        #expect(wrongType.isEmpty, "\(wrongType.count) tensors of another type: \(wrongType.prefix(4))")
        #expect(wrongBytes.isEmpty, "\(wrongBytes.count) tensors with other bytes: \(wrongBytes.prefix(4))")

        if type == .q4_0 {
            // ablab loads and runs it: the first greedy tokens of a clear prompt agree with the source model.
            let q = try ChatModel(path: out), s = try ChatModel(path: GGUFFixtures.modelPath(GGUFFixtures.smolFile))
            let ids = s.encodeChat(user: "What is the capital of France?")
            let a = try greedyDecode(q.transformer, prompt: ids, n: 4, eos: [])
            let b = try greedyDecode(s.transformer, prompt: ids, n: 4, eos: [])
            #expect(a.count == 4 && a.first == b.first, "requantized \(a) vs source \(b)")
            try Self.llamaCppGenerates(out)
        }
    }

    /// Loads `path` with llama-cpp-python (the bench venv) and generates 8 tokens, when that venv exists.
    static func llamaCppGenerates(_ path: String) throws {
        let py = GGUFFixtures.packageRoot.appendingPathComponent(".venv-bench/bin/python").path
        guard FileManager.default.isExecutableFile(atPath: py) else { return }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: py)
        p.arguments = ["-c", """
            import sys, llama_cpp
            m = llama_cpp.Llama(model_path=sys.argv[1], n_ctx=128, n_threads=2, verbose=False)
            out = m("The capital of France is", max_tokens=8, temperature=0)
            print(out["choices"][0]["text"]); assert out["usage"]["completion_tokens"] > 0
            """, path]
        let pipe = Pipe()
        p.standardOutput = pipe
        p.standardError = FileHandle.nullDevice
        try p.run()
        let text = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        #expect(p.terminationStatus == 0, "llama-cpp-python could not load or run \(path)")
        #expect(!text.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty)
    }

    @Test("bad input: one clear error naming the file")
    func badInput() throws {
        let dir = try Self.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let src = GGUFFixtures.modelPath(GGUFFixtures.smolFile)
        #expect(throws: GGUFError.self) { try ModelQuantization.quantize(source: src, target: .q2_K, to: dir + "/x.gguf", progress: false) }
        #expect(throws: GGUFError.self) { try ModelQuantization.quantize(source: src, target: .q4_0, to: src, progress: false) }
        #expect(throws: GGUFError.self) { try ModelQuantization.quantize(source: dir + "/missing.gguf", target: .q4_0, to: dir + "/x.gguf", progress: false) }
        #expect(!FileManager.default.fileExists(atPath: dir + "/x.gguf"))
    }
}
