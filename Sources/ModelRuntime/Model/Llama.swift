import Foundation

/// LLaMA-architecture models (LlamaForCausalLM; GGUF general.architecture "llama"), e.g. SmolLM2.
enum Llama {
    static func config(hf c: HFConfigReader) throws -> ModelConfig {
        if c.bool("mlp_bias", default: false) {
            throw ModelError(file: c.file, "mlp_bias = true is not supported")
        }
        return try c.common(arch: .llama, qkvBias: c.bool("attention_bias", default: false), defaultTheta: 10000)
    }

    /// llama.cpp's converter permutes the rows of attn_q / attn_k of LLaMA models so that llama.cpp can
    /// rotate adjacent pairs; within each head, row 2i + j (j ∈ {0, 1}) of the GGUF tensor is row
    /// i + j·headDim/2 of the Hugging Face tensor. Undoing it lets one (neox) RoPE serve both sources.
    /// `w` is [heads · headDim, cols] row-major; `rowValues` also applies to a bias (cols = 1).
    static func unpermuteGGUFRows(_ w: UnsafeMutablePointer<Float>, heads: Int, headDim: Int, cols: Int) {
        let half = headDim / 2
        let tmp = UnsafeMutablePointer<Float>.allocate(capacity: headDim * cols)
        defer { tmp.deallocate() }
        for h in 0..<heads {
            let base = w + h * headDim * cols
            tmp.update(from: base, count: headDim * cols)
            for i in 0..<half {
                for j in 0..<2 {
                    (base + (i + j * half) * cols).update(from: tmp + (2 * i + j) * cols, count: cols)
                }
            }
        }
    }
}
