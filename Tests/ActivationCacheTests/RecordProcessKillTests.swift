import Foundation
import Testing
import AblabCore
import ActivationCache

/// The `ablab record` process itself, on the real SmolLM2 model: killed with SIGKILL five times at random
/// moments, then run again with the same arguments, it must produce a file whose every dataset equals
/// that of an uninterrupted run (the recorder is deterministic, so "equal" means bit for bit).
@Suite("ablab record killed with SIGKILL, then resumed", .serialized, .timeLimit(.minutes(20)))
struct RecordProcessKillTests {
    /// SIGKILLs per run: 5 in `make test`, more on demand (`ABLAB_KILLS=20 make test`).
    static var kills: Int { max(5, Int(ProcessInfo.processInfo.environment["ABLAB_KILLS"] ?? "") ?? 5) }

    func record(_ out: String, prompts: String, stderr: String? = nil) throws -> Process {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: TestPaths.ablab!)
        p.arguments = ["record", "--model", TestPaths.smolGGUF, "--prompts", prompts, "--split", "train", "--name", "smol",
                       "--prompts-per-shard", "6", "--threads", "1", "--out", out]
        p.standardOutput = FileHandle.nullDevice
        if let stderr {
            FileManager.default.createFile(atPath: stderr, contents: nil)
            p.standardError = FileHandle(forWritingAtPath: stderr)
        } else {
            p.standardError = FileHandle.nullDevice
        }
        try p.run()
        return p
    }

    @Test(.enabled(if: TestPaths.canRunAblab, "needs the built ablab and the SmolLM2 model"))
    func killedAndResumedEqualsUninterrupted() throws {
        let tmp = NSTemporaryDirectory() + "ablab-recordkill-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: tmp, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: tmp) }
        // 40 train prompts of the shipped data, both labels (more when ABLAB_KILLS asks for more kills)
        let perClass = max(20, (Self.kills + 2) * 3)
        let all = try PromptFile.load([TestPaths.root.appendingPathComponent("notebooks-scripts/data/prompts/harmful.jsonl").path,
                                       TestPaths.root.appendingPathComponent("notebooks-scripts/data/prompts/harmless.jsonl").path],
                                      splits: ["train"])
        let chosen = Array(all.filter { $0.label == "harmful" }.prefix(perClass)) + Array(all.filter { $0.label == "harmless" }.prefix(perClass))
        let lines = try chosen.map { p -> String in
            String(decoding: try JSONSerialization.data(withJSONObject: ["id": p.id, "text": p.text, "label": p.label, "split": "train"]), as: UTF8.self)
        }
        let promptFile = tmp + "/prompts.jsonl"
        try (lines.joined(separator: "\n") + "\n").write(toFile: promptFile, atomically: true, encoding: .utf8)

        let whole = try record(tmp + "/whole", prompts: promptFile)
        whole.waitUntilExit()
        try #require(whole.terminationStatus == 0, "the uninterrupted run failed")

        // Five kills at random moments (after 1…5 sealed shards, plus a random 0–400 ms into the next
        // shard; the seed is printed), each followed by a rerun that is killed in turn; then a last rerun.
        let partial = tmp + "/killed/activations/.smol.partial"
        var rng = SystemRandomNumberGenerator()
        let seed = UInt64.random(in: 0...UInt64.max, using: &rng)
        var state = seed
        func nextDelay() -> useconds_t { state = state &* 6364136223846793005 &+ 1442695040888963407; return useconds_t((state >> 33) % 400_000) }
        var kills = 0
        for target in 1...Self.kills {
            let killed = try record(tmp + "/killed", prompts: promptFile)
            let deadline = Date().addingTimeInterval(120)
            var sealed = 0
            while killed.isRunning && Date() < deadline {
                sealed = ((try? FileManager.default.contentsOfDirectory(atPath: partial)) ?? []).filter { $0.hasPrefix("shard-") && $0.hasSuffix(".h5") }.count
                if sealed >= target { break }
                usleep(5_000)
            }
            usleep(nextDelay())
            guard killed.isRunning else { killed.waitUntilExit(); break }   // finished before the kill: nothing left to interrupt
            kill(killed.processIdentifier, SIGKILL)
            killed.waitUntilExit()
            if killed.terminationReason == .uncaughtSignal { kills += 1 }
        }
        #expect(kills >= Self.kills - 2, "at least \(Self.kills - 2) kills should land mid-run (seed \(seed)); got \(kills)")
        print("record kill test: \(kills) SIGKILLs landed (delay seed \(seed))")

        if !FileManager.default.fileExists(atPath: tmp + "/killed/activations/smol.h5") {
            let rerun = try record(tmp + "/killed", prompts: promptFile, stderr: tmp + "/rerun.log")
            rerun.waitUntilExit()
            try #require(rerun.terminationStatus == 0, "the resumed run failed")
            // it resumed: the sealed shards' prompts (6 each) were not recorded again
            let log = (try? String(contentsOfFile: tmp + "/rerun.log", encoding: .utf8)) ?? ""
            let resumed = log.firstRange(of: /resuming, (\d+) prompts already recorded/).map { Int(log[$0].split(separator: " ")[1])! }
            #expect(resumed.map { $0 >= 6 && $0 % 6 == 0 && $0 < 2 * perClass } == true, "the rerun did not resume after the sealed shards: \(log.suffix(400))")
        }

        let a = try ActivationFile(path: tmp + "/whole/activations/smol.h5")
        let b = try ActivationFile(path: tmp + "/killed/activations/smol.h5")
        #expect(a.prompts.map(\.id) == b.prompts.map(\.id))
        #expect(a.prompts.map(\.nTokens) == b.prompts.map(\.nTokens))
        #expect(a.header.positions == b.header.positions)
        var differing = 0
        for layer in 0...a.header.nLayers {
            for pos in a.header.positions.map(Int.init) {
                if try a.residual(layer: layer, position: pos).data != b.residual(layer: layer, position: pos).data { differing += 1 }
            }
        }
        #expect(differing == 0, "\(differing) (layer, position) slices differ")
    }
}
