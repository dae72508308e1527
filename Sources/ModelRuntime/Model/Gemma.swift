import Foundation

/// Gemma 2 and Gemma 3 (Gemma2ForCausalLM, Gemma3ForCausalLM; GGUF "gemma2", "gemma3"). Block:
///   x̂ = norm(x); a = attention(x̂); x += postAttnNorm(a); m = mlp(preFFNNorm(x)); x += postFFNNorm(m)
/// with (1 + w) RMSNorms (llama.cpp's GGUFs store w + 1), embeddings × sqrt(dModel), GeGLU (gelu tanh),
/// scores scaled by query_pre_attn_scalar^-0.5, sliding-window and global layers. Gemma 2: soft-capping of
/// scores and final logits, every other layer sliding. Gemma 3: q/k norms, no soft-capping, five of six
/// layers sliding with their own unscaled RoPE base (rope_local_base_freq).
enum Gemma2 {
    static func config(hf c: HFConfigReader) throws -> ModelConfig {
        var cfg = try GemmaCommon.hf(c, arch: .gemma2, defaultPattern: 2)
        cfg.attentionSoftcap = c.double("attn_logit_softcapping").map(Float.init)
        cfg.finalSoftcap = c.double("final_logit_softcapping").map(Float.init)
        return cfg
    }

    static func gguf(_ f: GGUFFile, _ c: inout ModelConfig) throws {
        try GemmaCommon.gguf(f, &c, arch: "gemma2", defaultPattern: 2, largeLayers: 46)
        c.attentionSoftcap = f.float("gemma2.attn_logit_softcapping")
        c.finalSoftcap = f.float("gemma2.final_logit_softcapping")
    }
}

enum Gemma3 {
    static func config(hf c: HFConfigReader) throws -> ModelConfig {
        var cfg = try GemmaCommon.hf(c, arch: .gemma3, defaultPattern: 6)
        cfg.qkNorm = true
        if c.double("attn_logit_softcapping") != nil || c.double("final_logit_softcapping") != nil {
            throw ModelError(file: c.file, "soft-capping in a Gemma 3 config is not supported (Gemma 3 has none)")
        }
        // Sliding layers: their own base, unscaled (transformers 5: rope_parameters.sliding_attention).
        if let p = c.json["rope_parameters"] as? [String: Any], p["sliding_attention"] != nil {
            let local = try c.rope(layerType: "sliding_attention", defaultTheta: 10000)
            guard local.scaling == .none else {
                throw ModelError(file: c.file, "rope_parameters.sliding_attention is scaled; only unscaled local RoPE is supported")
            }
            cfg.localRopeTheta = local.theta
            let global = try c.rope(layerType: "full_attention", defaultTheta: 1_000_000)
            cfg.ropeTheta = global.theta; cfg.ropeScaling = global.scaling
        } else {
            cfg.localRopeTheta = c.double("rope_local_base_freq") ?? 10000
        }
        return cfg
    }

    static func gguf(_ f: GGUFFile, _ c: inout ModelConfig) throws {
        try GemmaCommon.gguf(f, &c, arch: "gemma3", defaultPattern: 6, largeLayers: 62)
        c.qkNorm = true
        c.localRopeTheta = f.double("gemma3.rope.freq_base_swa") ?? 10000
    }
}

enum GemmaCommon {
    static func hf(_ c: HFConfigReader, arch: Architecture, defaultPattern: Int) throws -> ModelConfig {
        if let act = c.json["hidden_activation"] as? String ?? c.json["hidden_act"] as? String,
           act != "gelu_pytorch_tanh", act != "gelu_tanh" {
            throw ModelError(file: c.file, "hidden_activation \"\(act)\" is not supported (gelu_pytorch_tanh)")
        }
        var cfg = try c.common(arch: arch, qkvBias: c.bool("attention_bias", default: false), defaultTheta: 10000)
        cfg.normOffset = 1
        cfg.embedScale = Float(Double(cfg.dModel).squareRoot())
        cfg.postNorms = true
        cfg.mlpActivation = .geluTanh
        cfg.attentionScale = Float(pow(c.double("query_pre_attn_scalar") ?? Double(cfg.headDim), -0.5))
        cfg.slidingWindow = c.slidingWindow()
        if cfg.slidingWindow != nil {
            let pattern = c.int("sliding_window_pattern", default: c.int("_sliding_window_pattern", default: defaultPattern))
            cfg.slidingLayers = try c.slidingLayerTypes(nLayers: cfg.nLayers)
                ?? (0..<cfg.nLayers).map { ($0 + 1) % max(pattern, 1) != 0 }
        }
        return cfg
    }

    /// llama.cpp: sliding layers from `attention.sliding_window_pattern` (one bool per layer, or a period)
    /// or its per-architecture default period; attention scale from `attention.scale` or, as llama.cpp
    /// computes it, 1/sqrt(key_length) (the 27B models, with `largeLayers` layers: 1/sqrt(dModel / heads)).
    static func gguf(_ f: GGUFFile, _ c: inout ModelConfig, arch: String, defaultPattern: Int, largeLayers: Int) throws {
        let p = arch + "."
        c.normOffset = 0
        c.embedScale = Float(Double(c.dModel).squareRoot())
        c.postNorms = true
        c.mlpActivation = .geluTanh
        c.ropeScaling = try GGUFArch.ropeScaling(f, arch: arch)
        if let s = f.double(p + "attention.scale") {
            c.attentionScale = Float(s)
        } else {
            c.attentionScale = 1 / Float(c.nLayers == largeLayers ? c.dModel / c.nHeads : c.headDim).squareRoot()
        }
        if let w = f.int(p + "attention.sliding_window"), w > 0 {
            c.slidingWindow = w
            let key = p + "attention.sliding_window_pattern"
            if case let .array(_, a)? = f.metadata[key] {
                let flags = a.compactMap(\.boolValue)
                guard flags.count == c.nLayers else {
                    throw ModelError(file: f.path, "\(key) has \(a.count) entries for \(c.nLayers) layers (or is not an array of bools)")
                }
                c.slidingLayers = flags
            } else {
                let period = f.int(key) ?? defaultPattern
                c.slidingLayers = (0..<c.nLayers).map { ($0 + 1) % max(period, 1) != 0 }
            }
        }
    }
}
