import Foundation
import Logging
import AblabCore
import ModelRuntime
import ActivationCache
import Recording
import Analysis
import Judging
import Abliteration
import HDF5

/// The stages of a study, in order. Data flows one way.
public enum Stage: String, CaseIterable, Sendable {
    case record, analyze, select, grid, generate, judge, probe, agree, subspace, costs, report
}

/// One system of a checkpoint: the original model, or its abliteration at one α of the study.
public enum SystemChoice: Sendable, Equatable, CustomStringConvertible {
    case original
    case alpha(Double)

    /// `original` or `alpha=<α>` (as `--system` takes it).
    public init(parsing s: String) throws {
        if s == "original" { self = .original; return }
        if s.hasPrefix("alpha="), let a = Double(s.dropFirst("alpha=".count)), a.isFinite { self = .alpha(a); return }
        throw InputError(file: "--system", "'\(s)' is neither 'original' nor 'alpha=<number>'")
    }

    public var description: String {
        switch self {
        case .original: return "original"
        case .alpha(let a): return "alpha=\(a)"
        }
    }

    func matches(_ setting: AbliterationSetting?) -> Bool {
        switch self {
        case .original: return setting == nil
        case .alpha(let a): return setting?.alpha == a
        }
    }
}

/// Options of `ablab run`.
public struct RunOptions: Sendable {
    public var stages: Set<Stage> = Set(Stage.allCases)
    public var checkpoint: String?         // only this checkpoint (record, select, generate, judge, probe)
    /// Only this system of `checkpoint` (generate, judge, probe); the combined judgments.csv and
    /// self_judgment.csv are then left to a later run without it.
    public var system: SystemChoice?
    public var shard: ShardSpec = .whole
    /// Record by merging this many finished shards per checkpoint (`--shard k/n` outputs) instead of recording.
    public var mergeShards = 1
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
    /// Stage records this process wrote (merged into the shared manifest on every save).
    var touchedStages = Set<String>()
    /// Judges built so far (an LLM judge's model is loaded once per process).
    var judgeCache: [String: any Judge] = [:]
    let log = AblabLog.logger("run")

    /// Stage implementations registered by the modules that own them (see `StageRegistry`).
    public init(studyFile: String, spec: StudySpec, options: RunOptions) {
        self.studyFile = studyFile; self.spec = spec; self.options = options
        self.manifest = Manifest.load(run: spec.out) ?? Manifest()
    }

    /// The study's prompts in their three roles (see `PromptRoles`). A prompt with two roles (by id or
    /// text) is an error: no test prompt may take part in a choice.
    public func promptRoles() throws -> PromptRoles {
        guard !spec.promptFiles.isEmpty else {
            throw StudyError(file: studyFile, line: nil, key: "prompts.files", message: "no prompt files: add files = [\"harmful.jsonl\", \"harmless.jsonl\"]")
        }
        let all = try PromptFile.load(spec.promptFiles, splits: ["train", "test", "extra"])
        let roles = PromptRoles.assign(all, trainPerClass: spec.trainPerClass, testPerClass: spec.testPerClass,
                                       validationPerClass: spec.validationPerClass)
        if roles.fit.isEmpty && roles.test.isEmpty {
            throw StudyError(file: studyFile, line: nil, key: "prompts.files", message: "no prompt has split train or test")
        }
        let conflicts = roles.conflicts
        if !conflicts.isEmpty {
            let shown = conflicts.prefix(3).joined(separator: "; ") + (conflicts.count > 3 ? "; …" : "")
            throw StudyError(file: studyFile, line: nil, key: "prompts.files",
                             message: "\(conflicts.count) prompt(s) play two roles (fit, validation, test): \(shown); fix the 'split' column of the prompt files")
        }
        return roles
    }

    /// The prompts that are recorded: fit (split `train`), validation (split `validation`) and test.
    public func studyPrompts() throws -> [Prompt] {
        try promptRoles().all
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
    /// `settings` are recorded with the stage (settings that do not change its outputs, such as a batch size).
    func stage(_ name: String, fingerprint fp: String, outputs: [String], settings: [String: String]? = nil,
               _ body: () throws -> [String]) throws {
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
                                                     seconds: secs, outputs: produced, settings: settings)
        touchedStages.insert(name)
        try saveManifest()
        log.info("[\(name)] done in \(String(format: "%.1f", secs)) s")
    }

    /// Records in the manifest the prompts `stage` left out as too long (or that it left none out).
    func noteSkipped(_ stage: String, _ ids: [String]) {
        var all = manifest.skippedTooLong ?? [:]
        all[stage] = ids.isEmpty ? nil : ids
        manifest.skippedTooLong = all.isEmpty ? nil : all
    }

    /// Writes the manifest, keeping what concurrent processes of the same run (Slurm array tasks) wrote.
    func saveManifest() throws {
        manifest = try manifest.saveMerging(run: run, stages: touchedStages)
    }

    /// Runs every selected stage.
    public func execute() throws {
        try SafeFiles.createDirectory(run)
        manifest.study = spec.name
        manifest.studyFile = studyFile
        manifest.ablabVersion = AblabVersion.string
        manifest.machine = ProcessInfo.processInfo.hostName.isEmpty ? "" : "\(ProcessInfo.processInfo.activeProcessorCount) cores"
        for f in spec.promptFiles { manifest.promptFiles[f] = try fileHash(f) }
        if !spec.checkpoints.isEmpty && !spec.promptFiles.isEmpty {
            let roles = try promptRoles()
            try SafeFiles.atomicWrite(Data(roles.csv.utf8), to: run + "/prompt_roles.csv")
            for (label, n) in roles.takenFromFit.sorted(by: { $0.key < $1.key }) {
                log.info("[prompts] \(label): \(n) validation prompt(s) taken from the end of the fit prompts (too few unused train or extra prompts)")
            }
            manifest.settings["prompt_roles"] = "fit \(roles.fit.count), validation \(roles.validation.count), test \(roles.test.count)"
        }
        for c in spec.checkpoints where spec.paperData == nil || !spec.checkpoints.isEmpty {
            manifest.models[c.name] = try fileHash(c.model)
        }
        try saveManifest()

        for s in Stage.allCases where options.stages.contains(s) {
            guard let impl = StageRegistry.implementations[s] else { continue }
            try impl(self)
        }
        try saveManifest()
    }

    /// Checkpoints this invocation works on.
    public var selectedCheckpoints: [CheckpointSpec] {
        guard let only = options.checkpoint else { return spec.checkpoints }
        return spec.checkpoints.filter { $0.name == only }
    }
}

/// Where each stage's implementation lives; stages register in `StageRegistry.implementations`.
public enum StageRegistry {
    /// The `llm:<checkpoint>` (or `llm-rubric:<checkpoint>`) judge: (pipeline, judge name) → the judge (run in chunks with progress).
    nonisolated(unsafe) public static var llmJudge: ((Pipeline, String) throws -> any Judge)? = { p, name in
        let wording: LLMJudge.Wording = name.hasPrefix("llm-rubric:") ? .rubric : .served
        let ckpt = String(name.dropFirst(wording.prefix.count))
        let path = p.spec.checkpoints.first(where: { $0.name == ckpt })?.model ?? ckpt
        guard FileManager.default.fileExists(atPath: path) else {
            throw StudyError(file: p.studyFile, line: nil, key: "judges.use",
                             message: "judge '\(name)' names no checkpoint of the study and no model file")
        }
        let model = try ChatModel(path: path, systemPrompt: .modelDefault)
        return try LLMJudge(model: model, checkpoint: ckpt, wording: wording)
    }

    public static let implementations: [Stage: @Sendable (Pipeline) throws -> Void] = [
        .record: { try $0.recordStage() },
        .analyze: { try $0.analyzeStage() },
        .select: { try $0.selectStage() },
        .grid: { try $0.gridStage() },
        .generate: { try $0.generateStage() },
        .judge: { try $0.judgeStage() },
        .probe: { try $0.probeStage() },
        .agree: { try $0.agreeStage() },
        .subspace: { try $0.subspaceStage() },
        .costs: { try $0.costsStage() },
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
                                  "shard": options.shard.description, "compress": String(spec.compress)]
                                 .merging(spec.skipTooLong ? ["skip_too_long": "true"] : [:]) { a, _ in a }
                                 .merging(spec.hookPositions.map { ["hook_positions": $0] } ?? [:]) { a, _ in a })
            let name = "record:\(c.name)\(options.shard.isWhole ? "" : "#\(options.shard)")"
            try stage(name, fingerprint: fp, outputs: [out]) {
                if options.mergeShards > 1 && options.shard.isWhole {
                    // The shards were recorded by other processes (Slurm array tasks); join them. An output
                    // that already equals its shards (a resubmitted job) is kept; one that differs is replaced.
                    let inputs = try (0..<options.mergeShards).map {
                        ActivationCacheWriter.finalPath(run: run, checkpoint: c.name, shard: try ShardSpec(index: $0, count: options.mergeShards))
                    }
                    for p in inputs where !FileManager.default.fileExists(atPath: p) {
                        throw ActivationCacheError(.mergeMismatch, path: p, "this shard's recording is not finished; run its record task (--stages record --shard k/\(options.mergeShards)) first")
                    }
                    let r = try ActivationCacheWriter.mergeReporting(inputs, into: out, compression: spec.compress ? H5Compression(shuffle: true, gzipLevel: 4) : .none, force: true)
                    log.info("[record] \(c.name): \(r.skipped ? "the merged file already equals its \(inputs.count) shards; kept" : "merged \(inputs.count) shards")")
                    return [out]
                }
                // Prompt lengths, memory and disk are checked before the weights are loaded.
                let encoder = try ChatEncoder(path: c.model, systemPrompt: systemPrompt, chatFormat: c.chatFormat, thinking: spec.thinking)
                var o = RecordOptions(checkpoint: c.name)
                o.positions = try PositionSpec.parse(spec.positions, file: studyFile)
                o.hooks = spec.hooks
                o.hookPositions = try spec.hookPositions.map { try PositionSpec.parse($0, file: studyFile) }
                o.dtype = ActivationDType(rawValue: spec.dtype) ?? .float32
                o.compress = spec.compress
                o.shard = options.shard
                o.showProgress = options.showProgress
                o.skipTooLong = spec.skipTooLong
                let plan = try Recorder.plan(encoder: encoder, prompts: prompts, run: run, options: o,
                                             skipRemedy: "or set [record] skip_too_long = true in \(studyFile) to record the others",
                                             memoryRemedy: "use a smaller quantization or model")
                noteSkipped(name, plan.skipped.map(\.id))
                let model = try ChatModel(encoder: encoder)
                // The inputs changed (or the file is missing): a stale finished file goes; partial work with
                // the same settings resumes, partial work with other settings is refused by the writer.
                if FileManager.default.fileExists(atPath: out) { try FileManager.default.removeItem(atPath: out) }
                let path = try Recorder.record(model: model, modelSHA256: try fileHash(c.model), plan: plan, run: run, options: o)
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
