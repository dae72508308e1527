import Foundation

/// LLaMA-architecture models (LlamaForCausalLM; GGUF general.architecture "llama"), e.g. SmolLM2.
enum Llama {
    static func config(hf c: HFConfigReader) throws -> ModelConfig {
        if c.bool("mlp_bias", default: false) {
            throw ModelError(file: c.file, "mlp_bias = true is not supported")
        }
        return try c.common(arch: .llama, qkvBias: c.bool("attention_bias", default: false), defaultTheta: 10000)
    }
}
