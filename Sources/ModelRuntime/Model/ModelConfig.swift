import Foundation
import AblabCore

/// The decoder-only architectures the runtime implements.
public enum Architecture: String, Sendable, CaseIterable {
    case llama, qwen2
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
    /// `<arch>.context_length`, Hugging Face `max_position_embeddings`. Scaled RoPE, which would extend it,
    /// is refused at load, so this is the stated value. Nil when the file does not say. The forward pass
    /// does not use it; record and generate refuse longer prompts before any model work.
    public var contextLength: Int?

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
        guard ropeTheta > 0, rmsEps > 0 else { throw bad("rope theta or RMS epsilon is not positive") }
        if let n = contextLength, n <= 0 || n > 1 << 24 { throw bad("context length \(n) out of range (1…\(1 << 24))") }
    }

    /// Parses a Hugging Face config.json (LlamaForCausalLM / Qwen2ForCausalLM).
    static func fromHF(_ json: [String: Any], file: String) throws -> ModelConfig {
        guard let type = json["model_type"] as? String else {
            throw ModelError(file: file, "has no \"model_type\"; is this a Hugging Face config.json?")
        }
        let cfg: ModelConfig
        switch type {
        case "llama": cfg = try Llama.config(hf: HFConfigReader(json: json, file: file))
        case "qwen2": cfg = try Qwen2.config(hf: HFConfigReader(json: json, file: file))
        default:
            throw ModelError(file: file, "model_type \"\(type)\" is not supported (llama, qwen2)")
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

    /// rope_theta, from the top level or from rope_parameters / rope_scaling (newer transformers);
    /// rejects scaled RoPE variants the runtime does not implement.
    func ropeTheta(default d: Double) throws -> Double {
        for key in ["rope_parameters", "rope_scaling"] {
            if let p = json[key] as? [String: Any] {
                let type = (p["rope_type"] as? String) ?? (p["type"] as? String) ?? "default"
                guard type == "default" else {
                    throw ModelError(file: file, "\(key).rope_type \"\(type)\" is not supported (only unscaled RoPE)")
                }
                if let t = (p["rope_theta"] as? NSNumber)?.doubleValue { return t }
            }
        }
        return double("rope_theta") ?? d
    }

    /// The fields shared by LLaMA-like configs.
    func common(arch: Architecture, qkvBias: Bool, defaultTheta: Double) throws -> ModelConfig {
        let d = try int("hidden_size")
        let nH = try int("num_attention_heads")
        let hd = int("head_dim", default: nH > 0 ? d / nH : 0)
        return ModelConfig(
            arch: arch, nLayers: try int("num_hidden_layers"), dModel: d, nHeads: nH,
            nKVHeads: int("num_key_value_heads", default: nH), headDim: hd,
            ffnDim: try int("intermediate_size"), vocab: try int("vocab_size"),
            ropeTheta: try ropeTheta(default: defaultTheta), rmsEps: Float(double("rms_norm_eps") ?? 1e-6),
            tiedEmbeddings: bool("tie_word_embeddings", default: false), qkvBias: qkvBias, ropeStyle: .neox,
            eosIds: intList("eos_token_id"), bosId: intList("bos_token_id").first,
            contextLength: (json["max_position_embeddings"] as? NSNumber)?.intValue)
    }
}
