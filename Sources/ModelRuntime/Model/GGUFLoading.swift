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

extension ModelConfig {
    /// Reads the llama.cpp metadata keys of a GGUF file ("{arch}.block_count", …).
    static func fromGGUF(_ f: GGUFFile) throws -> ModelConfig {
        let archName = try f.requireString("general.architecture")
        guard let arch = Architecture(rawValue: archName) else {
            throw ModelError(file: f.path, tensor: nil, "general.architecture \"\(archName)\" is not supported (llama, qwen2)")
        }
        let p = archName + "."
        if let scaling = f.string(p + "rope.scaling.type"), scaling != "none" {
            throw ModelError(file: f.path, "\(p)rope.scaling.type \"\(scaling)\" is not supported (only unscaled RoPE)")
        }
        let d = try f.requireInt(p + "embedding_length")
        let nH = try f.requireInt(p + "attention.head_count")
        guard let embed = f.tensorInfo(WeightNames.gguf.name(.embed, 0)), embed.shape.count == 2 else {
            throw ModelError(file: f.path, tensor: "token_embd.weight", "missing or not a matrix")
        }
        var eos: [Int] = []
        if let e = f.int("tokenizer.ggml.eos_token_id") { eos.append(e) }
        if let e = f.int("tokenizer.ggml.eot_token_id"), !eos.contains(e) { eos.append(e) }
        let cfg = ModelConfig(
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
        let weights = try ModelWeights.load(config: config, source: GGUFTensorSource(file: f), names: .gguf, unpermuteQK: unpermute)
        return Transformer(config: config, weights: weights, source: path)
    }
}
