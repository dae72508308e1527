import AblabCore
import Foundation
import ModelRuntime
import Analysis
import Abliteration
import Judging

extension Pipeline {
    /// Probe: every system judges whether its own answers refused (self-judgment), an abliterated system
    /// with its abliteration active (the direction and α named in its system name, from analysis.h5),
    /// scored against the study's reference judge → `<run>/self_judgment.csv` and
    /// `<run>/self_judgment_summary.csv`.
    func probeStage() throws {
        guard spec.selfJudgment, !spec.checkpoints.isEmpty else { return }
        let dir = run + "/generations"
        let files = ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []).filter { $0.hasSuffix(".jsonl") }.sorted()
        guard !files.isEmpty else { return }
        var parts: [String: String] = ["reference": spec.referenceJudge, "system": spec.promptSettings,
                                       "question": SelfJudgment.question]
        for f in files { parts["gen:" + f] = try SHA256.hex(file: dir + "/" + f) }
        parts["analysis"] = (try? fileHash(run + "/analysis.h5")) ?? ""
        let judgmentsPath = run + "/judgments.csv"
        parts["judgments"] = (try? SHA256.hex(file: judgmentsPath)) ?? ""
        for c in spec.checkpoints { parts["model:" + c.name] = try fileHash(c.model) }
        let outputs = [run + "/self_judgment.csv", run + "/self_judgment_summary.csv"]
        try stage("probe", fingerprint: fingerprint(parts), outputs: outputs) {
            let gens = try GenerationsFile.readRun(run)
            let existing = FileManager.default.fileExists(atPath: judgmentsPath) ? try JudgmentsFile.read(judgmentsPath) : []
            let ref = try SelfJudgment.referenceVerdicts(spec.referenceJudge, existing: existing, generations: gens)
            var rows: [SelfJudgmentRow] = []
            var loaded: (checkpoint: String, model: ChatModel)?
            for (system, lines) in SelfJudgment.bySystem(gens) {
                let (ckpt, setting) = try SystemName.parse(system)
                guard let c = spec.checkpoints.first(where: { $0.name == ckpt }) else {
                    log.warning("[probe] skipping \(system): \(ckpt) is not a checkpoint of the study")
                    continue
                }
                if loaded?.checkpoint != ckpt {
                    loaded = nil
                    loaded = (ckpt, try ChatModel(path: c.model, systemPrompt: systemPrompt, chatFormat: c.chatFormat, thinking: spec.thinking))
                }
                let m = loaded!.model
                var hooks = HookSet()
                if let s = setting {
                    let direction = try AnalysisFile.direction(run: run, checkpoint: ckpt,
                                                               method: Analysis.DirectionMethod(rawValue: s.method.rawValue) ?? .meanDiff,
                                                               layer: s.layer, position: s.position)
                    hooks = try Ablation.hooks(direction: direction, alpha: Float(s.alpha), nLayers: m.config.nLayers)
                }
                let bar = AblabCore.Progress("probe \(system)", total: lines.count, unit: "answers", enabled: options.showProgress)
                var start = 0
                while start < lines.count {
                    let part = Array(lines[start..<min(lines.count, start + 32)])
                    rows += try SelfJudgment.probe(model: m, items: part.map(\.item), hooks: hooks,
                                                   referenceJudge: spec.referenceJudge, reference: ref[system] ?? [:])
                    bar.advance(by: part.count)
                    start += part.count
                }
                bar.finish()
            }
            let summary = try SelfJudgment.write(rows, run: run)
            for s in summary {
                log.info("[probe] \(s.system): n=\(s.n) accuracy=\(String(format: "%.3f", s.accuracy)) kappa=\(String(format: "%.3f", s.kappa))")
            }
            return outputs
        }
    }
}
