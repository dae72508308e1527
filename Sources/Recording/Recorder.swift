import Foundation
import Logging
import AblabCore
import ModelRuntime
import ActivationCache
import HDF5

/// What `ablab record` does for one checkpoint.
public struct RecordOptions: Sendable {
    public var checkpoint: String
    public var positions: PositionSpec = .auto
    /// Extra hooks, e.g. "blocks.3.hook_attn_out"; "blocks.*.hook_attn_out" stands for every block's.
    public var hooks: [String] = []
    /// Where the hooks are stored: a subset of `positions` (nil: every recorded position).
    public var hookPositions: PositionSpec? = nil
    public var dtype: ActivationDType = .float32
    public var compress: Bool = false
    public var shard: ShardSpec = .whole
    /// Tokens per packed prefill batch (prompts are packed without padding up to this many tokens).
    public var batchTokens: Int = 1024
    /// Prompts per crash-safe shard file (at most this much work is lost to a crash).
    public var promptsPerShard: Int = 64
    public var force: Bool = false
    public var showProgress: Bool = true
    /// Leave out prompts too long for the model's context (listed in `RecordPlan.skipped`) instead of
    /// refusing the recording.
    public var skipTooLong: Bool = false
    /// Check the free disk space and the file-size limit against the cache's estimated size first.
    public var checkDisk: Bool = true
    /// How the model's weight products are computed (`record` sets it on the model; stored as the cache's
    /// `compute` attribute; a partial recording made in another mode is not resumed).
    public var compute: ComputeMode = .f32

    public init(checkpoint: String) { self.checkpoint = checkpoint }
}

/// Errors of the recording stage.
public struct RecordError: AblabError {
    public var file: String
    public var message: String
    public var description: String { "\(file): \(message)" }
    public var exitCode: Int32 { ExitCode.failure }
}

/// What a recording will do, worked out before the weights are loaded: the prompts' tokens (each checked
/// against the model's context), the prompts left out as too long, and the memory and disk estimates
/// (both checked).
public struct RecordPlan {
    /// The prompts to record (without the skipped ones), in order.
    public let prompts: [Prompt]
    /// Chat-formatted tokens of `prompts[i]`.
    public let tokens: [[Int]]
    /// Prompts left out because they do not fit the context (`RecordOptions.skipTooLong`).
    public let skipped: [PromptTooLongError]
    public let positions: [Int]
    public let memory: MemoryEstimate
    public let disk: CacheSizeEstimate
    /// The extra hooks, `blocks.*` expanded.
    public let hooks: [String]
    /// Where the hooks are stored (a subset of `positions`).
    public let hookPositions: [Int]
    /// The template's post-instruction tokens (what the positions' roles are worked out from).
    public let templateTokens: Int
}

/// Runs a chat model over prompts and stores the residual stream of every layer at the chosen
/// positions, streaming batch by batch into the crash-safe, resumable activation cache.
public enum Recorder {
    static let log = AblabLog.logger("record")

    /// Tokenizes every prompt and checks it against the context (too long: an error naming file, line,
    /// id and both counts, or left out with `skipTooLong`) and against the positions; estimates memory
    /// (checked when `checkMemory`, i.e. before the weights are loaded) and disk (checked unless
    /// `options.checkDisk` is off). `skipRemedy` ends the too-long message (the CLI flag or study key),
    /// `memoryRemedy` the memory refusal.
    public static func plan(encoder: ChatEncoder, prompts all: [Prompt], run: String, options: RecordOptions,
                            checkMemory: Bool = true, skipRemedy: String = "or pass --skip-too-long to record the others",
                            memoryRemedy: String? = nil) throws -> RecordPlan {
        let cfg = encoder.config
        try options.compute.check()
        let positions = options.positions.resolve(templateTokens: encoder.postInstructionTokens)
        let span = -(positions.min() ?? -1)           // how many trailing tokens are needed
        let hooks = try expandHooks(options.hooks, nLayers: cfg.nLayers)
        _ = try hookPoints(hooks, nLayers: cfg.nLayers)
        let hookPositions = try resolveHookPositions(options, positions: positions, templateTokens: encoder.postInstructionTokens)

        // Tokenize everything first: a prompt too long for the context or too short for the positions is
        // an error before model work.
        var prompts: [Prompt] = []
        var tokens: [[Int]] = []
        var skipped: [PromptTooLongError] = []
        for p in all {
            switch encoder.encodeChecked(p, remedy: options.skipTooLong ? "" : skipRemedy) {
            case .failure(let e):
                if !options.skipTooLong { throw e }
                skipped.append(e)
            case .success(let t):
                guard t.count >= span else {
                    throw InputError(file: p.location.file, line: p.location.line, key: p.id, "the chat-formatted prompt has \(t.count) tokens, fewer than the \(span) positions asked for")
                }
                prompts.append(p); tokens.append(t)
            }
        }
        for e in skipped {
            log.warning("\(options.checkpoint): skipped (too long for the context): \(e.description)")
        }
        guard !prompts.isEmpty else {
            throw InputError(file: all.first?.location.file ?? "prompt list", "every prompt is too long for the \(cfg.contextLength ?? 0)-token context of \(encoder.path); nothing to record")
        }

        // Memory: the weights, the KV caches and buffers of one packed batch, and the recorded rows.
        let longest = tokens.reduce(0) { max($0, $1.count) }
        let allTokens = tokens.reduce(0) { $0 + $1.count }
        let batchPrompts = min(options.promptsPerShard, prompts.count)
        let recorded = ((cfg.nLayers + 1) * positions.count + hooks.count * hookPositions.count) * batchPrompts * cfg.dModel * MemoryLayout<Float>.size
        var workload = MemoryWorkload.recording(batchTokens: min(options.batchTokens, allTokens), longestPrompt: longest,
                                                extraBytes: 2 * recorded)
        workload.compute = options.compute
        let memory = ModelMemory.estimate(header: encoder.header, workload: workload)
        if checkMemory {
            try ModelMemory.check(memory, file: encoder.path,
                                  remedy: memoryRemedy ?? "lower --batch-tokens (now \(options.batchTokens)) or --prompts-per-shard (now \(options.promptsPerShard)), or use a smaller quantization or model")
        }

        // Disk: the shards still to write and the final file.
        let finalPath = ActivationCacheWriter.finalPath(run: run, checkpoint: options.checkpoint, shard: options.shard)
        let assigned = prompts.indices.filter { options.shard.contains($0) }
        let mine = assigned.map { prompts[$0] }
        let sealed = options.force ? 0 : ActivationCacheWriter.sealedShardBytes(run: run, checkpoint: options.checkpoint, shard: options.shard)
        let disk = CacheSizeEstimate.recording(prompts: mine, sealedBytes: sealed, nLayers: cfg.nLayers,
                                               dModel: cfg.dModel, positions: positions.count, hooks: hooks.count,
                                               hookPositions: hookPositions.count, dtype: options.dtype, promptsPerShard: options.promptsPerShard)
        let free = DiskSpace.free(at: finalPath).map { ", \(InputLimits.formatBytes($0.bytes)) free in \($0.folder)" } ?? ""
        log.info("\(options.checkpoint): \(mine.count) prompts → \(finalPath), about \(InputLimits.formatBytes(disk.finalFile)) (\(disk.formula))\(free); memory about \(memory.summary)")
        if options.checkDisk {
            try DiskSpace.check(path: finalPath, largestFile: disk.finalFile, total: disk.total, what: disk.formula)
        }
        return RecordPlan(prompts: prompts, tokens: tokens, skipped: skipped, positions: positions, memory: memory, disk: disk,
                          hooks: hooks, hookPositions: hookPositions, templateTokens: encoder.postInstructionTokens)
    }

    /// `hooks` with "blocks.*.<point>" replaced by that point of every block 0…nLayers−1, in order.
    public static func expandHooks(_ hooks: [String], nLayers: Int) throws -> [String] {
        var out: [String] = []
        for h in hooks {
            if h.hasPrefix("blocks.*.") {
                let point = String(h.dropFirst("blocks.*.".count))
                guard HookPoint.parse("blocks.0." + point) != nil else {
                    throw InputError(file: "--hooks", key: h, "unknown hook point '\(point)'; use hook_resid_pre, hook_resid_mid, hook_resid_post, hook_attn_out or hook_mlp_out")
                }
                out += (0..<nLayers).map { "blocks.\($0).\(point)" }
            } else {
                out.append(h)
            }
        }
        guard Set(out).count == out.count else { throw InputError(file: "--hooks", key: "hooks", "a hook is named twice (after expanding blocks.*)") }
        return out
    }

    /// The positions the hooks are stored at: `options.hookPositions` resolved, which must be recorded positions.
    static func resolveHookPositions(_ options: RecordOptions, positions: [Int], templateTokens: Int) throws -> [Int] {
        guard let spec = options.hookPositions else { return positions }
        let hp = spec.resolve(templateTokens: templateTokens)
        guard hp.allSatisfy(positions.contains) else {
            throw InputError(file: "--hook-positions", key: "hook_positions", "hook positions \(hp) must be among the recorded positions \(positions)")
        }
        return positions.filter(hp.contains)
    }

    /// The extra hook points named in `hooks`, checked against the layer count.
    static func hookPoints(_ hooks: [String], nLayers nL: Int) throws -> [(name: String, layer: Int, point: HookPoint)] {
        var extraHooks: [(name: String, layer: Int, point: HookPoint)] = []
        for h in hooks {
            guard let (l, p) = HookPoint.parse(h), l < nL else {
                throw InputError(file: "--hooks", key: h, "unknown hook point; use e.g. blocks.3.hook_attn_out (layers 0…\(nL - 1); points hook_resid_pre, hook_resid_mid, hook_resid_post, hook_attn_out, hook_mlp_out)")
            }
            extraHooks.append((h, l, p))
        }
        return extraHooks
    }

    /// Records `prompts` with `model` into `<run>/activations/<checkpoint>.h5` (or its shard) and returns the
    /// final file's path. Rerunning after a crash continues where it stopped. The model is already loaded,
    /// so memory is not checked; the CLI and `ablab run` call `plan` before loading instead.
    @discardableResult
    public static func record(model: ChatModel, modelSHA256: String, prompts: [Prompt], run: String,
                              options: RecordOptions) throws -> String {
        let plan = try plan(encoder: model.encoder, prompts: prompts, run: run, options: options, checkMemory: false)
        return try record(model: model, modelSHA256: modelSHA256, plan: plan, run: run, options: options)
    }

    /// Records a plan made by `plan` (with the same options).
    @discardableResult
    public static func record(model: ChatModel, modelSHA256: String, plan: RecordPlan, run: String,
                              options: RecordOptions) throws -> String {
        let cfg = model.config
        let positions = plan.positions
        let prompts = plan.prompts
        let pCount = positions.count
        let span = -(positions.min() ?? -1)           // how many trailing tokens are needed
        let d = cfg.dModel, nL = cfg.nLayers
        let extraHooks = try hookPoints(plan.hooks, nLayers: nL)
        try model.transformer.setCompute(options.compute)

        let header = ActivationHeader(
            checkpoint: options.checkpoint, modelPath: model.path, modelSHA256: modelSHA256,
            architecture: cfg.arch.rawValue, nLayers: nL, dModel: d, systemPrompt: model.systemPromptText,
            positions: positions.map(Int32.init), ablabVersion: AblabVersion.string,
            created: ISO8601DateFormatter().string(from: Date()),
            positionRoles: positions.map { PositionRole.of($0, templateTokens: plan.templateTokens) },
            hookPositions: plan.hookPositions.map(Int32.init), compute: options.compute.rawValue)
        let writer = try ActivationCacheWriter(
            run: run, header: header, prompts: prompts,
            options: ActivationCacheOptions(dtype: options.dtype, hooks: plan.hooks,
                                             compression: options.compress ? H5Compression(shuffle: true, gzipLevel: 4) : .none,
                                             promptsPerShard: options.promptsPerShard),
            shard: options.shard, force: options.force)
        let pending = writer.pending
        if writer.resumedCount > 0 {
            log.info("\(options.checkpoint): resuming, \(writer.resumedCount) prompts already recorded, \(pending.count) to go")
        }

        var tokens: [Int: [Int]] = [:]
        for i in pending { tokens[i] = plan.tokens[i] }

        let progress = Progress("record \(options.checkpoint)", total: pending.count, enabled: options.showProgress)
        var start = 0
        var stopped: [String] = []
        // Buffers reused across batches.
        var residual: [Float] = []
        var hookValues: [String: [Float]] = [:]
        while start < pending.count {
            // Pack prompts up to batchTokens (at least one).
            var batch: [Int] = []
            var total = 0
            var k = start
            while k < pending.count {
                let n = tokens[pending[k]]!.count
                if !batch.isEmpty && total + n > options.batchTokens { break }
                batch.append(pending[k]); total += n; k += 1
                // Keep batches within one shard so a crash loses at most one shard of work.
                if batch.count >= options.promptsPerShard { break }
            }
            start = k
            let bad = try autoreleasepool {
                try recordBatch(model: model, batch: batch, tokens: tokens, positions: positions, hookPositions: plan.hookPositions, span: span,
                                extraHooks: extraHooks, residual: &residual, hookValues: &hookValues, writer: writer,
                                prompts: prompts)
            }
            for what in bad {
                log.error("\(options.checkpoint) (\(model.path)): non-finite activation for \(what); this prompt is stopped and not stored")
            }
            stopped += bad
            progress.advance(by: batch.count)
        }
        progress.finish()
        if !stopped.isEmpty {
            // The cache cannot be finished without these prompts; what was recorded stays in the partial folder.
            try writer.seal()
            throw NumericalError(file: model.path, checkpoint: options.checkpoint, system: options.checkpoint, stopped: stopped,
                                 kept: "the other \(pending.count - stopped.count) prompts were stored in \(writer.partialDirectory) but the cache is not finished")
        }
        let path = try writer.finalize()
        log.info("\(options.checkpoint): wrote \(path)")
        _ = pCount
        return path
    }

    static func recordBatch(model: ChatModel, batch: [Int], tokens: [Int: [Int]], positions: [Int], hookPositions: [Int], span: Int,
                            extraHooks: [(name: String, layer: Int, point: HookPoint)],
                            residual: inout [Float], hookValues: inout [String: [Float]],
                            writer: ActivationCacheWriter, prompts: [Prompt]) throws -> [String] {
        let cfg = model.config
        let d = cfg.dModel, nL = cfg.nLayers, b = batch.count, pCount = positions.count, hCount = hookPositions.count
        // residual: [L+1, B, P, d]; hooks: [B, Ph, d]
        residual = [Float](repeating: .nan, count: (nL + 1) * b * pCount * d)
        for h in extraHooks { hookValues[h.name] = [Float](repeating: .nan, count: b * hCount * d) }
        var slot: [Int: Int] = [:]             // sequenceID (prompt index) -> batch slot
        var length: [Int: Int] = [:]
        for (s, i) in batch.enumerated() { slot[i] = s; length[i] = tokens[i]!.count }

        var hooks = HookSet()
        var bad = [String?](repeating: nil, count: b)
        try residual.withUnsafeMutableBufferPointer { resBuf in
            let res = resBuf.baseAddress!
            // Copies the wanted rows of hook activations into dst laid out as [.., B, P, d] at layer offset.
            func capture(into dst: UnsafeMutablePointer<Float>, at positions: [Int] = positions) -> Hook {
                let pCount = positions.count
                return { a in
                    for seg in a.segments {
                        guard let s = slot[seg.sequenceID], let n = length[seg.sequenceID] else { continue }
                        for (pi, rel) in positions.enumerated() {
                            if let row = a.row(segment: seg, position: n + rel) {
                                (dst + (s * pCount + pi) * d).update(from: row, count: d)
                            }
                        }
                    }
                }
            }
            hooks.add(layer: 0, point: .residPre, capture(into: res))
            for l in 0..<nL {
                hooks.add(layer: l, point: .residPost, capture(into: res + (l + 1) * b * pCount * d))
            }
            var hookBuffers: [String: UnsafeMutablePointer<Float>] = [:]
            for h in extraHooks {
                let p = UnsafeMutablePointer<Float>.allocate(capacity: b * hCount * d)
                p.initialize(repeating: .nan, count: b * hCount * d)
                hookBuffers[h.name] = p
                hooks.add(layer: h.layer, point: h.point, capture(into: p, at: hookPositions))
            }
            defer { for p in hookBuffers.values { p.deallocate() } }

            let items = batch.map { i in
                ForwardItem(cache: model.transformer.makeCache(capacity: tokens[i]!.count), tokens: tokens[i]!, sequenceID: i)
            }
            // Every recorded position (hook positions among them) is one of the last `span` of its prompt, so the
            // final block needs only those rows (`lastRows`: the same bits for them, about one block's work less).
            _ = try model.transformer.forward(items, hooks: hooks, logits: .none, lastRows: span)

            // Numerical guard: a prompt with NaN/Inf in any recorded layer or hook is stopped (not stored);
            // the first offending hook and position are reported.
            for s in 0..<b {
                let n = length[batch[s]]!
                // Recorded sites of slot s in order: the residual stream layer by layer, then the extra hooks,
                // each as [P, d] values.
                let sites = (0...nL).map { l in
                    (l == 0 ? "blocks.0.hook_resid_pre" : "blocks.\(l - 1).hook_resid_post", res + (l * b + s) * pCount * d, positions)
                } + extraHooks.map { ($0.name, hookBuffers[$0.name]! + s * hCount * d, hookPositions) }
                for (hook, values, at) in sites {
                    guard let j = (0..<(at.count * d)).first(where: { !values[$0].isFinite }) else { continue }
                    let rel = at[j / d]
                    bad[s] = "prompt '\(prompts[batch[s]].id)': \(values[j]) at \(hook), position \(rel) (token \(n + rel) of \(n))"
                    break
                }
            }
            for h in extraHooks {
                hookValues[h.name] = Array(UnsafeBufferPointer(start: hookBuffers[h.name]!, count: b * hCount * d))
            }
        }
        let good = (0..<b).filter { bad[$0] == nil }
        if good.count == b {
            try writer.append(indices: batch, nTokens: batch.map { Int32(tokens[$0]!.count) }, residual: residual, hooks: hookValues)
        } else if !good.isEmpty {
            // Keep the finite prompts of this batch: [L+1, B, P, d] → [L+1, good, P, d].
            let row = pCount * d
            var r: [Float] = []
            r.reserveCapacity((nL + 1) * good.count * row)
            for l in 0...nL { for s in good { r.append(contentsOf: residual[((l * b + s) * row)..<((l * b + s + 1) * row)]) } }
            var hv: [String: [Float]] = [:]
            let hRow = hCount * d
            for (name, v) in hookValues { hv[name] = good.flatMap { v[($0 * hRow)..<(($0 + 1) * hRow)] } }
            try writer.append(indices: good.map { batch[$0] }, nTokens: good.map { Int32(tokens[batch[$0]]!.count) }, residual: r, hooks: hv)
        }
        return (0..<b).compactMap { bad[$0] }
    }
}

#if !canImport(ObjectiveC)
@inline(__always) func autoreleasepool<T>(_ body: () throws -> T) rethrows -> T { try body() }
#endif
