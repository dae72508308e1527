import AblabCore
import Foundation
import HDF5

extension ActivationCacheWriter {
    /// Merges per-shard outputs (`--shard k/n`, one file per k) into one schema file ordered by prompt index.
    /// Headers (except `created`), prompt set, dtype, hooks and shard count must agree and the shards
    /// must cover every prompt exactly once. Refuses to replace an existing output unless `force`.
    @discardableResult
    public static func merge(_ inputs: [String], into output: String, compression: H5Compression = .none,
                             force: Bool = false) throws -> String {
        guard !inputs.isEmpty else { throw ActivationCacheError(.mergeMismatch, path: output, "no shard files to merge") }
        if FileManager.default.fileExists(atPath: output) && !force {
            throw ActivationCacheError(.alreadyFinished, path: output, "the merged file already exists; delete it or force")
        }
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
        var h = first.header
        h.created = isoNow()
        let plan = AssemblyPlan(
            header: h, promptSetSHA256: first.promptSetSHA256, nPromptsTotal: total, shard: .whole,
            prompts: ps.map { Prompt(id: $0.id, text: $0.text, label: $0.label, split: $0.split.isEmpty ? nil : $0.split) },
            index: ps.map { Int32($0.index) }, nTokens: ps.map(\.nTokens), hooks: first.hookNames, dtype: first.dtype,
            compression: compression, sources: inputs, origins: origin.map { $0! })
        try Assembler.write(plan, to: output)
        return output
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
