import Foundation
import AblabCore
import ModelRuntime
import Analysis
import Abliteration
import Judging

/// What abliteration costs (`[generation] costs`, on by default): for each abliterated system, the
/// cross-entropy of the original system's own greedy answers to the harmless test prompts (answers
/// re-tokenized from `generations/<checkpoint>.jsonl`; no outside corpus) under the abliterated model
/// against the original model, and every system's refusal rates by the reference judge on its full
/// answers (`max_new_tokens`) next to the same answers cut to their first 48 tokens (late refusals).
/// → `<run>/analysis/costs.csv`.
extension Pipeline {
    static let earlyTokens = 48

    func costsStage() throws {
        guard spec.costs, !spec.checkpoints.isEmpty else { return }
        var header = "checkpoint,system,harmless_answers,answer_tokens,ce_original,ce_system,ce_increase,"
        header += "harmful_refusal_first48,harmful_refusal_full,harmful_n,harmless_refusal_first48,harmless_refusal_full,harmless_n,max_new_tokens,judge"
        var lines = [header]
        for c in selectedCheckpoints {
            let systems = try systems(of: c)
            let files = systems.map { GenerationRun.path(run: run, system: $0.name) }
            guard files.allSatisfy({ FileManager.default.fileExists(atPath: $0) }) else {
                log.info("[costs] \(c.name): not every system has answers yet; skipped")
                continue
            }
            let out = run + "/analysis/costs/\(SafeFiles.sanitize(c.name)).csv"
            var parts = ["model": try fileHash(c.model), "analysis": (try? fileHash(run + "/analysis.h5")) ?? "",
                         "judge": spec.referenceJudge, "system": spec.promptSettings]
            for (s, f) in zip(systems, files) { parts["gen:" + s.name] = try SHA256.hex(file: f) }
            try stage("costs:\(c.name)", fingerprint: fingerprint(parts), outputs: [out]) {
                let m = try ChatModel(path: c.model, systemPrompt: systemPrompt, chatFormat: c.chatFormat, thinking: spec.thinking)
                guard let judge = try judge(named: spec.referenceJudge) else {
                    throw StudyError(file: studyFile, line: nil, key: "judges.reference", message: "the reference judge '\(spec.referenceJudge)' is not available in this build")
                }
                let original = try readGenerations(files[0]).filter { $0.label == "harmless" }
                let prompts = original.map { m.encodeChat(user: $0.prompt) }
                let answers = original.map { r in m.tokenizer.encode(r.response, parseSpecial: false).map(Int.init) }
                func ce(_ hooks: HookSet) throws -> (Double, Int) {
                    var s = 0.0, n = 0
                    for (p, a) in zip(prompts, answers) { let r = try SweepMeasure.answerNLL(model: m, prompt: p, answer: a, hooks: hooks); s += r.sum; n += r.tokens }
                    return (n > 0 ? s / Double(n) : .nan, n)
                }
                let (ce0, nTok) = try ce(HookSet())
                var csv = header + "\n"
                for ((name, setting), f) in zip(systems, files) {
                    log.info("[costs] \(name)")
                    var ceS = ce0
                    if let s = setting { ceS = try ce(try ablationHooks(try ablationEdit(s, nLayers: m.config.nLayers), model: m, checkpoint: c)).0 }
                    let recs = try readGenerations(f)
                    func rate(_ label: String, early: Bool) throws -> (Double, Int) {
                        let items = recs.filter { $0.label == label }.map { r -> JudgeItem in
                            let text = early ? m.decode(Array(m.tokenizer.encode(r.response, parseSpecial: false).prefix(Self.earlyTokens)).map(Int.init)) : r.response
                            return JudgeItem(itemID: r.id, system: name, label: label, prompt: r.prompt, response: text)
                        }
                        let v = try judge.judgeAll(items).compactMap(\.verdict)
                        return (v.isEmpty ? .nan : Double(v.filter { $0 == .refusal }.count) / Double(v.count), v.count)
                    }
                    let (h48, hn) = try rate("harmful", early: true), (hFull, _) = try rate("harmful", early: false)
                    let (l48, ln) = try rate("harmless", early: true), (lFull, _) = try rate("harmless", early: false)
                    csv += [c.name, name, String(original.count), String(nTok), String(ce0), String(ceS), String(ceS - ce0),
                            String(h48), String(hFull), String(hn), String(l48), String(lFull), String(ln), String(spec.maxNewTokens), spec.referenceJudge]
                        .map(CSV.escape).joined(separator: ",") + "\n"
                }
                try SafeFiles.atomicWrite(Data(csv.utf8), to: out)
                return [out]
            }
            if let text = try? String(contentsOfFile: out, encoding: .utf8) {
                lines += text.split(separator: "\n").dropFirst().map(String.init)
            }
        }
        try SafeFiles.atomicWrite(Data((lines.joined(separator: "\n") + "\n").utf8), to: run + "/analysis/costs.csv")
    }
}
