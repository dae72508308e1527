import AblabCore
import Foundation
import ModelRuntime
import Analysis
import Abliteration
import Judging

extension Pipeline {
    /// Probe: every system judges whether its own answers refused (self-judgment), an abliterated system
    /// with its abliteration active (the direction and α named in its system name, from analysis.h5),
    /// scored against the study's reference judge. One stage per system (`probe:<system>`,
    /// `<run>/self_judgment/<system>.csv`), then `probe` joins them into `<run>/self_judgment.csv` and
    /// `<run>/self_judgment_summary.csv` (skipped when `--checkpoint` or `--system` limits the run).
    /// The reference verdicts come from the system's `<run>/judgments/<system>.csv` when the reference
    /// judge is among the study's judges, else the reference judge runs here.
    func probeStage() throws {
        guard spec.selfJudgment, !spec.checkpoints.isEmpty else { return }
        let dir = run + "/generations"
        let files = ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []).filter { $0.hasSuffix(".jsonl") }
        guard !files.isEmpty else { return }
        let only = try selectedSystems()
        let gens = try GenerationsFile.readRun(run)
        let groups = SelfJudgment.bySystem(gens)
        var partPaths: [String] = []
        var loaded: (checkpoint: String, model: ChatModel)?
        for (system, lines) in groups {
            let (ckpt, setting) = try SystemName.parse(system)
            guard let c = spec.checkpoints.first(where: { $0.name == ckpt }) else {
                log.warning("[probe] skipping \(system): \(ckpt) is not a checkpoint of the study")
                continue
            }
            let base = SafeFiles.sanitize(system)
            let part = run + "/self_judgment/" + base + ".csv"
            partPaths.append(part)
            if let only, !only.contains(system) { continue }
            let judged = run + "/judgments/" + base + ".csv"
            var parts: [String: String] = ["reference": spec.referenceJudge, "system": spec.promptSettings,
                                           "questions": spec.selfJudgmentQuestions.joined(separator: ","),
                                           "wording": spec.selfJudgmentQuestions.compactMap { SelfJudgment.Wording(rawValue: $0)?.text }.joined(separator: "\u{1}"),
                                           "name": system,
                                           "gen": try SHA256.hex(file: GenerationRun.path(run: run, system: system)),
                                           "judgments": (try? SHA256.hex(file: judged)) ?? "", "model": try fileHash(c.model)]
            if let s = setting {
                parts["analysis"] = (try? fileHash(run + "/analysis.h5")) ?? ""
                if s.scheme.kind == .study { parts["edit"] = "\(editScheme.kind.rawValue):\(editScheme.skipBegin):\(editScheme.skipEnd)" }
            }
            if let f = c.chatFormat { parts["chat_format"] = f }
            try stage("probe:\(base)", fingerprint: fingerprint(parts), outputs: [part]) {
                let existing = FileManager.default.fileExists(atPath: judged) ? try JudgmentsFile.read(judged) : []
                let ref = try SelfJudgment.referenceVerdicts(spec.referenceJudge, existing: existing, generations: lines)
                if loaded?.checkpoint != ckpt {
                    loaded = nil
                    loaded = (ckpt, try ChatModel(path: c.model, systemPrompt: systemPrompt, chatFormat: c.chatFormat, thinking: spec.thinking))
                }
                let m = loaded!.model
                var hooks = HookSet()
                if let s = setting {
                    hooks = try ablationHooks(try ablationEdit(s, nLayers: m.config.nLayers), model: m, checkpoint: c)
                }
                var rows: [SelfJudgmentRow] = []
                for wording in spec.selfJudgmentQuestions.compactMap({ SelfJudgment.Wording(rawValue: $0) }) {
                    let bar = AblabCore.Progress("probe \(system) (\(wording.rawValue))", total: lines.count, unit: "answers", enabled: options.showProgress)
                    var start = 0
                    while start < lines.count {
                        let chunk = Array(lines[start..<min(lines.count, start + 32)])
                        rows += try SelfJudgment.probe(model: m, items: chunk.map(\.item), hooks: hooks, wording: wording,
                                                       referenceJudge: spec.referenceJudge, reference: ref[system] ?? [:])
                        bar.advance(by: chunk.count)
                        start += chunk.count
                    }
                    bar.finish()
                }
                try SafeFiles.atomicWrite(Data(SelfJudgment.format(rows).utf8), to: part)
                return [part]
            }
        }
        guard only == nil, !partPaths.isEmpty else { return }
        var parts: [String: String] = [:]
        for p in partPaths { parts["part:" + (p as NSString).lastPathComponent] = try SHA256.hex(file: p) }
        let outputs = [run + "/self_judgment.csv", run + "/self_judgment_summary.csv"]
        try stage("probe", fingerprint: fingerprint(parts), outputs: outputs) {
            let rows = try partPaths.flatMap { try Self.readSelfJudgmentPart($0) }
            let summary = try SelfJudgment.write(rows, run: run)
            for s in summary {
                log.info("[probe] \(s.system), question '\(s.question.rawValue)': n=\(s.n) accuracy=\(String(format: "%.3f", s.accuracy)) kappa=\(String(format: "%.3f", s.kappa))")
            }
            for w in SelfJudgment.constantWarnings(summary, rows: rows) { log.warning("[probe] \(w)") }
            return outputs
        }
    }

    /// Rows of one system's `<run>/self_judgment/<system>.csv` (written by `SelfJudgment.format`).
    static func readSelfJudgmentPart(_ path: String) throws -> [SelfJudgmentRow] {
        guard let data = FileManager.default.contents(atPath: path), let text = String(data: data, encoding: .utf8) else {
            throw IOError(path: path, "cannot read the self-judgment part file; run the probe stage again")
        }
        let rows = try CSV.parse(text, file: path)
        guard let header = rows.first?.fields, header == SelfJudgment.columns else {
            throw InputError(file: path, line: 1, "the header is not \(SelfJudgment.columns.joined(separator: ","))")
        }
        return try rows.dropFirst().map { r in
            let f = r.fields
            guard f.count == header.count else { throw InputError(file: path, line: r.line, "\(f.count) fields, expected \(header.count)") }
            func verdict(_ s: String, _ key: String) throws -> VerdictLabel? {
                if s.isEmpty { return nil }
                guard let v = VerdictLabel(rawValue: s) else { throw InputError(file: path, line: r.line, key: key, "'\(s)' is not a verdict") }
                return v
            }
            var score: Double?
            if !f[5].isEmpty {
                guard let x = Double(f[5]) else { throw InputError(file: path, line: r.line, key: "self_score", "'\(f[5])' is not a number") }
                score = x
            }
            guard let question = SelfJudgment.Wording(rawValue: f[1]) else {
                throw InputError(file: path, line: r.line, key: "question", "'\(f[1])' is not a self-judgment wording (served, refused)")
            }
            return SelfJudgmentRow(system: f[0], itemID: f[2], label: f[3], selfVerdict: try verdict(f[4], "self_verdict"), selfScore: score,
                                   referenceJudge: f[6], referenceVerdict: try verdict(f[7], "reference_verdict"), question: question)
        }
    }
}
