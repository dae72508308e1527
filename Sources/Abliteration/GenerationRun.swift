import Foundation
import AblabCore
import ModelRuntime

/// One line of a generations file (JSONL): the answer of one system to one prompt.
public struct GenerationRecord: Codable, Sendable, Equatable {
    public var id: String
    public var label: String
    /// The system name (`SystemName`): the checkpoint, or `<checkpoint>+abl-…`.
    public var system: String
    public var checkpoint: String
    /// The abliteration, or nil for the original model (written as null).
    public var settings: AbliterationSetting?
    /// The user's prompt text.
    public var prompt: String
    /// The answer the judges see: for a thinking model (Qwen3), the text after its think block.
    public var response: String
    /// The think block's text when the model thought first (Qwen3 with `thinking = true`); absent otherwise.
    public var thinking: String?
    /// Number of generated tokens (including a final end-of-turn token).
    public var tokens: Int
    /// "eos" or "length".
    public var finishReason: String
    /// How the weight products were computed when not in f32: "bf16" (`ComputeMode`); absent for f32.
    public var compute: String?

    enum CodingKeys: String, CodingKey {
        case id, label, system, checkpoint, settings, prompt, response, thinking, tokens, compute
        case finishReason = "finish_reason"
    }

    public init(id: String, label: String, system: String, checkpoint: String, settings: AbliterationSetting?,
                prompt: String, response: String, thinking: String? = nil, tokens: Int, finishReason: String,
                compute: String? = nil) {
        self.id = id; self.label = label; self.system = system; self.checkpoint = checkpoint; self.settings = settings
        self.prompt = prompt; self.response = response; self.thinking = thinking; self.tokens = tokens
        self.finishReason = finishReason; self.compute = compute
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(id, forKey: .id); try c.encode(label, forKey: .label); try c.encode(system, forKey: .system)
        try c.encode(checkpoint, forKey: .checkpoint)
        if let settings { try c.encode(settings, forKey: .settings) } else { try c.encodeNil(forKey: .settings) }
        try c.encode(prompt, forKey: .prompt); try c.encode(response, forKey: .response)
        if let thinking { try c.encode(thinking, forKey: .thinking) }
        try c.encode(tokens, forKey: .tokens); try c.encode(finishReason, forKey: .finishReason)
        if let compute { try c.encode(compute, forKey: .compute) }
    }

    /// One JSON line (sorted keys, so files are byte-comparable), with the trailing newline.
    public func jsonLine() throws -> Data {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        var d = try e.encode(self)
        d.append(0x0A)
        return d
    }
}

/// What `GenerationRun.run` did.
public struct GenerationSummary: Sendable, Equatable {
    public var path: String
    /// Prompts already answered in the file (skipped).
    public var skipped: Int
    /// Prompts answered now.
    public var written: Int
    /// Bytes of a torn last line that were discarded.
    public var discardedBytes: Int
}

/// Generates answers of one system for a prompt set into a resumable JSONL file.
public enum GenerationRun {
    static let log = AblabLog.logger("generate")

    /// Checks before the weights are loaded: every prompt's chat-formatted tokens plus
    /// `options.maxNewTokens` fit the model's context (else the error names file, line, id and both
    /// counts), and the model with `options.maxBatch` sequences of the longest prompt fits in memory.
    /// Returns the memory estimate.
    @discardableResult
    public static func preflight(encoder: ChatEncoder, prompts: [Prompt], options: GenerationOptions,
                                 compute: ComputeMode = .f32, lengthRemedy: String = "or lower --max-new-tokens",
                                 memoryRemedy: String = "lower --batch or --max-new-tokens, or use a smaller quantization or model") throws -> MemoryEstimate {
        var longest = 1
        for p in prompts {
            let t = try encoder.encodeChecked(p, newTokens: options.maxNewTokens, remedy: lengthRemedy).get()
            longest = max(longest, t.count)
        }
        var workload = MemoryWorkload.generation(batch: min(options.maxBatch, max(prompts.count, 1)),
                                                 longestPrompt: longest, maxNewTokens: options.maxNewTokens)
        workload.compute = compute
        let need = ModelMemory.estimate(header: encoder.header, workload: workload)
        try ModelMemory.check(need, file: encoder.path, remedy: memoryRemedy)
        return need
    }

    /// `<run>/generations/<sanitised system>.jsonl`.
    public static func path(run: String, system: String) -> String {
        URL(fileURLWithPath: run).appendingPathComponent("generations")
            .appendingPathComponent(SafeFiles.sanitize(system) + ".jsonl").path
    }

    /// Like `run(model:prompts:system:setting:direction:options:out:)`, writing into the run folder's
    /// `generations/<sanitised system>.jsonl`.
    @discardableResult
    public static func run(model: ChatModel, prompts: [Prompt], system: String, setting: AbliterationSetting?,
                           direction: [Float]?, options: GenerationOptions, runDirectory: String,
                           progress: Bool = true) throws -> GenerationSummary {
        try run(model: model, prompts: prompts, system: system, setting: setting, direction: direction,
                options: options, out: path(run: runDirectory, system: system), progress: progress)
    }

    /// Answers every prompt not yet in `out` and appends one line per prompt, in prompt order, each
    /// written and flushed to disk as soon as it and all earlier prompts are done. With `direction`, the
    /// direction is ablated at inference time with `setting.alpha` (1 without a setting); without it the
    /// model is used as loaded (the original, or an exported orthogonalized model named by `setting`).
    /// Rerun after an interruption, it skips ids already present and discards a torn last line; a line of
    /// another system, or a corrupt line before the last, is an error.
    @discardableResult
    public static func run(model: ChatModel, prompts: [Prompt], system: String, setting: AbliterationSetting?,
                           direction: [Float]?, options: GenerationOptions, out: String,
                           progress: Bool = true) throws -> GenerationSummary {
        var hooks = HookSet()
        if let direction {
            let unit = try UnitDirection(direction)
            try unit.check(dModel: model.config.dModel, source: model.path)
            hooks = try Ablation.hooks(direction: direction, alpha: Float(setting?.alpha ?? 1), nLayers: model.config.nLayers,
                                       scheme: setting?.scheme ?? .arditi)
        }
        return try run(model: model, prompts: prompts, system: system, setting: setting, hooks: hooks, options: options,
                       out: out, progress: progress)
    }

    /// Like `run(model:prompts:system:setting:direction:options:out:progress:)` with the abliteration given as
    /// hooks (e.g. `AblationEdit.hooks`: a subspace, per-layer directions or the norm-preserving form).
    @discardableResult
    public static func run(model: ChatModel, prompts: [Prompt], system: String, setting: AbliterationSetting?,
                           hooks: HookSet, options: GenerationOptions, out: String,
                           progress: Bool = true) throws -> GenerationSummary {
        let checkpoint = try setting?.checkpoint ?? SystemName.parse(system).checkpoint
        var seen = Set<String>()
        for p in prompts where !seen.insert(p.id).inserted {
            throw AbliterationError(file: out, key: p.id, "prompt id appears twice in the prompt set")
        }
        // Answers computed in bf16 say so on every line; a file is never continued in the other mode.
        let compute = model.transformer.compute == .f32 ? nil : model.transformer.compute.rawValue
        let (done, discarded) = try readExisting(out, system: system, compute: compute)
        let todo = prompts.filter { !done.contains($0.id) }
        var summary = GenerationSummary(path: out, skipped: prompts.count - todo.count, written: 0, discardedBytes: discarded)
        if discarded > 0 { log.warning("\(out): discarded a torn last line (\(discarded) bytes)") }
        guard !todo.isEmpty else { return summary }

        // A prompt with its new tokens beyond the context is an error before any model work.
        let encoded = try todo.map { try model.encoder.encodeChecked($0, newTokens: options.maxNewTokens, remedy: "or lower the new-token limit").get() }
        let handle = try openForAppend(out)
        defer { try? handle.close() }
        let bar = Progress("generate \(system)", total: todo.count, enabled: progress)
        var pending: [Int: GenerationResult] = [:]
        var nextToWrite = 0
        var writeError: Error?
        var stopped: [String] = []
        let gen = Generator(model: model.transformer)
        _ = try gen.generate(prompts: encoded, options: options, hooks: hooks) { i, r in
            guard writeError == nil else { return }
            pending[i] = r
            while let r = pending.removeValue(forKey: nextToWrite) {
                let p = todo[nextToWrite]
                if let bad = r.nonFinite {
                    // Not written: a partial answer would be judged and averaged as if it were real.
                    let what = "prompt '\(p.id)': \(bad)"
                    log.error("\(system) (\(model.path)): non-finite value for \(what); this prompt is stopped and not written")
                    stopped.append(what)
                    nextToWrite += 1
                    bar.advance()
                    continue
                }
                let (thinking, answer) = model.splitThinking(model.decode(r.tokens))
                let rec = GenerationRecord(id: p.id, label: p.label, system: system, checkpoint: checkpoint, settings: setting,
                                           prompt: p.text, response: answer, thinking: thinking, tokens: r.tokens.count,
                                           finishReason: r.finishReason.rawValue, compute: compute)
                let offset = (try? handle.offset()) ?? 0
                if let failure = appendLine(handle.fileDescriptor, try? rec.jsonLine()) {
                    // Cut a half-written line off so the file holds only complete answers.
                    try? handle.truncate(atOffset: offset)
                    writeError = IOError(path: out, "cannot append an answer (\(failure)): the disk is full, a file-size limit was reached or the folder is read-only; the \(summary.skipped + summary.written) answers before it are kept, free space and run again to continue")
                    return
                }
                nextToWrite += 1
                summary.written += 1
                bar.advance()
            }
        }
        bar.finish()
        if let writeError { throw writeError }
        if !stopped.isEmpty {
            throw NumericalError(file: model.path, checkpoint: checkpoint, system: system, stopped: stopped,
                                 kept: "\(summary.written) other answers were written to \(out)")
        }
        return summary
    }

    /// Writes one line with write(2) and fsync(2); nil on success, else the system's reason.
    static func appendLine(_ fd: Int32, _ line: Data?) -> String? {
        guard let line else { return "the answer could not be encoded" }
        return SafeFiles.appendSynced(fd, line)
    }

    /// Ids of complete lines already in `path` (all must belong to `system`); truncates a torn last line.
    static func readExisting(_ path: String, system: String, compute: String? = nil) throws -> (Set<String>, Int) {
        guard FileManager.default.fileExists(atPath: path) else { return ([], 0) }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw IOError(path: path, "cannot read the existing generations file")
        }
        var ids = Set<String>()
        var goodEnd = 0
        var lineNo = 0
        var start = data.startIndex
        let dec = JSONDecoder()
        while start < data.endIndex {
            lineNo += 1
            let nl = data[start...].firstIndex(of: 0x0A)
            let end = nl ?? data.endIndex
            let line = data[start..<end]
            let isLast = nl == nil || nl! + 1 == data.endIndex
            let rec: GenerationRecord?
            if nl == nil { rec = nil } else if line.allSatisfy({ $0 == 0x20 || $0 == 0x0D }) {
                start = end + 1; goodEnd = start - data.startIndex; continue
            } else { rec = try? dec.decode(GenerationRecord.self, from: line) }
            guard let rec else {
                if isLast { break }
                throw InputError(file: path, line: lineNo, "not a generation record; fix or delete the file and rerun")
            }
            guard rec.system == system else {
                throw InputError(file: path, line: lineNo, key: "system",
                                 "holds answers of \"\(rec.system)\", not \"\(system)\"; use another output file")
            }
            guard rec.compute == compute else {
                throw InputError(file: path, line: lineNo, key: "compute",
                                 "holds answers computed in \(rec.compute ?? "f32"), not \(compute ?? "f32"); use another output file or the same --compute")
            }
            ids.insert(rec.id)
            start = end + 1
            goodEnd = start - data.startIndex
        }
        let discarded = data.count - goodEnd
        if discarded > 0 {
            guard truncate(path, off_t(goodEnd)) == 0 else {
                throw IOError(path: path, "cannot discard the torn last line: \(String(cString: strerror(errno)))")
            }
        }
        return (ids, discarded)
    }

    static func openForAppend(_ path: String) throws -> FileHandle {
        let dir = URL(fileURLWithPath: path).deletingLastPathComponent().path
        try SafeFiles.createDirectory(dir)
        if !FileManager.default.fileExists(atPath: path) {
            guard FileManager.default.createFile(atPath: path, contents: nil) else {
                throw IOError(path: path, "cannot create the generations file (read-only folder?)")
            }
        }
        guard let h = FileHandle(forWritingAtPath: path) else { throw IOError(path: path, "cannot open for appending") }
        do { try h.seekToEnd() } catch { throw IOError(path: path, "cannot seek to the end: \(error.localizedDescription)") }
        return h
    }
}
