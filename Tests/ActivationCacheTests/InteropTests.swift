import AblabCore
import Foundation
import Testing
import ActivationCache

/// Writes a small run folder into $ABLAB_INTEROP_DIR/activation-run with the `Synthetic` formula;
/// notebooks-scripts/check_interop.py (check_activation_cache) recomputes it with numpy and runs
/// read_cache.py on it. Without the variable the cache is written to a temporary folder and only
/// the Swift round trip is checked.
@Suite struct ActivationCacheInteropTests {
    @Test func writeInteropRun() throws {
        let tmp = try TempRun(); defer { tmp.cleanup() }
        let base = ProcessInfo.processInfo.environment["ABLAB_INTEROP_DIR"].flatMap { $0.isEmpty ? nil : $0 } ?? tmp.path
        let run = base + "/activation-run"
        try? FileManager.default.removeItem(atPath: run)
        var s = Synthetic()
        s.hooks = ["blocks.1.hook_attn_out"]
        let w1 = try ActivationCacheWriter(run: run, header: s.header(checkpoint: "step-1000"), prompts: s.prompts,
                                           options: .init(dtype: .float32, hooks: s.hooks, compression: .gzip, promptsPerShard: 16))
        try s.record(w1, w1.pending, batchSize: 7)
        try w1.finalize()
        var s2 = Synthetic()
        s2.hooks = []
        let w2 = try ActivationCacheWriter(run: run, header: s2.header(checkpoint: "final"), prompts: s2.prompts,
                                           options: .init(dtype: .float16, promptsPerShard: 64))
        try s2.record(w2, w2.pending, batchSize: 10)
        try w2.finalize()

        let cache = try ActivationCache(run: run)
        #expect(try cache.checkpoints() == ["final", "step-1000"])
        #expect(cache.unfinished() == [])
        let f = try cache.open("final")
        #expect(f.dtype == .float16)
        #expect(try f.residual(layer: 3, position: -1, prompts: [36]).row(0) == (0..<8).map { Synthetic.value(3, 36, 2, $0) })
    }
}
