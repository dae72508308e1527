import Foundation

/// Qwen3 (Qwen3ForCausalLM; GGUF "qwen3"): the LLaMA block with an RMSNorm on every query and key head
/// (q_norm, k_norm, before RoPE) and a head size independent of dModel / heads; no Q/K/V biases.
enum Qwen3 {
    static func config(hf c: HFConfigReader) throws -> ModelConfig {
        if let sw = c.json["use_sliding_window"] as? NSNumber, sw.boolValue {
            throw ModelError(file: c.file, "use_sliding_window = true is not supported")
        }
        var cfg = try c.common(arch: .qwen3, qkvBias: c.bool("attention_bias", default: false), defaultTheta: 1_000_000)
        cfg.qkNorm = true
        return cfg
    }

    static func gguf(_ f: GGUFFile, _ c: inout ModelConfig) throws {
        c.qkNorm = true
        c.ropeScaling = try GGUFArch.ropeScaling(f, arch: "qwen3")
    }
}
