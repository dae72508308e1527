import Foundation

/// Qwen2-architecture models (Qwen2ForCausalLM; GGUF general.architecture "qwen2"), e.g. Qwen2.5-Coder.
/// Same block as LLaMA plus biases on the Q, K and V projections; RoPE is neox-style in both sources.
enum Qwen2 {
    static func config(hf c: HFConfigReader) throws -> ModelConfig {
        if let sw = c.json["use_sliding_window"] as? NSNumber, sw.boolValue {
            throw ModelError(file: c.file, "use_sliding_window = true is not supported")
        }
        return try c.common(arch: .qwen2, qkvBias: true, defaultTheta: 10000)
    }
}
