import AblabCore
import Foundation
import ModelRuntime
import Analysis
import Abliteration
import Judging

extension Pipeline {
    /// The test prompts answered by every system: the first `harmful` harmful and `harmless` harmless
    /// test prompts, in file order.
    func generationPrompts() throws -> [Prompt] {
        let all = try studyPrompts().filter { $0.split == "test" }
        let harmful = all.filter { $0.label == "harmful" }.prefix(spec.harmfulTest)
        let harmless = all.filter { $0.label == "harmless" }.prefix(spec.harmlessTest)
        return Array(harmful) + Array(harmless)
    }

    /// The abliteration of a checkpoint at one α: the study's layer (or the analysis' best candidate).
    func abliterationSettings(_ c: CheckpointSpec) throws -> [AbliterationSetting] {
        let method = Abliteration.DirectionMethod(rawValue: spec.method) ?? .meanDiff
        var layer = spec.layer
        if layer == nil {
            if spec.selectTop > 0 {
                layer = try selectCandidate(c)
            } else {
                let best = try AnalysisFile.bestCandidate(run: run, checkpoint: c.name, position: spec.position,
                                                          method: Analysis.DirectionMethod(rawValue: spec.method))
                layer = best.layer
                log.info("[generate] \(c.name): automatic candidate layer \(best.layer), position \(best.position), \(best.method.rawValue)")
            }
        }
        return spec.alphas.map { AbliterationSetting(checkpoint: c.name, method: method, layer: layer!, position: spec.position, alpha: $0) }
    }

    /// The model-based choice among the checkpoint's best `select_top` cache candidates (at the study's
    /// position and method): Arditi et al.'s bypass / induce / KL scores on `select_prompts` train prompts
    /// of each label that the directions were not fit on (never test prompts), written to `<run>/analysis/selection-<checkpoint>.csv`.
    /// The lowest bypass score among candidates with KL ≤ 0.1, an induce score above the midpoint of the
    /// unablated harmful and harmless refusal scores, and a layer outside the last 20 % wins; when none qualifies, the cache's best candidate is kept (and the file says so).
    /// Returns the chosen layer.
    func selectCandidate(_ c: CheckpointSpec) throws -> Int {
        let method = Analysis.DirectionMethod(rawValue: spec.method) ?? .meanDiff
        let ranked = try AnalysisFile.rankedCandidates(run: run, checkpoint: c.name, position: spec.position, method: method)
        guard !ranked.isEmpty else {
            throw AnalysisError(site: run + "/analysis/candidates.csv", "no eligible candidate for '\(c.name)' at position \(spec.position); fix [abliteration] layer by hand")
        }
        let top = Array(ranked.prefix(spec.selectTop))
        // Validation prompts: train prompts the directions were not fit on (beyond train_per_class) when
        // there are enough, else the last train prompts (in-sample for the direction, never test).
        let fitted = Set(try studyPrompts().filter { $0.split == "train" }.map(\.id))
        let train = try PromptFile.load(spec.promptFiles, splits: ["train"])
        func pick(_ label: String) -> [String] {
            let unused = train.filter { $0.label == label && !fitted.contains($0.id) }
            if unused.count >= spec.selectPrompts { return unused.suffix(spec.selectPrompts).map(\.text) }
            log.info("[select] \(c.name): fewer than \(spec.selectPrompts) unused \(label) train prompts; scoring on the last fitted ones")
            return train.filter { $0.label == label }.suffix(spec.selectPrompts).map(\.text)
        }
        let harmful = pick("harmful"), harmless = pick("harmless")
        let out = run + "/analysis/selection-\(SafeFiles.sanitize(c.name)).csv"
        let parts = ["model": try fileHash(c.model), "analysis": (try? fileHash(run + "/analysis.h5")) ?? "",
                     "top": top.map { "\($0.layer)/\($0.position)/\($0.method.rawValue)" }.joined(separator: ","),
                     "rule": "kl<=0.1;induce>midpoint;bypass-min", "prompts": promptSetSHA256Local(train) + ":" + String(fitted.count), "n": String(spec.selectPrompts), "system": spec.promptSettings]
        try stage("select:\(c.name)", fingerprint: fingerprint(parts), outputs: [out]) {
            let model = try ChatModel(path: c.model, systemPrompt: systemPrompt, chatFormat: c.chatFormat, thinking: spec.thinking)
            let cands = try top.map { t in
                CandidateScoring.Candidate(layer: t.layer, position: t.position,
                                           direction: try AnalysisFile.direction(run: run, checkpoint: c.name, method: t.method,
                                                                                 layer: t.layer, position: t.position))
            }
            let (base, scores) = try CandidateScoring.score(model: model, candidates: cands, harmful: harmful, harmless: harmless) { i, n in
                if i < n { self.log.info("[select] \(c.name): scoring candidate \(i + 1)/\(n) (layer \(cands[i].layer))") }
            }
            let nLayers = model.config.nLayers
            // Arditi et al. require induce > 0 (log-odds), for models whose refusals begin with the refusal
            // tokens almost surely. Small models' harmful prompts score below 0 themselves (Qwen2.5-Coder-0.5B:
            // −0.7), so the bar here is relative: the addition must move harmless prompts at least halfway
            // from their own refusal score to that of harmful prompts.
            let induceBar = (base.harmfulRefusal + base.harmlessRefusal) / 2
            var why: [[String]] = []
            for (t, sc) in zip(top, scores) {
                var w: [String] = []
                if Double(t.layer) >= 0.8 * Double(nLayers) { w.append("layer in the last 20 %") }
                if !(sc.kl <= 0.1) { w.append(String(format: "KL %.3g > 0.1", sc.kl)) }
                if !(sc.induce > induceBar) { w.append(String(format: "induce %.3g <= %.3g", sc.induce, induceBar)) }
                why.append(w)
            }
            let eligible = top.indices.filter { why[$0].isEmpty }
            let chosen = eligible.min { scores[$0].bypass < scores[$1].bypass } ?? 0
            var csv = "checkpoint,cache_rank,layer,position,method,bypass,induce,kl,addition_norm,baseline_harmful_refusal,baseline_harmless_refusal,eligible,excluded_because,chosen\n"
            for (i, t) in top.enumerated() {
                let sc = scores[i]
                let fields = [c.name, String(t.rank), String(t.layer), String(t.position), t.method.rawValue,
                              String(sc.bypass), String(sc.induce), String(sc.kl), String(sc.additionNorm),
                              String(base.harmfulRefusal), String(base.harmlessRefusal),
                              why[i].isEmpty ? "true" : "false", why[i].joined(separator: "; "),
                              i == chosen ? (eligible.isEmpty ? "fallback" : "true") : "false"]
                csv += fields.map(CSV.escape).joined(separator: ",") + "\n"
            }
            try SafeFiles.atomicWrite(Data(csv.utf8), to: out)
            if eligible.isEmpty {
                log.warning("[select] \(c.name): no candidate passes KL ≤ 0.1 and the induce bar; keeping the cache's best (layer \(top[0].layer))")
            } else {
                let f = { (x: Double) in String(format: "%.3g", x) }
                log.info("[select] \(c.name): layer \(top[chosen].layer) (bypass \(f(scores[chosen].bypass)) vs \(f(base.harmfulRefusal)) unablated, induce \(f(scores[chosen].induce)), KL \(f(scores[chosen].kl)))")
            }
            return [out]
        }
        // read the choice back (also when the stage was skipped as unchanged)
        let rows = try CSV.parse(try String(contentsOfFile: out, encoding: .utf8), file: out)
        guard let header = rows.first?.fields, let cl = header.firstIndex(of: "layer"), let cc = header.firstIndex(of: "chosen"),
              let row = rows.dropFirst().first(where: { $0.fields.count == header.count && $0.fields[cc] != "false" }),
              let layer = Int(row.fields[cl]) else {
            throw AnalysisError(site: out, "no chosen candidate in the selection file; delete it and run again")
        }
        return layer
    }

    /// Generate: original and abliterated answers to the test prompts → `<run>/generations/<system>.jsonl`.
    func generateStage() throws {
        guard !spec.checkpoints.isEmpty else { return }
        let prompts = try generationPrompts()
        guard !prompts.isEmpty else { return }
        for c in selectedCheckpoints {
            let settings = try abliterationSettings(c)
            let systems = [c.name] + settings.map(\.systemName)
            try setAsideSupersededGenerations(checkpoint: c.name, current: Set(systems))
            let outputs = systems.map { GenerationRun.path(run: run, system: $0) }
            var parts = ["model": try fileHash(c.model), "prompts": promptSetSHA256Local(prompts),
                         "max_new_tokens": String(spec.maxNewTokens), "system": spec.promptSettings,
                         "settings": settings.map(\.systemName).joined(separator: ",")]
            parts["analysis"] = (try? fileHash(run + "/analysis.h5")) ?? ""
            try stage("generate:\(c.name)", fingerprint: fingerprint(parts), outputs: outputs) {
                let model = try ChatModel(path: c.model, systemPrompt: systemPrompt, chatFormat: c.chatFormat, thinking: spec.thinking)
                let genOptions = GenerationOptions(maxNewTokens: spec.maxNewTokens, eosIds: model.eosIds,
                                                   sampling: .greedy, maxBatch: spec.batchSize)
                try GenerationRun.run(model: model, prompts: prompts, system: c.name, setting: nil, direction: nil,
                                      options: genOptions, runDirectory: run, progress: options.showProgress)
                for s in settings {
                    let dir = try AnalysisFile.direction(run: run, checkpoint: c.name,
                                                         method: Analysis.DirectionMethod(rawValue: s.method.rawValue) ?? .meanDiff,
                                                         layer: s.layer, position: s.position)
                    try GenerationRun.run(model: model, prompts: prompts, system: s.systemName, setting: s, direction: dir,
                                          options: genOptions, runDirectory: run, progress: options.showProgress)
                }
                return outputs
            }
        }
    }

    /// Moves generation files of `checkpoint`'s abliterated systems that the study no longer produces
    /// (e.g. after the chosen layer changed) to `generations/superseded/`, so judging, probing and the
    /// report see only the current systems; nothing is deleted.
    func setAsideSupersededGenerations(checkpoint: String, current: Set<String>) throws {
        let dir = run + "/generations"
        let files = ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []).filter { $0.hasSuffix(".jsonl") }
        let keep = Set(current.map { SafeFiles.sanitize($0) + ".jsonl" })
        let prefix = SafeFiles.sanitize(checkpoint + "+abl-")
        for f in files where f.hasPrefix(prefix) && !keep.contains(f) {
            let aside = dir + "/superseded"
            try SafeFiles.createDirectory(aside)
            let target = aside + "/" + f
            try? FileManager.default.removeItem(atPath: target)
            do { try FileManager.default.moveItem(atPath: dir + "/" + f, toPath: target) } catch {
                throw IOError(path: dir + "/" + f, "cannot move a superseded generation file aside: \(error.localizedDescription)")
            }
            log.info("[generate] \(f) is no longer a system of the study; moved to generations/superseded/")
        }
    }

    /// Judge: every judge of the study on every generation → `<run>/judgments.csv`.
    func judgeStage() throws {
        let dir = run + "/generations"
        let files = ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []).filter { $0.hasSuffix(".jsonl") }.sorted()
        guard !files.isEmpty else { return }
        var parts: [String: String] = ["judges": spec.judges.joined(separator: ",")]
        for f in files { parts["gen:" + f] = try SHA256.hex(file: dir + "/" + f) }
        let out = run + "/judgments.csv"
        try stage("judge", fingerprint: fingerprint(parts), outputs: [out]) {
            var items: [JudgeItem] = []
            for f in files {
                for rec in try readGenerations(dir + "/" + f) {
                    items.append(JudgeItem(itemID: rec.id, system: rec.system, label: rec.label, prompt: rec.prompt, response: rec.response))
                }
            }
            var rows: [Judgment] = []
            for name in spec.judges {
                if name.hasPrefix("llm:") {
                    guard let impl = StageRegistry.llmJudge else {
                        log.warning("[judge] \(name): no LLM judge in this build; skipped")
                        continue
                    }
                    rows += try impl(self, name, items)
                    continue
                }
                let judge: any Judge
                if name.hasPrefix("pattern:"), let p = spec.patternJudges.first(where: { "pattern:" + $0.name == name }) {
                    judge = try PatternJudge(name: name, patterns: p.patterns.map { p.regex ? .regex($0) : .literal($0) })
                } else {
                    judge = try Judges.make(spec: name)
                }
                rows += try judge.judgeAll(items)
            }
            try JudgmentsFile.write(rows, to: out)
            return [out]
        }
    }

    /// Complete records of a generations file (a torn last line is ignored).
    func readGenerations(_ path: String) throws -> [GenerationRecord] {
        guard let data = FileManager.default.contents(atPath: path) else { throw IOError(path: path, "cannot read") }
        var out: [GenerationRecord] = []
        let lines = data.split(separator: 0x0A, omittingEmptySubsequences: false)
        for (i, line) in lines.enumerated() where !line.isEmpty {
            do { out.append(try JSONDecoder().decode(GenerationRecord.self, from: Data(line))) }
            catch {
                if i == lines.count - 1 { break }
                throw InputError(file: path, line: i + 1, "not a generation record")
            }
        }
        return out
    }

    private func promptSetSHA256Local(_ prompts: [Prompt]) -> String {
        SHA256.hex(Data(prompts.map { $0.id + "\u{1F}" + $0.text + "\u{1F}" + $0.label }.joined(separator: "\u{1E}").utf8))
    }
}
