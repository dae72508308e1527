import AblabCore
import Foundation
import HDF5

extension ActivationCacheWriter {
    /// Merges per-shard outputs (`--shard k/n`, one file per k) into one schema file ordered by prompt index.
    /// Headers (except `created`), prompt set, dtype, hooks and shard count must agree and the shards
    /// must cover every prompt exactly once. An existing output that already equals the merge of the
    /// shards (same header except `created`, prompts, dtype, hooks and every value bit for bit) is kept
    /// and the merge skipped, so a resubmitted job succeeds; an existing output that differs is
    /// replaced only with `force` (atomically: the old file stays until the new one is complete).
    @discardableResult
    public static func merge(_ inputs: [String], into output: String, compression: H5Compression = .none,
                             force: Bool = false) throws -> String {
        try mergeReporting(inputs, into: output, compression: compression, force: force).path
    }

    /// `merge`, also saying whether the existing output already equalled the shards (`skipped`).
    public static func mergeReporting(_ inputs: [String], into output: String, compression: H5Compression = .none,
                                      force: Bool = false) throws -> (path: String, skipped: Bool) {
        guard !inputs.isEmpty else { throw ActivationCacheError(.mergeMismatch, path: output, "no shard files to merge") }
        let files = try inputs.map { try ActivationFile(path: $0) }
        let first = files[0]
        let n = first.shard.count
        var seenShards = Set<Int>()
        for f in files {
            func mismatch(_ what: String) -> ActivationCacheError {
                ActivationCacheError(.mergeMismatch, path: f.path, "\(what) differs from \(first.path); these files are not shards of one recording")
            }
            if f.header.ignoringCreated != first.header.ignoringCreated { throw mismatch("the header (model, positions, system prompt, …)") }
            if f.promptSetSHA256 != first.promptSetSHA256 || f.nPromptsTotal != first.nPromptsTotal { throw mismatch("the prompt set") }
            if f.dtype != first.dtype { throw mismatch("the dtype") }
            if f.hookNames != first.hookNames { throw mismatch("the hook list") }
            if f.shard.count != n { throw mismatch("the shard count (\(f.shard) vs \(first.shard))") }
            guard seenShards.insert(f.shard.index).inserted else {
                throw ActivationCacheError(.mergeMismatch, path: f.path, "shard \(f.shard) is given twice")
            }
        }
        let missing = (0..<n).filter { !seenShards.contains($0) }
        guard missing.isEmpty else {
            throw ActivationCacheError(.mergeMismatch, path: output, "shards \(missing.map { "\($0)/\(n)" }.joined(separator: ", ")) are missing")
        }
        // Output row i = prompt index i of the full set.
        let total = first.nPromptsTotal
        var origin = [RowOrigin?](repeating: nil, count: total)
        var prompt = [CachedPrompt?](repeating: nil, count: total)
        for (s, f) in files.enumerated() {
            for (row, p) in f.prompts.enumerated() {
                guard (0..<total).contains(p.index), origin[p.index] == nil else {
                    throw ActivationCacheError(.mergeMismatch, path: f.path, "prompt index \(p.index) is out of range or in two shards")
                }
                origin[p.index] = RowOrigin(source: s, row: row)
                prompt[p.index] = p
            }
        }
        if let hole = origin.firstIndex(where: { $0 == nil }) {
            throw ActivationCacheError(.mergeMismatch, path: output, "no shard holds prompt \(hole)")
        }
        let ps = prompt.map { $0! }
        if FileManager.default.fileExists(atPath: output) {
            if try outputEquals(output, shards: files, prompts: ps, origins: origin.map { $0! }) { return (output, true) }
            if !force {
                throw ActivationCacheError(.alreadyFinished, path: output, "the merged file exists and differs from its shards; delete it or force")
            }
        }
        var h = first.header
        h.created = isoNow()
        let plan = AssemblyPlan(
            header: h, promptSetSHA256: first.promptSetSHA256, nPromptsTotal: total, shard: .whole,
            prompts: ps.map { Prompt(id: $0.id, text: $0.text, label: $0.label, split: $0.split.isEmpty ? nil : $0.split) },
            index: ps.map { Int32($0.index) }, nTokens: ps.map(\.nTokens), hooks: first.hookNames, dtype: first.dtype,
            compression: compression, sources: inputs, origins: origin.map { $0! })
        try Assembler.write(plan, to: output)
        return (output, false)
    }

    /// Whether `output` is exactly the merge of `shards`: header (except `created`), prompt set, dtype,
    /// hooks, shard "0/1", the prompt table in index order, and every residual and hook value (compared as
    /// bit patterns, one layer at a time). An unreadable output is not equal.
    static func outputEquals(_ output: String, shards: [ActivationFile], prompts ps: [CachedPrompt], origins: [RowOrigin]) throws -> Bool {
        guard let out = try? ActivationFile(path: output) else { return false }
        let first = shards[0]
        guard out.header.ignoringCreated == first.header.ignoringCreated, out.promptSetSHA256 == first.promptSetSHA256,
              out.nPromptsTotal == first.nPromptsTotal, out.dtype == first.dtype, out.hookNames == first.hookNames,
              out.shard.isWhole, out.prompts == ps else { return false }
        let n = ps.count, p = first.nPositions, d = first.header.dModel
        let row = p * d
        func same(_ read: (ActivationFile) throws -> [Float]) throws -> Bool {
            let merged = try read(out)
            guard merged.count == n * row else { return false }
            let parts = try shards.map { try read($0) }
            for (i, o) in origins.enumerated() {
                let src = parts[o.source]
                for k in 0..<row where merged[i * row + k].bitPattern != src[o.row * row + k].bitPattern { return false }
            }
            return true
        }
        for layer in 0...first.header.nLayers {
            guard try same({ f in try f.residualSet.readFloats(offset: [layer, 0, 0, 0], count: [1, f.nPrompts, p, d]) }) else { return false }
        }
        for h in first.hookNames {
            guard try same({ f in try f.file.openDataset("hooks/" + h).readFloats(offset: [0, 0, 0], count: [f.nPrompts, f.header.hookPositions.count, d]) }) else { return false }
        }
        return true
    }

    /// Merges `<run>/activations/<checkpoint>.shard-k-of-n.h5` for k in 0..<n into `<checkpoint>.h5`.
    @discardableResult
    public static func merge(run: String, checkpoint: String, shards n: Int, compression: H5Compression = .none,
                             force: Bool = false) throws -> String {
        let inputs = try (0..<n).map { finalPath(run: run, checkpoint: checkpoint, shard: try ShardSpec(index: $0, count: n)) }
        for p in inputs where !FileManager.default.fileExists(atPath: p) {
            throw ActivationCacheError(.mergeMismatch, path: p, "this shard's recording is not finished")
        }
        return try merge(inputs, into: finalPath(run: run, checkpoint: checkpoint), compression: compression, force: force)
    }
}
