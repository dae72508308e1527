import AblabCore
import Foundation
import HDF5
import LinearAlgebra
import Testing
import ActivationCache

@Suite struct ActivationCacheRoundTripTests {
    @Test(arguments: [ActivationDType.float32, .float16])
    func writeThenRead(dtype: ActivationDType) throws {
        let run = try TempRun(); defer { run.cleanup() }
        var s = Synthetic()
        s.hooks = ["blocks.1.hook_attn_out", "blocks.0.hook_mlp_out"]
        let w = try ActivationCacheWriter(run: run.path, header: s.header(), prompts: s.prompts,
                                          options: .init(dtype: dtype, hooks: s.hooks, compression: .gzip, promptsPerShard: 8))
        #expect(w.pending == Array(0..<s.nPrompts))
        try s.record(w, w.pending, batchSize: 5)
        #expect(w.pending.isEmpty)
        let path = try w.finalize()
        #expect(path == run.path + "/activations/step-1000.h5")
        #expect(!FileManager.default.fileExists(atPath: w.partialDirectory))

        let cache = try ActivationCache(run: run.path)
        #expect(try cache.checkpoints() == ["step-1000"])
        let f = try cache.open("step-1000")
        #expect(f.dtype == dtype)
        #expect(f.header.ignoringCreated == s.header().ignoringCreated)
        #expect(f.header.ablabVersion == AblabVersion.string)
        #expect(f.header.created.hasSuffix("Z"))
        #expect(f.hookNames == s.hooks.sorted())
        #expect(f.prompts.map(\.id) == s.prompts.map(\.id))
        #expect(f.prompts.map(\.text) == s.prompts.map(\.text))
        #expect(f.prompts.map(\.split) == s.prompts.map { $0.split ?? "" })
        #expect(f.prompts.map(\.nTokens) == (0..<s.nPrompts).map(Synthetic.nTokens))
        #expect(f.prompts.map(\.index) == Array(0..<s.nPrompts))

        for l in 0...s.nLayers {
            for (pi, pos) in s.positions.enumerated() {
                let m = try f.residual(layer: l, position: Int(pos))
                #expect(m.rows == s.nPrompts && m.cols == s.dModel)
                let want = (0..<s.nPrompts).flatMap { i in (0..<s.dModel).map { Synthetic.value(l, i, pi, $0) } }
                #expect(m.data == want, "layer \(l) position \(pos)")
            }
        }
        let harmful = f.promptIndices(label: "harmful")
        #expect(harmful == Array(stride(from: 0, to: s.nPrompts, by: 2)))
        #expect(f.promptIndices(label: "harmless", split: "test") == (0..<s.nPrompts).filter { $0 % 2 == 1 && $0 % 3 == 0 })
        let sub = try f.residual(layer: 2, position: -1, prompts: [4, 0])
        #expect(sub.row(0) == (0..<s.dModel).map { Synthetic.value(2, 4, 2, $0) })
        #expect(sub.row(1) == (0..<s.dModel).map { Synthetic.value(2, 0, 2, $0) })
        let hook = try f.hook("blocks.0.hook_mlp_out", position: -2, prompts: [3])
        #expect(hook.row(0) == (0..<s.dModel).map { Synthetic.value(101, 3, 1, $0) })

        // Schema details a reader in another language relies on.
        let h5 = try H5File.open(path)
        #expect(try h5.stringAttribute("format") == "ablab.activations")
        #expect(try h5.intAttribute("format_version") == 1)
        #expect(try h5.int32ArrayAttribute("positions") == s.positions)
        let res = try h5.openDataset("residual")
        #expect(res.elementType == (dtype == .float32 ? .float32 : .float16))
        #expect(try res.chunkShape() == [1, s.nPrompts, s.positions.count, s.dModel])

        #expect(throws: ActivationCacheError.self) { try f.residual(layer: s.nLayers + 1, position: -1) }
        #expect(throws: ActivationCacheError.self) { try f.residual(layer: 0, position: 0) }
        #expect(throws: ActivationCacheError.self) { try f.hook("nope", position: -1) }
        #expect(throws: ActivationCacheError.self) { try cache.open("other") }
    }

    @Test func appendRejectsBadBatches() throws {
        let run = try TempRun(); defer { run.cleanup() }
        let s = Synthetic()
        let w = try ActivationCacheWriter(run: run.path, header: s.header(), prompts: s.prompts)
        let (r, _) = s.batch([0, 1])
        #expect(throws: ActivationCacheError.self) { try w.append(indices: [0, 1], nTokens: [1, 1], residual: Array(r.dropLast())) }
        #expect(throws: ActivationCacheError.self) { try w.append(indices: [0, 0], nTokens: [1, 1], residual: r) }
        #expect(throws: ActivationCacheError.self) { try w.append(indices: [0, 99], nTokens: [1, 1], residual: r) }
        #expect(throws: ActivationCacheError.self) { try w.append(indices: [0, 1], nTokens: [1], residual: r) }
        #expect(throws: ActivationCacheError.self) { try w.append(indices: [0, 1], nTokens: [1, 1], residual: r, hooks: ["x": []]) }
        try w.append(indices: [0, 1], nTokens: [1, 1], residual: r)
        #expect(throws: ActivationCacheError.self) { try w.append(indices: [1, 2], nTokens: [1, 1], residual: r) } // 1 again
        let e = #expect(throws: ActivationCacheError.self) { try w.finalize() }
        #expect(e?.kind == .incomplete)
    }
}

@Suite struct ActivationCacheCrashSafetyTests {
    /// The uninterrupted reference recording.
    func reference(_ s: Synthetic, run: String, dtype: ActivationDType = .float32) throws -> String {
        let w = try ActivationCacheWriter(run: run, header: s.header(), prompts: s.prompts,
                                          options: .init(dtype: dtype, hooks: s.hooks, promptsPerShard: 8))
        try s.record(w, w.pending, batchSize: 5)
        return try w.finalize()
    }

    @Test func resumeAfterAbandonedWriterIsBitIdentical() throws {
        let run = try TempRun(); defer { run.cleanup() }
        var s = Synthetic()
        s.hooks = ["blocks.2.hook_attn_out"]
        let ref = try reference(s, run: run.path + "/ref")
        let target = run.path + "/crash"
        var partial = ""
        do {
            // Killed mid-way: 5 batches of 5 appended, shards sealed after 10 and 20 prompts; 5 prompts in the open shard are lost.
            let w = try ActivationCacheWriter(run: target, header: s.header(), prompts: s.prompts, options: .init(hooks: s.hooks, promptsPerShard: 8))
            try s.record(w, Array(0..<25), batchSize: 5)
            partial = w.partialDirectory
            // no finalize: the writer is abandoned here
        }
        // A second kind of leftover: a half-written temporary shard.
        try Data("garbage".utf8).write(to: URL(fileURLWithPath: partial + "/.shard-000099.h5.tmp"))
        let names = try FileManager.default.contentsOfDirectory(atPath: partial).sorted()
        #expect(names.contains("shard-000000.h5") && names.contains("shard-000001.h5") && names.contains("fingerprint.json"))
        #expect(!FileManager.default.fileExists(atPath: ActivationCacheWriter.finalPath(run: target, checkpoint: "step-1000")))

        let w = try ActivationCacheWriter(run: target, header: s.header(), prompts: s.prompts, options: .init(hooks: s.hooks, promptsPerShard: 8))
        #expect(w.resumedCount == 20)
        #expect(w.pending == Array(20..<s.nPrompts))
        #expect(!FileManager.default.fileExists(atPath: partial + "/.shard-000099.h5.tmp"))
        try s.record(w, w.pending, batchSize: 4) // different batching on the rerun
        let out = try w.finalize()
        #expect(try datasetDifferences(ref, out) == [])
    }

    @Test func damagedSealedShardIsRecordedAgain() throws {
        let run = try TempRun(); defer { run.cleanup() }
        let s = Synthetic()
        let ref = try reference(s, run: run.path + "/ref")
        let target = run.path + "/crash"
        var partial = ""
        do {
            let w = try ActivationCacheWriter(run: target, header: s.header(), prompts: s.prompts, options: .init(promptsPerShard: 8))
            try s.record(w, Array(0..<20), batchSize: 5)
            partial = w.partialDirectory
        }
        // Damage the second sealed shard (prompts 10..<20), as a failing disk might.
        let shard = partial + "/shard-000001.h5"
        let data = try Data(contentsOf: URL(fileURLWithPath: shard))
        try data.prefix(data.count / 3).write(to: URL(fileURLWithPath: shard))
        let w = try ActivationCacheWriter(run: target, header: s.header(), prompts: s.prompts, options: .init(promptsPerShard: 8))
        #expect(w.pending == Array(10..<s.nPrompts))
        try s.record(w, w.pending, batchSize: 6)
        #expect(try datasetDifferences(ref, try w.finalize()) == [])
    }

    @Test func fingerprintMismatchIsRefused() throws {
        let run = try TempRun(); defer { run.cleanup() }
        let s = Synthetic()
        do {
            let w = try ActivationCacheWriter(run: run.path, header: s.header(), prompts: s.prompts, options: .init(promptsPerShard: 4))
            try s.record(w, Array(0..<8), batchSize: 4)
        }
        var other = s
        other.positions = [-2, -1]
        let e1 = #expect(throws: ActivationCacheError.self) {
            _ = try ActivationCacheWriter(run: run.path, header: other.header(), prompts: s.prompts)
        }
        #expect(e1?.kind == .fingerprintMismatch)
        #expect(e1?.description.contains("positions") == true)
        let e2 = #expect(throws: ActivationCacheError.self) {
            _ = try ActivationCacheWriter(run: run.path, header: s.header(sha: "00"), prompts: s.prompts)
        }
        #expect(e2?.kind == .fingerprintMismatch)
        var fewer = s
        fewer.nPrompts = 36
        #expect(throws: ActivationCacheError.self) { _ = try ActivationCacheWriter(run: run.path, header: s.header(), prompts: fewer.prompts) }
        #expect(throws: ActivationCacheError.self) {
            _ = try ActivationCacheWriter(run: run.path, header: s.header(), prompts: s.prompts, options: .init(dtype: .float16))
        }
        // The original settings still resume; force starts over.
        #expect(try ActivationCacheWriter(run: run.path, header: s.header(), prompts: s.prompts).pending.count == s.nPrompts - 8)
        let forced = try ActivationCacheWriter(run: run.path, header: other.header(), prompts: s.prompts, force: true)
        #expect(forced.pending.count == s.nPrompts)
    }

    @Test func finishedFileIsNotRewrittenUnlessForced() throws {
        let run = try TempRun(); defer { run.cleanup() }
        let s = Synthetic()
        let path = try reference(s, run: run.path)
        #expect(ActivationCacheWriter.isFinished(run: run.path, checkpoint: "step-1000"))
        let before = try Data(contentsOf: URL(fileURLWithPath: path))
        let e = #expect(throws: ActivationCacheError.self) { _ = try ActivationCacheWriter(run: run.path, header: s.header(), prompts: s.prompts) }
        #expect(e?.kind == .alreadyFinished)
        #expect(try Data(contentsOf: URL(fileURLWithPath: path)) == before)
        let w = try ActivationCacheWriter(run: run.path, header: s.header(), prompts: s.prompts, force: true)
        #expect(w.pending.count == s.nPrompts)
        // Until the forced recording finalizes, the old file stays in place.
        #expect(try Data(contentsOf: URL(fileURLWithPath: path)) == before)
    }

    @Test func secondWriterOnSameCheckpointIsLockedOut() throws {
        let run = try TempRun(); defer { run.cleanup() }
        let s = Synthetic()
        let w = try ActivationCacheWriter(run: run.path, header: s.header(), prompts: s.prompts)
        let e = #expect(throws: ActivationCacheError.self) { _ = try ActivationCacheWriter(run: run.path, header: s.header(), prompts: s.prompts) }
        #expect(e?.kind == .locked)
        _ = w
    }

    @Test func corruptOrForeignFilesGiveTypedErrors() throws {
        let run = try TempRun(); defer { run.cleanup() }
        let s = Synthetic()
        let path = try reference(s, run: run.path)
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        let truncated = run.path + "/activations/truncated.h5"
        try data.prefix(data.count / 2).write(to: URL(fileURLWithPath: truncated))
        let t = #expect(throws: (any Error).self) {
            let f = try ActivationFile(path: truncated)
            _ = try f.residual(layer: s.nLayers, position: -1)
        }
        #expect(t is any AblabError)
        #expect((t as? any AblabError)?.description.contains("truncated.h5") == true)
        let garbage = run.path + "/activations/garbage.h5"
        try Data(repeating: 0x41, count: 4096).write(to: URL(fileURLWithPath: garbage))
        let g = #expect(throws: HDF5Error.self) { _ = try ActivationFile(path: garbage) }
        #expect(g?.kind == .notHDF5)
        let foreign = run.path + "/activations/foreign.h5"
        do { try H5File.create(foreign).createDataset("x", type: .float32, shape: [1]) }
        let f = #expect(throws: ActivationCacheError.self) { _ = try ActivationFile(path: foreign) }
        #expect(f?.kind == .badFile)
        #expect(throws: ActivationCacheError.self) { _ = try ActivationCache(run: run.path + "/nothing") }
    }
}

@Suite struct ActivationCacheMergeTests {
    @Test func mergeOfShardsEqualsSingleWrite() throws {
        let run = try TempRun(); defer { run.cleanup() }
        var s = Synthetic()
        s.hooks = ["blocks.0.hook_attn_out"]
        let single = try ActivationCacheCrashSafetyTests().reference(s, run: run.path + "/single")
        let sharded = run.path + "/sharded"
        for k in 0..<3 {
            let spec = try ShardSpec(index: k, count: 3)
            let w = try ActivationCacheWriter(run: sharded, header: s.header(), prompts: s.prompts,
                                              options: .init(hooks: s.hooks, promptsPerShard: 4), shard: spec)
            #expect(w.assigned == (0..<s.nPrompts).filter { $0 % 3 == k })
            try s.record(w, w.pending, batchSize: 3)
            #expect(try w.finalize().hasSuffix("step-1000.shard-\(k)-of-3.h5"))
        }
        let cache = try ActivationCache(run: sharded)
        #expect(try cache.checkpoints() == [])
        #expect(try cache.files().count == 3)
        let shardFile = try ActivationFile(path: ActivationCacheWriter.finalPath(run: sharded, checkpoint: "step-1000", shard: try ShardSpec(index: 1, count: 3)))
        #expect(shardFile.prompts.map(\.index) == (0..<s.nPrompts).filter { $0 % 3 == 1 })
        let m = try shardFile.residual(layer: 1, position: -3)
        #expect(m.row(0) == (0..<s.dModel).map { Synthetic.value(1, 1, 0, $0) })

        let merged = try ActivationCacheWriter.merge(run: sharded, checkpoint: "step-1000", shards: 3)
        #expect(try datasetDifferences(single, merged) == [])
        #expect(try cache.checkpoints() == ["step-1000"])
        #expect(try ActivationFile(path: merged).header.ignoringCreated == s.header().ignoringCreated)
    }

    /// A resubmitted merge job: an output that equals its shards is kept (skipped, not rewritten), one that
    /// differs in a single value is refused without force and replaced with it.
    @Test func mergeIsSkippedOnlyWhenTheOutputEqualsItsShards() throws {
        let run = try TempRun(); defer { run.cleanup() }
        var s = Synthetic()
        s.hooks = ["blocks.1.hook_mlp_out"]
        let single = try ActivationCacheCrashSafetyTests().reference(s, run: run.path + "/single")
        let sharded = run.path + "/sharded"
        var inputs: [String] = []
        for k in 0..<2 {
            let w = try ActivationCacheWriter(run: sharded, header: s.header(), prompts: s.prompts, options: .init(hooks: s.hooks),
                                              shard: try ShardSpec(index: k, count: 2))
            try s.record(w, w.pending, batchSize: 4)
            inputs.append(try w.finalize())
        }
        let out = ActivationCacheWriter.finalPath(run: sharded, checkpoint: "step-1000")
        #expect(try ActivationCacheWriter.mergeReporting(inputs, into: out).skipped == false)
        func inode(_ p: String) -> UInt64 { var st = stat(); return stat(p, &st) == 0 ? UInt64(st.st_ino) : 0 }
        let first = inode(out)
        #expect(try ActivationCacheWriter.mergeReporting(inputs, into: out).skipped == true)
        #expect(inode(out) == first)
        // The single-process recording (another `created`) equals the shards too.
        try FileManager.default.removeItem(atPath: out)
        try FileManager.default.copyItem(atPath: single, toPath: out)
        #expect(try ActivationCacheWriter.mergeReporting(inputs, into: out).skipped == true)
        // One residual value off by 1/8 (layer 2, prompt 5, position 0, feature 3): not equal.
        let tampered = run.path + "/tampered"
        let w = try ActivationCacheWriter(run: tampered, header: s.header(), prompts: s.prompts, options: .init(hooks: s.hooks))
        for start in stride(from: 0, to: s.nPrompts, by: 8) {
            let b = Array(start..<min(s.nPrompts, start + 8))
            var (r, h) = s.batch(b)
            if let row = b.firstIndex(of: 5) {
                let layer = 2, position = 0, feature = 3
                let flat: Int = ((layer * b.count + row) * s.positions.count + position) * s.dModel + feature
                r[flat] += 0.125
            }
            try w.append(indices: b, nTokens: b.map(Synthetic.nTokens), residual: r, hooks: h)
        }
        let bad = try w.finalize()
        #expect(try datasetDifferences(single, bad) == ["residual"])
        try FileManager.default.removeItem(atPath: out)
        try FileManager.default.copyItem(atPath: bad, toPath: out)
        let e = #expect(throws: ActivationCacheError.self) { try ActivationCacheWriter.merge(inputs, into: out) }
        #expect(e?.kind == .alreadyFinished)
        #expect(try datasetDifferences(single, out) == ["residual"])
        #expect(try ActivationCacheWriter.mergeReporting(inputs, into: out, force: true).skipped == false)
        #expect(try datasetDifferences(single, out) == [])
    }

    @Test func emptyShardsFinalizeAndMerge() throws {
        let run = try TempRun(); defer { run.cleanup() }
        var s = Synthetic()
        s.nPrompts = 5
        s.hooks = ["h"]
        let single = try ActivationCacheCrashSafetyTests().reference(s, run: run.path + "/single")
        let sharded = run.path + "/sharded"
        for k in 0..<7 { // shards 5 and 6 hold no prompts
            let w = try ActivationCacheWriter(run: sharded, header: s.header(), prompts: s.prompts, options: .init(hooks: s.hooks),
                                              shard: try ShardSpec(index: k, count: 7))
            try s.record(w, w.pending, batchSize: 2)
            try w.finalize()
        }
        let empty = try ActivationFile(path: ActivationCacheWriter.finalPath(run: sharded, checkpoint: "step-1000", shard: try ShardSpec(index: 6, count: 7)))
        #expect(empty.nPrompts == 0)
        #expect(try empty.residual(layer: 1, position: -1).rows == 0)
        let merged = try ActivationCacheWriter.merge(run: sharded, checkpoint: "step-1000", shards: 7)
        #expect(try datasetDifferences(single, merged) == [])
    }

    @Test func mergeRefusesMismatchedOrMissingShards() throws {
        let run = try TempRun(); defer { run.cleanup() }
        let s = Synthetic()
        var paths: [String] = []
        for k in 0..<2 {
            let w = try ActivationCacheWriter(run: run.path, header: s.header(sha: k == 0 ? "aa" : "bb"), prompts: s.prompts,
                                              shard: try ShardSpec(index: k, count: 2))
            try s.record(w, w.pending, batchSize: 8)
            paths.append(try w.finalize())
        }
        let e = #expect(throws: ActivationCacheError.self) { try ActivationCacheWriter.merge(paths, into: run.path + "/m.h5") }
        #expect(e?.kind == .mergeMismatch)
        let missing = #expect(throws: ActivationCacheError.self) { try ActivationCacheWriter.merge([paths[0]], into: run.path + "/m.h5") }
        #expect(missing?.kind == .mergeMismatch)
        #expect(throws: ActivationCacheError.self) { try ActivationCacheWriter.merge([paths[0], paths[0]], into: run.path + "/m.h5") }
        #expect(throws: ActivationCacheError.self) { try ShardSpec(parsing: "3/3") }
        #expect(try ShardSpec(parsing: "2/3") == ShardSpec(index: 2, count: 3))
    }
}
