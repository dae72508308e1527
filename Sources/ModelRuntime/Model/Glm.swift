import Foundation

/// GLM-4 (GlmForCausalLM, model_type "glm"; GGUF "chatglm"): LLaMA's norm layout (input and
/// post-attention RMSNorm), Q/K/V biases, partial rotary (the first partial_rotary_factor of each head,
/// interleaved pairs 2i, 2i+1), gate and up in one matrix (gate_up_proj; GGUF ffn_up).
enum Glm {
    static func config(hf c: HFConfigReader) throws -> ModelConfig {
        var cfg = try c.common(arch: .glm, qkvBias: c.bool("attention_bias", default: true), defaultTheta: 10000)
        if cfg.rotaryDim == nil, c.json["partial_rotary_factor"] == nil, (c.json["rope_parameters"] as? [String: Any])?["partial_rotary_factor"] == nil {
            cfg.rotaryDim = cfg.headDim / 2   // GlmConfig's default partial_rotary_factor 0.5
        }
        cfg.fusedGateUp = true
        cfg.ropeStyle = .adjacentPairs
        return cfg
    }

    static func gguf(_ f: GGUFFile, _ c: inout ModelConfig) throws {
        c.arch = .glm
        c.fusedGateUp = true
        c.ropeStyle = .adjacentPairs
        c.ropeScaling = try GGUFArch.ropeScaling(f, arch: "chatglm")
        c.rotaryDim = f.int("chatglm.rope.dimension_count") ?? c.headDim / 2
    }
}
