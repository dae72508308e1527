import Foundation
import KernelABI

/// The weights of one block. Matrices stay in their stored format (pointing into the memory-mapped
/// file where its layout allows); norms and biases are small Float32 copies owned by the model.
public struct LayerWeights: @unchecked Sendable {
    public let attnNorm: UnsafeMutablePointer<Float>  // [dModel]
    public internal(set) var q: Linear                // [qDim, dModel] (+ bias [qDim], qwen2)
    public internal(set) var k: Linear                // [kvDim, dModel]
    public internal(set) var v: Linear                // [kvDim, dModel]
    public internal(set) var o: Linear                // [dModel, qDim]
    public let ffnNorm: UnsafeMutablePointer<Float>   // [dModel]
    public internal(set) var gate: Linear             // [ffnDim, dModel]
    public internal(set) var up: Linear               // [ffnDim, dModel]
    public internal(set) var down: Linear             // [dModel, ffnDim]
    /// [headDim] RMSNorm weights of every query / key head (Qwen3, Gemma 3), or nil.
    public let qNorm: UnsafeMutablePointer<Float>?
    public let kNorm: UnsafeMutablePointer<Float>?
    /// [dModel] norms of the attention and MLP outputs before the residual add (Gemma), or nil.
    public let postAttnNorm: UnsafeMutablePointer<Float>?
    public let postFFNNorm: UnsafeMutablePointer<Float>?
}

/// A tensor as stored: its format and the address of its first element, kept alive by `owner`.
struct StoredTensor {
    let format: WeightFormat
    let base: UnsafeRawPointer
    let owner: AnyObject
}

/// All weights of a model. A class: weight edits (orthogonalization, tests that poison a value) replace
/// a matrix by an edited Float32 copy in place, for every holder of the model.
public final class ModelWeights: @unchecked Sendable {
    /// [vocab, dModel]: token embeddings (a row is dequantized per token).
    public internal(set) var embed: Linear
    public let finalNorm: UnsafeMutablePointer<Float>  // [dModel]
    /// [vocab, dModel]; the same matrix as `embed` when the model ties them.
    public internal(set) var output: Linear
    public internal(set) var layers: [LayerWeights]
    public let tied: Bool
    /// Small Float32 tensors (norms, biases) and re-laid-out copies.
    private var owned: [OwnedBuffer]

    init(embed: Linear, finalNorm: UnsafeMutablePointer<Float>, output: Linear, layers: [LayerWeights], tied: Bool, owned: [OwnedBuffer]) {
        self.embed = embed; self.finalNorm = finalNorm; self.output = output; self.layers = layers; self.tied = tied; self.owned = owned
    }

    /// Every matrix, for accounting.
    var matrices: [Linear] {
        var all = [embed] + (tied ? [] : [output])
        for l in layers { all += [l.q, l.k, l.v, l.o, l.gate, l.up, l.down] }
        return all
    }

    /// Bytes of the matrices as held (stored format) plus the Float32 norms and biases.
    public var heldBytes: Int { matrices.reduce(0) { $0 + $1.weight.byteCount } + owned.reduce(0) { $0 + $1.bytes } }

    /// The formats of the matrices, with the bytes of each (for `--verbose` and the bench).
    public var formatSummary: [(WeightFormat, Int)] {
        var bytes: [WeightFormat: Int] = [:]
        for m in matrices { bytes[m.format, default: 0] += m.weight.byteCount }
        return bytes.sorted { $0.value > $1.value }
    }

    /// The embedding as an editable Float32 copy (the output head follows when tied). Values are unchanged.
    public func editableEmbedding() -> UnsafeMutablePointer<Float> {
        if embed.format == .f32, embed.owner is OwnedBuffer { return UnsafeMutablePointer(mutating: embed.weight.base.assumingMemoryBound(to: Float.self)) }
        let (copy, p) = embed.float32Copy()
        embed = copy
        if tied { output = copy }
        return p
    }

    /// A block's attention output bias [dModel], editable, or nil when the model has none.
    public func editableOutputBias(layer l: Int) -> UnsafeMutablePointer<Float>? {
        layers[l].o.bias.map { UnsafeMutablePointer(mutating: $0) }
    }

    /// A block's attention output or MLP down projection as an editable Float32 copy.
    public func editableOutputProjection(layer l: Int, mlp: Bool) -> UnsafeMutablePointer<Float> {
        let current = mlp ? layers[l].down : layers[l].o
        if current.format == .f32, current.owner is OwnedBuffer {
            return UnsafeMutablePointer(mutating: current.weight.base.assumingMemoryBound(to: Float.self))
        }
        let (copy, p) = current.float32Copy()
        if mlp { layers[l].down = copy } else { layers[l].o = copy }
        return p
    }
}

/// The logical weights of a LLaMA-like block, named per source by `WeightNames`.
enum WeightRole: CaseIterable, Sendable {
    case embed, finalNorm, output
    case attnNorm, q, k, v, qBias, kBias, vBias, o, oBias, ffnNorm, gate, up, down
    case qNorm, kNorm, postAttnNorm, postFFNNorm
    /// Fused [q; k; v] (Phi-3) and [gate; up] (Phi-3, GLM) matrices.
    case qkv, gateUp
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
        case .oBias: return p + "self_attn.o_proj.bias"
        case .ffnNorm: return p + "post_attention_layernorm.weight"
        case .gate: return p + "mlp.gate_proj.weight"
        case .up: return p + "mlp.up_proj.weight"
        case .down: return p + "mlp.down_proj.weight"
        case .qNorm: return p + "self_attn.q_norm.weight"
        case .kNorm: return p + "self_attn.k_norm.weight"
        case .postAttnNorm: return p + "post_attention_layernorm.weight"
        case .postFFNNorm: return p + "post_feedforward_layernorm.weight"
        case .qkv: return p + "self_attn.qkv_proj.weight"
        case .gateUp: return p + "mlp.gate_up_proj.weight"
        }
    }

    /// Hugging Face names of an architecture: Gemma's block has four norms, so the one before the MLP is
    /// pre_feedforward_layernorm and post_attention_layernorm follows attention.
    static func huggingFace(for c: ModelConfig) -> WeightNames {
        guard c.postNorms else { return .huggingFace }
        return WeightNames { role, l in
            role == .ffnNorm ? "model.layers.\(l).pre_feedforward_layernorm.weight" : WeightNames.huggingFace.name(role, l)
        }
    }

    /// llama.cpp names of an architecture (the same table for all of them).
    static func gguf(for c: ModelConfig) -> WeightNames { .gguf }

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
        case .oBias: return p + "attn_output.bias"
        case .ffnNorm: return p + "ffn_norm.weight"
        case .gate: return p + "ffn_gate.weight"
        case .up: return p + "ffn_up.weight"
        case .down: return p + "ffn_down.weight"
        case .qNorm: return p + "attn_q_norm.weight"
        case .kNorm: return p + "attn_k_norm.weight"
        case .postAttnNorm: return p + "post_attention_norm.weight"
        case .postFFNNorm: return p + "post_ffw_norm.weight"
        case .qkv: return p + "attn_qkv.weight"
        case .gateUp: return p + "ffn_up.weight"
        }
    }
}

extension ModelWeights {
    /// The weights of `config` from `source`: matrices as stored, norms and biases as Float32.
    /// `unpermuteQK`: undo llama.cpp's Q/K row permutation (GGUF LLaMA models), so RoPE is neox-style
    /// (the rows are reordered as stored, which is exact for every format).
    static func load(config c: ModelConfig, source: TensorSource, names: WeightNames, unpermuteQK: Bool) throws -> ModelWeights {
        let d = c.dModel, V = c.vocab
        var owned: [OwnedBuffer] = []
        func vector(_ role: WeightRole, _ l: Int, _ n: Int) throws -> UnsafeMutablePointer<Float> {
            let buf = OwnedBuffer(bytes: n * 4)
            try source.read(names.name(role, l), shape: [n], into: buf.floats)
            owned.append(buf)
            return buf.floats
        }
        func matrix(_ role: WeightRole, _ l: Int, _ rows: Int, _ cols: Int, bias: WeightRole? = nil) throws -> Linear {
            let name = names.name(role, l)
            let t = try source.stored(name, shape: [rows, cols])
            guard cols % t.format.blockSize == 0 else {
                throw ModelError(file: source.location, tensor: name, "rows of \(cols) values are not whole \(t.format) blocks of \(t.format.blockSize)")
            }
            var b: UnsafePointer<Float>? = nil
            if let bias, source.has(names.name(bias, l)) { b = UnsafePointer(try vector(bias, l, rows)) }
            return Linear(weight: WeightMatrix(format: t.format, rows: rows, cols: cols, base: t.base), bias: b, owner: t.owner)
        }
        let embed = try matrix(.embed, 0, V, d)
        let finalNorm = try vector(.finalNorm, 0, d)
        let output = c.tiedEmbeddings ? embed : try matrix(.output, 0, V, d)
        var layers: [LayerWeights] = []
        layers.reserveCapacity(c.nLayers)
        /// Rows `r` of a fused matrix (and of its bias), sharing its storage.
        func rows(_ m: Linear, _ r: Range<Int>) -> Linear {
            Linear(weight: m.weight.rows(r), bias: m.bias.map { $0 + r.lowerBound }, owner: m.owner)
        }
        for l in 0..<c.nLayers {
            let attnNorm = try vector(.attnNorm, l, d)
            var q: Linear, k: Linear, v: Linear
            if c.fusedQKV {
                let qkv = try matrix(.qkv, l, c.qkvDim, d)
                q = rows(qkv, 0..<c.qDim); k = rows(qkv, c.qDim..<(c.qDim + c.kvDim)); v = rows(qkv, (c.qDim + c.kvDim)..<c.qkvDim)
            } else {
                q = try matrix(.q, l, c.qDim, d, bias: c.qkvBias ? .qBias : nil)
                k = try matrix(.k, l, c.kvDim, d, bias: c.qkvBias ? .kBias : nil)
                v = try matrix(.v, l, c.kvDim, d, bias: c.qkvBias ? .vBias : nil)
            }
            if c.qkvBias, q.bias == nil || k.bias == nil || v.bias == nil {
                throw ModelError(file: source.location, tensor: names.name(.qBias, l), "the architecture has Q/K/V biases but the tensor is missing")
            }
            if unpermuteQK {
                q = try unpermuted(q, heads: c.nHeads, headDim: c.headDim, owned: &owned)
                k = try unpermuted(k, heads: c.nKVHeads, headDim: c.headDim, owned: &owned)
            }
            let o = try matrix(.o, l, d, c.qDim, bias: .oBias)
            let ffnNorm = try vector(.ffnNorm, l, d)
            let gate: Linear, up: Linear
            if c.fusedGateUp {
                let gu = try matrix(.gateUp, l, 2 * c.ffnDim, d)
                gate = rows(gu, 0..<c.ffnDim); up = rows(gu, c.ffnDim..<(2 * c.ffnDim))
            } else {
                gate = try matrix(.gate, l, c.ffnDim, d)
                up = try matrix(.up, l, c.ffnDim, d)
            }
            let down = try matrix(.down, l, d, c.ffnDim)
            layers.append(LayerWeights(attnNorm: attnNorm, q: q, k: k, v: v, o: o, ffnNorm: ffnNorm, gate: gate, up: up, down: down,
                                       qNorm: c.qkNorm ? try vector(.qNorm, l, c.headDim) : nil,
                                       kNorm: c.qkNorm ? try vector(.kNorm, l, c.headDim) : nil,
                                       postAttnNorm: c.postNorms ? try vector(.postAttnNorm, l, d) : nil,
                                       postFFNNorm: c.postNorms ? try vector(.postFFNNorm, l, d) : nil))
        }
        return ModelWeights(embed: embed, finalNorm: finalNorm, output: output, layers: layers, tied: c.tiedEmbeddings, owned: owned)
    }

    /// llama.cpp stores LLaMA Q/K rows of each head permuted for adjacent-pair RoPE: GGUF row
    /// h·hd + 2i + j holds original row h·hd + i + j·hd/2. The original order, rows copied as stored.
    private static func unpermuted(_ m: Linear, heads: Int, headDim hd: Int, owned: inout [OwnedBuffer]) throws -> Linear {
        var perm = [Int](repeating: 0, count: heads * hd)
        for h in 0..<heads {
            for i in 0..<(hd / 2) {
                for j in 0..<2 { perm[h * hd + i + j * hd / 2] = h * hd + 2 * i + j }
            }
        }
        var out = m.permutingRows(perm)
        if let b = m.bias {
            let nb = OwnedBuffer(bytes: perm.count * 4)
            for (r, src) in perm.enumerated() { nb.floats[r] = b[src] }
            owned.append(nb)
            out.bias = UnsafePointer(nb.floats)
        }
        return out
    }
}
