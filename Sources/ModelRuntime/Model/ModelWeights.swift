import Foundation

/// One contiguous Float32 allocation holding every weight of a model (freed with the last reference).
final class WeightStorage: @unchecked Sendable {
    let base: UnsafeMutablePointer<Float>
    let count: Int
    init(count: Int) {
        self.count = count
        base = .allocate(capacity: max(count, 1))
        base.initialize(repeating: 0, count: max(count, 1))
    }
    deinit { base.deallocate() }
}

/// The weights of one block, row-major Float32 views into the model's storage. Mutable so that
/// weight edits (e.g. orthogonalising against a direction) can be applied in place.
public struct LayerWeights: @unchecked Sendable {
    public let attnNorm: UnsafeMutablePointer<Float>  // [dModel]
    public let wqkv: UnsafeMutablePointer<Float>      // [qDim + 2 kvDim, dModel]: rows Q, then K, then V
    public let bqkv: UnsafeMutablePointer<Float>?     // [qDim + 2 kvDim] (qwen2), nil without biases
    public let wo: UnsafeMutablePointer<Float>        // [dModel, qDim]
    public let ffnNorm: UnsafeMutablePointer<Float>   // [dModel]
    public let wGateUp: UnsafeMutablePointer<Float>   // [2 ffnDim, dModel]: rows gate, then up
    public let wDown: UnsafeMutablePointer<Float>     // [dModel, ffnDim]
}

/// All weights, dequantized once into contiguous row-major Float32.
public struct ModelWeights: @unchecked Sendable {
    let storage: WeightStorage
    public let embed: UnsafeMutablePointer<Float>      // [vocab, dModel]
    public let finalNorm: UnsafeMutablePointer<Float>  // [dModel]
    public let output: UnsafeMutablePointer<Float>     // [vocab, dModel]; == embed when tied
    public let layers: [LayerWeights]
    /// Total Float32 values held.
    public var parameterCount: Int { storage.count }
}

/// The logical weights of a LLaMA-like block, named per source by `WeightNames`.
enum WeightRole: CaseIterable, Sendable {
    case embed, finalNorm, output
    case attnNorm, q, k, v, qBias, kBias, vBias, o, ffnNorm, gate, up, down
}

/// Maps logical weights to a source's tensor names.
struct WeightNames: Sendable {
    let name: @Sendable (WeightRole, Int) -> String

    /// Hugging Face transformers names (LlamaForCausalLM, Qwen2ForCausalLM).
    static let huggingFace = WeightNames { role, l in
        let p = "model.layers.\(l)."
        switch role {
        case .embed: return "model.embed_tokens.weight"
        case .finalNorm: return "model.norm.weight"
        case .output: return "lm_head.weight"
        case .attnNorm: return p + "input_layernorm.weight"
        case .q: return p + "self_attn.q_proj.weight"
        case .k: return p + "self_attn.k_proj.weight"
        case .v: return p + "self_attn.v_proj.weight"
        case .qBias: return p + "self_attn.q_proj.bias"
        case .kBias: return p + "self_attn.k_proj.bias"
        case .vBias: return p + "self_attn.v_proj.bias"
        case .o: return p + "self_attn.o_proj.weight"
        case .ffnNorm: return p + "post_attention_layernorm.weight"
        case .gate: return p + "mlp.gate_proj.weight"
        case .up: return p + "mlp.up_proj.weight"
        case .down: return p + "mlp.down_proj.weight"
        }
    }

    /// llama.cpp GGUF names.
    static let gguf = WeightNames { role, l in
        let p = "blk.\(l)."
        switch role {
        case .embed: return "token_embd.weight"
        case .finalNorm: return "output_norm.weight"
        case .output: return "output.weight"
        case .attnNorm: return p + "attn_norm.weight"
        case .q: return p + "attn_q.weight"
        case .k: return p + "attn_k.weight"
        case .v: return p + "attn_v.weight"
        case .qBias: return p + "attn_q.bias"
        case .kBias: return p + "attn_k.bias"
        case .vBias: return p + "attn_v.bias"
        case .o: return p + "attn_output.weight"
        case .ffnNorm: return p + "ffn_norm.weight"
        case .gate: return p + "ffn_gate.weight"
        case .up: return p + "ffn_up.weight"
        case .down: return p + "ffn_down.weight"
        }
    }
}

extension ModelWeights {
    /// Reads every weight of `config` from `source` into one allocation.
    /// `unpermuteQK`: undo llama.cpp's Q/K row permutation (GGUF LLaMA models), so RoPE is neox-style.
    static func load(config c: ModelConfig, source: TensorSource, names: WeightNames, unpermuteQK: Bool) throws -> ModelWeights {
        let d = c.dModel, V = c.vocab
        let perLayer = d + c.qkvDim * d + (c.qkvBias ? c.qkvDim : 0) + d * c.qDim + d + 2 * c.ffnDim * d + d * c.ffnDim
        let total = V * d + d + (c.tiedEmbeddings ? 0 : V * d) + c.nLayers * perLayer
        let storage = WeightStorage(count: total)
        var cursor = storage.base
        func take(_ n: Int) -> UnsafeMutablePointer<Float> { defer { cursor += n }; return cursor }

        func read(_ role: WeightRole, _ l: Int, _ shape: [Int], _ dst: UnsafeMutablePointer<Float>) throws {
            try source.read(names.name(role, l), shape: shape, into: dst)
        }
        let embed = take(V * d)
        try read(.embed, 0, [V, d], embed)
        let finalNorm = take(d)
        try read(.finalNorm, 0, [d], finalNorm)
        let output: UnsafeMutablePointer<Float>
        if c.tiedEmbeddings {
            output = embed
        } else {
            output = take(V * d)
            try read(.output, 0, [V, d], output)
        }
        var layers: [LayerWeights] = []
        layers.reserveCapacity(c.nLayers)
        for l in 0..<c.nLayers {
            let attnNorm = take(d)
            try read(.attnNorm, l, [d], attnNorm)
            let wqkv = take(c.qkvDim * d)
            try read(.q, l, [c.qDim, d], wqkv)
            try read(.k, l, [c.kvDim, d], wqkv + c.qDim * d)
            try read(.v, l, [c.kvDim, d], wqkv + (c.qDim + c.kvDim) * d)
            var bqkv: UnsafeMutablePointer<Float>? = nil
            if c.qkvBias {
                let b = take(c.qkvDim)
                try read(.qBias, l, [c.qDim], b)
                try read(.kBias, l, [c.kvDim], b + c.qDim)
                try read(.vBias, l, [c.kvDim], b + c.qDim + c.kvDim)
                bqkv = b
            }
            if unpermuteQK {
                Llama.unpermuteGGUFRows(wqkv, heads: c.nHeads, headDim: c.headDim, cols: d)
                Llama.unpermuteGGUFRows(wqkv + c.qDim * d, heads: c.nKVHeads, headDim: c.headDim, cols: d)
                if let b = bqkv {
                    Llama.unpermuteGGUFRows(b, heads: c.nHeads, headDim: c.headDim, cols: 1)
                    Llama.unpermuteGGUFRows(b + c.qDim, heads: c.nKVHeads, headDim: c.headDim, cols: 1)
                }
            }
            let wo = take(d * c.qDim)
            try read(.o, l, [d, c.qDim], wo)
            let ffnNorm = take(d)
            try read(.ffnNorm, l, [d], ffnNorm)
            let wGateUp = take(2 * c.ffnDim * d)
            try read(.gate, l, [c.ffnDim, d], wGateUp)
            try read(.up, l, [c.ffnDim, d], wGateUp + c.ffnDim * d)
            let wDown = take(d * c.ffnDim)
            try read(.down, l, [d, c.ffnDim], wDown)
            layers.append(LayerWeights(attnNorm: attnNorm, wqkv: wqkv, bqkv: bqkv, wo: wo, ffnNorm: ffnNorm,
                                       wGateUp: wGateUp, wDown: wDown))
        }
        precondition(cursor == storage.base + total, "weight layout arithmetic")
        return ModelWeights(storage: storage, embed: embed, finalNorm: finalNorm, output: output, layers: layers)
    }
}
