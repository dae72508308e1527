import Foundation
import AblabCore
import ModelRuntime

/// Weight orthogonalization W ← W − α r̂ r̂ᵀ W of every matrix that writes into the residual stream:
/// the token embedding rows, each block's attention output projection and MLP down projection.
/// See `Ablation` for why this equals inference-time ablation with the same α.
///
/// Layouts (row-major, PyTorch order = reversed GGUF dims):
/// - `token_embd.weight` [vocab, dModel]: each embedding row e ← e − α (e·r̂) r̂.
/// - `blk.l.attn_output.weight` [dModel, qDim] and `blk.l.ffn_down.weight` [dModel, ffnDim]: the row index
///   is the output (residual) coordinate, so W ← W − α r̂ (r̂ᵀ W) mixes rows: v = Σ_i r̂_i W[i,:], then
///   W[i,:] −= α r̂_i v.
public enum Orthogonalization {
    /// Every row e of `rows` [n, d] becomes e − α (e·r̂) r̂.
    public static func projectRows(_ rows: UnsafeMutablePointer<Float>, count n: Int, unit: UnitDirection, alpha: Float) {
        let d = unit.count
        let u = UnsafePointer(unit.buffer.p)
        for i in 0..<n { Kernels.projectOut(rows + i * d, u, d, alpha) }
    }

    /// W [d, cols] (d = the residual width, the output index) becomes W − α r̂ (r̂ᵀ W).
    public static func projectOutputIndex(_ w: UnsafeMutablePointer<Float>, cols: Int, unit: UnitDirection, alpha: Float) {
        let d = unit.count
        let u = unit.buffer.p
        let v = UnsafeMutablePointer<Float>.allocate(capacity: max(cols, 1))   // r̂ᵀ W, [cols]
        defer { v.deallocate() }
        v.initialize(repeating: 0, count: cols)
        for i in 0..<d { Kernels.axpy(u[i], UnsafePointer(w + i * cols), v, cols) }
        for i in 0..<d { Kernels.axpy(-alpha * u[i], UnsafePointer(v), w + i * cols, cols) }
    }

    /// Edits a loaded model's weights in place. Refuses tied-embedding models: their output head shares
    /// the embedding's memory and must stay the original (export a GGUF with `export` instead).
    public static func apply(to model: Transformer, direction: [Float], alpha: Float) throws {
        let c = model.config
        let unit = try UnitDirection(direction)
        try unit.check(dModel: c.dModel, source: model.source)
        guard !c.tiedEmbeddings else {
            throw AbliterationError(file: model.source, key: "output.weight",
                                    "the model ties its output head to the embedding, which must stay unedited; use Orthogonalization.export to write an untied copy")
        }
        let w = model.weights
        // Matrices are edited as Float32 copies of their stored values (the model then holds them as F32).
        projectRows(w.editableEmbedding(), count: c.vocab, unit: unit, alpha: alpha)
        for l in 0..<c.nLayers {
            projectOutputIndex(w.editableOutputProjection(layer: l, mlp: false), cols: c.qDim, unit: unit, alpha: alpha)
            if let b = w.editableOutputBias(layer: l) { projectRows(b, count: 1, unit: unit, alpha: alpha) }
            projectOutputIndex(w.editableOutputProjection(layer: l, mlp: true), cols: c.ffnDim, unit: unit, alpha: alpha)
        }
    }

    /// Whether the weight edit equals inference-time ablation for this GGUF: false when a norm follows the
    /// attention output or MLP projection (Gemma 2/3: `post_attention_norm`, `post_ffw_norm`), since
    /// norm(P W h) ≠ P norm(W h): the edited model keeps part of the direction (the export's metadata
    /// says so: `ablab.abliteration.exact = false` and `ablab.abliteration.note`).
    public static func isExact(_ f: GGUFFile, nLayers: Int) -> Bool {
        !(0..<nLayers).contains { f.tensorInfo("blk.\($0).post_attention_norm.weight") != nil || f.tensorInfo("blk.\($0).post_ffw_norm.weight") != nil }
    }

    /// What the export metadata says when the edit is not exact.
    public static let inexactNote = "not exact: a norm after the attention output and MLP projections (post_attention_norm, post_ffw_norm) rescales the edited output, so part of the direction stays in the residual stream; inference-time ablation (hooks after the norms) removes it exactly"

    /// Writes `source` (a llama.cpp GGUF of any architecture the runtime reads) to `path` with the residual-writing
    /// matrices orthogonalized. Edited tensors are stored as `type`: nil (the default) keeps each one's
    /// original type, requantized by `GGMLQuantizer` (llama.cpp's reference quantizers) from the Float32
    /// edit — F32 where the original type is one ablab cannot write; `.f32` / `.f16` / a block type store
    /// every edited matrix so. Biases stay F32. Every other tensor and all metadata are copied unchanged. A tied model gets an explicit `output.weight` holding the
    /// original embedding bytes, so the exported model's output head is unedited (and llama.cpp reads it).
    /// Adds `ablab.abliteration.*` metadata describing the edit. Returns the names of edited tensors.
    /// With the study's scheme (`setting.scheme`), only `attn_output` and `ffn_down` of the scheme's
    /// layers are edited and the embedding (hence a tied output head) stays as it is.
    @discardableResult
    public static func export(source: String, direction: [Float], alpha: Float, setting: AbliterationSetting? = nil,
                              type: GGMLType? = nil, to path: String) throws -> [String] {
        let scheme = setting?.scheme ?? .arditi
        let unit = try UnitDirection(direction)
        let f = try GGUFFile(path: source)
        let arch = f.architecture ?? ""
        let nLayers = f.int(arch + ".block_count") ?? 0
        let edit = AblationEdit.uniform(OrthonormalBasis(unit), nLayers: max(0, min(nLayers, 1024)), scheme: scheme, alpha: alpha)
        var extra: [String: GGUFValue] = [
            "ablab.abliteration.direction": .array(.float32, unit.values.map { .float32($0) }),
            "ablab.abliteration.direction_norm": .float32(unit.norm),
        ]
        if let s = setting, s.scheme.kind != .arditi {
            extra["ablab.abliteration.edit"] = .string(s.scheme.kind.rawValue)
            extra["ablab.abliteration.skip_begin"] = .int32(Int32(clamping: s.scheme.skipBegin))
            extra["ablab.abliteration.skip_end"] = .int32(Int32(clamping: s.scheme.skipEnd))
        }
        return try export(source: source, edit: edit, setting: setting, type: type, extraMetadata: extra, to: path)
    }

    /// Writes `source` with every writer of `edit` edited (its own basis per block, projection or
    /// norm-preserving form; see `AblationEdit`), as `export(source:direction:…)` does for one direction.
    /// Adds `ablab.abliteration.alpha`, `.form`, `.rank` (the largest basis) and the setting's fields.
    @discardableResult
    public static func export(source: String, edit: AblationEdit, setting: AbliterationSetting? = nil,
                              type: GGMLType? = nil, extraMetadata: [String: GGUFValue] = [:], to path: String) throws -> [String] {
        if let type, !GGMLQuantizer.canQuantize(type) {
            throw AbliterationError(file: path, key: "type", "edited tensors cannot be written as \(type); choose F32, F16 or one of \(GGMLQuantizer.supported.map(\.name).joined(separator: ", "))")
        }
        guard URL(fileURLWithPath: source).standardizedFileURL.path != URL(fileURLWithPath: path).standardizedFileURL.path else {
            throw AbliterationError(file: path, "the output would overwrite the source model; choose another --out")
        }
        let f = try GGUFFile(path: source)
        guard let arch = f.architecture else {
            throw AbliterationError(file: source, key: "general.architecture", "missing; is this a llama.cpp model file?")
        }
        guard let nLayers = f.int(arch + ".block_count"), nLayers > 0, nLayers <= 1024 else {
            throw AbliterationError(file: source, key: arch + ".block_count", "missing or out of range")
        }
        guard let embed = f.tensorInfo("token_embd.weight") else {
            throw AbliterationError(file: source, key: "token_embd.weight", "tensor missing; is this a llama.cpp model of a supported architecture?")
        }
        guard embed.shape.count == 2 else {
            throw AbliterationError(file: source, key: "token_embd.weight", "has shape \(embed.shape), not [vocab, d]")
        }
        let d = embed.shape[1]
        for w in edit.widths where w != d {
            throw AbliterationError(file: source, key: "token_embd.weight",
                                    "has shape \(embed.shape) but the direction has \(w) values; use a direction from this model")
        }
        func matrix(_ name: String) throws -> GGUFTensorInfo {
            guard let t = f.tensorInfo(name) else {
                throw AbliterationError(file: source, key: name, "tensor missing; is this a llama.cpp model of a supported architecture?")
            }
            guard t.shape.count == 2, t.shape[0] == d else {
                throw AbliterationError(file: source, key: name,
                                        "has shape \(t.shape) but a matrix writing into a \(d)-wide residual stream needs [\(d), n]; is the direction from this model?")
            }
            return t
        }
        var replacing: [String: (dims: [Int], type: GGMLType, data: [Float])] = [:]
        var encoded: [String: (dims: [Int], type: GGMLType, bytes: [UInt8])] = [:]
        /// Stores an edited matrix in `type`, or its original type when none is asked for.
        func store(_ t: GGUFTensorInfo, _ values: [Float]) throws {
            var target = type ?? t.type
            if !GGMLQuantizer.canQuantize(target) || t.dims[0] % target.blockSize != 0 { target = .f32 }
            if target == .f32 || target == .f16 {
                replacing[t.name] = (t.dims, target, values)
                return
            }
            do {
                let bytes = try GGMLQuantizer.quantize(target, rows: t.elementCount / t.dims[0], cols: t.dims[0], values: values, tensor: t.name)
                encoded[t.name] = (t.dims, target, bytes)
            } catch let e as GGMLQuantizer.Failure {
                throw AbliterationError(file: source, key: t.name, "the edited matrix cannot be stored as \(target): \(e.description)")
            }
        }
        if let basis = edit.embedding {
            var e = try f.dequantize(embed)   // [vocab, d]
            e.withUnsafeMutableBufferPointer { edit.editEmbeddingRows($0.baseAddress!, count: embed.shape[0], basis: basis) }
            try store(embed, e)
        }
        for l in edit.blocks.keys.sorted() where l < nLayers {
            let basis = edit.blocks[l]!
            // A bias on the attention output (llama attention_bias) writes into the residual stream too.
            var bias: [Float]?
            let bt = f.tensorInfo("blk.\(l).attn_output.bias")
            if let bt {
                guard bt.shape == [d] else {
                    throw AbliterationError(file: source, key: bt.name, "has shape \(bt.shape) but the residual stream is \(d) wide")
                }
                bias = try f.dequantize(bt)
            }
            for (name, mlp) in [("blk.\(l).attn_output.weight", false), ("blk.\(l).ffn_down.weight", true)] {
                let t = try matrix(name)
                var w = try f.dequantize(t)   // [d, cols]
                w.withUnsafeMutableBufferPointer { wp in
                    if !mlp, bias != nil {
                        bias!.withUnsafeMutableBufferPointer { edit.editMatrix(wp.baseAddress!, cols: t.shape[1], basis: basis, bias: $0.baseAddress!) }
                    } else {
                        edit.editMatrix(wp.baseAddress!, cols: t.shape[1], basis: basis)
                    }
                }
                try store(t, w)
            }
            if let bt, let bias { replacing[bt.name] = (bt.dims, .f32, bias) }
        }
        var extra = extraMetadata
        extra["ablab.abliteration.alpha"] = .float32(edit.alpha)
        let rank = ([edit.embedding].compactMap { $0 } + Array(edit.blocks.values)).map(\.rank).max() ?? 0
        if rank != 1 { extra["ablab.abliteration.rank"] = .int32(Int32(clamping: rank)) }
        if edit.form != .project { extra["ablab.abliteration.form"] = .string(edit.form.rawValue) }
        let exact = isExact(f, nLayers: nLayers)
        extra["ablab.abliteration.exact"] = .bool(exact)
        if let s = setting {
            extra["ablab.abliteration.system"] = .string(s.systemName)
            extra["ablab.abliteration.checkpoint"] = .string(s.checkpoint)
            extra["ablab.abliteration.method"] = .string(s.method.rawValue)
            extra["ablab.abliteration.layer"] = .int32(Int32(clamping: s.layer))
            extra["ablab.abliteration.position"] = .int32(Int32(clamping: s.position))
        }
        if !exact { extra["ablab.abliteration.note"] = .string(inexactNote) }
        var writer = try GGUFWriter.copy(from: f, replacing: replacing, encoded: encoded, extraMetadata: extra)
        if edit.embedding != nil && f.tensorInfo("output.weight") == nil {
            // Tied: the output head reads the residual stream and must stay the original embedding.
            let raw = try f.rawData(embed)
            try writer.addRawTensor(name: "output.weight", dims: embed.dims, type: embed.type, bytes: Array(raw))
        }
        try writer.write(to: path)
        return (Array(replacing.keys) + Array(encoded.keys)).sorted()
    }
}
