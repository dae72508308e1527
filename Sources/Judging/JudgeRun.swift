import AblabCore
import Foundation
import ModelRuntime

/// Runs judges over a run's generations into `<run>/judgments.csv`, resumably: rows already present for
/// (item, system, judge) are kept and not judged again; new rows are appended and the file is rewritten
/// atomically after every chunk, so a killed run loses at most one chunk.
public enum JudgeRun {
    /// Judges `items` with every judge, updating the judgments file at `path`. Returns the number of
    /// new rows. `chunk`: items per judge call (and per file write). `progress`: off for tests.
    @discardableResult
    public static func run(items: [JudgeItem], judges: [any Judge], judgmentsPath path: String,
                           chunk: Int = 32, progress: Bool = true) throws -> Int {
        var rows: [Judgment] = FileManager.default.fileExists(atPath: path) ? try JudgmentsFile.read(path) : []
        var done = Set(rows.map { key($0.judge, $0.system, $0.itemID) })
        var added = 0
        for judge in judges {
            let pending = items.filter { !done.contains(key(judge.name, $0.system, $0.itemID)) }
            guard !pending.isEmpty else { continue }
            let bar = AblabCore.Progress("judge \(judge.name)", total: pending.count, unit: "answers", enabled: progress)
            var start = 0
            while start < pending.count {
                let part = Array(pending[start..<min(pending.count, start + max(1, chunk))])
                let new = try judge.judgeAll(part)
                rows.append(contentsOf: new)
                for r in new { done.insert(key(r.judge, r.system, r.itemID)) }
                try JudgmentsFile.write(rows, to: path)
                added += new.count
                bar.advance(by: part.count)
                start += part.count
            }
            bar.finish()
        }
        return added
    }

    static func key(_ judge: String, _ system: String, _ item: String) -> String {
        judge + "\u{1}" + system + "\u{1}" + item
    }
}

extension Judges {
    /// Builds a judge from its name, loading a chat model for `llm:NAME_OR_PATH`: NAME is looked up in
    /// `modelFor` (from `--model-for NAME=PATH`), else taken as a path, else looked for in `modelsDir`
    /// as NAME.gguf, NAME or hf/NAME. The judge is named `llm:NAME` (for a path: its file name without
    /// `.gguf`).
    public static func make(spec: String, modelFor: [String: String], modelsDir: String? = nil) throws -> any Judge {
        let wording: LLMJudge.Wording
        if spec.hasPrefix("llm:") { wording = .served } else if spec.hasPrefix("llm-rubric:") { wording = .rubric }
        else { return try make(spec: spec) }
        let ref = String(spec.dropFirst(wording.prefix.count))
        guard !ref.isEmpty else { throw JudgeSpecError(spec: spec, "give a checkpoint name or path after '\(wording.prefix)'") }
        let fm = FileManager.default
        var candidates: [String] = []
        if let p = modelFor[ref] { candidates.append(p) }
        candidates.append(ref)
        if let dir = modelsDir { candidates += ["\(dir)/\(ref).gguf", "\(dir)/\(ref)", "\(dir)/hf/\(ref)"] }
        guard let path = candidates.first(where: { fm.fileExists(atPath: $0) }) else {
            throw JudgeSpecError(spec: spec, "no model found for '\(ref)' (tried \(candidates.joined(separator: ", "))); pass --model-for \(ref)=PATH")
        }
        let name: String
        if modelFor[ref] != nil || !ref.contains("/") {
            name = ref
        } else {
            let url = URL(fileURLWithPath: ref)
            name = url.pathExtension.lowercased() == "gguf" ? url.deletingPathExtension().lastPathComponent : url.lastPathComponent
        }
        let model = try ChatModel(path: path)
        return try LLMJudge(model: model, checkpoint: name, wording: wording)
    }
}
