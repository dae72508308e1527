import Foundation
import Testing
import AblabCore
import ModelRuntime
import ActivationCache
import Recording

/// `ablab record --compute bf16` on SmolLM2: the residual stream stays close to the f32 recording, does not
/// depend on how prompts are packed, and the cache says it was made in bf16 (a
/// partial recording is never continued in the other mode).
@Suite("record --compute bf16 on SmolLM2", .serialized)
struct RecordBF16Tests {
    static let prompts = [
        Prompt(id: "a", text: "How do I bake bread at home?", label: "harmless"),
        Prompt(id: "b", text: "Name three rivers in Europe and say which is longest.", label: "harmless"),
        Prompt(id: "c", text: "Explain how to pick a lock.", label: "harmful"),
        Prompt(id: "d", text: "What is the capital of Peru?", label: "harmless"),
        Prompt(id: "e", text: "Write a haiku about rain on a tin roof.", label: "harmless"),
        Prompt(id: "f", text: "How could someone get into a neighbour's wifi without the password?", label: "harmful"),
    ]

    static func record(_ model: ChatModel, _ run: String, compute: ComputeMode, batchTokens: Int = 4096) throws -> ActivationFile {
        var o = RecordOptions(checkpoint: "smol")
        o.showProgress = false
        o.positions = try PositionSpec.parse("-5:")
        o.compute = compute
        o.batchTokens = batchTokens
        return try ActivationFile(path: try Recorder.record(model: model, modelSHA256: "test", prompts: Self.prompts, run: run, options: o))
    }

    @Test("bf16 residuals stay within 5 % relative L2 of f32 (median within 2 %), bit-identical across packing; the cache says bf16",
          .enabled(if: ComputeMode.bf16.missingCPUFlags(in: CPUKernels.cpuFlags()).isEmpty,
                   "this CPU lacks avx512_bf16 (or the AVX-512 subsets it needs): bf16 recording cannot run here"))
    func residualsCloseToF32() throws {
        try #require(FileManager.default.fileExists(atPath: TestPaths.smolGGUF), "SmolLM2 GGUF missing; run make models")
        let model = try ChatModel(path: TestPaths.smolGGUF)
        let run = NSTemporaryDirectory() + "ablab-bf16-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: run) }
        let f32 = try Self.record(model, run + "/f32", compute: .f32)
        let bf16 = try Self.record(model, run + "/bf16", compute: .bf16)
        // one prompt per forward call: other row counts in every product (thread counts are covered by
        // BF16ComputeTests; the global thread count is not changed here, other suites run concurrently)
        let alone = try Self.record(model, run + "/alone", compute: .bf16, batchTokens: 1)
        #expect(f32.header.compute == "f32" && bf16.header.compute == "bf16")

        let nL = f32.header.nLayers, d = f32.header.dModel, n = Self.prompts.count
        var rel: [Double] = []
        for layer in 0...nL {
            var diff = [Double](repeating: 0, count: n), ref = [Double](repeating: 0, count: n)
            for p in f32.header.positions.map(Int.init) {
                let x = try f32.residual(layer: layer, position: p), y = try bf16.residual(layer: layer, position: p)
                #expect(try alone.residual(layer: layer, position: p).data.map(\.bitPattern) == y.data.map(\.bitPattern),
                        "layer \(layer) position \(p): bf16 depends on packing")
                for i in 0..<n {
                    for j in 0..<d {
                        let r = Double(x.data[i * d + j]), e = Double(y.data[i * d + j]) - r
                        diff[i] += e * e; ref[i] += r * r
                    }
                }
            }
            if layer == 0 {
                // the embeddings are looked up, not multiplied: identical
                #expect(diff.allSatisfy { $0 == 0 }, "embeddings differ")
                continue
            }
            rel += zip(diff, ref).map { ($0 / $1).squareRoot() }
        }
        rel.sort()
        let median = rel[rel.count / 2], worst = rel.last!
        // bf16 keeps 8 significant bits (relative rounding ≤ 2⁻⁹ ≈ 0.2 % per operand); over 30 layers the
        // residual drifts further, but a correct bf16 product keeps it within a few per cent.
        #expect(worst <= 0.05, "max relative L2 \(worst)")
        #expect(median <= 0.02, "median relative L2 \(median)")
        #expect(median >= 1e-4, "median relative L2 \(median): bf16 should differ from f32")
    }

    @Test("a partial recording in f32 is not continued in bf16 (the fingerprint names the compute mode)")
    func resumeRefusesOtherMode() throws {
        let run = NSTemporaryDirectory() + "ablab-bf16-fp-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: run) }
        var header = ActivationHeader(checkpoint: "c", modelPath: "models/c.gguf", modelSHA256: String(repeating: "0", count: 64),
                                      architecture: "llama", nLayers: 2, dModel: 4, systemPrompt: "", positions: [-1])
        do { _ = try ActivationCacheWriter(run: run, header: header, prompts: Self.prompts) }
        header.compute = "bf16"
        let e = try #require(throws: ActivationCacheError.self) {
            _ = try ActivationCacheWriter(run: run, header: header, prompts: Self.prompts)
        }
        #expect(e.kind == .fingerprintMismatch && e.message.contains("compute (f32 → bf16)"), "\(e)")
    }
}
