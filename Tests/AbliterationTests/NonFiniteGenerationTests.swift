import Foundation
import Testing
import AblabCore
import ModelRuntime
@testable import Abliteration

/// Numerical guard of generation. Models are loaded privately (the shared test models stay clean).
extension RealModelTests {
@Suite("Numerical guard: generation with NaN and infinity")
struct NonFiniteGenerationTests {
    static let prompts = [
        Prompt(id: "a", text: "How do I bake bread at home?", label: "harmless"),
        Prompt(id: "poisoned", text: "Describe a zebra crossing.", label: "harmless"),
        Prompt(id: "c", text: "What is the capital of Peru?", label: "harmless"),
    ]

    @Test("NaN put into one prompt's residual stream stops that prompt at the hook and position; the others generate exactly as without it")
    func poisonOneSequence() throws {
        let path = try #require(TestModels.smolGGUF, "SmolLM2 GGUF missing; run make models")
        let model = try ChatModel(path: path)
        let encoded = Self.prompts.map { model.encodeChat(user: $0.text) }
        let options = GenerationOptions(maxNewTokens: 12, eosIds: Set(model.eosIds), maxBatch: 3)
        let clean = try Generator(model: model.transformer).generate(prompts: encoded, options: options)

        // Poison sequence 1 at layer 3's output, at its last prompt token (during prefill).
        var hooks = HookSet()
        let last = encoded[1].count - 1
        hooks.add(layer: 3, point: .residPost) { a in
            for s in a.segments where s.sequenceID == 1 {
                if let row = a.row(segment: s, position: last) { row[5] = .nan }
            }
        }
        let got = try Generator(model: model.transformer).generate(prompts: encoded, options: options, hooks: hooks)
        #expect(got[1].finishReason == .nonFinite)
        #expect(got[1].tokens.isEmpty)
        #expect(got[1].nonFinite?.hook == "blocks.3.hook_resid_post")
        #expect(got[1].nonFinite?.position == last)
        #expect(got[1].nonFinite?.value.isNaN == true)
        #expect(got[0] == clean[0] && got[2] == clean[2], "the other prompts are untouched")
        #expect(clean.allSatisfy { $0.finishReason != .nonFinite && $0.nonFinite == nil })
    }

    /// An infinite component in one token's embedding. That prompt's row is non-finite right at
    /// blocks.0.hook_resid_pre (the embedding itself), at the token's position. SmolLM2 ties its output
    /// matrix to the embedding, so every other prompt's logits for that token are h·e = ±inf: they stop at
    /// "logits" on their first step. Nothing may be written to the generations file.
    @Test("a poisoned embedding: every prompt is stopped and named, nothing is written, the error names checkpoint, prompt, hook and position")
    func poisonedEmbedding() throws {
        let path = try #require(TestModels.smolGGUF, "SmolLM2 GGUF missing; run make models")
        let model = try ChatModel(path: path)
        #expect(model.transformer.weights.tied, "SmolLM2 ties its embeddings")
        let d = model.config.dModel
        let encoded = Self.prompts.map { model.encodeChat(user: $0.text) }
        let others = Set([encoded[0], encoded[2]].flatMap { $0 })
        let pos = try #require(encoded[1].firstIndex { !others.contains($0) })
        (model.transformer.weights.editableEmbedding() + encoded[1][pos] * d + 7).pointee = .infinity

        let dir = try TestModels.tempDir("nonfinite")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let out = dir + "/smol.jsonl"
        let e = try #require(throws: NumericalError.self) {
            try GenerationRun.run(model: model, prompts: Self.prompts, system: "smol", setting: nil, direction: nil,
                                  options: GenerationOptions(maxNewTokens: 8, eosIds: Set(model.eosIds)), out: out, progress: false)
        }
        #expect(e.stopped.count == 3, "\(e.stopped)")
        #expect(e.stopped.first?.hasPrefix("prompt 'a': ") == true && e.stopped.first?.contains(" at logits, token position \(encoded[0].count - 1)") == true, "\(e.stopped)")
        #expect(e.stopped.contains("prompt 'poisoned': inf at blocks.0.hook_resid_pre, token position \(pos)"), "\(e.stopped)")
        #expect(e.description.hasPrefix(path + ": checkpoint smol produced a non-finite value for 3 prompts"), "\(e)")
        #expect(e.exitCode == ExitCode.numerical)
        let written = (try? String(contentsOfFile: out, encoding: .utf8)) ?? ""
        #expect(written.isEmpty, "no answer of a poisoned prompt may be written")
    }
}
}
