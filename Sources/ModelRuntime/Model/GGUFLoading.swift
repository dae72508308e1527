import Foundation
import KernelABI

extension GGMLType {
    /// The kernels' format for this ggml type, or nil when the kernels do not read it.
    public var weightFormat: WeightFormat? {
        switch self {
        case .f32: return .f32
        case .f16: return .f16
        case .bf16: return .bf16
        case .q8_0: return .q8_0
        case .q4_0: return .q4_0
        case .q4_1: return .q4_1
        case .q5_0: return .q5_0
        case .q5_1: return .q5_1
        case .q4_K: return .q4_K
        case .q5_K: return .q5_K
        case .q6_K: return .q6_K
        default: return nil
        }
    }
}

/// GGUF tensors as a `TensorSource`: PyTorch-order shapes (reversed GGUF dims); matrices as stored in
/// the memory-mapped file, vectors dequantized to Float32.
struct GGUFTensorSource: TensorSource {
    let file: GGUFFile
    var location: String { file.path }
    func has(_ name: String) -> Bool { file.tensorInfo(name) != nil }
    func shape(of name: String) -> [Int]? { file.tensorInfo(name)?.shape }
    func read(_ name: String, shape: [Int], into dst: UnsafeMutablePointer<Float>) throws {
        guard let t = file.tensorInfo(name) else {
            throw ModelError(file: file.path, tensor: name, "tensor missing from the GGUF file; is this the right architecture?")
        }
        guard t.shape == shape else {
            throw ModelError(file: file.path, tensor: name, "has shape \(t.shape) (GGUF dims \(t.dims)) but the metadata implies \(shape)")
        }
        try file.dequantize(t, into: dst)
    }
    func stored(_ name: String, shape: [Int]) throws -> StoredTensor {
        guard let t = file.tensorInfo(name) else {
            throw ModelError(file: file.path, tensor: name, "tensor missing from the GGUF file; is this the right architecture?")
        }
        guard t.shape == shape else {
            throw ModelError(file: file.path, tensor: name, "has shape \(t.shape) (GGUF dims \(t.dims)) but the metadata implies \(shape)")
        }
        guard let format = t.type.weightFormat else {
            throw ModelError(file: file.path, tensor: name, "is stored as \(t.type.name), which ablab's kernels do not read (F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q4_K, Q5_K, Q6_K); requantize the model with llama.cpp's llama-quantize")
        }
        let raw = try file.rawData(t)
        return StoredTensor(format: format, base: raw.baseAddress!, owner: file)
    }
}

/// Metadata shared by llama.cpp's architectures.
enum GGUFArch {
    /// GGUF architectures → ablab's (Mistral is written as "llama"; GLM-4 as "chatglm").
    static let known: [String: Architecture] = ["llama": .llama, "qwen2": .qwen2, "qwen3": .qwen3, "gemma2": .gemma2,
                                                "gemma3": .gemma3, "phi3": .phi3, "chatglm": .glm]

    /// `{arch}.rope.scaling.*` and `rope_freqs.weight` (per-frequency divisors, how llama3 scaling travels).
    static func ropeScaling(_ f: GGUFFile, arch: String) throws -> RopeScaling {
        let p = arch + ".rope.scaling."
        let type = f.string(p + "type") ?? "none"
        let factor = f.double(p + "factor")
        func need() throws -> Double {
            guard let v = factor else { throw ModelError(file: f.path, "\(p)type \"\(type)\" without \(p)factor") }
            return v
        }
        if let t = f.tensorInfo("rope_freqs.weight") {
            guard type == "none" || type == "linear" && factor == 1 else {
                throw ModelError(file: f.path, tensor: "rope_freqs.weight", "frequency factors together with \(p)type \"\(type)\" are not supported")
            }
            return .frequencyFactors(try f.dequantize(t))
        }
        switch type {
        case "none": return .none
        case "linear": return try need() == 1 ? .none : .linear(factor: try need())
        case "yarn":
            let fct = try need()
            guard let ctx = f.int(p + "original_context_length") else {
                throw ModelError(file: f.path, "\(p)type \"yarn\" without \(p)original_context_length")
            }
            let att = f.double(p + "attn_factor") ?? (fct <= 1 ? 1 : 0.1 * log(fct) + 1)
            return .yarn(factor: fct, betaFast: f.double(p + "yarn_beta_fast") ?? 32, betaSlow: f.double(p + "yarn_beta_slow") ?? 1,
                         originalContext: Double(ctx), attentionFactor: att, truncate: true)
        default:
            throw ModelError(file: f.path, "\(p)type \"\(type)\" is not supported (none, linear, yarn, or rope_freqs.weight)")
        }
    }
}

extension ModelConfig {
    /// Reads the llama.cpp metadata keys of a GGUF file ("{arch}.block_count", …).
    static func fromGGUF(_ f: GGUFFile) throws -> ModelConfig {
        let archName = try f.requireString("general.architecture")
        guard let arch = GGUFArch.known[archName] else {
            throw ModelError(file: f.path, tensor: nil, "general.architecture \"\(archName)\" is not supported (\(GGUFArch.known.keys.sorted().joined(separator: ", ")))")
        }
        let p = archName + "."
        let d = try f.requireInt(p + "embedding_length")
        let nH = try f.requireInt(p + "attention.head_count")
        guard let embed = f.tensorInfo(WeightNames.gguf.name(.embed, 0)), embed.shape.count == 2 else {
            throw ModelError(file: f.path, tensor: "token_embd.weight", "missing or not a matrix")
        }
        var eos: [Int] = []
        if let e = f.int("tokenizer.ggml.eos_token_id") { eos.append(e) }
        if let e = f.int("tokenizer.ggml.eot_token_id"), !eos.contains(e) { eos.append(e) }
        var cfg = ModelConfig(
            arch: arch, nLayers: try f.requireInt(p + "block_count"), dModel: d, nHeads: nH,
            nKVHeads: f.int(p + "attention.head_count_kv") ?? nH,
            headDim: f.int(p + "attention.key_length") ?? (nH > 0 ? d / nH : 0),
            ffnDim: try f.requireInt(p + "feed_forward_length"), vocab: embed.shape[0],
            ropeTheta: f.double(p + "rope.freq_base") ?? 10000,
            rmsEps: Float(try f.requireDouble(p + "attention.layer_norm_rms_epsilon")),
            tiedEmbeddings: f.tensorInfo(WeightNames.gguf.name(.output, 0)) == nil,
            qkvBias: arch == .qwen2 || f.tensorInfo(WeightNames.gguf.name(.qBias, 0)) != nil,
            ropeStyle: .neox, eosIds: eos.sorted(), bosId: f.int("tokenizer.ggml.bos_token_id"),
            contextLength: f.int(p + "context_length"))
        switch arch {
        case .llama, .mistral: try Llama.gguf(f, &cfg)
        case .qwen2:
            if let s = f.string(p + "rope.scaling.type"), s != "none" {
                throw ModelError(file: f.path, "\(p)rope.scaling.type \"\(s)\" is not supported for qwen2 (only unscaled RoPE)")
            }
        case .qwen3: try Qwen3.gguf(f, &cfg)
        case .gemma2: try Gemma2.gguf(f, &cfg)
        case .gemma3: try Gemma3.gguf(f, &cfg)
        case .phi3: try Phi3.gguf(f, &cfg)
        case .glm: try Glm.gguf(f, &cfg)
        }
        try cfg.validate(file: f.path)
        return cfg
    }
}

extension Transformer {
    /// A llama.cpp GGUF file; matrices stay as stored in the memory-mapped file.
    /// LLaMA Q/K rows are un-permuted at load (see `Llama.unpermuteGGUFRows`), so RoPE is neox-style for
    /// every source; `keepGGUFRopeLayout` instead keeps the GGUF rows and rotates adjacent pairs (the same
    /// function, used by the tests to check both layouts).
    public static func loadGGUF(path: String, keepGGUFRopeLayout: Bool = false) throws -> Transformer {
        let f = try GGUFFile(path: path)
        var config = try ModelConfig.fromGGUF(f)
        let unpermute = config.arch == .llama && !keepGGUFRopeLayout
        if config.arch == .llama && keepGGUFRopeLayout { config.ropeStyle = .adjacentPairs }
        let weights = try ModelWeights.load(config: config, source: GGUFTensorSource(file: f), names: .gguf(for: config), unpermuteQK: unpermute)
        return Transformer(config: config, weights: weights, source: path)
    }
}
