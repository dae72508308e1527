import Foundation
import Testing

/// The `ablab generate` process on the real SmolLM2 model, killed with SIGKILL five times at random
/// moments (after a random number of finished answers plus a random delay) and rerun each time: the final
/// JSONL must hold the same answers, in the same order, as an uninterrupted run (greedy decoding is
/// deterministic and each prompt's computation does not depend on which others share its batch).
@Suite("ablab generate killed with SIGKILL, then resumed", .serialized, .timeLimit(.minutes(20)))
struct GenerateProcessKillTests {
    static var model: String { TestModels.directory + "/" + TestModels.smol + ".gguf" }

    func generate(_ out: String, prompts: String) throws -> Process {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: TestModels.ablab!)
        p.arguments = ["generate", "--model", Self.model, "--prompts", prompts, "--max-new-tokens", "24", "--batch", "4",
                       "--threads", "1", "--name", "smol", "--out", out]
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        try p.run()
        return p
    }

    /// (id, response) of every complete line.
    func answers(_ path: String) throws -> [[String]] {
        let text = try String(contentsOfFile: path, encoding: .utf8)
        return try text.split(separator: "\n").map { line in
            let o = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
            return [o["id"] as? String ?? "?", o["response"] as? String ?? "?", "\(o["tokens"] ?? "?")"]
        }
    }

    /// SIGKILLs per run: 5 in `make test`, more on demand (`ABLAB_KILLS=20 make test`).
    static var kills: Int { max(5, Int(ProcessInfo.processInfo.environment["ABLAB_KILLS"] ?? "") ?? 5) }
    static var perClass: Int { max(12, kills * 2 + 2) }

    @Test(.enabled(if: TestModels.ablab != nil && FileManager.default.fileExists(atPath: model), "needs the built ablab and the SmolLM2 model"))
    func killedAndResumedEqualsUninterrupted() throws {
        let tmp = NSTemporaryDirectory() + "ablab-genkill-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: tmp, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: tmp) }
        var lines: [String] = []
        for (file, label) in [("harmful", "harmful"), ("harmless", "harmless")] {
            let text = try String(contentsOfFile: TestModels.root.appendingPathComponent("notebooks-scripts/data/prompts/\(file).jsonl").path, encoding: .utf8)
            var n = 0
            for l in text.split(separator: "\n") where n < Self.perClass {
                guard let o = try JSONSerialization.jsonObject(with: Data(l.utf8)) as? [String: Any],
                      o["split"] as? String == "test", let t = o["text"] as? String, !t.isEmpty else { continue }
                let rec: [String: Any] = ["id": o["id"] as? String ?? "", "text": t, "label": label]
                lines.append(String(decoding: try JSONSerialization.data(withJSONObject: rec), as: UTF8.self))
                n += 1
            }
        }
        let promptFile = tmp + "/prompts.jsonl"
        try (lines.joined(separator: "\n") + "\n").write(toFile: promptFile, atomically: true, encoding: .utf8)

        let whole = try generate(tmp + "/whole.jsonl", prompts: promptFile)
        whole.waitUntilExit()
        try #require(whole.terminationStatus == 0, "the uninterrupted run failed")
        let want = try answers(tmp + "/whole.jsonl")
        try #require(want.count == 2 * Self.perClass)

        let out = tmp + "/killed.jsonl"
        var seed = UInt64.random(in: 0...UInt64.max)
        let printed = seed
        func next(_ n: UInt64) -> UInt64 { seed = seed &* 6364136223846793005 &+ 1442695040888963407; return (seed >> 33) % n }
        var kills = 0
        for _ in 0..<Self.kills {
            let before = (try? answers(out).count) ?? 0
            let waitFor = before + 1 + Int(next(3))        // one to three more answers, then a random delay
            let p = try generate(out, prompts: promptFile)
            let deadline = Date().addingTimeInterval(120)
            while p.isRunning && Date() < deadline {
                let text = (try? String(contentsOfFile: out, encoding: .utf8)) ?? ""
                if text.split(separator: "\n").count >= waitFor { break }
                usleep(5_000)
            }
            usleep(useconds_t(next(300_000)))
            guard p.isRunning else { p.waitUntilExit(); break }
            kill(p.processIdentifier, SIGKILL)
            p.waitUntilExit()
            if p.terminationReason == .uncaughtSignal { kills += 1 }
        }
        print("generate kill test: \(kills) SIGKILLs landed (seed \(printed))")
        #expect(kills >= Self.kills - 2, "at least \(Self.kills - 2) kills should land mid-run (seed \(printed))")
        let last = try generate(out, prompts: promptFile)
        last.waitUntilExit()
        try #require(last.terminationStatus == 0, "the resumed run failed")
        let got = try answers(out)
        #expect(got.map { $0[0] } == want.map { $0[0] }, "ids or their order differ")
        let differing = zip(got, want).filter { $0 != $1 }.map { $0.0[0] }
        #expect(differing.isEmpty, "answers differ for \(differing)")
    }
}
