import Foundation
import Testing
import ModelRuntime
@testable import Abliteration

/// Ablation on the real default model (SmolLM2-135M) with a random unit direction.
extension RealModelTests {
@Suite struct ModelAblationTests {
    /// Captures |x·r̂| / |x| for every row of every residual hook point (resid_pre, resid_mid, resid_post of
    /// every block), after any edits registered before it.
    final class ProjectionProbe {
        var worst = 0.0, largest = 0.0, sum = 0.0, rows = 0
        let u: [Float]
        init(_ u: [Float]) { self.u = u }
        /// Mean of |x·r̂| / |x| over the rows seen.
        var mean: Double { rows == 0 ? 0 : sum / Double(rows) }
        func hooks(nLayers: Int) -> HookSet {
            var s = HookSet()
            for l in 0..<nLayers {
                for p in [HookPoint.residPre, .residMid, .residPost] {
                    s.add(layer: l, point: p) { [unowned self] a in
                        for i in 0..<a.rowCount {
                            let x = UnsafeBufferPointer(start: a.rows + i * a.dModel, count: a.dModel)
                            let r = abs(dot(x, self.u)) / norm(x)
                            self.worst = max(self.worst, r)
                            self.largest = max(self.largest, r)
                            self.sum += r
                            self.rows += 1
                        }
                    }
                }
            }
            return s
        }
    }

    @Test func projectionVanishesAtEveryResidualHook() throws {
        let path = try #require(TestModels.any, "no SmolLM2 model under ABLAB_MODELS_DIR")
        let m = try TestModels.chat(path)
        let c = m.config
        var rng = TestRNG(7)
        let r = rng.vector(c.dModel)
        let u = unitVector(r)

        // Without ablation a random direction has a clear component (~1/sqrt(d)), so the probe can fail.
        let plain = ProjectionProbe(u)
        _ = try greedy(m.transformer, prompt: m.encodeChat(user: testPrompts[0]), n: 4, hooks: plain.hooks(nLayers: c.nLayers))
        #expect(plain.largest > 1e-2)

        let probe = ProjectionProbe(u)
        var hooks = try Ablation.hooks(direction: r, alpha: 1, nLayers: c.nLayers)
        hooks.merge(probe.hooks(nLayers: c.nLayers))
        // Prefill and 4 decoding steps: the probe sees both.
        _ = try greedy(m.transformer, prompt: m.encodeChat(user: testPrompts[0]), n: 4, hooks: hooks)
        #expect(probe.rows > 3 * c.nLayers * 10)
        #expect(probe.worst < 1e-3, "largest |x·r̂|/|x| after ablation: \(probe.worst)")
    }

    @Test func alphaZeroAddsNoHooksAndAlphaScalesTheFirstWrite() throws {
        let path = try #require(TestModels.any, "no SmolLM2 model under ABLAB_MODELS_DIR")
        let m = try TestModels.chat(path)
        let c = m.config
        var rng = TestRNG(11)
        let r = rng.vector(c.dModel)
        #expect(try Ablation.hooks(direction: r, alpha: 0, nLayers: c.nLayers).isEmpty)
        // At blocks.0.hook_resid_pre only the embedding has been written: its r̂ component is (1 − α) times
        // the original's.
        let u = unitVector(r)
        let prompt = m.encodeChat(user: testPrompts[1])
        func firstComponent(alpha: Float) throws -> [Double] {
            var comps: [Double] = []
            var h = alpha == 0 ? HookSet() : try Ablation.hooks(direction: r, alpha: alpha, nLayers: c.nLayers)
            h.add(layer: 0, point: .residPre) { a in
                for i in 0..<a.rowCount { comps.append(dot(UnsafeBufferPointer(start: a.rows + i * a.dModel, count: a.dModel), u)) }
            }
            _ = try m.transformer.forward([ForwardItem(cache: m.transformer.makeCache(), tokens: prompt)], hooks: h, logits: .none)
            return comps
        }
        let base = try firstComponent(alpha: 0)
        for alpha in [Float(0.25), 1.5] {
            let got = try firstComponent(alpha: alpha)
            for (g, b) in zip(got, base) { #expect(abs(g - (1 - Double(alpha)) * b) < 1e-5) }
        }
    }

    @Test func activationAdditionAddsBetaR() throws {
        let path = try #require(TestModels.any, "no SmolLM2 model under ABLAB_MODELS_DIR")
        let m = try TestModels.chat(path)
        let c = m.config
        var rng = TestRNG(3)
        let r = rng.vector(c.dModel)
        let layer = c.nLayers / 2, beta: Float = 4
        let prompt = m.encodeChat(user: testPrompts[2])
        func capture(_ base: HookSet) throws -> ([Float], [Float]) {
            var h = base
            var at: [Float] = []
            h.add(layer: layer, point: .residPre) { a in at += Array(UnsafeBufferPointer(start: a.rows, count: a.rowCount * a.dModel)) }
            let logits = try m.transformer.forward([ForwardItem(cache: m.transformer.makeCache(), tokens: prompt)], hooks: h)
            return (at, logits.data)
        }
        let (plain, plainLogits) = try capture(HookSet())
        let (added, addedLogits) = try capture(try Ablation.addition(direction: r, beta: beta, layer: layer))
        #expect(plain.count == prompt.count * c.dModel)
        // One Float32 rounding of x + βr: at most half an ulp of the result (some residual entries are large).
        var worst = 0.0
        for i in 0..<plain.count {
            let want = Double(plain[i]) + Double(beta) * Double(r[i % c.dModel])
            worst = max(worst, abs(Double(added[i]) - want) / (Double(added[i].ulp) + 1e-30))
        }
        #expect(worst <= 1.0, "largest error in ulps: \(worst)")
        #expect(relativeL2(addedLogits, plainLogits) > 1e-3)   // it does change the output
    }
}

}

extension RealModelTests {
/// Weight orthogonalization exported as GGUF and loaded back, against inference-time ablation.
@Suite(.enabled(if: TestModels.loadableGGUF != nil, "needs GGUF weight loading and the SmolLM2 GGUF"))
struct ExportTests {
    @Test(arguments: [Float(1), 0.5])
    func exportedModelMatchesInferenceTimeAblation(_ alpha: Float) throws {
        let src = try #require(TestModels.loadableGGUF)
        let m = try TestModels.chat(src)
        let c = m.config
        var rng = TestRNG(42)
        let r = rng.vector(c.dModel)
        let dir = try TestModels.tempDir("export")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let out = dir + "/edited.gguf"
        let setting = AbliterationSetting(checkpoint: TestModels.smol, method: .meanDiff, layer: 10, position: -1, alpha: Double(alpha))
        let edited = try Orthogonalization.export(source: src, direction: r, alpha: alpha, setting: setting, type: .f32, to: out)
        #expect(edited.count == 1 + 2 * c.nLayers)

        // The file: edited tensors F32, an explicit output head equal to the source's embedding bytes.
        let f = try GGUFFile(path: out), g = try GGUFFile(path: src)
        #expect(f.tensorInfo("token_embd.weight")?.type == .f32)
        let head = try #require(f.tensorInfo("output.weight"))
        let emb = try #require(g.tensorInfo("token_embd.weight"))
        #expect(head.type == emb.type && head.dims == emb.dims)
        #expect(Array(try f.rawData(head)) == Array(try g.rawData(emb)))
        #expect(f.string("ablab.abliteration.system") == setting.systemName)
        #expect(f.tensors.count == g.tensors.count + (g.tensorInfo("output.weight") == nil ? 1 : 0))

        let e = try ChatModel(path: out)
        #expect(!e.config.tiedEmbeddings)
        let hooks = try Ablation.hooks(direction: r, alpha: alpha, nLayers: c.nLayers)
        for p in testPrompts {
            let ids = m.encodeChat(user: p)
            #expect(e.encodeChat(user: p) == ids)
            let a = try greedy(m.transformer, prompt: ids, n: 16, hooks: hooks)
            let b = try greedy(e.transformer, prompt: ids, n: 16)
            #expect(a.tokens == b.tokens, "prompt \(p)")
            for (x, y) in zip(a.logits, b.logits) { #expect(relativeL2(y, x) < 1e-3) }
        }
        if alpha == 1 {
            // The edited weights alone keep every residual hook orthogonal to r̂.
            let probe = RealModelTests.ModelAblationTests.ProjectionProbe(unitVector(r))
            _ = try greedy(e.transformer, prompt: m.encodeChat(user: testPrompts[0]), n: 4, hooks: probe.hooks(nLayers: c.nLayers))
            #expect(probe.worst < 1e-3)
        }
    }

    /// The study's scheme: only attn_output / ffn_down of layers [1, L) are edited, the embedding (and so
    /// the tied head) is left alone, and the exported weights equal the scheme's inference-time hooks.
    @Test func studySchemeExportMatchesItsHooks() throws {
        let src = try #require(TestModels.loadableGGUF)
        let m = try TestModels.chat(src)
        let c = m.config
        var rng = TestRNG(7)
        let r = rng.vector(c.dModel)
        let dir = try TestModels.tempDir("export-study")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let scheme = EditScheme(kind: .study, skipBegin: 1, skipEnd: 0)
        let setting = AbliterationSetting(checkpoint: TestModels.smol, method: .meanDiff, layer: 10, position: -1, alpha: 1, edit: scheme)
        #expect(setting.systemName.hasSuffix("-a1-study"))
        let edited = try Orthogonalization.export(source: src, direction: r, alpha: 1, setting: setting, type: .f32, to: dir + "/study.gguf")
        #expect(edited.count == 2 * (c.nLayers - 1))
        #expect(!edited.contains("token_embd.weight") && !edited.contains("blk.0.attn_output.weight") && edited.contains("blk.1.ffn_down.weight"))
        let f = try GGUFFile(path: dir + "/study.gguf"), g = try GGUFFile(path: src)
        #expect(f.tensors.count == g.tensors.count)   // no extra output head: the embedding is unedited
        #expect(f.string("ablab.abliteration.edit") == "study")
        let e = try ChatModel(path: dir + "/study.gguf")
        let hooks = try Ablation.hooks(direction: r, alpha: 1, nLayers: c.nLayers, scheme: scheme)
        let arditi = try Ablation.hooks(direction: r, alpha: 1, nLayers: c.nLayers)
        let ids = m.encodeChat(user: testPrompts[0])
        let a = try greedy(m.transformer, prompt: ids, n: 12, hooks: hooks)
        let b = try greedy(e.transformer, prompt: ids, n: 12)
        #expect(a.tokens == b.tokens)
        for (x, y) in zip(a.logits, b.logits) { #expect(relativeL2(y, x) < 1e-3) }
        // … and it is not Arditi's edit.
        let d = try greedy(m.transformer, prompt: ids, n: 1, hooks: arditi)
        #expect(relativeL2(d.logits[0], a.logits[0]) > 1e-4)
    }

    /// The export in the original types (requantized by GGMLQuantizer) against the Float32 edit: relative L2
    /// of the edited matrices, of the residual stream after layers 0, L/2 and L−1 on the test prompts'
    /// prefill, and the largest remaining |x·r̂|/|x| over every residual hook. Prints the numbers the
    /// README quotes (section "Weight export"). Bounds: 4-bit blocks carry ≈ 2⁻⁴ relative noise per
    /// weight, so the matrices stay within 0.2 and the residual stream within 0.3 of the Float32 edit.
    @Test func originalTypeExportIsCloseToTheFloat32Edit() throws {
        let src = try #require(TestModels.loadableGGUF)
        let m = try TestModels.chat(src)
        let c = m.config
        var rng = TestRNG(42)
        let r = rng.vector(c.dModel)
        let dir = try TestModels.tempDir("export-orig")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let names = try Orthogonalization.export(source: src, direction: r, alpha: 1, type: .f32, to: dir + "/f32.gguf")
        try Orthogonalization.export(source: src, direction: r, alpha: 1, to: dir + "/orig.gguf")
        let f32 = try GGUFFile(path: dir + "/f32.gguf"), q = try GGUFFile(path: dir + "/orig.gguf"), g = try GGUFFile(path: src)
        var worstMatrix = 0.0, sumMatrix = 0.0
        for n in names where n.hasSuffix(".weight") {
            let a = try #require(q.tensorInfo(n)), b = try #require(f32.tensorInfo(n))
            #expect(a.type == g.tensorInfo(n)?.type, "\(n) keeps its stored type")
            let e = relativeL2(try q.dequantize(a), try f32.dequantize(b))
            worstMatrix = max(worstMatrix, e); sumMatrix += e
        }
        let nMatrices = Double(names.filter { $0.hasSuffix(".weight") }.count)
        #expect(worstMatrix < 0.2)

        let layers = [0, c.nLayers / 2, c.nLayers - 1]
        func residuals(_ t: Transformer, _ ids: [Int]) throws -> [[Float]] {
            var got = [[Float]](repeating: [], count: layers.count)
            var hooks = HookSet()
            for (k, l) in layers.enumerated() {
                hooks.add(layer: l, point: .residPost) { a in
                    if got[k].isEmpty { got[k] = Array(UnsafeBufferPointer(start: a.rows, count: a.rowCount * a.dModel)) }
                }
            }
            _ = try t.forward([ForwardItem(cache: t.makeCache(), tokens: ids)], hooks: hooks)
            return got
        }
        let mq = try ChatModel(path: dir + "/orig.gguf"), mf = try ChatModel(path: dir + "/f32.gguf")
        var worstResid = [Double](repeating: 0, count: layers.count)
        for p in testPrompts {
            let ids = m.encodeChat(user: p)
            for (k, (a, b)) in zip(try residuals(mq.transformer, ids), try residuals(mf.transformer, ids)).enumerated() {
                worstResid[k] = max(worstResid[k], relativeL2(a, b))
            }
        }
        #expect(worstResid.allSatisfy { $0 < 0.3 })
        let probe = RealModelTests.ModelAblationTests.ProjectionProbe(unitVector(r))
        _ = try greedy(mq.transformer, prompt: m.encodeChat(user: testPrompts[0]), n: 4, hooks: probe.hooks(nLayers: c.nLayers))
        let plain = RealModelTests.ModelAblationTests.ProjectionProbe(unitVector(r))
        _ = try greedy(m.transformer, prompt: m.encodeChat(user: testPrompts[0]), n: 4, hooks: plain.hooks(nLayers: c.nLayers))
        #expect(probe.worst < plain.largest)
        print("requantized export (\(URL(fileURLWithPath: src).lastPathComponent)): matrices relative L2 mean \(sumMatrix / nMatrices) max \(worstMatrix); "
              + "residual after layers \(layers) max relative L2 \(worstResid); largest |x·r̂|/|x| \(probe.worst) (unedited model \(plain.largest))")
    }

    @Test func alphaZeroExportIsTheOriginalAndInMemoryEditMatchesExport() throws {
        let src = try #require(TestModels.loadableGGUF)
        let m = try TestModels.chat(src)
        let c = m.config
        var rng = TestRNG(5)
        let r = rng.vector(c.dModel)
        let dir = try TestModels.tempDir("export0")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try Orthogonalization.export(source: src, direction: r, alpha: 0, type: .f32, to: dir + "/zero.gguf")
        let z = try ChatModel(path: dir + "/zero.gguf")
        let ids = m.encodeChat(user: testPrompts[0])
        let a = try greedy(m.transformer, prompt: ids, n: 8)
        let b = try greedy(z.transformer, prompt: ids, n: 8)
        #expect(a.tokens == b.tokens)
        #expect(a.logits == b.logits)   // same Float32 weights, same arithmetic

        // The α = 0 copy is untied, so it can be edited in place; that must equal the hooks.
        try Orthogonalization.apply(to: z.transformer, direction: r, alpha: 1)
        let h = try greedy(m.transformer, prompt: ids, n: 8, hooks: Ablation.hooks(direction: r, alpha: 1, nLayers: c.nLayers))
        let w = try greedy(z.transformer, prompt: ids, n: 8)
        #expect(h.tokens == w.tokens)
        for (x, y) in zip(h.logits, w.logits) { #expect(relativeL2(y, x) < 1e-3) }
        #expect(throws: AbliterationError.self) { try Orthogonalization.apply(to: m.transformer, direction: r, alpha: 1) }
    }
}
}
