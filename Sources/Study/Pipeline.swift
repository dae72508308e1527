import Foundation
import Logging
import AblabCore
import ModelRuntime
import ActivationCache
import Recording
import Analysis
import Judging

/// The stages of a study, in order. Data flows one way.
public enum Stage: String, CaseIterable, Sendable {
    case record, analyze, generate, judge, probe, agree, report
}

/// Options of `ablab run`.
public struct RunOptions: Sendable {
    public var stages: Set<Stage> = Set(Stage.allCases)
    public var checkpoint: String?         // only this checkpoint (record/generate)
    public var shard: ShardSpec = .whole
    public var figures: String?            // overrides [report].figures
    public var force = false
    public var showProgress = true
    public init() {}
}

/// Runs a study: record → analyze → generate → judge → probe → agree → report. A stage whose input
/// fingerprint (hashes of models, prompts and settings) is unchanged and whose outputs exist is skipped.
/// Progress per stage on stderr; `<run>/manifest.json` holds versions, hashes, settings and timings.
public final class Pipeline {
    public let spec: StudySpec
    public let studyFile: String
    public let options: RunOptions
    public var run: String { spec.out }
    var manifest: Manifest
    let log = AblabLog.logger("run")

    /// Stage implementations registered by the modules that own them (see `StageRegistry`).
    public init(studyFile: String, spec: StudySpec, options: RunOptions) {
        self.studyFile = studyFile; self.spec = spec; self.options = options
        self.manifest = Manifest.load(run: spec.out) ?? Manifest()
    }

    /// The prompts of the study: train and test splits, trimmed per class when asked.
    public func studyPrompts() throws -> [Prompt] {
        guard !spec.promptFiles.isEmpty else {
            throw StudyError(file: studyFile, line: nil, key: "prompts.files", message: "no prompt files: add files = [\"harmful.jsonl\", \"harmless.jsonl\"]")
        }
        let all = try PromptFile.load(spec.promptFiles, splits: ["train", "test"])
        var out: [Prompt] = []
        for split in ["train", "test"] {
            let limit = split == "train" ? spec.trainPerClass : spec.testPerClass
            var perLabel: [String: Int] = [:]
            for p in all where p.split == split {
                let n = perLabel[p.label, default: 0]
                if let limit, n >= limit { continue }
                perLabel[p.label] = n + 1
                out.append(p)
            }
        }
        if out.isEmpty {
            throw StudyError(file: studyFile, line: nil, key: "prompts.files", message: "no prompt has split train or test")
        }
        return out
    }

    var systemPrompt: SystemPrompt {
        switch spec.systemPrompt {
        case .modelDefault: return .modelDefault
        case .none: return .none
        case .text(let t): return .custom(t)
        }
    }

    /// SHA-256 of a file, cached in the manifest by path, size and modification time.
    func fileHash(_ path: String) throws -> String {
        let attrs = try? FileManager.default.attributesOfItem(atPath: path)
        let size = (attrs?[.size] as? NSNumber)?.int64Value ?? -1
        let mtime = (attrs?[.modificationDate] as? Date)?.timeIntervalSince1970 ?? 0
        let key = "hash:\(path):\(size):\(Int(mtime))"
        if let h = manifest.settings[key] { return h }
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir) else {
            throw IOError(path: path, "does not exist (fetch the default models with `make models`)")
        }
        let h: String
        if isDir.boolValue {
            let files = ((try? FileManager.default.contentsOfDirectory(atPath: path)) ?? [])
                .filter { $0.hasSuffix(".safetensors") || $0.hasSuffix(".json") }.sorted()
            var parts = ""
            for f in files { parts += f + ":" + (try SHA256.hex(file: path + "/" + f)) + "\n" }
            h = SHA256.hex(Data(parts.utf8))
        } else {
            h = try SHA256.hex(file: path)
        }
        manifest.settings[key] = h
        return h
    }

    /// Runs `body` as stage `name` unless its fingerprint is unchanged and `outputs` exist.
    func stage(_ name: String, fingerprint fp: String, outputs: [String], _ body: () throws -> [String]) throws {
        if !options.force, let rec = manifest.stages[name], rec.fingerprint == fp,
           rec.outputs.allSatisfy({ FileManager.default.fileExists(atPath: $0) }), !rec.outputs.isEmpty || outputs.isEmpty {
            log.info("[\(name)] unchanged, skipped")
            return
        }
        log.info("[\(name)] running")
        let start = Date()
        let produced = try body()
        let secs = Date().timeIntervalSince(start)
        manifest.stages[name] = Manifest.StageRecord(fingerprint: fp, startedAt: ISO8601DateFormatter().string(from: start),
                                                     seconds: secs, outputs: produced)
        try manifest.save(run: run)
        log.info("[\(name)] done in \(String(format: "%.1f", secs)) s")
    }

    /// Runs every selected stage.
    public func execute() throws {
        try SafeFiles.createDirectory(run)
        manifest.study = spec.name
        manifest.studyFile = studyFile
        manifest.ablabVersion = AblabVersion.string
        manifest.machine = ProcessInfo.processInfo.hostName.isEmpty ? "" : "\(ProcessInfo.processInfo.activeProcessorCount) cores"
        for f in spec.promptFiles { manifest.promptFiles[f] = try fileHash(f) }
        for c in spec.checkpoints where spec.paperData == nil || !spec.checkpoints.isEmpty {
            manifest.models[c.name] = try fileHash(c.model)
        }
        try manifest.save(run: run)

        for s in Stage.allCases where options.stages.contains(s) {
            guard let impl = StageRegistry.implementations[s] else { continue }
            try impl(self)
        }
        try manifest.save(run: run)
    }

    /// Checkpoints this invocation works on.
    public var selectedCheckpoints: [CheckpointSpec] {
        guard let only = options.checkpoint else { return spec.checkpoints }
        return spec.checkpoints.filter { $0.name == only }
    }
}

/// Where each stage's implementation lives; stages register in `StageRegistry.implementations`.
public enum StageRegistry {
    /// The `llm:<checkpoint>` judge: (pipeline, judge name, items) → judgments.
    nonisolated(unsafe) public static var llmJudge: ((Pipeline, String, [JudgeItem]) throws -> [Judgment])? = { p, name, items in
        let ckpt = String(name.dropFirst("llm:".count))
        let path = p.spec.checkpoints.first(where: { $0.name == ckpt })?.model ?? ckpt
        guard FileManager.default.fileExists(atPath: path) else {
            throw StudyError(file: p.studyFile, line: nil, key: "judges.use",
                             message: "judge '\(name)' names no checkpoint of the study and no model file")
        }
        let model = try ChatModel(path: path, systemPrompt: .modelDefault)
        return try LLMJudge(model: model, checkpoint: ckpt).judgeAll(items)
    }

    public static let implementations: [Stage: @Sendable (Pipeline) throws -> Void] = [
        .record: { try $0.recordStage() },
        .analyze: { try $0.analyzeStage() },
        .generate: { try $0.generateStage() },
        .judge: { try $0.judgeStage() },
        .probe: { try $0.probeStage() },
        .agree: { try $0.agreeStage() },
        .report: { try $0.reportStage() },
    ]
}

extension Pipeline {
    /// Record: one activation file per checkpoint (or shard), resumable.
    func recordStage() throws {
        guard !spec.checkpoints.isEmpty else { return }
        let prompts = try studyPrompts()
        let promptHash = promptSetSHA256(prompts)
        for c in selectedCheckpoints {
            let out = ActivationCacheWriter.finalPath(run: run, checkpoint: c.name, shard: options.shard)
            let fp = fingerprint(["model": try fileHash(c.model), "prompts": promptHash, "positions": spec.positions,
                                  "dtype": spec.dtype, "hooks": spec.hooks.joined(separator: ","),
                                  "system": spec.promptSettings, "chat_format": c.chatFormat ?? "",
                                  "shard": options.shard.description, "compress": String(spec.compress)])
            try stage("record:\(c.name)\(options.shard.isWhole ? "" : "#\(options.shard)")", fingerprint: fp, outputs: [out]) {
                let model = try ChatModel(path: c.model, systemPrompt: systemPrompt, chatFormat: c.chatFormat, thinking: spec.thinking)
                var o = RecordOptions(checkpoint: c.name)
                o.positions = try PositionSpec.parse(spec.positions, file: studyFile)
                o.hooks = spec.hooks
                o.dtype = ActivationDType(rawValue: spec.dtype) ?? .float32
                o.compress = spec.compress
                o.shard = options.shard
                o.showProgress = options.showProgress
                // The inputs changed (or the file is missing): a stale finished file goes; partial work with
                // the same settings resumes, partial work with other settings is refused by the writer.
                if FileManager.default.fileExists(atPath: out) { try FileManager.default.removeItem(atPath: out) }
                let path = try Recorder.record(model: model, modelSHA256: try fileHash(c.model), prompts: prompts, run: run, options: o)
                return [path]
            }
        }
    }
}

extension Pipeline {
    /// Analyze: from the activation caches alone → analysis.h5 and tidy CSVs.
    func analyzeStage() throws {
        guard !spec.checkpoints.isEmpty else { return }
        var parts: [String: String] = ["bootstrap": String(spec.bootstrap), "max_components": String(spec.maxComponents)]
        for c in spec.checkpoints {
            let path = ActivationCacheWriter.finalPath(run: run, checkpoint: c.name)
            guard FileManager.default.fileExists(atPath: path) else {
                throw StudyError(file: studyFile, line: nil, key: "checkpoints", message: "no activation cache for '\(c.name)' at \(path); run the record stage first")
            }
            let recorded = manifest.stages["record:\(c.name)"]?.fingerprint
            parts["cache:" + c.name] = try recorded ?? fileHash(path)
        }
        let out = run + "/analysis.h5"
        try stage("analyze", fingerprint: fingerprint(parts), outputs: [out]) {
            let opts = AnalysisOptions(bootstrap: spec.bootstrap, maxComponents: spec.maxComponents)
            let result = try RunAnalyzer.analyze(run: run, options: opts, checkpoints: spec.checkpoints.map(\.name),
                                                 progress: options.showProgress)
            try RunAnalyzer.write(result, run: run, options: opts)
            return [out]
        }
    }
}
