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
            let best = try AnalysisFile.bestCandidate(run: run, checkpoint: c.name, position: spec.position,
                                                      method: Analysis.DirectionMethod(rawValue: spec.method))
            layer = best.layer
            log.info("[generate] \(c.name): automatic candidate layer \(best.layer), position \(best.position), \(best.method.rawValue)")
        }
        return spec.alphas.map { AbliterationSetting(checkpoint: c.name, method: method, layer: layer!, position: spec.position, alpha: $0) }
    }

    /// Generate: original and abliterated answers to the test prompts → `<run>/generations/<system>.jsonl`.
    func generateStage() throws {
        guard !spec.checkpoints.isEmpty else { return }
        let prompts = try generationPrompts()
        guard !prompts.isEmpty else { return }
        for c in selectedCheckpoints {
            let settings = try abliterationSettings(c)
            let systems = [c.name] + settings.map(\.systemName)
            let outputs = systems.map { GenerationRun.path(run: run, system: $0) }
            var parts = ["model": try fileHash(c.model), "prompts": promptSetSHA256Local(prompts),
                         "max_new_tokens": String(spec.maxNewTokens), "system": spec.systemPrompt.studyValue,
                         "settings": settings.map(\.systemName).joined(separator: ",")]
            parts["analysis"] = (try? fileHash(run + "/analysis.h5")) ?? ""
            try stage("generate:\(c.name)", fingerprint: fingerprint(parts), outputs: outputs) {
                let model = try ChatModel(path: c.model, systemPrompt: systemPrompt, chatFormat: c.chatFormat)
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
