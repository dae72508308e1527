import Foundation
import AblabCore

extension Transformer {
    /// Loads a model from a Hugging Face checkpoint folder (config.json + safetensors) or, once supported
    /// by `loadGGUF`, a `.gguf` file. All weights are converted to Float32 once.
    public static func load(path: String) throws -> Transformer {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir) else {
            throw ModelError(file: path, "does not exist; check the path or ABLAB_MODELS_DIR")
        }
        if isDir.boolValue { return try loadHF(directory: path) }
        return try loadGGUF(path: path)
    }

    /// A Hugging Face checkpoint folder. RoPE is neox-style (the checkpoint holds unpermuted Q/K).
    public static func loadHF(directory: String) throws -> Transformer {
        let ckpt = try HFCheckpoint(directory: directory)
        let config = try hfConfig(ckpt, directory: directory)
        let weights = try ModelWeights.load(config: config, source: ckpt, names: .huggingFace(for: config), unpermuteQK: false)
        return Transformer(config: config, weights: weights, source: directory)
    }

    /// The configuration of a Hugging Face folder: config.json, end-of-sequence ids of
    /// generation_config.json, tied embeddings as the tensors say.
    static func hfConfig(_ ckpt: HFCheckpoint, directory: String) throws -> ModelConfig {
        var config = try ModelConfig.fromHF(ckpt.config, file: directory + "/config.json")
        // generation_config.json may name more end-of-sequence ids than config.json.
        if let data = FileManager.default.contents(atPath: directory + "/generation_config.json"),
           let g = try? JSONSerialization.jsonObject(with: data) as? [String: Any] {
            let extra = HFConfigReader(json: g, file: directory + "/generation_config.json").intList("eos_token_id")
            config.eosIds = Array(Set(config.eosIds).union(extra)).sorted()
        }
        // Some tied checkpoints still carry lm_head.weight; some untied configs omit the flag. Follow the tensors.
        if !config.tiedEmbeddings && !ckpt.has(WeightNames.huggingFace.name(.output, 0)) {
            config.tiedEmbeddings = true
        }
        return config
    }
}
