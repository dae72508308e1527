import Foundation
import AblabCore
import LinearAlgebra
import ModelRuntime
import ActivationCache
import Analysis
import Abliteration

/// How a system's `[abliteration] method` becomes an edit of its checkpoint (inference-time hooks or
/// exported weights), from the run's analysis file and the fit prompts' cached activations.
extension Pipeline {
    /// The fit (split `train`) activations of `label` at cache layer `layer` and `position`, [n, d].
    func fitActivations(_ checkpoint: String, label: String, layer: Int, position: Int) throws -> Matrix {
        let file = try ActivationCache(run: run).open(checkpoint)
        let rows = file.promptIndices(label: label, split: "train")
        guard !rows.isEmpty else {
            throw AnalysisError(site: file.path, "no \(label) fit prompts in the activation cache of '\(checkpoint)'")
        }
        return try file.residual(layer: layer, position: position, prompts: rows)
    }

    /// Column means of `m` (Double sums in row order).
    static func columnMean(_ m: Matrix) -> [Float] {
        var s = [Double](repeating: 0, count: m.cols)
        for i in 0..<m.rows { for j in 0..<m.cols { s[j] += Double(m.data[i * m.cols + j]) } }
        return s.map { Float($0 / Double(max(m.rows, 1))) }
    }

    /// The cached direction of `method` at one site.
    func cachedDirection(_ checkpoint: String, method: Abliteration.DirectionMethod, layer: Int, position: Int) throws -> [Float] {
        try AnalysisFile.direction(run: run, checkpoint: checkpoint,
                                   method: Analysis.DirectionMethod(rawValue: method.cachedDirection) ?? .meanDiff,
                                   layer: layer, position: position)
    }

    /// The edit of an abliterated system of a checkpoint with `nLayers` blocks (see `DirectionMethod`).
    func ablationEdit(_ s: AbliterationSetting, nLayers: Int) throws -> AblationEdit {
        let scheme = s.scheme
        let alpha = Float(s.alpha)
        switch s.method {
        case .meanDiff, .pc1, .normPreserving:
            let r = try cachedDirection(s.checkpoint, method: s.method, layer: s.layer, position: s.position)
            return AblationEdit.uniform(try OrthonormalBasis([r]), nLayers: nLayers, scheme: scheme, alpha: alpha,
                                        form: s.method == .normPreserving ? .normPreserving : .project)
        case .projected:
            let r = try cachedDirection(s.checkpoint, method: .meanDiff, layer: s.layer, position: s.position)
            let mu = Self.columnMean(try fitActivations(s.checkpoint, label: "harmless", layer: s.layer, position: s.position))
            return AblationEdit.uniform(try OrthonormalBasis([try SubspaceBases.projected(r, harmlessMean: mu)]),
                                        nLayers: nLayers, scheme: scheme, alpha: alpha)
        case .perLayer:
            // block l writes into the cache's residual layer l + 1 (its output)
            let dirs = try (0..<nLayers).map { try cachedDirection(s.checkpoint, method: .meanDiff, layer: $0 + 1, position: s.position) }
            return try AblationEdit.perLayer(dirs, nLayers: nLayers, scheme: scheme, alpha: alpha)
        }
    }

    /// The inference-time hooks of an edit on the checkpoint's model (the norm-preserving form reads the
    /// row norms of the GGUF's writing matrices).
    func ablationHooks(_ edit: AblationEdit, model: ChatModel, checkpoint c: CheckpointSpec) throws -> HookSet {
        for w in [edit.embedding].compactMap({ $0 }) + Array(edit.blocks.values) where w.dModel != model.config.dModel {
            throw AbliterationError(file: c.model, key: "direction",
                                    "the direction has \(w.dModel) values but the model's residual stream has \(model.config.dModel)")
        }
        if edit.form == .normPreserving {
            guard c.model.lowercased().hasSuffix(".gguf") else {
                throw StudyError(file: studyFile, line: nil, key: "abliteration.method",
                                 message: "norm-preserving ablation reads the writing matrices of a GGUF checkpoint; \(c.model) is not one")
            }
            return try edit.hooks(nLayers: model.config.nLayers, matrix: try GGUFWriters.reader(c.model))
        }
        return try edit.hooks(nLayers: model.config.nLayers)
    }
}
