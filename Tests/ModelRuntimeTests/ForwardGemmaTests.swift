import Foundation
import Testing
import LinearAlgebra
@testable import ModelRuntime

/// Gemma-3-270M (GGUF Q4_K_M, `make models-gemma`) against transformers float32 loading the same GGUF
/// (notebooks-scripts/fixtures_gemma.py): residual stream at every layer boundary within 1e-3 relative,
/// last-position top logits, greedy continuations identical on 16 chat-templated prompts (single-stream and
/// through the batched `Generator`). The tokenizer's ids against HF are checked in ChatTemplateFamilyTests
/// and TokenizerModelTests (gemma3.json).
@Suite(.serialized) struct ForwardGemmaTests {
    static let stem = "gemma-3-270m.Q4_K_M"

    static func model() throws -> Transformer {
        let path = try #require(TestModels.ggufFile(stem), "\(stem).gguf missing: run make models-gemma")
        return try TestModels.load(ModelCase(stem: stem, path: path, kind: "gguf", adjacentRope: false))
    }

    static func fixtures() throws -> [ForwardFixture] {
        let names = ForwardFixture.names(model: stem)
        try #require(names.count == 16, "Gemma fixtures missing; run notebooks-scripts/fixtures_gemma.py")
        return try names.map { try ForwardFixture(name: $0) }
    }

    @Test func configIsGemma3() throws {
        let c = try Self.model().config
        let fx = try Self.fixtures()[0].config
        #expect(c.arch == .gemma3 && c.nLayers == fx["n_layers"] as? Int && c.dModel == fx["d_model"] as? Int)
        #expect(c.headDim == fx["head_dim"] as? Int && c.nKVHeads == fx["n_kv_heads"] as? Int)
        #expect(c.slidingWindow == fx["sliding_window"] as? Int)
        let types = try #require(fx["layer_types"] as? [String])
        #expect((0..<c.nLayers).map(c.isSliding) == types.map { $0 == "sliding_attention" })
        #expect(c.qkNorm && c.postNorms && c.mlpActivation == .geluTanh && c.embedScale != nil)
    }

    @Test func residualsLogitsAndGreedyMatchTransformers() throws {
        let m = try Self.model()
        var worst = 0.0
        for fx in try Self.fixtures() {
            let rec = ResidualRecorder(nLayers: m.config.nLayers, d: m.config.dModel)
            let logits = try m.forward([ForwardItem(cache: m.makeCache(), tokens: fx.tokens)], hooks: rec.hooks(nLayers: m.config.nLayers))
            for b in 0...m.config.nLayers {
                for (k, p) in fx.positions.enumerated() {
                    let err = relativeL2(rec.row(boundary: b, position: p), fx.residual(boundary: b, positionIndex: k))
                    worst = max(worst, err)
                    #expect(err <= 1e-3, "\(fx.name): boundary \(b) position \(p): relative L2 error \(err)")
                }
            }
            let topIds = try #require(fx.header["top_ids"] as? [Int])
            let topLogits = try #require(fx.header["top_logits"] as? [Double])
            #expect(argmax(logits.data) == topIds[0], "\(fx.name): top-1 token")
            for (id, ref) in zip(topIds, topLogits) {
                #expect(abs(Double(logits.data[id]) - ref) <= 0.01 + 1e-3 * abs(ref), "\(fx.name): logit of token \(id): \(logits.data[id]) vs \(ref)")
            }
            let greedy = try greedyDecode(m, prompt: fx.tokens, n: fx.greedy.count, eos: Set(fx.eosIds))
            #expect(greedy == fx.greedy, "\(fx.name): greedy \(greedy) vs transformers \(fx.greedy) (margins \(fx.header["greedy_margins"] ?? ""))")
        }
        print("Gemma-3-270M: worst residual relative L2 \(worst)")
    }

    @Test func batchedGenerationMatchesGreedy() throws {
        let m = try Self.model()
        let fxs = try Self.fixtures()
        let out = try Generator(model: m).generate(prompts: fxs.map(\.tokens),
                                                   options: GenerationOptions(maxNewTokens: 24, eosIds: Set(fxs[0].eosIds), maxBatch: 8))
        for (r, fx) in zip(out, fxs) { #expect(r.tokens == fx.greedy, "\(fx.name)") }
    }
}
