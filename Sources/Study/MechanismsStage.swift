import ActivationCache
import AblabCore
import Analysis
import Foundation

extension Pipeline {
    /// The direction each checkpoint's abliterated systems use, as far as it is known without running a
    /// model: the study's layer, else the model-based selection's choice (when its file exists), else the
    /// cache ranking's best candidate. Also returns each criterion's pick that is known.
    func knownChoices(_ c: CheckpointSpec) throws -> (layer: Int, position: Int, picks: [(criterion: String, layer: Int, position: Int)]) {
        var picks: [(String, Int, Int)] = []
        let method = Analysis.DirectionMethod(rawValue: spec.method) ?? .meanDiff
        if let best = try? AnalysisFile.bestCandidate(run: run, checkpoint: c.name, position: spec.position, method: method) {
            picks.append(("cache ranking (validation Cohen's d)", best.layer, best.position))
        }
        let sel = run + "/analysis/selection-\(SafeFiles.sanitize(c.name)).csv"
        if let text = try? String(contentsOfFile: sel, encoding: .utf8), let rows = try? CSV.parse(text, file: sel),
           let header = rows.first?.fields, let cl = header.firstIndex(of: "layer"), let cc = header.firstIndex(of: "chosen"),
           let row = rows.dropFirst().first(where: { $0.fields.count == header.count && $0.fields[cc] != "false" }),
           let layer = Int(row.fields[cl]) {
            picks.append((row.fields[cc] == "fallback" ? "model-based (bypass / induce / KL; none passed: fallback)" : "model-based (bypass / induce / KL)", layer, spec.position))
        }
        if let l = spec.layer {
            picks.append(("the study's [abliteration] layer", l, spec.position))
            return (l, spec.position, picks)
        }
        guard let used = picks.last else {
            throw AnalysisError(site: run + "/analysis/candidates.csv", "no candidate direction for '\(c.name)'; run the analyze stage first")
        }
        return (used.1, used.2, picks)
    }

    /// Mechanisms (part of the report stage; cache-only, no model): component attribution of the used
    /// direction (when the cache holds `hook_attn_out` / `hook_mlp_out`), harmfulness vs refusal (when it
    /// holds the instruction's last token) and COSMIC's pick, as tidy CSVs under `<run>/analysis/`:
    /// component_attribution.csv, harmfulness_refusal.csv, cosmic.csv and selection_criteria.csv.
    func mechanismsStage() throws {
        guard !spec.checkpoints.isEmpty else { return }
        var parts: [String: String] = ["analysis": (try? fileHash(run + "/analysis.h5")) ?? "", "position": String(spec.position),
                                       "method": spec.method, "layer": spec.layer.map(String.init) ?? "auto"]
        var choices: [String: (layer: Int, position: Int, picks: [(criterion: String, layer: Int, position: Int)])] = [:]
        for c in spec.checkpoints {
            let path = ActivationCacheWriter.finalPath(run: run, checkpoint: c.name)
            guard FileManager.default.fileExists(atPath: path) else { return }
            parts["cache:" + c.name] = try manifest.stages["record:\(c.name)"]?.fingerprint ?? fileHash(path)
            guard let ch = try? knownChoices(c) else { return }
            choices[c.name] = ch
            parts["choice:" + c.name] = "\(ch.layer)/\(ch.position);" + ch.picks.map { "\($0.criterion)=\($0.layer)/\($0.position)" }.joined(separator: ";")
        }
        let dir = run + "/analysis"
        let outs = ["component_attribution.csv", "harmfulness_refusal.csv", "cosmic.csv", "selection_criteria.csv"].map { dir + "/" + $0 }
        try stage("mechanisms", fingerprint: fingerprint(parts), outputs: outs) {
            let cache = try ActivationCache(run: run)
            var terms: [ComponentTerm] = [], hr: [HarmfulnessRefusalRow] = [], cosmic: [CosmicScore] = []
            var low: [String: [Int]] = [:]
            var criteria = "checkpoint,criterion,layer,position,used\n"
            for c in spec.checkpoints {
                let f = try cache.open(c.name)
                let ch = choices[c.name]!
                let fitH = f.promptIndices(label: "harmful", split: "train"), fitB = f.promptIndices(label: "harmless", split: "train")
                let testH = f.promptIndices(label: "harmful", split: "test"), testB = f.promptIndices(label: "harmless", split: "test")
                var valH = f.promptIndices(label: "harmful", split: "validation"), valB = f.promptIndices(label: "harmless", split: "validation")
                if valH.count < 2 || valB.count < 2 {
                    log.info("[mechanisms] \(c.name): no validation prompts; COSMIC scores on the fit prompts (never on test prompts)")
                    valH = fitH; valB = fitB
                }
                // Component attribution of the direction the systems use, on the test prompts.
                let method = Analysis.DirectionMethod(rawValue: spec.method) ?? .meanDiff
                if f.hookNames.contains("blocks.0.hook_attn_out") {
                    let dirv = try AnalysisFile.direction(run: run, checkpoint: c.name, method: method, layer: ch.layer, position: ch.position)
                    terms += try ComponentAttribution.terms(file: f, checkpoint: c.name, layer: ch.layer, position: ch.position,
                                                            direction: dirv, harmful: testH, harmless: testB)
                } else {
                    log.info("[mechanisms] \(c.name): no hook_attn_out / hook_mlp_out in the cache; component attribution skipped ([record] hooks)")
                }
                if !f.header.positions(role: .instructionLast).isEmpty {
                    hr += try HarmfulnessRefusal.rows(file: f, checkpoint: c.name, refusalPosition: spec.position,
                                                      fit: (fitH, fitB), test: (testH, testB))
                } else {
                    log.info("[mechanisms] \(c.name): the instruction's last token is not in the cache; harmfulness vs refusal skipped ([record] positions = \"auto+instruction\")")
                }
                let candidatePositions = f.header.positionRoles.isEmpty ? f.header.positions.map(Int.init) : f.header.positions(role: .postInstruction)
                let cs = try Cosmic.scores(checkpoint: c.name, nLayers: f.header.nLayers, positions: candidatePositions,
                                           residual: { l, p in try f.residual(layer: l, position: p) },
                                           fit: (fitH, fitB), score: (valH, valB))
                cosmic += cs.scores
                low[c.name] = cs.lowLayers
                var picks = ch.picks
                if let best = cs.scores.first(where: \.chosen) { picks.append(("COSMIC (activation cosine, cache only)", best.layer, best.position)) }
                for p in picks {
                    criteria += [CSV.escape(c.name), CSV.escape(p.criterion), String(p.layer), String(p.position),
                                 p.layer == ch.layer && p.position == ch.position ? "true" : "false"].joined(separator: ",") + "\n"
                }
                let summary = picks.map { "\($0.criterion) → layer \($0.layer)" }.joined(separator: "; ")
                log.info("[mechanisms] \(c.name): \(summary)")
            }
            try SafeFiles.createDirectory(dir)
            try SafeFiles.atomicWrite(Data(ComponentAttribution.csv(terms).utf8), to: outs[0])
            try SafeFiles.atomicWrite(Data(HarmfulnessRefusal.csv(hr).utf8), to: outs[1])
            try SafeFiles.atomicWrite(Data(Cosmic.csv(cosmic, lowLayers: low).utf8), to: outs[2])
            try SafeFiles.atomicWrite(Data(criteria.utf8), to: outs[3])
            return outs
        }
    }
}
