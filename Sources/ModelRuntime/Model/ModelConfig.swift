import Foundation
import AblabCore

/// The decoder-only architectures the runtime implements.
public enum Architecture: String, Sendable, CaseIterable {
    case llama, qwen2, qwen3, mistral, gemma2, gemma3, phi3, glm
}

/// The activation of a gated MLP: act(gate) ⊙ up.
public enum MLPActivation: String, Sendable {
    /// SwiGLU: silu(gate) ⊙ up.
    case silu
    /// GeGLU with the tanh approximation of GELU (PyTorch `gelu_pytorch_tanh`).
    case geluTanh
}

/// How rotary embeddings pair the dimensions of a head.
public enum RopeStyle: String, Sendable {
    /// Dimension i pairs with i + headDim/2 (Hugging Face "rotate_half"; llama.cpp "neox").
    case neox
    /// Dimension 2i pairs with 2i + 1 (llama.cpp "normal"; what GGUF LLaMA Q/K rows are permuted for).
    case adjacentPairs
}

/// Shapes and constants of a model, independent of where the weights came from.
public struct ModelConfig: Sendable, Equatable {
    public var arch: Architecture
    public var nLayers: Int
    public var dModel: Int
    public var nHeads: Int
    public var nKVHeads: Int
    public var headDim: Int
    public var ffnDim: Int
    public var vocab: Int
    public var ropeTheta: Double
    public var rmsEps: Float
    public var tiedEmbeddings: Bool
    public var qkvBias: Bool
    public var ropeStyle: RopeStyle
    /// End-of-sequence token ids named by the checkpoint (generation stops at any of them).
    public var eosIds: [Int]
    public var bosId: Int?
    /// The longest sequence (prompt plus generated tokens) the model was trained for: GGUF
    /// `<arch>.context_length`, Hugging Face `max_position_embeddings` (already the extended length for
    /// scaled RoPE). Nil when the file does not say. The forward pass
    /// does not use it; record and generate refuse longer prompts before any model work.
    public var contextLength: Int?

    // Block quirks (the defaults are LLaMA's); each architecture file sets its own.
    /// RoPE frequency scaling of the global (or only) rotary table.
    public var ropeScaling: RopeScaling = .none
    /// Dimensions of a head that rotate (partial rotary: GLM rotates the first half); nil: all of them.
    public var rotaryDim: Int? = nil
    /// Sliding-window attention: a query sees the last `slidingWindow` positions (itself included).
    public var slidingWindow: Int? = nil
    /// Which layers use the window (empty with a window: every layer).
    public var slidingLayers: [Bool] = []
    /// RoPE base of the sliding-window layers when it differs (Gemma 3: unscaled, rope_local_base_freq).
    public var localRopeTheta: Double? = nil
    /// Added to every RMSNorm weight: 1 for Gemma checkpoints in Hugging Face form ((1 + w) · x̂), 0 otherwise
    /// (llama.cpp's Gemma GGUFs store w + 1).
    public var normOffset: Float = 0
    /// Embedding rows are multiplied by this (Gemma: sqrt(dModel)).
    public var embedScale: Float? = nil
    /// RMSNorm per query and key head before RoPE (Qwen3, Gemma 3).
    public var qkNorm: Bool = false
    /// Norms after attention and after the MLP, before they are added to the residual stream (Gemma 2/3).
    public var postNorms: Bool = false
    public var mlpActivation: MLPActivation = .silu
    /// Attention score scale; nil: 1/sqrt(headDim) (Gemma: query_pre_attn_scalar^-0.5).
    public var attentionScale: Float? = nil
    /// score = cap · tanh(score / cap) before the softmax (Gemma 2).
    public var attentionSoftcap: Float? = nil
    /// logit = cap · tanh(logit / cap) (Gemma 2).
    public var finalSoftcap: Float? = nil
    /// Q, K and V stored as one [qkvDim, dModel] matrix (Phi-3), and gate and up as one [2 ffnDim, dModel]
    /// matrix (Phi-3, GLM); both are read as row ranges of the stored matrix.
    public var fusedQKV: Bool = false
    public var fusedGateUp: Bool = false

    public init(arch: Architecture, nLayers: Int, dModel: Int, nHeads: Int, nKVHeads: Int, headDim: Int,
                ffnDim: Int, vocab: Int, ropeTheta: Double, rmsEps: Float, tiedEmbeddings: Bool,
                qkvBias: Bool, ropeStyle: RopeStyle = .neox, eosIds: [Int] = [], bosId: Int? = nil,
                contextLength: Int? = nil) {
        self.arch = arch; self.nLayers = nLayers; self.dModel = dModel; self.nHeads = nHeads
        self.nKVHeads = nKVHeads; self.headDim = headDim; self.ffnDim = ffnDim; self.vocab = vocab
        self.ropeTheta = ropeTheta; self.rmsEps = rmsEps; self.tiedEmbeddings = tiedEmbeddings
        self.qkvBias = qkvBias; self.ropeStyle = ropeStyle; self.eosIds = eosIds; self.bosId = bosId
        self.contextLength = contextLength
    }

    public var qDim: Int { nHeads * headDim }
    public var kvDim: Int { nKVHeads * headDim }
    /// Rows of the fused Q|K|V projection.
    public var qkvDim: Int { qDim + 2 * kvDim }
    /// The rotating dimensions of a head.
    public var ropeDim: Int { rotaryDim ?? headDim }
    /// Whether layer `l` attends through the sliding window.
    public func isSliding(_ l: Int) -> Bool {
        guard slidingWindow != nil else { return false }
        return slidingLayers.isEmpty || (l < slidingLayers.count && slidingLayers[l])
    }

    /// Checks the numbers are usable (positive, heads divisible, even head size); `file` names the source.
    func validate(file: String) throws {
        func bad(_ what: String) -> ModelError { ModelError(file: file, "\(what); the model configuration is inconsistent") }
        guard nLayers > 0, nLayers <= 1024 else { throw bad("layer count \(nLayers) out of range") }
        guard dModel > 0, dModel <= 65536, nHeads > 0, nKVHeads > 0, headDim > 0, ffnDim > 0, vocab > 0 else {
            throw bad("a dimension is zero or negative")
        }
        guard vocab <= 4_000_000, ffnDim <= 1 << 20, headDim <= 1024, nHeads <= 1024 else { throw bad("a dimension is implausibly large") }
        guard nHeads % nKVHeads == 0 else { throw bad("\(nHeads) query heads are not a multiple of \(nKVHeads) key/value heads") }
        guard headDim % 2 == 0 else { throw bad("head size \(headDim) is odd, so rotary embeddings cannot pair it") }
        guard ropeDim % 2 == 0, ropeDim > 0, ropeDim <= headDim else { throw bad("rotary dimension \(ropeDim) is not an even number within the head size \(headDim)") }
        if let w = slidingWindow, w <= 0 { throw bad("sliding window \(w) is not positive") }
        if !slidingLayers.isEmpty, slidingLayers.count != nLayers { throw bad("\(slidingLayers.count) sliding-window layer flags for \(nLayers) layers") }
        try ropeScaling.validate(bad)
        guard ropeTheta > 0, rmsEps > 0 else { throw bad("rope theta or RMS epsilon is not positive") }
        if let n = contextLength, n <= 0 || n > 1 << 24 { throw bad("context length \(n) out of range (1…\(1 << 24))") }
    }

    static let supportedHFTypes = "llama, qwen2, qwen3, mistral, gemma2, gemma3_text, phi3, glm"

    /// Parses a Hugging Face config.json (LlamaForCausalLM / Qwen2ForCausalLM).
    static func fromHF(_ json: [String: Any], file: String) throws -> ModelConfig {
        guard let type = json["model_type"] as? String else {
            throw ModelError(file: file, "has no \"model_type\"; is this a Hugging Face config.json?")
        }
        let cfg: ModelConfig
        let r = HFConfigReader(json: json, file: file)
        switch type {
        case "llama": cfg = try Llama.config(hf: r)
        case "qwen2": cfg = try Qwen2.config(hf: r)
        case "qwen3": cfg = try Qwen3.config(hf: r)
        case "mistral": cfg = try Mistral.config(hf: r)
        case "gemma2": cfg = try Gemma2.config(hf: r)
        case "gemma3_text": cfg = try Gemma3.config(hf: r)
        case "phi3": cfg = try Phi3.config(hf: r)
        case "glm": cfg = try Glm.config(hf: r)
        default:
            throw ModelError(file: file, "model_type \"\(type)\" is not supported (\(Self.supportedHFTypes))")
        }
        try cfg.validate(file: file)
        return cfg
    }
}

/// Typed access to config.json values with errors naming the key.
struct HFConfigReader {
    let json: [String: Any]
    let file: String

    func int(_ key: String) throws -> Int {
        guard let v = json[key] as? NSNumber else {
            throw ModelError(file: file, tensor: nil, "key \"\(key)\" is missing or not a number")
        }
        return v.intValue
    }
    func int(_ key: String, default d: Int) -> Int { (json[key] as? NSNumber)?.intValue ?? d }
    func double(_ key: String) -> Double? { (json[key] as? NSNumber)?.doubleValue }
    func bool(_ key: String, default d: Bool) -> Bool { (json[key] as? NSNumber)?.boolValue ?? d }
    func intList(_ key: String) -> [Int] {
        if let n = json[key] as? NSNumber { return [n.intValue] }
        if let a = json[key] as? [Any] { return a.compactMap { ($0 as? NSNumber)?.intValue } }
        return []
    }

    /// The RoPE settings of one table: `rope_parameters` (transformers 5; `layerType` picks a per-layer-type
    /// entry as Gemma 3 writes them) or `rope_theta` + `rope_scaling` (transformers 4).
    func rope(layerType: String? = nil, defaultTheta: Double) throws -> (theta: Double, scaling: RopeScaling, partial: Double?) {
        var params: [String: Any]? = nil
        var key = "rope_scaling"
        if var p = json["rope_parameters"] as? [String: Any] {
            key = "rope_parameters"
            if let lt = layerType, let sub = p[lt] as? [String: Any] { p = sub; key += ".\(lt)" }
            params = p
        } else if let p = json["rope_scaling"] as? [String: Any] {
            params = p
        }
        let theta = (params?["rope_theta"] as? NSNumber)?.doubleValue ?? double("rope_theta") ?? defaultTheta
        let partial = (params?["partial_rotary_factor"] as? NSNumber)?.doubleValue ?? double("partial_rotary_factor")
        guard let p = params else { return (theta, .none, partial) }
        let scaling = try RopeScaling.fromHF(p, key: key, file: file, maxPositions: (json["max_position_embeddings"] as? NSNumber)?.intValue)
        return (theta, scaling, partial)
    }

    /// rope_theta of an unscaled table (the scaling is read by `rope`).
    func ropeTheta(default d: Double) throws -> Double { try rope(defaultTheta: d).theta }

    /// The rotary dimension from a partial rotary factor (nil: the whole head).
    func rotaryDim(headDim: Int, partial: Double?) throws -> Int? {
        guard let f = partial, f != 1 else { return nil }
        guard f > 0, f <= 1 else { throw ModelError(file: file, "partial_rotary_factor \(f) is not in (0, 1]") }
        return Int(Double(headDim) * f)
    }

    /// The fields shared by LLaMA-like configs.
    func common(arch: Architecture, qkvBias: Bool, defaultTheta: Double) throws -> ModelConfig {
        let d = try int("hidden_size")
        let nH = try int("num_attention_heads")
        let hd = (json["head_dim"] as? NSNumber)?.intValue ?? (nH > 0 ? d / nH : 0)
        let rope = try self.rope(defaultTheta: defaultTheta)
        var cfg = ModelConfig(
            arch: arch, nLayers: try int("num_hidden_layers"), dModel: d, nHeads: nH,
            nKVHeads: int("num_key_value_heads", default: nH), headDim: hd,
            ffnDim: try int("intermediate_size"), vocab: try int("vocab_size"),
            ropeTheta: rope.theta, rmsEps: Float(double("rms_norm_eps") ?? 1e-6),
            tiedEmbeddings: bool("tie_word_embeddings", default: false), qkvBias: qkvBias, ropeStyle: .neox,
            eosIds: intList("eos_token_id"), bosId: intList("bos_token_id").first,
            contextLength: (json["max_position_embeddings"] as? NSNumber)?.intValue)
        cfg.ropeScaling = rope.scaling
        cfg.rotaryDim = try rotaryDim(headDim: hd, partial: rope.partial)
        return cfg
    }

    /// sliding_window when it is a positive number (null / absent: none).
    func slidingWindow() -> Int? {
        guard let w = (json["sliding_window"] as? NSNumber)?.intValue, w > 0 else { return nil }
        return w
    }

    /// layer_types ("sliding_attention" / "full_attention") as flags, or nil when absent.
    func slidingLayerTypes(nLayers: Int) throws -> [Bool]? {
        guard let types = json["layer_types"] as? [String] else { return nil }
        guard types.count == nLayers else {
            throw ModelError(file: file, "layer_types lists \(types.count) layers but num_hidden_layers is \(nLayers)")
        }
        return try types.map {
            switch $0 {
            case "sliding_attention": return true
            case "full_attention": return false
            default: throw ModelError(file: file, "layer_types entry \"\($0)\" is not supported (sliding_attention, full_attention)")
            }
        }
    }
}
