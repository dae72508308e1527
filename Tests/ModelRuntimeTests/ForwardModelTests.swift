import Foundation
import Testing
import LinearAlgebra
import ModelRuntime

/// The default models (from GGUF, and from the Hugging Face folders when present) against PyTorch /
/// transformers fixtures: residual stream at every layer boundary, last-position logits, and the greedy
/// continuation of `generate`.
@Suite(.serialized) struct ForwardModelTests {
    @Test(arguments: TestModels.cases)
    func matchesPyTorch(_ mc: ModelCase) throws {
        let m = try TestModels.load(mc)
        let names = ForwardFixture.names(model: mc.stem)
        try #require(names.count >= 4, "fixtures for \(mc.stem) missing; run notebooks-scripts/fixtures_forward.py")
        for name in names {
            let fx = try ForwardFixture(name: name)
            #expect(m.config.nLayers == fx.config["n_layers"] as? Int)
            #expect(m.config.vocab == fx.config["vocab"] as? Int)
            #expect(m.config.tiedEmbeddings == fx.config["tied_embeddings"] as? Bool)
            #expect(abs(m.config.ropeTheta - (fx.config["rope_theta"] as? Double ?? 0)) < 1e-3)
            let rec = ResidualRecorder(nLayers: m.config.nLayers, d: m.config.dModel)
            let logits = try m.forward([ForwardItem(cache: m.makeCache(), tokens: fx.tokens)], hooks: rec.hooks(nLayers: m.config.nLayers))
            var worst = 0.0
            for b in 0...m.config.nLayers {
                for (k, p) in fx.positions.enumerated() {
                    let err = relativeL2(rec.row(boundary: b, position: p), fx.residual(boundary: b, positionIndex: k))
                    worst = max(worst, err)
                    #expect(err <= 1e-3, "\(name): boundary \(b) position \(p): relative L2 error \(err)")
                }
            }
            let topIds = try #require(fx.header["top_ids"] as? [Int])
            let topLogits = try #require(fx.header["top_logits"] as? [Double])
            #expect(argmax(logits.data) == topIds[0], "\(name): top-1 token")
            for (id, ref) in zip(topIds, topLogits) {
                #expect(abs(Double(logits.data[id]) - ref) <= 0.01 + 1e-3 * abs(ref), "\(name): logit of token \(id): \(logits.data[id]) vs \(ref)")
            }
            let lse = try #require(fx.header["logsumexp"] as? Double)
            let mx = Double(logits.data.max()!)
            let ours = mx + log(logits.data.reduce(0.0) { $0 + exp(Double($1) - mx) })
            #expect(abs(ours - lse) <= 0.01, "\(name): logsumexp \(ours) vs \(lse)")
            let greedy = try greedyDecode(m, prompt: fx.tokens, n: fx.greedy.count, eos: Set(fx.eosIds))
            #expect(greedy == fx.greedy, "\(name): greedy continuation")
            print("\(mc) \(name): worst residual relative L2 \(worst)")
        }
    }

    /// Batched generation (slots reused) equals the fixtures' greedy continuations and is independent of
    /// the batch size; seeded sampling is reproducible and batch-independent; top-p → 0 is greedy.
    @Test(arguments: TestModels.cases.filter { $0.kind == "gguf" })
    func generatorMatchesGreedyFixtures(_ mc: ModelCase) throws {
        let m = try TestModels.load(mc)
        let fxs = try ForwardFixture.names(model: mc.stem).map { try ForwardFixture(name: $0) }
        try #require(fxs.count >= 4)
        let prompts = fxs.map(\.tokens)
        let gen = Generator(model: m)
        let eos = Set(fxs[0].eosIds)
        for batch in [1, 3, 8] {
            let out = try gen.generate(prompts: prompts, options: GenerationOptions(maxNewTokens: 32, eosIds: eos, maxBatch: batch))
            for (r, fx) in zip(out, fxs) {
                #expect(r.tokens == fx.greedy, "maxBatch \(batch): \(fx.name)")
                #expect(r.finishReason == (fx.header["greedy_stopped_at_eos"] as? Bool == true ? .eos : .length))
            }
        }
        let sampling = SamplingOptions(temperature: 0.8, topP: 0.9, seed: 42)
        let a = try gen.generate(prompts: prompts, options: GenerationOptions(maxNewTokens: 12, eosIds: eos, sampling: sampling, maxBatch: 4))
        let b = try gen.generate(prompts: prompts, options: GenerationOptions(maxNewTokens: 12, eosIds: eos, sampling: sampling, maxBatch: 1))
        #expect(a == b)
        let c = try gen.generate(prompts: prompts, options: GenerationOptions(maxNewTokens: 12, eosIds: eos, sampling: SamplingOptions(temperature: 0.8, topP: 0.9, seed: 43), maxBatch: 4))
        #expect(a != c, "a different seed should change some sample")
        let nearGreedy = try gen.generate(prompts: prompts, options: GenerationOptions(maxNewTokens: 12, eosIds: eos, sampling: SamplingOptions(temperature: 1, topP: 1e-6, seed: 1), maxBatch: 4))
        for (r, fx) in zip(nearGreedy, fxs) { #expect(r.tokens == Array(fx.greedy.prefix(12))) }
    }

    /// All fixture prompts packed in one forward equal one-by-one runs (residuals and last logits), and
    /// decoding several sequences in one call equals decoding them separately.
    @Test func packedPrefillEqualsOneByOne() throws {
        let mc = try #require(TestModels.smolGGUF, "SmolLM2 GGUF missing; run make models")
        let m = try TestModels.load(mc)
        let fxs = try ForwardFixture.names(model: mc.stem).map { try ForwardFixture(name: $0) }
        let L = m.config.nLayers
        let lengths = Dictionary(uniqueKeysWithValues: fxs.enumerated().map { ($0.offset, $0.element.tokens.count) })
        let packedCap = ActivationCapture(layers: Array(0..<L), lastPositions: 5, promptLengths: lengths)
        let caches = fxs.map { _ in m.makeCache() }
        let packed = try m.forward(fxs.enumerated().map { ForwardItem(cache: caches[$0.offset], tokens: $0.element.tokens, sequenceID: $0.offset) },
                                   hooks: packedCap.hooks(point: .residPost))
        #expect(packed.rows == fxs.count)
        var singleCaches: [KVCache] = []
        for (i, fx) in fxs.enumerated() {
            let cap = ActivationCapture(layers: Array(0..<L), lastPositions: 5, promptLengths: [i: fx.tokens.count])
            let cache = m.makeCache()
            singleCaches.append(cache)
            let single = try m.forward([ForwardItem(cache: cache, tokens: fx.tokens, sequenceID: i)], hooks: cap.hooks(point: .residPost))
            #expect(relativeL2(packed.row(i), single.row(0)) <= 1e-5)
            for l in 0..<L {
                let p = try #require(packedCap.values[i]?[l]), s = try #require(cap.values[i]?[l])
                #expect(p.count == 5 * m.config.dModel)
                #expect(relativeL2(p, s) <= 1e-5, "prompt \(i) layer \(l)")
            }
            // The capture hook sees exactly the PyTorch residuals at the last 5 positions.
            for l in 0..<L {
                let s = try #require(cap.values[i]?[l])
                for j in 0..<5 {
                    let pos = fx.tokens.count - 5 + j
                    let k = try #require(fx.positions.firstIndex(of: pos))
                    let err = relativeL2(s[(j * m.config.dModel)..<((j + 1) * m.config.dModel)], fx.residual(boundary: l + 1, positionIndex: k))
                    #expect(err <= 1e-3, "capture prompt \(i) layer \(l) position \(pos): \(err)")
                }
            }
        }
        // One batched decoding step of every sequence vs separate steps.
        let nextTokens = fxs.map { $0.greedy[0] }
        let batched = try m.forward(nextTokens.enumerated().map { ForwardItem(cache: caches[$0.offset], tokens: [$0.element], sequenceID: $0.offset) })
        for (i, t) in nextTokens.enumerated() {
            let one = try m.forward([ForwardItem(cache: singleCaches[i], tokens: [t])])
            #expect(relativeL2(batched.row(i), one.row(0)) <= 1e-5)
            #expect(argmax(one.row(0)) == fxs[i].greedy[1])
        }
    }
}
