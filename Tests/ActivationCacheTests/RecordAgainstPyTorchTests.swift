import Foundation
import Testing
import AblabCore
import ModelRuntime
import ActivationCache
import Recording

/// `ablab record` on the real SmolLM2 GGUF against the PyTorch/transformers residual streams dumped by
/// notebooks-scripts/fixtures_forward.py (the same GGUF loaded in float32 by transformers).
@Suite("Recording against PyTorch fixtures", .serialized)
struct RecordAgainstPyTorchTests {
    static let stem = "SmolLM2-135M-Instruct.Q4_1"

    struct Fixture: Decodable {
        var system: String?
        var user: String
        var default_system_prompt: Bool
        var tokens: [Int]
        var positions: [Int]
        var bin: String
    }

    @Test("recorded residuals equal transformers' at every layer and recorded position", arguments: 0..<4)
    func recordMatchesPyTorch(index: Int) throws {
        let dir = TestPaths.root.appendingPathComponent("Tests/ModelRuntimeTests/Fixtures/forward")
        let fx = try JSONDecoder().decode(Fixture.self, from: Data(contentsOf: dir.appendingPathComponent("\(Self.stem)-\(index).json")))
        let bin = try Data(contentsOf: dir.appendingPathComponent(fx.bin))
        let nL = 30, d = 576, stored = fx.positions.count
        let expected: [Float] = bin.withUnsafeBytes { Array($0.bindMemory(to: Float.self).prefix((nL + 1) * stored * d)) }

        let system: SystemPrompt = fx.default_system_prompt ? .modelDefault : .custom(fx.system ?? "")
        let model = try ChatModel(path: TestPaths.modelsDir + "/\(Self.stem).gguf", systemPrompt: system)
        #expect(model.encodeChat(user: fx.user) == fx.tokens, "chat-formatted tokens differ from transformers'")

        let run = NSTemporaryDirectory() + "ablab-record-pt-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: run) }
        var o = RecordOptions(checkpoint: "smol")
        o.showProgress = false
        let prompts = [Prompt(id: "p\(index)", text: fx.user, label: "harmful", split: "train")]
        let path = try Recorder.record(model: model, modelSHA256: "test", prompts: prompts, run: run, options: o)
        #expect(path.hasSuffix("/activations/smol.h5"))

        let file = try ActivationCache(run: run).open("smol")
        let positions = file.header.positions.map(Int.init)
        #expect(positions == Array(-6...(-1)), "SmolLM2's ChatML suffix is 6 tokens")
        #expect(file.prompts.first?.nTokens == Int32(fx.tokens.count))
        let n = fx.tokens.count
        for rel in positions {
            let absolute = n + rel
            guard let col = fx.positions.firstIndex(of: absolute) else { Issue.record("fixture lacks position \(absolute)"); continue }
            for layer in 0...nL {
                let got = try file.residual(layer: layer, position: rel).row(0)
                let want = Array(expected[((layer * stored + col) * d)..<((layer * stored + col + 1) * d)])
                var num = 0.0, den = 0.0
                for j in 0..<d { num += Double(got[j] - want[j]) * Double(got[j] - want[j]); den += Double(want[j]) * Double(want[j]) }
                let rel2 = (num / max(den, 1e-30)).squareRoot()
                #expect(rel2 <= 1e-3, "layer \(layer), position \(rel): relative L2 \(rel2)")
            }
        }
    }
}
