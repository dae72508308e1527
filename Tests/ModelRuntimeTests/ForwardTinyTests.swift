import Foundation
import Testing
import LinearAlgebra
import ModelRuntime

/// Tiny random checkpoints (2 layers, saved by transformers as sharded F32, F16 and BF16 safetensors)
/// against the residuals, logits and greedy tokens PyTorch computed for them.
@Suite struct ForwardTinyTests {
    static let names = ["tiny-llama", "tiny-qwen2", "tiny-llama-bf16"]

    func load(_ name: String) throws -> Transformer {
        try Transformer.load(path: ForwardFixture.directory.appendingPathComponent(name).path)
    }

    @Test(arguments: names)
    func configMatchesTransformers(name: String) throws {
        let m = try load(name)
        let fx = try ForwardFixture(name: name + "-expected")
        let c = fx.config
        #expect(m.config.nLayers == c["n_layers"] as? Int)
        #expect(m.config.dModel == c["d_model"] as? Int)
        #expect(m.config.nHeads == c["n_heads"] as? Int)
        #expect(m.config.nKVHeads == c["n_kv_heads"] as? Int)
        #expect(m.config.headDim == c["head_dim"] as? Int)
        #expect(m.config.ffnDim == c["ffn_dim"] as? Int)
        #expect(m.config.vocab == c["vocab"] as? Int)
        #expect(m.config.ropeTheta == c["rope_theta"] as? Double)
        #expect(m.config.tiedEmbeddings == c["tied_embeddings"] as? Bool)
        #expect(m.config.qkvBias == (name == "tiny-qwen2"))
    }

    @Test(arguments: names)
    func residualsAndLogitsMatchPyTorch(name: String) throws {
        let m = try load(name)
        let fx = try ForwardFixture(name: name + "-expected")
        let rec = ResidualRecorder(nLayers: m.config.nLayers, d: m.config.dModel)
        let logits = try m.forward([ForwardItem(cache: m.makeCache(), tokens: fx.tokens)],
                                   hooks: rec.hooks(nLayers: m.config.nLayers), logits: .all)
        for b in 0...m.config.nLayers {
            for (k, p) in fx.positions.enumerated() {
                let err = relativeL2(rec.row(boundary: b, position: p), fx.residual(boundary: b, positionIndex: k))
                #expect(err <= 1e-4, "boundary \(b) position \(p): relative error \(err)")
            }
        }
        let ref = try #require(fx.arrays["logits"])
        #expect(ref.shape == [fx.tokens.count, m.config.vocab])
        for p in 0..<fx.tokens.count {
            let v = m.config.vocab
            let err = relativeL2(logits.data[(p * v)..<((p + 1) * v)], ref.values[(p * v)..<((p + 1) * v)])
            #expect(err <= 1e-4, "logits at position \(p): relative error \(err)")
        }
    }

    @Test(arguments: names)
    func greedyMatchesTransformersGenerate(name: String) throws {
        let m = try load(name)
        let fx = try ForwardFixture(name: name + "-expected")
        #expect(try greedyDecode(m, prompt: fx.tokens, n: fx.greedy.count, eos: []) == fx.greedy)
    }
}
