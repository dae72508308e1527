import Foundation
import AblabCore
import LinearAlgebra
import ModelRuntime
import Analysis
import Abliteration
import Judging

/// Subspace ablation (`[subspace]`): for each checkpoint and basis, remove the first k orthonormal
/// directions at once (the study's edit scheme: Arditi's writers or the study's layers) and measure, on
/// test prompts, the harmful and harmless refusal rates (the reference judge on greedy answers) and the
/// harmless next-token KL against the original. Bases are fit on fit prompts only, at the checkpoint's
/// chosen layer and position:
/// - `pca`: the leading principal axes of the harmful − harmless differences (`SubspaceBases.principalAxes`);
/// - `layers`: the mean-diff directions of the chosen layer and its nearest layers (chosen, −1, +1, −2, …),
///   orthonormalised in that order.
/// One stage per (checkpoint, basis, k) writes `<run>/analysis/subspace/<checkpoint>__<basis>__k<k>.csv`
/// (one row per prompt), so an interrupted sweep resumes; then `<run>/analysis/subspace.csv` (tidy, one
/// row per checkpoint × basis × k × label) and `<run>/analysis/subspace_resilience.csv` (smallest k that
/// brings harmful refusals to or below the threshold, or "not reached").
extension Pipeline {
    struct SubspacePart { var id: String; var label: String; var refused: Bool?; var kl: Double? }

    func subspaceStage() throws {
        guard let sub = spec.subspace, !spec.checkpoints.isEmpty else { return }
        let test = try promptRoles().test
        let harmful = Array(test.filter { $0.label == "harmful" }.prefix(sub.harmful ?? spec.harmfulTest))
        let harmless = Array(test.filter { $0.label == "harmless" }.prefix(sub.harmless ?? spec.harmlessTest))
        guard !harmful.isEmpty, !harmless.isEmpty else {
            log.warning("[subspace] no harmful or no harmless test prompts to answer; skipped")
            return
        }
        let prompts = harmful + harmless
        let maxNew = sub.maxNewTokens ?? spec.maxNewTokens
        let promptHash = SHA256.hex(Data(prompts.map { $0.id + "\u{1F}" + $0.text + "\u{1F}" + $0.label }.joined(separator: "\u{1E}").utf8))
        let dir = run + "/analysis/subspace"
        var tidy: [String] = ["checkpoint,basis,k,label,refused,total,rate,lower,upper,harmless_kl_mean,layer,position,judge,max_new_tokens,edit"]
        var resilience: [String] = ["checkpoint,basis,threshold,smallest_k,harmful_rate_at_k,largest_k_tried"]
        let ks = [0] + sub.ks
        for c in selectedCheckpoints where sub.checkpoints?.contains(c.name) ?? true {
            guard let setting = try abliterationSettings(c).first else {
                log.warning("[subspace] \(c.name): no abliterated system ([abliteration] alphas is empty), so no chosen layer; skipped")
                continue
            }
            let layer = setting.layer, position = setting.position
            var model: ChatModel?
            var encoded: [[Int]]?
            var bases: [String: OrthonormalBasis] = [:]
            func loaded() throws -> (ChatModel, [[Int]]) {
                if model == nil {
                    let encoder = try ChatEncoder(path: c.model, systemPrompt: systemPrompt, chatFormat: c.chatFormat, thinking: spec.thinking)
                    encoded = try prompts.map { try encoder.encodeChecked($0, newTokens: maxNew, remedy: "or lower [subspace] max_new_tokens in \(studyFile)").get() }
                    model = try ChatModel(encoder: encoder)
                }
                return (model!, encoded!)
            }
            func basis(_ kind: String, _ kMax: Int, nLayers: Int) throws -> OrthonormalBasis {
                if let b = bases[kind] { return b }
                let b: OrthonormalBasis
                if kind == "pca" {
                    let h = try fitActivations(c.name, label: "harmful", layer: layer, position: position)
                    let mu = Self.columnMean(try fitActivations(c.name, label: "harmless", layer: layer, position: position))
                    b = try SubspaceBases.principalAxes(harmful: h, harmlessMean: mu, k: min(kMax, h.rows))
                } else {
                    // analysed residual layers are 1…nLayers (block outputs)
                    let ls = SubspaceBases.layersAround(max(layer, 1) - 1, count: nLayers, k: kMax).map { $0 + 1 }
                    b = try OrthonormalBasis(try ls.map { try cachedDirection(c.name, method: .meanDiff, layer: $0, position: position) },
                                             source: "mean-diff directions of layers \(ls)")
                }
                bases[kind] = b
                return b
            }
            let common: [String: String] = [
                "model": try fileHash(c.model), "analysis": (try? fileHash(run + "/analysis.h5")) ?? "",
                "cache": manifest.stages["record:\(c.name)"]?.fingerprint ?? "", "layer": String(layer), "position": String(position),
                "prompts": promptHash, "max_new_tokens": String(maxNew), "judge": spec.referenceJudge, "system": spec.promptSettings,
                "edit": "\(editScheme.kind.rawValue):\(editScheme.skipBegin):\(editScheme.skipEnd)"]
            var results: [String: [Int: [SubspacePart]]] = [:]
            for kind in sub.bases {
                for k in ks {
                    let tag = k == 0 ? "original" : "\(kind)__k\(k)"
                    let out = dir + "/\(SafeFiles.sanitize(c.name))__\(tag).csv"
                    var parts = common
                    parts["basis"] = k == 0 ? "-" : kind; parts["k"] = String(k)
                    try stage("subspace:\(c.name):\(tag)", fingerprint: fingerprint(parts), outputs: [out]) {
                        let (m, toks) = try loaded()
                        let nLayers = m.config.nLayers
                        var hooks = HookSet()
                        if k > 0 {
                            let b = try basis(kind, sub.ks.max()!, nLayers: nLayers)
                            guard k <= b.rank else {
                                throw StudyError(file: studyFile, line: nil, key: "subspace.ks",
                                                 message: "\(c.name): k = \(k) exceeds the \(kind) basis' rank \(b.rank) (fit prompts or layers); lower it")
                            }
                            hooks = try AblationEdit.uniform(try b.prefix(k), nLayers: nLayers, scheme: editScheme).hooks(nLayers: nLayers)
                        }
                        log.info("[subspace] \(c.name) \(k == 0 ? "original" : "\(kind) k = \(k)"): \(prompts.count) answers of ≤ \(maxNew) tokens")
                        let texts = try SweepMeasure.answers(model: m, prompts: toks, ids: prompts.map(\.id), hooks: hooks,
                                                             maxNewTokens: maxNew, batch: spec.batchSize)
                        guard let judge = try judge(named: spec.referenceJudge) else {
                            throw StudyError(file: studyFile, line: nil, key: "judges.reference", message: "the reference judge '\(spec.referenceJudge)' is not available in this build")
                        }
                        let system = c.name + "+subspace-\(tag)"
                        let verdicts = try judge.judgeAll(zip(prompts, texts).map {
                            JudgeItem(itemID: $0.0.id, system: system, label: $0.0.label, prompt: $0.0.text, response: $0.1)
                        })
                        let hl = Array(toks.suffix(harmless.count))
                        let kl = k == 0 ? [Double](repeating: 0, count: hl.count) : try SweepMeasure.lastPositionKL(model: m, prompts: hl, hooks: hooks)
                        var csv = "id,label,refused,harmless_kl\n"
                        for (i, p) in prompts.enumerated() {
                            let v = verdicts[i].verdict.map { $0 == .refusal ? "1" : "0" } ?? ""
                            let klv = i >= harmful.count ? String(kl[i - harmful.count]) : ""
                            csv += [p.id, p.label, v, klv].map(CSV.escape).joined(separator: ",") + "\n"
                        }
                        try SafeFiles.atomicWrite(Data(csv.utf8), to: out)
                        return [out]
                    }
                    results[kind, default: [:]][k] = try readSubspacePart(out)
                }
            }
            for kind in sub.bases {
                var reached: (Int, Double)?
                for k in ks {
                    let rows = results[kind]?[k] ?? []
                    let kls = rows.compactMap(\.kl)
                    let klMean = kls.isEmpty ? Double.nan : kls.reduce(0, +) / Double(kls.count)
                    // The original (k = 0) is one system: its rows are written once, under basis "original".
                    let writeRows = !(k == 0 && kind != sub.bases.first)
                    for label in ["harmful", "harmless"] {
                        let judged = rows.filter { $0.label == label && $0.refused != nil }
                        let refused = judged.filter { $0.refused == true }.count
                        let ci = Agreement.wilson(successes: refused, n: judged.count, level: 0.95)
                        let rate = judged.isEmpty ? Double.nan : Double(refused) / Double(judged.count)
                        if writeRows { tidy.append([c.name, k == 0 ? "original" : kind, String(k), label, String(refused), String(judged.count), String(rate),
                                     String(ci.lower), String(ci.upper), label == "harmless" ? String(klMean) : "",
                                     String(layer), String(position), spec.referenceJudge, String(maxNew), editScheme.kind.rawValue]
                            .map(CSV.escape).joined(separator: ",")) }
                        // k = 0: the original already refuses no more than the threshold.
                        if label == "harmful", reached == nil, !judged.isEmpty, rate <= sub.threshold { reached = (k, rate) }
                    }
                }
                resilience.append([c.name, kind, String(sub.threshold), reached.map { String($0.0) } ?? "not reached",
                                   reached.map { String($0.1) } ?? "", String(sub.ks.max() ?? 0)].map(CSV.escape).joined(separator: ","))
                if spec.exportWeights, let (k, _) = reached, k > 0, c.model.lowercased().hasSuffix(".gguf") {
                    try exportSubspace(c, kind: kind, k: k, basis: { n in try basis(kind, sub.ks.max()!, nLayers: n) }, fingerprintParts: common)
                }
            }
        }
        try SafeFiles.atomicWrite(Data((tidy.joined(separator: "\n") + "\n").utf8), to: run + "/analysis/subspace.csv")
        try SafeFiles.atomicWrite(Data((resilience.joined(separator: "\n") + "\n").utf8), to: run + "/analysis/subspace_resilience.csv")
    }

    /// `export_weights`: the subspace edit at the resilience k, as weights → `<run>/models/<checkpoint>+subspace-<basis>-k<k>.gguf`.
    func exportSubspace(_ c: CheckpointSpec, kind: String, k: Int, basis: (Int) throws -> OrthonormalBasis, fingerprintParts: [String: String]) throws {
        let out = run + "/models/" + SafeFiles.sanitize("\(c.name)+subspace-\(kind)-k\(k)") + ".gguf"
        var parts = fingerprintParts
        parts["basis"] = kind; parts["k"] = String(k)
        try stage("export-subspace:\(c.name):\(kind)", fingerprint: fingerprint(parts), outputs: [out]) {
            let g = try GGUFFile(path: c.model)
            let nLayers = g.int((g.architecture ?? "") + ".block_count") ?? 0
            let edit = AblationEdit.uniform(try basis(nLayers).prefix(k), nLayers: nLayers, scheme: editScheme)
            try SafeFiles.createDirectory(run + "/models")
            let tmp = out + ".partial"
            log.info("[export] \(c.name) subspace \(kind) k = \(k) → \(out)")
            try Orthogonalization.export(source: c.model, edit: edit, type: .f32,
                                         extraMetadata: ["ablab.abliteration.basis": .string(kind)], to: tmp)
            if rename(tmp, out) != 0 { throw IOError(path: out, "cannot move the exported model into place: \(String(cString: strerror(errno)))") }
            return [out]
        }
    }

    func readSubspacePart(_ path: String) throws -> [SubspacePart] {
        let rows = try CSV.parse(try String(contentsOfFile: path, encoding: .utf8), file: path)
        guard let h = rows.first?.fields, h == ["id", "label", "refused", "harmless_kl"] else {
            throw InputError(file: path, line: 1, "not a subspace sweep file (header id,label,refused,harmless_kl); delete it and run again")
        }
        return try rows.dropFirst().map { r in
            guard r.fields.count == 4 else { throw InputError(file: path, line: r.line, "expected 4 fields") }
            return SubspacePart(id: r.fields[0], label: r.fields[1], refused: r.fields[2].isEmpty ? nil : r.fields[2] == "1",
                                kl: Double(r.fields[3]))
        }
    }
}
