import Foundation
import AblabCore
import HDF5
import ModelRuntime
import Analysis
import Abliteration

/// Arditi et al.'s full selection grid (`[abliteration] full_grid = true`; off by default for its cost):
/// every analysed layer that has a `resid_pre` (1 … L − 1) × every recorded post-instruction position,
/// each candidate (the mean-diff direction of that site) scored with bypass, induce and KL on the
/// validation prompts (`select_prompts` per label; never test prompts) → `<run>/analysis/grid-<checkpoint>.csv`
/// (tidy, one row per layer × position), drawn as heatmaps in the report.
extension Pipeline {
    func gridStage() throws {
        guard spec.fullGrid, !spec.checkpoints.isEmpty else { return }
        let roles = try promptRoles()
        func pick(_ label: String) -> [String] {
            let v = roles.validation.filter { $0.label == label }
            if !v.isEmpty { return v.prefix(spec.selectPrompts).map(\.text) }
            log.warning("[grid] no \(label) validation prompts; scoring on the last fit prompts (in-sample)")
            return roles.fit.filter { $0.label == label }.suffix(spec.selectPrompts).map(\.text)
        }
        let harmful = pick("harmful"), harmless = pick("harmless")
        for c in selectedCheckpoints {
            let out = run + "/analysis/grid-\(SafeFiles.sanitize(c.name)).csv"
            let parts = ["model": try fileHash(c.model), "analysis": (try? fileHash(run + "/analysis.h5")) ?? "",
                         "prompts": SHA256.hex(Data((harmful + ["\u{1E}"] + harmless).joined(separator: "\u{1F}").utf8)),
                         "system": spec.promptSettings]
            try stage("grid:\(c.name)", fingerprint: fingerprint(parts), outputs: [out]) {
                let f = try H5File.open(run + "/analysis.h5", requireChecksums: true)
                let g = "checkpoints/" + SafeFiles.sanitize(c.name)
                let layers = try f.openDataset(g + "/layers").readInt32().map(Int.init)
                let positions = try f.openDataset(g + "/positions").readInt32().map(Int.init)
                f.close()
                let model = try ChatModel(path: c.model, systemPrompt: systemPrompt, chatFormat: c.chatFormat, thinking: spec.thinking)
                let sites = layers.filter { $0 >= 1 && $0 < model.config.nLayers }.flatMap { l in positions.map { (l, $0) } }
                let cands = try sites.map { s in
                    CandidateScoring.Candidate(layer: s.0, position: s.1,
                                               direction: try cachedDirection(c.name, method: .meanDiff, layer: s.0, position: s.1))
                }
                let started = Date()
                let (base, scores) = try CandidateScoring.score(model: model, candidates: cands, harmful: harmful, harmless: harmless) { i, n in
                    guard i > 0, i < n, i % max(1, n / 20) == 0 else { return }
                    let eta = Date().timeIntervalSince(started) / Double(i) * Double(n - i)
                    self.log.info("[grid] \(c.name): \(i)/\(n) candidates, ETA \(Int(eta)) s")
                }
                var csv = "checkpoint,layer,position,bypass,induce,kl,addition_norm,baseline_harmful_refusal,baseline_harmless_refusal,prompts_per_label\n"
                for (cand, s) in zip(cands, scores) {
                    csv += [c.name, String(cand.layer), String(cand.position), String(s.bypass), String(s.induce), String(s.kl),
                            String(s.additionNorm), String(base.harmfulRefusal), String(base.harmlessRefusal), String(harmful.count)]
                        .map(CSV.escape).joined(separator: ",") + "\n"
                }
                try SafeFiles.atomicWrite(Data(csv.utf8), to: out)
                return [out]
            }
        }
    }
}
