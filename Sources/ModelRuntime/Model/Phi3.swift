import Foundation

/// Phi-3 (Phi3ForCausalLM; GGUF "phi3"): the LLaMA block with Q, K and V in one matrix (qkv_proj,
/// [q; k; v] rows) and gate and up in one (gate_up_proj, [gate; up] rows; GGUF ffn_up), read as row
/// ranges of the stored matrices; optional partial rotary and sliding window.
enum Phi3 {
    static func config(hf c: HFConfigReader) throws -> ModelConfig {
        var cfg = try c.common(arch: .phi3, qkvBias: false, defaultTheta: 10000)
        cfg.fusedQKV = true; cfg.fusedGateUp = true
        cfg.slidingWindow = c.slidingWindow()
        return cfg
    }

    static func gguf(_ f: GGUFFile, _ c: inout ModelConfig) throws {
        c.fusedQKV = true; c.fusedGateUp = true
        c.ropeScaling = try GGUFArch.ropeScaling(f, arch: "phi3")
        if let n = f.int("phi3.rope.dimension_count"), n != c.headDim { c.rotaryDim = n }
        if let w = f.int("phi3.attention.sliding_window"), w > 0 { c.slidingWindow = w }
    }
}
