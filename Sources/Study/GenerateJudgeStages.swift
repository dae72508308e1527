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
        let all = try promptRoles().test
        let harmful = all.filter { $0.label == "harmful" }.prefix(spec.harmfulTest)
        let harmless = all.filter { $0.label == "harmless" }.prefix(spec.harmlessTest)
        return Array(harmful) + Array(harmless)
    }

    /// The edit scheme of `[abliteration] edit` (with `skip_begin` / `skip_end` for the study's).
    var editScheme: EditScheme {
        spec.edit == "study" ? EditScheme(kind: .study, skipBegin: spec.skipBegin, skipEnd: spec.skipEnd) : .arditi
    }

    /// The abliteration of a checkpoint at one α: the study's layer (or the analysis' best candidate).
    /// A layer kept although no candidate passed the selection's filters is marked `fallback` (system name,
    /// manifest); with `select_required = true` it is an error instead.
    func abliterationSettings(_ c: CheckpointSpec) throws -> [AbliterationSetting] {
        let method = Abliteration.DirectionMethod(rawValue: spec.method) ?? .meanDiff
        var layer = spec.layer
        var fallback = false
        if layer == nil {
            if spec.selectTop > 0 {
                let chosen = try selectCandidate(c)
                layer = chosen.layer
                fallback = chosen.fallback
                if fallback {
                    let msg = "layer \(chosen.layer): no candidate passed the selection filters (see analysis/selection-\(SafeFiles.sanitize(c.name)).csv)"
                    if spec.selectRequired {
                        throw StudyError(file: studyFile, line: nil, key: "abliteration.select_required",
                                         message: "\(c.name): \(msg); fix [abliteration] layer by hand or set select_required = false")
                    }
                    manifest.settings["fallback:" + c.name] = msg
                } else {
                    manifest.settings.removeValue(forKey: "fallback:" + c.name)
                }
            } else {
                let best = try AnalysisFile.bestCandidate(run: run, checkpoint: c.name, position: spec.position,
                                                          method: Analysis.DirectionMethod(rawValue: method.cachedDirection))
                layer = best.layer
                log.info("[generate] \(c.name): automatic candidate layer \(best.layer), position \(best.position), \(best.method.rawValue)")
            }
        }
        return spec.alphas.map { AbliterationSetting(checkpoint: c.name, method: method, layer: layer!, position: spec.position, alpha: $0,
                                                     edit: editScheme, fallback: fallback) }
    }

    /// The model-based choice among the checkpoint's best `select_top` cache candidates (at the study's
    /// position and method): Arditi et al.'s bypass / induce / KL scores on `select_prompts` validation
    /// prompts of each label (never test prompts, never fit prompts), written to `<run>/analysis/selection-<checkpoint>.csv`.
    /// The lowest bypass score among candidates with KL ≤ 0.1, an induce score above the midpoint of the
    /// unablated harmful and harmless refusal scores, and a layer outside the last 20 % wins; when none qualifies, the cache's best candidate is kept (and the file says so).
    /// Returns the chosen layer and whether it is the fallback.
    func selectCandidate(_ c: CheckpointSpec) throws -> (layer: Int, fallback: Bool) {
        let method = Analysis.DirectionMethod(rawValue: (Abliteration.DirectionMethod(rawValue: spec.method) ?? .meanDiff).cachedDirection) ?? .meanDiff
        let ranked = try AnalysisFile.rankedCandidates(run: run, checkpoint: c.name, position: spec.position, method: method)
        guard !ranked.isEmpty else {
            throw AnalysisError(site: run + "/analysis/candidates.csv", "no eligible candidate for '\(c.name)' at position \(spec.position); fix [abliteration] layer by hand")
        }
        let top = Array(ranked.prefix(spec.selectTop))
        // Validation prompts only: never a test prompt, never a prompt the directions were fit on
        // (see PromptRoles); with `validation_per_class = 0`, the fit prompts (in-sample), said in the log.
        // Prompts beyond the context are an error (or left out with skip_too_long) before the model scores them.
        let encoder = try ChatEncoder(path: c.model, systemPrompt: systemPrompt, chatFormat: c.chatFormat, thinking: spec.thinking)
        let fits: (Prompt) throws -> Bool = { p in
            guard case .failure(let e) = encoder.encodeChecked(p, remedy: "or set [record] skip_too_long = true in \(self.studyFile) to leave it out") else { return true }
            if !self.spec.skipTooLong { throw e }
            self.log.warning("[select] \(c.name): skipped (too long for the context): \(e.description)")
            return false
        }
        let allRoles = try promptRoles()
        let roles = (validation: try allRoles.validation.filter(fits), fit: try allRoles.fit.filter(fits))
        func pick(_ label: String) -> [String] {
            let v = roles.validation.filter { $0.label == label }
            if !v.isEmpty {
                if v.count < spec.selectPrompts {
                    log.info("[select] \(c.name): \(v.count) \(label) validation prompts (select_prompts = \(spec.selectPrompts)); scoring on those")
                }
                return v.prefix(spec.selectPrompts).map(\.text)
            }
            log.warning("[select] \(c.name): no \(label) validation prompts ([prompts] validation_per_class = 0); scoring on the last fit prompts (in-sample)")
            return roles.fit.filter { $0.label == label }.suffix(spec.selectPrompts).map(\.text)
        }
        let harmful = pick("harmful"), harmless = pick("harmless")
        let out = run + "/analysis/selection-\(SafeFiles.sanitize(c.name)).csv"
        var parts = ["model": try fileHash(c.model), "analysis": (try? fileHash(run + "/analysis.h5")) ?? "",
                     "top": top.map { "\($0.layer)/\($0.position)/\($0.method.rawValue)" }.joined(separator: ","),
                     "rule": "kl<=0.1;induce>midpoint;bypass-min", "prompts": SHA256.hex(Data((harmful + ["\u{1E}"] + harmless).joined(separator: "\u{1F}").utf8)), "n": String(spec.selectPrompts), "system": spec.promptSettings]
        if let f = c.chatFormat { parts["chat_format"] = f }
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
        return (layer, row.fields[cc] == "fallback")
    }

    /// Select: the model-based choice of each selected checkpoint's direction layer (when the study's
    /// layer is automatic and `select_top` > 0); the generate stage reads the choice back.
    func selectStage() throws {
        guard spec.layer == nil, spec.selectTop > 0, !spec.alphas.isEmpty, !(try generationPrompts().isEmpty) else { return }
        for c in selectedCheckpoints { _ = try selectCandidate(c) }
    }

    /// The systems of a checkpoint: the original model, then one abliterated system per α.
    func systems(of c: CheckpointSpec) throws -> [(name: String, setting: AbliterationSetting?)] {
        [(c.name, nil)] + (try abliterationSettings(c)).map { ($0.systemName, $0) }
    }

    /// Systems this invocation works on (`--checkpoint`, `--system`), or nil for every system found.
    func selectedSystems() throws -> Set<String>? {
        guard options.checkpoint != nil || options.system != nil else { return nil }
        var out = Set<String>()
        for c in selectedCheckpoints {
            for s in try systems(of: c) where options.system?.matches(s.setting) ?? true { out.insert(s.name) }
        }
        if let want = options.system, out.isEmpty {
            throw StudyError(file: studyFile, line: nil, key: "abliteration.alphas", message: "--system \(want) is not a system of the study")
        }
        return out
    }

    /// Generate: original and abliterated answers to the test prompts → `<run>/generations/<system>.jsonl`,
    /// one stage per system (`generate:<system>`), so that systems can run as separate processes.
    func generateStage() throws {
        guard !spec.checkpoints.isEmpty else { return }
        let prompts = try generationPrompts()
        guard !prompts.isEmpty else { return }
        let studyPrompts = prompts
        for c in selectedCheckpoints {
            var prompts = studyPrompts
            let all = try systems(of: c)
            try setAsideSupersededGenerations(checkpoint: c.name, current: Set(all.map(\.name)))
            var model: ChatModel?
            var checked = false
            for (name, setting) in all where options.system?.matches(setting) ?? true {
                let out = GenerationRun.path(run: run, system: name)
                var parts = ["model": try fileHash(c.model), "prompts": promptSetSHA256Local(studyPrompts),
                             "max_new_tokens": String(spec.maxNewTokens), "system": spec.promptSettings,
                             "name": name,
                             "edit": "\(editScheme.kind.rawValue):\(editScheme.skipBegin):\(editScheme.skipEnd)"]
                if setting != nil { parts["analysis"] = (try? fileHash(run + "/analysis.h5")) ?? "" }
                if spec.skipTooLong { parts["skip_too_long"] = "true" }
                if let f = c.chatFormat { parts["chat_format"] = f }
                // The batch size changes speed and memory, never the answers (see README, "Repeatability").
                let fp = fingerprint(parts)
                try stage("generate:\(name)", fingerprint: fp, outputs: [out],
                          settings: ["batch_size": String(spec.batchSize)]) {
                    // Answers already in the file resume only when they were made with these inputs (an
                    // interrupted run, a resubmitted array task); answers made with other inputs (prompts,
                    // max_new_tokens, direction, …) are set aside, never mixed in.
                    try claimGenerations(out, fingerprint: fp)
                    if model == nil {
                        // Prompt lengths (with max_new_tokens) and memory are checked before the weights are loaded.
                        let encoder = try ChatEncoder(path: c.model, systemPrompt: systemPrompt, chatFormat: c.chatFormat, thinking: spec.thinking)
                        if spec.skipTooLong && !checked {
                            let tooLong = prompts.compactMap { p -> PromptTooLongError? in
                                if case .failure(let e) = encoder.encodeChecked(p, newTokens: spec.maxNewTokens) { return e }
                                return nil
                            }
                            for e in tooLong { log.warning("[generate] \(c.name): skipped (too long for the context): \(e.description)") }
                            let ids = Set(tooLong.map(\.id))
                            prompts = prompts.filter { !ids.contains($0.id) }
                            noteSkipped("generate:\(c.name)", tooLong.map(\.id))
                            checked = true
                        }
                        try GenerationRun.preflight(encoder: encoder, prompts: prompts,
                                                    options: GenerationOptions(maxNewTokens: spec.maxNewTokens, eosIds: [], sampling: .greedy, maxBatch: spec.batchSize),
                                                    lengthRemedy: "or set [record] skip_too_long = true in \(studyFile) to leave it out, or lower [generation] max_new_tokens",
                                                    memoryRemedy: "lower [generation] batch_size or max_new_tokens in \(studyFile), or use a smaller quantization or model")
                        model = try ChatModel(encoder: encoder)
                    }
                    let m = model!
                    let genOptions = GenerationOptions(maxNewTokens: spec.maxNewTokens, eosIds: m.eosIds,
                                                       sampling: .greedy, maxBatch: spec.batchSize)
                    var hooks = HookSet()
                    if let s = setting { hooks = try ablationHooks(try ablationEdit(s, nLayers: m.config.nLayers), model: m, checkpoint: c) }
                    try GenerationRun.run(model: m, prompts: prompts, system: name, setting: setting, hooks: hooks,
                                          options: genOptions, out: out, progress: options.showProgress)
                    return [out]
                }
            }
            if spec.exportWeights, options.system == nil { try exportStage(c, settings: all.compactMap(\.setting)) }
        }
    }

    /// `export_weights`: each abliterated system's weights orthogonalized (the same edit as its
    /// inference-time ablation, `Orthogonalization.export`) → `<run>/models/<system>.gguf`. GGUF
    /// checkpoints only; a Hugging Face folder is skipped with a warning.
    func exportStage(_ c: CheckpointSpec, settings: [AbliterationSetting]) throws {
        guard c.model.lowercased().hasSuffix(".gguf") else {
            log.warning("[export] \(c.name): export_weights writes GGUF files from GGUF checkpoints; \(c.model) is not one, skipped")
            return
        }
        let outputs = settings.map { run + "/models/" + $0.fileName + ".gguf" }
        let parts = ["model": try fileHash(c.model), "analysis": (try? fileHash(run + "/analysis.h5")) ?? "",
                     "settings": settings.map(\.systemName).joined(separator: ","),
                     "edit": "\(editScheme.kind.rawValue):\(editScheme.skipBegin):\(editScheme.skipEnd)"]
        try stage("export:\(c.name)", fingerprint: fingerprint(parts), outputs: outputs) {
            try SafeFiles.createDirectory(run + "/models")
            for (s, out) in zip(settings, outputs) {
                let g = try GGUFFile(path: c.model)
                let nLayers = g.int((g.architecture ?? "") + ".block_count") ?? 0
                let edit = try ablationEdit(s, nLayers: nLayers)
                log.info("[export] \(s.systemName) → \(out)")
                if let f = try? GGUFFile(path: c.model), let n = f.int((f.architecture ?? "") + ".block_count"), !Orthogonalization.isExact(f, nLayers: n) {
                    log.warning("[export] \(s.systemName): weight orthogonalization is \(Orthogonalization.inexactNote)")
                }
                let tmp = out + ".partial"
                try Orthogonalization.export(source: c.model, edit: edit, setting: s, type: .f32, to: tmp)
                if rename(tmp, out) != 0 {
                    throw IOError(path: out, "cannot move the exported model into place: \(String(cString: strerror(errno)))")
                }
            }
            return outputs
        }
    }

    /// The file next to a generations file naming the fingerprint of the inputs its answers were made with.
    static func inputsStamp(_ generations: String) -> String {
        let u = URL(fileURLWithPath: generations)
        return u.deletingLastPathComponent().appendingPathComponent("." + u.lastPathComponent + ".inputs").path
    }

    /// Makes `out` ready for answers made with the inputs `fp`: an existing file whose stamp names other
    /// inputs (or has no stamp) moves to `generations/superseded/`; then the stamp is written.
    func claimGenerations(_ out: String, fingerprint fp: String) throws {
        let stamp = Self.inputsStamp(out)
        if FileManager.default.fileExists(atPath: out), (try? String(contentsOfFile: stamp, encoding: .utf8)) != fp,
           try setAside(out, why: "cannot move answers made with other settings aside") {
            log.info("[generate] \((out as NSString).lastPathComponent) was made with other settings; moved to generations/superseded/")
        }
        try SafeFiles.atomicWrite(Data(fp.utf8), to: stamp)
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
            if try setAside(dir + "/" + f, why: "cannot move a superseded generation file aside") {
                log.info("[generate] \(f) is no longer a system of the study; moved to generations/superseded/")
            }
        }
    }

    /// Moves a generations file into `superseded/` next to it (replacing an older copy there). Returns false
    /// when the file was already gone (another task of the same checkpoint, a Slurm array, moved it first).
    func setAside(_ path: String, why: String) throws -> Bool {
        let fm = FileManager.default
        let aside = (path as NSString).deletingLastPathComponent + "/superseded"
        try SafeFiles.createDirectory(aside)
        let target = aside + "/" + (path as NSString).lastPathComponent
        try? fm.removeItem(atPath: target)
        do { try fm.moveItem(atPath: path, toPath: target) } catch {
            if !fm.fileExists(atPath: path) { return false }
            throw IOError(path: path, "\(why): \(error.localizedDescription)")
        }
        return true
    }

    /// Judge: every judge of the study on every generation. One stage per system (`judge:<system>`,
    /// `<run>/judgments/<system>.csv`, with progress and ETA), then `judge` joins them into
    /// `<run>/judgments.csv` in the order judge × system file × item (skipped when `--checkpoint` or
    /// `--system` limits the run to some systems).
    func judgeStage() throws {
        let dir = run + "/generations"
        let files = ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []).filter { $0.hasSuffix(".jsonl") }.sorted()
        guard !files.isEmpty else { return }
        let only = try selectedSystems().map { Set($0.map { SafeFiles.sanitize($0) + ".jsonl" }) }
        var partPaths: [String] = []
        for f in files {
            let base = String(f.dropLast(".jsonl".count))
            let part = run + "/judgments/" + base + ".csv"
            partPaths.append(part)
            if let only, !only.contains(f) { continue }
            var parts: [String: String] = ["judges": spec.judges.joined(separator: ","), "gen": try SHA256.hex(file: dir + "/" + f)]
            for h in spec.httpJudges where spec.judges.contains("http:" + h.name) { parts["http:" + h.name] = h.model + " " + h.baseURL }
            for (k, v) in try judgeInputs() { parts[k] = v }
            try stage("judge:\(base)", fingerprint: fingerprint(parts), outputs: [part]) {
                let items = try readGenerations(dir + "/" + f).map {
                    JudgeItem(itemID: $0.id, system: $0.system, label: $0.label, prompt: $0.prompt, response: $0.response)
                }
                let bar = AblabCore.Progress("judge \(base)", total: items.count * spec.judges.count, unit: "verdicts",
                                             enabled: options.showProgress)
                var rows: [Judgment] = []
                for name in spec.judges {
                    guard let judge = try judge(named: name) else { bar.advance(by: items.count); continue }
                    if let http = judge as? HTTPJudge {
                        // its own concurrency, journal and progress line
                        http.progress = options.showProgress
                        let before = http.unparsed
                        rows += try http.judgeAll(items)
                        bar.advance(by: items.count)
                        if http.unparsed > before {
                            log.warning("[judge] \(name): \(http.unparsed - before) of \(items.count) replies of \(base) UNPARSED (no verdict)")
                        }
                        continue
                    }
                    var start = 0
                    while start < items.count {
                        let chunk = Array(items[start..<min(items.count, start + 32)])
                        rows += try judge.judgeAll(chunk)
                        bar.advance(by: chunk.count)
                        start += chunk.count
                    }
                }
                bar.finish()
                try JudgmentsFile.write(rows, to: part)
                return [part]
            }
        }
        guard only == nil else { return }
        var parts: [String: String] = ["judges": spec.judges.joined(separator: ",")]
        for p in partPaths { parts["part:" + (p as NSString).lastPathComponent] = try SHA256.hex(file: p) }
        for h in spec.httpJudges where spec.judges.contains("http:" + h.name) { parts["http:" + h.name] = h.model + " " + h.baseURL }
        for (k, v) in try judgeInputs() { parts[k] = v }
        let out = run + "/judgments.csv"
        try stage("judge", fingerprint: fingerprint(parts), outputs: [out]) {
            let byPart = try partPaths.map { try JudgmentsFile.read($0) }
            var rows: [Judgment] = []
            for name in spec.judges { for p in byPart { rows += p.filter { $0.judge == name } } }
            try JudgmentsFile.write(rows, to: out)
            return [out]
        }
    }

    /// Every input of the study's judges beyond their names: pattern lists, label tables and their files,
    /// judge models (so that an edit re-judges).
    func judgeInputs() throws -> [String: String] {
        var parts: [String: String] = [:]
        for name in spec.judges {
            if name.hasPrefix("pattern:"), let p = spec.patternJudges.first(where: { "pattern:" + $0.name == name }) {
                parts["judge:" + name] = (p.regex ? "regex\u{1}" : "literal\u{1}") + p.patterns.joined(separator: "\u{1}")
            } else if name.hasPrefix("labels:"), let l = spec.labelJudges.first(where: { "labels:" + $0.name == name }) {
                parts["judge:" + name] = [l.file, l.idColumn, l.systemColumn ?? "", l.verdictColumn, l.refusalValues.joined(separator: "\u{2}"),
                                          (try? fileHash(l.file)) ?? "missing"].joined(separator: "\u{1}")
            } else if name.hasPrefix("llm:") || name.hasPrefix("llm-rubric:") {
                let ckpt = String(name.drop(while: { $0 != ":" }).dropFirst())
                let path = spec.checkpoints.first(where: { $0.name == ckpt })?.model ?? ckpt
                parts["judge:" + name] = (try? fileHash(path)) ?? "missing"
            }
        }
        return parts
    }

    /// The judge named `name` in `[judges] use` (nil when this build has no LLM judge), built once per run.
    /// `pattern:<name>`, `labels:<name>` and `http:<name>` come from their `[[judges.patterns]]` /
    /// `[[judges.labels]]` / `[[judges.http]]` tables; `llm:` / `llm-rubric:` load the judge model.
    func judge(named name: String) throws -> (any Judge)? {
        if let j = judgeCache[name] { return j }
        let judge: any Judge
        if name.hasPrefix("llm:") || name.hasPrefix("llm-rubric:") {
            guard let make = StageRegistry.llmJudge else {
                log.warning("[judge] \(name): no LLM judge in this build; skipped")
                return nil
            }
            judge = try make(self, name)
        } else if name.hasPrefix("http:") {
            guard let h = spec.httpJudges.first(where: { "http:" + $0.name == name }) else {
                throw StudyError(file: studyFile, line: nil, key: "judges.use",
                                 message: "judge '\(name)' has no [[judges.http]] table with name = \"\(name.dropFirst(5))\"")
            }
            judge = try HTTPJudge(spec: h, journalDirectory: run + "/judge-http")
        } else if name.hasPrefix("pattern:"), let p = spec.patternJudges.first(where: { "pattern:" + $0.name == name }) {
            judge = try PatternJudge(name: name, patterns: p.patterns.map { p.regex ? .regex($0) : .literal($0) })
        } else if name.hasPrefix("labels:"), !name.contains(";") {
            guard let l = spec.labelJudges.first(where: { "labels:" + $0.name == name }) else {
                throw StudyError(file: studyFile, line: nil, key: "judges.use",
                                 message: "judge '\(name)' has no [[judges.labels]] table with name = \"\(name.dropFirst("labels:".count))\"")
            }
            judge = try LabelsJudge(name: name, file: l.file,
                                    columns: LabelsJudge.Columns(item: l.idColumn.split(separator: "+").map(String.init),
                                                                 system: l.systemColumn, verdict: l.verdictColumn),
                                    refusalValues: l.refusalValues)
        } else {
            judge = try Judges.make(spec: name)
        }
        judgeCache[name] = judge
        return judge
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
