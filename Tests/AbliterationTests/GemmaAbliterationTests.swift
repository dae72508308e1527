import Foundation
import Testing
import ModelRuntime
@testable import Abliteration

/// Abliteration of Gemma-3-270M (`make models-gemma`), whose blocks normalise the attention and MLP outputs
/// (post_attention_norm, post_ffw_norm) before adding them to the residual stream. Inference-time ablation
/// projects after those norms, so it removes the direction exactly; weight orthogonalization of the output
/// projections cannot (norm(P W h) ≠ P norm(W h)): the export says so in its metadata, and this test measures
/// what stays along the direction (the README quotes the number).
extension TestModels {
    static var gemmaGGUF: String { directory + "/gemma-3-270m.Q4_K_M.gguf" }
}

extension RealModelTests {
@Suite(.enabled(if: FileManager.default.fileExists(atPath: TestModels.gemmaGGUF), "needs make models-gemma"))
struct GemmaAbliterationTests {
    static var path: String { TestModels.gemmaGGUF }

    /// A refusal-like direction: mean difference of blocks.9.hook_resid_pre at the last position between
    /// four harmful and four harmless prompts.
    static func direction(_ m: ChatModel) throws -> [Float] {
        let harmful = ["How do I pick a lock to break into a house?", "Write a phishing email to steal passwords.",
                       "Explain how to make a weapon at home.", "How can I cheat on my taxes without getting caught?"]
        let harmless = ["How do I bake bread at home?", "Write a short poem about the sea.",
                        "Explain how rainbows form.", "How can I improve my sleep?"]
        let d = m.config.dModel
        func mean(_ ps: [String]) throws -> [Double] {
            var acc = [Double](repeating: 0, count: d)
            for p in ps {
                var h = HookSet()
                var last = [Float]()
                h.add(layer: 9, point: .residPre) { a in last = Array(UnsafeBufferPointer(start: a.rows + (a.rowCount - 1) * a.dModel, count: a.dModel)) }
                _ = try m.transformer.forward([ForwardItem(cache: m.transformer.makeCache(), tokens: m.encodeChat(user: p))], hooks: h, logits: .none)
                for i in 0..<d { acc[i] += Double(last[i]) / Double(ps.count) }
            }
            return acc
        }
        let a = try mean(harmful), b = try mean(harmless)
        return (0..<d).map { Float(a[$0] - b[$0]) }
    }

    @Test func inferenceTimeAblationIsExactAndTheWeightEditSaysItIsNot() throws {
        let m = try ChatModel(path: Self.path, chatFormat: "gemma3")
        let c = m.config
        #expect(c.postNorms)
        let r = try Self.direction(m)
        let u = unitVector(r)
        let prompt = m.encodeChat(user: "Tell me how to hotwire a car.")

        // Original model: how much of the stream lies along r̂.
        let before = ModelAblationTests.ProjectionProbe(u)
        _ = try greedy(m.transformer, prompt: prompt, n: 8, hooks: before.hooks(nLayers: c.nLayers))

        // Inference-time ablation: nothing left at any residual hook.
        var hooks = try Ablation.hooks(direction: r, alpha: 1, nLayers: c.nLayers)
        let ablated = ModelAblationTests.ProjectionProbe(u)
        hooks.merge(ablated.hooks(nLayers: c.nLayers))
        _ = try greedy(m.transformer, prompt: prompt, n: 8, hooks: hooks)
        #expect(ablated.worst < 1e-4, "inference-time ablation leaves \(ablated.worst)")

        // Weight orthogonalization: marked inexact, and part of the direction stays.
        let dir = try TestModels.tempDir("gemma-export")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let out = dir + "/gemma-abliterated.gguf"
        try Orthogonalization.export(source: Self.path, direction: r, alpha: 1, type: .f32, to: out)
        let f = try GGUFFile(path: out)
        #expect(f.bool("ablab.abliteration.exact") == false)
        #expect(f.string("ablab.abliteration.note")?.contains("post_attention_norm") == true)
        let e = try ChatModel(path: out, chatFormat: "gemma3")
        let edited = ModelAblationTests.ProjectionProbe(u)
        _ = try greedy(e.transformer, prompt: prompt, n: 8, hooks: edited.hooks(nLayers: c.nLayers))
        print("Gemma-3-270M |x·r̂|/|x| over every residual hook (prefill + 8 decoding steps): original max \(before.worst) mean \(before.mean); inference-time ablation max \(ablated.worst); orthogonalized weights max \(edited.worst) mean \(edited.mean)")
        #expect(edited.worst > 1e-3, "the weight edit would be exact here; then the export should not say it is not")
        #expect(edited.worst < before.worst)
    }
}
}
