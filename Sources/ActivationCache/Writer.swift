import AblabCore
import Foundation
import HDF5
import Logging

/// How a recording is stored.
public struct ActivationCacheOptions: Sendable, Equatable {
    public var dtype: ActivationDType
    /// Extra hooks stored under /hooks, e.g. "blocks.3.hook_attn_out".
    public var hooks: [String]
    /// Filters of the final file (shards are never compressed).
    public var compression: H5Compression
    /// Prompts per shard: a crash loses at most this many prompts of work.
    public var promptsPerShard: Int
    public init(dtype: ActivationDType = .float32, hooks: [String] = [], compression: H5Compression = .none, promptsPerShard: Int = 64) {
        self.dtype = dtype; self.hooks = hooks; self.compression = compression; self.promptsPerShard = promptsPerShard
    }
}

/// Writes one checkpoint's activation cache, batch by batch, surviving SIGKILL.
///
/// Layout while recording: `<run>/activations/.<name>.partial/` holds `fingerprint.json`, a `lock` file and
/// sealed shards `shard-NNNNNN.h5`. A shard is written as `.shard-NNNNNN.h5.tmp`, closed, synced and only
/// then renamed, so a sealed shard is always complete; the set of sealed shards is the progress record.
/// A rerun with the same fingerprint resumes (`pending` lists what is left); a different fingerprint is
/// refused. `finalize()` copies the shards into `<run>/activations/<name>.h5` (temporary name + rename)
/// and removes the partial folder. `<name>` is the sanitized checkpoint, plus `.shard-k-of-n` for a subset.
public final class ActivationCacheWriter {
    public let run: String
    public let header: ActivationHeader
    public let prompts: [Prompt]
    public let options: ActivationCacheOptions
    public let shard: ShardSpec
    public let finalPath: String
    public let partialDirectory: String
    /// Indices (into `prompts`) this writer records: those in `shard`, ascending.
    public let assigned: [Int]
    /// Assigned prompts not yet appended, ascending.
    public var pending: [Int] { assigned.filter { !done[$0] } }
    public var isComplete: Bool { assigned.allSatisfy { done[$0] } }
    /// Prompts found in sealed shards when this writer was opened (resumed work).
    public private(set) var resumedCount = 0

    private let fingerprint: RecordingFingerprint
    private let promptHash: String
    private var done: [Bool]
    private var sealed: [String] = []     // sealed shard paths, in order
    private var nextShard = 0
    private var lockFD: Int32 = -1
    private var current: OpenShard?
    private var finished = false
    private let log = AblabLog.logger("activations")

    private final class OpenShard {
        let file: H5File
        let tmpPath: String
        let finalPath: String
        let residual: H5Dataset
        let hooks: [H5Dataset]
        let index: H5Dataset
        let nTokens: H5Dataset
        var rows = 0
        var indices: [Int] = []
        init(file: H5File, tmpPath: String, finalPath: String, residual: H5Dataset, hooks: [H5Dataset], index: H5Dataset, nTokens: H5Dataset) {
            self.file = file; self.tmpPath = tmpPath; self.finalPath = finalPath; self.residual = residual
            self.hooks = hooks; self.index = index; self.nTokens = nTokens
        }
    }

    /// Final file of a checkpoint (and shard) inside a run folder.
    public static func finalPath(run: String, checkpoint: String, shard: ShardSpec = .whole) -> String {
        run + "/activations/" + fileStem(checkpoint: checkpoint, shard: shard) + ".h5"
    }

    /// Bytes of the sealed shards an interrupted recording left (0 when there is none).
    public static func sealedShardBytes(run: String, checkpoint: String, shard: ShardSpec = .whole) -> Int {
        let dir = run + "/activations/." + fileStem(checkpoint: checkpoint, shard: shard) + ".partial"
        let names = (try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []
        return names.filter { $0.hasPrefix("shard-") && $0.hasSuffix(".h5") }.reduce(0) { acc, n in
            acc + (((try? FileManager.default.attributesOfItem(atPath: dir + "/" + n))?[.size] as? NSNumber)?.intValue ?? 0)
        }
    }

    public static func isFinished(run: String, checkpoint: String, shard: ShardSpec = .whole) -> Bool {
        FileManager.default.fileExists(atPath: finalPath(run: run, checkpoint: checkpoint, shard: shard))
    }

    static func fileStem(checkpoint: String, shard: ShardSpec) -> String {
        SafeFiles.sanitize(checkpoint) + (shard.isWhole ? "" : ".shard-\(shard.index)-of-\(shard.count)")
    }

    /// Starts or resumes a recording. Throws `.alreadyFinished` when the final file exists (unless `force`),
    /// `.fingerprintMismatch` when a partial recording with other settings exists (unless `force`, which
    /// discards it), `.locked` when another process is recording it.
    public init(run: String, header: ActivationHeader, prompts: [Prompt], options: ActivationCacheOptions = .init(),
                shard: ShardSpec = .whole, force: Bool = false) throws {
        self.run = run
        var h = header
        h.created = ""
        self.header = h
        self.prompts = prompts
        self.options = options
        self.shard = shard
        let dir = run + "/activations"
        let stem = Self.fileStem(checkpoint: header.checkpoint, shard: shard)
        finalPath = dir + "/" + stem + ".h5"
        partialDirectory = dir + "/." + stem + ".partial"
        assigned = prompts.indices.filter { shard.contains($0) }
        done = [Bool](repeating: false, count: prompts.count)
        promptHash = promptSetSHA256(prompts)

        try header.validate(path: finalPath)
        guard options.promptsPerShard >= 1 else { throw ActivationCacheError(.badInput, path: finalPath, "promptsPerShard must be at least 1") }
        if let bad = options.hooks.first(where: { $0.isEmpty || $0.contains("/") }) {
            throw ActivationCacheError(.badInput, path: finalPath, "hook name '\(bad)' must be non-empty and contain no '/'")
        }
        guard Set(options.hooks).count == options.hooks.count else { throw ActivationCacheError(.badInput, path: finalPath, "hook names repeat: \(options.hooks)") }
        fingerprint = RecordingFingerprint(
            checkpoint: header.checkpoint, modelSHA256: header.modelSHA256, promptSetSHA256: promptHash,
            nPrompts: prompts.count, positions: header.positions,
            hookPositions: header.hookPositions == header.positions ? nil : header.hookPositions, hooks: options.hooks.sorted(), dtype: options.dtype,
            nLayers: header.nLayers, dModel: header.dModel, systemPromptSHA256: SHA256.hex(Data(header.systemPrompt.utf8)),
            shard: shard.description, formatVersion: ActivationSchema.formatVersion,
            compute: header.compute == "f32" ? nil : header.compute)

        if FileManager.default.fileExists(atPath: finalPath) && !force {
            throw ActivationCacheError(.alreadyFinished, path: finalPath, "this checkpoint's activations are already recorded; delete the file or force re-recording")
        }
        if force { try? FileManager.default.removeItem(atPath: partialDirectory) }
        try SafeFiles.createDirectory(partialDirectory)
        try lock()
        do { try resume() } catch { unlock(); throw error }
    }

    deinit {
        // An abandoned writer (error, interrupt) leaves its sealed shards for the next run; the open shard's
        // temporary file is discarded by that run.
        current = nil
        unlock()
    }

    private func lock() throws {
        let path = partialDirectory + "/lock"
        let fd = open(path, O_CREAT | O_RDWR, 0o644)
        guard fd >= 0 else { throw IOError(path: path, "cannot create the lock file: \(String(cString: strerror(errno)))") }
        if flock(fd, LOCK_EX | LOCK_NB) != 0 {
            close(fd)
            throw ActivationCacheError(.locked, path: partialDirectory, "another ablab process is recording this checkpoint; wait for it or stop it")
        }
        lockFD = fd
    }

    private func unlock() {
        if lockFD >= 0 { flock(lockFD, LOCK_UN); close(lockFD); lockFD = -1 }
    }

    private func resume() throws {
        let fm = FileManager.default
        let fpPath = partialDirectory + "/fingerprint.json"
        let names = (try? fm.contentsOfDirectory(atPath: partialDirectory)) ?? []
        let shardNames = names.filter { $0.hasPrefix("shard-") && $0.hasSuffix(".h5") }.sorted()
        if let data = fm.contents(atPath: fpPath) {
            guard let old = try? JSONDecoder().decode(RecordingFingerprint.self, from: data) else {
                throw ActivationCacheError(.fingerprintMismatch, path: fpPath, "unreadable fingerprint of a partial recording; delete \(partialDirectory) or force re-recording")
            }
            let diff = fingerprint.differences(from: old)
            if !diff.isEmpty {
                throw ActivationCacheError(.fingerprintMismatch, path: partialDirectory,
                                           "a partial recording with different settings exists (\(diff.joined(separator: "; "))); delete the folder or force re-recording")
            }
        } else if !shardNames.isEmpty {
            throw ActivationCacheError(.fingerprintMismatch, path: partialDirectory, "shards without fingerprint.json; delete the folder or force re-recording")
        } else {
            try SafeFiles.atomicWrite(Data(fingerprint.json.utf8), to: fpPath)
        }
        // Leftovers of a killed process: unsealed shards.
        for n in names where n.hasPrefix(".") && n.contains(".tmp") {
            try? fm.removeItem(atPath: partialDirectory + "/" + n)
            log.info("discarded an unfinished shard from an interrupted run: \(n)")
        }
        for n in shardNames {
            let path = partialDirectory + "/" + n
            if let num = Int(n.dropFirst(6).dropLast(3)) { nextShard = max(nextShard, num + 1) }
            let indices: [Int32]
            do {
                let f = try H5File.open(path, requireChecksums: true)
                let fp = try f.stringAttribute("fingerprint")
                guard fp == fingerprint.json else {
                    throw ActivationCacheError(.fingerprintMismatch, path: path, "this shard was recorded with other settings; delete \(partialDirectory) or force re-recording")
                }
                indices = try f.openDataset("prompts/index").readInt32()
                let rows = indices.count
                guard try f.openDataset("residual").shape() == [header.nLayers + 1, rows, header.positions.count, header.dModel] else {
                    throw ActivationCacheError(.badFile, path: path, "the shard's /residual shape does not match its prompts")
                }
            } catch let e as ActivationCacheError {
                throw e
            } catch {
                log.warning("discarding an unreadable shard (its prompts will be recorded again): \(error)")
                try? fm.removeItem(atPath: path)
                continue
            }
            for i in indices {
                let i = Int(i)
                guard done.indices.contains(i), shard.contains(i), !done[i] else {
                    throw ActivationCacheError(.badFile, path: path, "shard holds prompt \(i), which is out of range or recorded twice; delete \(partialDirectory)")
                }
                done[i] = true
            }
            resumedCount += indices.count
            sealed.append(path)
        }
    }

    /// Appends a batch: `indices` are positions in `prompts` (pending ones), `nTokens` their chat-formatted
    /// lengths, `residual` is [L+1, B, P, d] row-major and `hooks[name]` is [B, Ph, d] (Ph = the header's
    /// hook positions).
    public func append(indices: [Int], nTokens: [Int32], residual: UnsafeBufferPointer<Float>,
                       hooks: [String: UnsafeBufferPointer<Float>] = [:]) throws {
        guard !finished else { throw ActivationCacheError(.badInput, path: finalPath, "append after finalize()") }
        let b = indices.count
        let pCount = header.positions.count, d = header.dModel, layers = header.nLayers + 1
        guard b >= 1, nTokens.count == b else {
            throw ActivationCacheError(.badInput, path: finalPath, "a batch needs at least one prompt and one n_tokens per prompt (\(b) prompts, \(nTokens.count) n_tokens)")
        }
        var seen = Set<Int>()
        for i in indices {
            guard done.indices.contains(i), shard.contains(i), !done[i], seen.insert(i).inserted else {
                throw ActivationCacheError(.badInput, path: finalPath, "prompt \(i) is not pending in this recording (out of range, in another shard, or already recorded)")
            }
        }
        guard residual.count == layers * b * pCount * d else {
            throw ActivationCacheError(.badInput, path: finalPath, "residual has \(residual.count) values; expected [\(layers), \(b), \(pCount), \(d)]")
        }
        guard Set(hooks.keys) == Set(options.hooks) else {
            throw ActivationCacheError(.badInput, path: finalPath, "hooks given \(hooks.keys.sorted()) differ from the recording's hooks \(options.hooks.sorted())")
        }
        let hCount = header.hookPositions.count
        for (name, v) in hooks where v.count != b * hCount * d {
            throw ActivationCacheError(.badInput, path: finalPath, "hook \(name) has \(v.count) values; expected [\(b), \(hCount), \(d)]")
        }
        let s = try openShard()
        let r0 = s.rows
        do {
            try s.residual.extend(to: [layers, r0 + b, pCount, d])
            try s.residual.write(residual, offset: [0, r0, 0, 0], count: [layers, b, pCount, d])
            for (k, name) in options.hooks.enumerated() {
                try s.hooks[k].extend(to: [r0 + b, hCount, d])
                try s.hooks[k].write(hooks[name]!, offset: [r0, 0, 0], count: [b, hCount, d])
            }
            try s.nTokens.extend(to: [r0 + b])
            try s.nTokens.write(nTokens, offset: [r0], count: [b])
            try s.index.extend(to: [r0 + b])
            try s.index.write(indices.map { Int32($0) }, offset: [r0], count: [b])
        } catch {
            discardCurrentShard() // a half-written batch must not end up in a sealed shard
            throw error
        }
        s.rows += b
        s.indices += indices
        for i in indices { done[i] = true }
        if s.rows >= options.promptsPerShard { try seal() }
    }

    /// Drops the open shard (after a failed write): its prompts become pending again.
    private func discardCurrentShard() {
        guard let s = current else { return }
        current = nil
        for i in s.indices { done[i] = false }
        s.residual.close(); s.index.close(); s.nTokens.close(); s.hooks.forEach { $0.close() }
        s.file.close()
        try? FileManager.default.removeItem(atPath: s.tmpPath)
    }

    /// Array convenience for `append`.
    public func append(indices: [Int], nTokens: [Int32], residual: [Float], hooks: [String: [Float]] = [:]) throws {
        var acc: [String: UnsafeBufferPointer<Float>] = [:]
        try residual.withUnsafeBufferPointer { r in
            try withPointers(Array(hooks), 0, &acc) { try append(indices: indices, nTokens: nTokens, residual: r, hooks: $0) }
        }
    }

    private func withPointers(_ items: [(String, [Float])], _ i: Int, _ acc: inout [String: UnsafeBufferPointer<Float>],
                              _ body: ([String: UnsafeBufferPointer<Float>]) throws -> Void) throws {
        if i == items.count { try body(acc); return }
        try items[i].1.withUnsafeBufferPointer { p in
            acc[items[i].0] = p
            try withPointers(items, i + 1, &acc, body)
        }
    }

    private func openShard() throws -> OpenShard {
        if let current { return current }
        let name = String(format: "shard-%06d.h5", nextShard)
        nextShard += 1
        let tmp = partialDirectory + "/." + name + ".tmp"
        let f = try H5File.create(tmp, overwrite: true)
        try f.setAttribute("fingerprint", fingerprint.json)
        let pCount = header.positions.count, d = header.dModel, hCount = header.hookPositions.count
        let t = options.dtype.h5
        // One chunk per prompt and layer: appends write whole chunks, never read-modify-write.
        let residual = try f.createDataset("residual", type: t, shape: [header.nLayers + 1, 0, pCount, d],
                                           maxShape: [header.nLayers + 1, nil, pCount, d], chunk: [1, 1, pCount, d])
        let hooks = try options.hooks.map {
            try f.createDataset("hooks/" + $0, type: t, shape: [0, hCount, d], maxShape: [nil, hCount, d], chunk: [1, hCount, d])
        }
        let index = try f.createDataset("prompts/index", type: .int32, shape: [0], maxShape: [nil], chunk: [256])
        let nTok = try f.createDataset("prompts/n_tokens", type: .int32, shape: [0], maxShape: [nil], chunk: [256])
        let s = OpenShard(file: f, tmpPath: tmp, finalPath: partialDirectory + "/" + name, residual: residual, hooks: hooks, index: index, nTokens: nTok)
        current = s
        return s
    }

    /// Closes the open shard and makes it durable (call on interrupt to keep the work done so far).
    public func seal() throws {
        guard let s = current else { return }
        do {
            try s.file.flush()
            s.residual.close(); s.index.close(); s.nTokens.close(); s.hooks.forEach { $0.close() }
            s.file.close()
            try Durable.sync(file: s.tmpPath)
            try Durable.rename(s.tmpPath, to: s.finalPath)
        } catch {
            discardCurrentShard()
            throw error
        }
        current = nil
        sealed.append(s.finalPath)
    }

    /// Copies the shards into the final file and removes the partial folder. Every assigned prompt must be recorded.
    @discardableResult
    public func finalize() throws -> String {
        guard !finished else { return finalPath }
        try seal()
        let missing = pending
        guard missing.isEmpty else {
            throw ActivationCacheError(.incomplete, path: finalPath, "\(missing.count) of \(assigned.count) prompts are not recorded yet (first: \(missing.prefix(5).map(String.init).joined(separator: ", ")))")
        }
        var where_: [Int: RowOrigin] = [:]
        var nTok = [Int32](repeating: 0, count: prompts.count)
        for (s, path) in sealed.enumerated() {
            let f = try H5File.open(path, requireChecksums: true)
            let idx = try f.openDataset("prompts/index").readInt32()
            let nt = try f.openDataset("prompts/n_tokens").readInt32()
            for (row, i) in idx.enumerated() {
                where_[Int(i)] = RowOrigin(source: s, row: row)
                nTok[Int(i)] = nt[row]
            }
        }
        var h = header
        h.created = isoNow()
        let plan = AssemblyPlan(
            header: h, promptSetSHA256: promptHash, nPromptsTotal: prompts.count, shard: shard,
            prompts: assigned.map { prompts[$0] }, index: assigned.map { Int32($0) }, nTokens: assigned.map { nTok[$0] },
            hooks: options.hooks.sorted(), dtype: options.dtype, compression: options.compression,
            sources: sealed, origins: try assigned.map { i in
                guard let o = where_[i] else {
                    throw ActivationCacheError(.badFile, path: partialDirectory, "no sealed shard holds prompt \(i); delete the folder and record again")
                }
                return o
            })
        try Assembler.write(plan, to: finalPath)
        finished = true
        unlock()
        try? FileManager.default.removeItem(atPath: partialDirectory)
        log.info("wrote \(finalPath) (\(assigned.count) prompts)")
        return finalPath
    }
}
