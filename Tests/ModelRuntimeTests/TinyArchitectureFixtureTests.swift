import Foundation
import Testing
@testable import ModelRuntime

/// The tiny checkpoints of notebooks-scripts/fixtures_tiny_architectures.py: ablab's readers open both
/// formats, the GGUF holds the safetensors' weights under llama.cpp's names with llama.cpp's conventions,
/// and the reference residuals mean what the hooks say. (The forward passes compared with them belong to
/// the runtime of each architecture.)
@Suite("Tiny architecture fixtures")
struct TinyArchitectureFixtureTests {
    static let names = ["llama", "llama-linear", "llama-llama3", "llama-yarn", "qwen2", "qwen3", "gemma2", "gemma3",
                        "mistral", "phi3", "glm"]

    struct Prompt: Decodable { var tokens: [Int]; var greedy: [Int]; var residual_shape: [Int]; var logits_shape: [Int] }
    struct Reference: Decodable { var name: String; var gguf_architecture: String; var hooks: [String]; var prompts: [Prompt] }

    static func folder(_ name: String) throws -> URL {
        let base = try #require(Bundle.module.url(forResource: "tiny", withExtension: nil, subdirectory: "Fixtures"),
                                "Fixtures/tiny missing; run notebooks-scripts/fixtures_tiny_architectures.py")
        return base.appendingPathComponent(name)
    }

    @Test("GGUF = safetensors weights under llama.cpp names; residuals add up as the hooks say", arguments: names)
    func fixture(name: String) throws {
        let dir = try Self.folder(name)
        let ref = try JSONDecoder().decode(Reference.self, from: Data(contentsOf: dir.appendingPathComponent("reference.json")))
        let st = try SafetensorsFile(path: dir.appendingPathComponent("model.safetensors").path)
        let gg = try GGUFFile(path: dir.appendingPathComponent("model.gguf").path)
        #expect(gg.architecture == ref.gguf_architecture)
        let gt = Dictionary(uniqueKeysWithValues: gg.tensors.map { ($0.name, $0) })
        func hf(_ n: String) throws -> [Float] {
            let t = try #require(st.tensors[n], "\(n) missing")
            var out = [Float](repeating: 0, count: t.elementCount)
            out.withUnsafeMutableBufferPointer { st.read(t, into: $0.baseAddress!) }
            return out
        }
        func gguf(_ n: String) throws -> [Float] { try gg.dequantize(try #require(gt[n], "\(n) missing from the GGUF")) }
        // Same values where llama.cpp keeps HF's layout.
        #expect(try gguf("token_embd.weight") == hf("model.embed_tokens.weight"))
        let v = name == "phi3" ? "blk.0.attn_qkv.weight" : "blk.0.attn_v.weight"
        #expect(try gguf(v) == hf(name == "phi3" ? "model.layers.0.self_attn.qkv_proj.weight" : "model.layers.0.self_attn.v_proj.weight"))
        // llama.cpp's Gemma norms multiply by w, transformers' by (1 + w): the GGUF holds w + 1.
        let norm = try hf("model.norm.weight"), gnorm = try gguf("output_norm.weight")
        let shift: Float = name.hasPrefix("gemma") ? 1 : 0
        #expect(zip(norm, gnorm).allSatisfy { abs($0 + shift - $1) <= 1e-6 })
        // llama3 scaling travels as one frequency factor per rotary pair.
        if name == "llama-llama3" { #expect(try gguf("rope_freqs.weight").count == 4) }

        let raw = try Data(contentsOf: dir.appendingPathComponent("reference.bin"))
        let floats = raw.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
        var at = 0
        #expect(ref.hooks == ["hook_resid_pre", "hook_attn_out", "hook_resid_mid", "hook_mlp_out", "hook_resid_post"])
        for p in ref.prompts {
            let (L, H, T, D) = (p.residual_shape[0], p.residual_shape[1], p.residual_shape[2], p.residual_shape[3])
            #expect(H == 5 && T == p.tokens.count && p.greedy.count == 6)
            func row(_ l: Int, _ h: Int) -> ArraySlice<Float> { floats[(at + ((l * H + h) * T) * D)..<(at + ((l * H + h + 1) * T) * D)] }
            for l in 0..<L {
                // resid_mid = resid_pre + attn_out and resid_post = resid_mid + mlp_out, as float32 additions.
                #expect(zip(row(l, 0), row(l, 1)).map { $0 + $1 } == Array(row(l, 2)), "\(name) layer \(l) resid_mid")
                #expect(zip(row(l, 2), row(l, 3)).map { $0 + $1 } == Array(row(l, 4)), "\(name) layer \(l) resid_post")
                if l + 1 < L { #expect(Array(row(l, 4)) == Array(row(l + 1, 0)), "\(name) layer \(l + 1) resid_pre") }
            }
            at += L * H * T * D + p.logits_shape[0]
        }
        #expect(at == floats.count)
    }
}
