import AblabCore
import Foundation
import Testing
import ActivationCache

/// A real crash: a child process (this test binary, running only `childRecordsUntilKilled`) records into a
/// run folder and is killed with SIGKILL while it holds an open, unsealed shard; this process then resumes.
@Suite struct ActivationCacheKillTests {
    static let childVariable = "ABLAB_CACHE_KILL_CHILD"

    static var synthetic: Synthetic { var s = Synthetic(); s.hooks = ["blocks.0.hook_attn_out"]; return s }

    /// Child side; runs only when the parent test starts this binary with the variable set.
    @Test(.enabled(if: ProcessInfo.processInfo.environment[childVariable] != nil))
    func childRecordsUntilKilled() throws {
        let run = ProcessInfo.processInfo.environment[Self.childVariable]!
        let s = Self.synthetic
        let w = try ActivationCacheWriter(run: run, header: s.header(), prompts: s.prompts,
                                          options: .init(hooks: s.hooks, promptsPerShard: 4))
        try s.record(w, Array(0..<22), batchSize: 2) // shards sealed at 4, 8, …, 20; prompts 20, 21 in the open shard
        FileManager.default.createFile(atPath: run + "/ready", contents: Data())
        sleep(120) // killed here
        Issue.record("the child was not killed")
    }

    @Test(.enabled(if: Bundle.main.executablePath?.hasSuffix(".xctest") == true, "needs the test binary to be an executable (Linux)"))
    func sigkillDuringRecordingThenResume() throws {
        let tmp = try TempRun(); defer { tmp.cleanup() }
        let s = Self.synthetic
        let ref = try ActivationCacheCrashSafetyTests().reference(s, run: tmp.path + "/ref")
        let run = tmp.path + "/killed"
        try FileManager.default.createDirectory(atPath: run, withIntermediateDirectories: true)

        let child = Process()
        child.executableURL = URL(fileURLWithPath: Bundle.main.executablePath!)
        child.arguments = ["--testing-library", "swift-testing", "--filter", "childRecordsUntilKilled"]
        var env = ProcessInfo.processInfo.environment
        env[Self.childVariable] = run
        child.environment = env
        child.standardOutput = FileHandle.nullDevice
        child.standardError = FileHandle.nullDevice
        try child.run()
        let deadline = Date().addingTimeInterval(120)
        while !FileManager.default.fileExists(atPath: run + "/ready") && child.isRunning && Date() < deadline { usleep(20_000) }
        let ready = FileManager.default.fileExists(atPath: run + "/ready")
        kill(child.processIdentifier, SIGKILL)
        child.waitUntilExit()
        try #require(ready, "the child never reached the kill point")
        #expect(child.terminationReason == .uncaughtSignal && child.terminationStatus == SIGKILL)

        let partial = run + "/activations/.step-1000.partial"
        let left = try FileManager.default.contentsOfDirectory(atPath: partial)
        #expect(left.contains(".shard-000005.h5.tmp"))           // the unsealed shard the kill interrupted
        #expect(left.filter { $0.hasPrefix("shard-") }.count == 5)
        #expect(!ActivationCacheWriter.isFinished(run: run, checkpoint: "step-1000"))

        // The kernel released the child's lock; the rerun resumes after the sealed shards.
        let w = try ActivationCacheWriter(run: run, header: s.header(), prompts: s.prompts, options: .init(hooks: s.hooks, promptsPerShard: 4))
        #expect(w.resumedCount == 20)
        #expect(w.pending == Array(20..<s.nPrompts))
        try s.record(w, w.pending, batchSize: 5)
        let out = try w.finalize()
        #expect(try datasetDifferences(ref, out) == [])
        let f = try ActivationFile(path: out)
        #expect(try f.residual(layer: 2, position: -2, prompts: [21]).row(0) == (0..<s.dModel).map { Synthetic.value(2, 21, 1, $0) })
    }
}
