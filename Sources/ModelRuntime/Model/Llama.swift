import Foundation

/// LLaMA-architecture models (LlamaForCausalLM; GGUF general.architecture "llama"), e.g. SmolLM2, Llama 3.x.
/// Block: RMSNorm → attention (grouped-query, RoPE with every scaling transformers and llama.cpp use for
/// it: none, linear, llama3, yarn) → RMSNorm → SwiGLU MLP. GGUF Q/K rows are un-permuted at load (llama.cpp
/// stores them for adjacent-pair RoPE). A GGUF "llama" with `attention.sliding_window` is a Mistral.
enum Llama {
    static func config(hf c: HFConfigReader) throws -> ModelConfig {
        if c.bool("mlp_bias", default: false) {
            throw ModelError(file: c.file, "mlp_bias = true is not supported")
        }
        return try c.common(arch: .llama, qkvBias: c.bool("attention_bias", default: false), defaultTheta: 10000)
    }

    static func gguf(_ f: GGUFFile, _ c: inout ModelConfig) throws {
        c.ropeScaling = try GGUFArch.ropeScaling(f, arch: "llama")
        if let w = f.int("llama.attention.sliding_window"), w > 0 { c.slidingWindow = w }
    }
}

/// Mistral (MistralForCausalLM): the LLaMA block with a sliding window on every layer. llama.cpp writes
/// it as architecture "llama" (Q/K permuted like LLaMA).
enum Mistral {
    static func config(hf c: HFConfigReader) throws -> ModelConfig {
        var cfg = try c.common(arch: .mistral, qkvBias: false, defaultTheta: 10000)
        cfg.slidingWindow = c.slidingWindow()
        return cfg
    }
}
