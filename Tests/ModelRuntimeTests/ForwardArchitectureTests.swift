import Foundation
import Testing
import LinearAlgebra
@testable import ModelRuntime

/// Every architecture's forward pass against transformers float32 on the tiny random checkpoints of
/// notebooks-scripts/fixtures_tiny_architectures.py (Fixtures/tiny, README there), loaded from the
/// safetensors folder and from the GGUF llama.cpp's conventions give: all five hooks of every layer
/// within 1e-3 relative per position, last-position logits within 1e-3, greedy continuations identical for
/// prefill + single-stream decoding and for both prompts decoded in one batch.
@Suite("Forward pass of every architecture (tiny fixtures)")
struct ForwardArchitectureTests {
    static let names = TinyArchitectureFixtureTests.names
    enum Format: String, CaseIterable, Sendable { case safetensors, gguf }
    struct Case: CustomStringConvertible, Sendable {
        let name: String; let format: Format
        var description: String { "\(name) (\(format.rawValue))" }
    }
    static let cases = names.flatMap { n in Format.allCases.map { Case(name: n, format: $0) } }

    struct Prompt: Decodable { var tokens: [Int]; var greedy: [Int]; var greedy_margins: [Double]; var residual_shape: [Int]; var logits_shape: [Int] }
    struct Reference: Decodable { var prompts: [Prompt] }

    struct Loaded {
        let model: Transformer
        let prompts: [Prompt]
        /// Per prompt: [layer][hook][token][d] then logits [vocab].
        let residuals: [ArraySlice<Float>]
        let logits: [ArraySlice<Float>]
    }

    static func load(_ c: Case) throws -> Loaded {
        let dir = try TinyArchitectureFixtureTests.folder(c.name)
        let m = c.format == .gguf ? try Transformer.loadGGUF(path: dir.appendingPathComponent("model.gguf").path)
                                  : try Transformer.loadHF(directory: dir.path)
        let ref = try JSONDecoder().decode(Reference.self, from: Data(contentsOf: dir.appendingPathComponent("reference.json")))
        let raw = try Data(contentsOf: dir.appendingPathComponent("reference.bin"))
        let floats = raw.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
        var at = 0
        var res: [ArraySlice<Float>] = [], lg: [ArraySlice<Float>] = []
        for p in ref.prompts {
            let n = p.residual_shape.reduce(1, *)
            res.append(floats[at..<(at + n)]); at += n
            lg.append(floats[at..<(at + p.logits_shape[0])]); at += p.logits_shape[0]
        }
        return Loaded(model: m, prompts: ref.prompts, residuals: res, logits: lg)
    }

    @Test("hooks of every layer and last-position logits within 1e-3 of transformers", arguments: cases)
    func residualsAndLogits(_ c: Case) throws {
        let fx = try Self.load(c)
        let m = fx.model, L = m.config.nLayers, d = m.config.dModel
        for (pi, p) in fx.prompts.enumerated() {
            #expect(p.residual_shape == [L, 5, p.tokens.count, d])
            let T = p.tokens.count
            var got = [[Float]](repeating: [], count: L * 5)
            var hooks = HookSet()
            for l in 0..<L {
                for (hi, point) in [HookPoint.residPre, .attnOut, .residMid, .mlpOut, .residPost].enumerated() {
                    hooks.add(layer: l, point: point) { a in
                        got[l * 5 + hi] = Array(UnsafeBufferPointer(start: a.rows, count: a.rowCount * a.dModel))
                    }
                }
            }
            let logits = try m.forward([ForwardItem(cache: m.makeCache(), tokens: p.tokens)], hooks: hooks, logits: .last)
            var worst = 0.0
            for l in 0..<L {
                for h in 0..<5 {
                    let base = fx.residuals[pi].startIndex + (l * 5 + h) * T * d
                    for t in 0..<T {
                        let ref = fx.residuals[pi][(base + t * d)..<(base + (t + 1) * d)]
                        let err = relativeL2(got[l * 5 + h][(t * d)..<((t + 1) * d)], ref)
                        worst = max(worst, err)
                        #expect(err <= 1e-3, "\(c) prompt \(pi) layer \(l) hook \(h) position \(t): relative error \(err)")
                    }
                }
            }
            let lerr = relativeL2(logits.data, fx.logits[pi])
            #expect(lerr <= 1e-3, "\(c) prompt \(pi) last-position logits: relative error \(lerr)")
            #expect(argmax(logits.data) == p.greedy[0])
            print("\(c) prompt \(pi): worst hook relative L2 \(worst), last-position logits \(lerr)")
        }
    }

    @Test("greedy continuations identical to transformers: prefill + single-stream decoding", arguments: cases)
    func greedySingleStream(_ c: Case) throws {
        let fx = try Self.load(c)
        for p in fx.prompts {
            let got = try greedyDecode(fx.model, prompt: p.tokens, n: p.greedy.count, eos: [])
            #expect(got == p.greedy, "\(c): got \(got), transformers \(p.greedy) (margins \(p.greedy_margins))")
        }
    }

    /// Both prompts prefilled in one packed call, then decoded together one token each per call; the
    /// logits are bit-identical to the single-stream ones.
    @Test("greedy continuations identical to transformers: batched decoding, same bits as single-stream", arguments: cases)
    func greedyBatched(_ c: Case) throws {
        let fx = try Self.load(c)
        let m = fx.model
        let caches = fx.prompts.map { _ in m.makeCache() }
        var logits = try m.forward(zip(caches, fx.prompts).enumerated().map { ForwardItem(cache: $1.0, tokens: $1.1.tokens, sequenceID: $0) })
        var got = [[Int]](repeating: [], count: fx.prompts.count)
        var batchedLogits = [[Float]](repeating: [], count: fx.prompts.count)
        let V = m.config.vocab
        for step in 0..<fx.prompts[0].greedy.count {
            var next: [Int] = []
            for i in 0..<fx.prompts.count {
                let row = Array(logits.data[(i * V)..<((i + 1) * V)])
                if step == fx.prompts[0].greedy.count - 1 { batchedLogits[i] = row }
                next.append(argmax(row)); got[i].append(next[i])
            }
            logits = try m.forward(caches.enumerated().map { ForwardItem(cache: $1, tokens: [next[$0]], sequenceID: $0) })
        }
        for (i, p) in fx.prompts.enumerated() {
            #expect(got[i] == p.greedy, "\(c) prompt \(i): got \(got[i]), transformers \(p.greedy)")
            // The same sequence alone, decoded token by token: the same logits bit for bit.
            let cache = m.makeCache()
            var l = try m.forward([ForwardItem(cache: cache, tokens: p.tokens)])
            for t in got[i].dropLast() { l = try m.forward([ForwardItem(cache: cache, tokens: [t])]) }
            #expect(l.data == batchedLogits[i], "\(c) prompt \(i): batched and single-stream logits differ")
        }
    }

    @Test("configuration quirks read from both formats agree", arguments: names)
    func configsAgree(name: String) throws {
        let a = try Self.load(Case(name: name, format: .safetensors)).model.config
        let b = try Self.load(Case(name: name, format: .gguf)).model.config
        #expect(a.nLayers == b.nLayers && a.headDim == b.headDim && a.ropeDim == b.ropeDim)
        #expect(a.qkNorm == b.qkNorm && a.postNorms == b.postNorms && a.mlpActivation == b.mlpActivation)
        #expect(a.slidingWindow == b.slidingWindow)
        #expect((0..<a.nLayers).map(a.isSliding) == (0..<b.nLayers).map(b.isSliding))
        #expect(a.attentionSoftcap == b.attentionSoftcap && a.finalSoftcap == b.finalSoftcap)
        #expect(a.localRopeTheta == b.localRopeTheta && a.ropeTheta == b.ropeTheta)
        // transformers' Gemma norms multiply by (1 + w); llama.cpp's GGUFs store w + 1.
        #expect(a.normOffset == (name.hasPrefix("gemma") ? 1 : 0) && b.normOffset == 0)
        if let s = a.attentionScale, let t = b.attentionScale { #expect(abs(s - t) <= 1e-6 * s) }
    }
}
