import Foundation
import Testing
import AblabCore
import ModelRuntime
import ActivationCache
import Recording

/// Numerical guard of `ablab record` with a poisoned model: SmolLM2 loaded privately (the shared test
/// models stay clean) with one component of one token's embedding set to +infinity. The token occurs in
/// one prompt only. Mathematics of the expected report: RMSNorm of that token's row divides by
/// sqrt(inf) and gives inf·0 = NaN, so its keys and values at layer 0 are NaN and every later token of
/// that prompt attends to them: the recorded (last) positions first turn NaN at blocks.0.hook_resid_post,
/// and the first recorded position is the first one reported. Other prompts never see the token (packed
/// prompts attend only within themselves) and must be stored exactly as a clean model stores them.
@Suite("Numerical guard: record with a poisoned model", .serialized)
struct RecordNonFiniteTests {
    static let prompts = [
        Prompt(id: "a", text: "How do I bake bread at home?", label: "harmless", split: "train"),
        Prompt(id: "b", text: "Name three rivers in Europe.", label: "harmless", split: "train"),
        Prompt(id: "poisoned", text: "Describe a zebra crossing.", label: "harmless", split: "train"),
        Prompt(id: "d", text: "What is the capital of Peru?", label: "harmless", split: "train"),
        Prompt(id: "e", text: "Write a haiku about rain.", label: "harmless", split: "train"),
    ]

    @Test("a prompt with non-finite activations is stopped and named; the others are stored, and a rerun with a repaired model finishes the cache")
    func poisonedPrompt() throws {
        try #require(FileManager.default.fileExists(atPath: TestPaths.smolGGUF), "SmolLM2 GGUF missing; run make models")
        let model = try ChatModel(path: TestPaths.smolGGUF)
        let d = model.config.dModel
        let tokens = Self.prompts.map { model.encodeChat(user: $0.text) }
        // A token of the poisoned prompt that no other prompt has.
        let others = Set(tokens.enumerated().filter { $0.offset != 2 }.flatMap(\.element))
        let t = try #require(tokens[2].first { !others.contains($0) })
        let slot = model.transformer.weights.editableEmbedding() + t * d + 7
        let saved = slot.pointee
        slot.pointee = .infinity
        defer { slot.pointee = saved }

        let run = NSTemporaryDirectory() + "ablab-nonfinite-\(UUID().uuidString)"
        let clean = run + "-clean"
        defer { try? FileManager.default.removeItem(atPath: run); try? FileManager.default.removeItem(atPath: clean) }
        var o = RecordOptions(checkpoint: "smol")
        o.showProgress = false
        o.promptsPerShard = 2
        let e = try #require(throws: NumericalError.self) {
            try Recorder.record(model: model, modelSHA256: "test", prompts: Self.prompts, run: run, options: o)
        }
        let positions = PositionSpec.auto.resolve(templateTokens: model.postInstructionTokens)
        #expect(e.stopped.count == 1, "\(e.stopped)")
        #expect(e.stopped.first?.hasPrefix("prompt 'poisoned': nan at blocks.0.hook_resid_post, position \(positions[0]) ") == true, "\(e)")
        #expect(e.exitCode == ExitCode.numerical)
        #expect(e.description.contains(TestPaths.smolGGUF) && e.description.contains("checkpoint smol"), "\(e)")
        #expect(!FileManager.default.fileExists(atPath: run + "/activations/smol.h5"), "an unfinished cache must not look finished")

        // Repair the model and rerun: only the stopped prompt is recorded; the file equals a clean run.
        slot.pointee = saved
        let path = try Recorder.record(model: model, modelSHA256: "test", prompts: Self.prompts, run: run, options: o)
        let cleanPath = try Recorder.record(model: model, modelSHA256: "test", prompts: Self.prompts, run: clean, options: o)
        let a = try ActivationFile(path: path), b = try ActivationFile(path: cleanPath)
        #expect(a.prompts.map(\.id) == Self.prompts.map(\.id))
        for layer in [0, 1, 15, 30] {
            for p in positions {
                #expect(try a.residual(layer: layer, position: p).data == b.residual(layer: layer, position: p).data,
                        "layer \(layer) position \(p)")
            }
        }
    }
}
