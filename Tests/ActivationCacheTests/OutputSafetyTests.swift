import Foundation
import Testing
import AblabCore
import ActivationCache

/// The real `ablab` process writing into a read-only folder or onto a full disk. A full disk is made with
/// the file-size limit (RLIMIT_FSIZE, via util-linux `prlimit`, with SIGXFSZ ignored): writes beyond it
/// fail with EFBIG exactly where a full disk fails with ENOSPC. A read-only folder needs an unprivileged
/// user (root ignores permissions), so as root the process runs as `nobody` through `setpriv`.
/// Every case: exit code 3, one `error:` line naming the file or folder and what to do, and finished work
/// kept so that a rerun continues and ends with the same result as an undisturbed run.
@Suite("Output safety: read-only folders and a full disk", .serialized, .timeLimit(.minutes(10)))
struct OutputSafetyTests {
    static var ready: Bool {
        TestPaths.canRunAblab && FileManager.default.isExecutableFile(atPath: "/usr/bin/prlimit")
    }

    struct Outcome { var status: Int32; var stderr: String
        /// The lines the CLI printed as the error (logs and progress bars are other lines).
        var errorLines: [String] { stderr.split(separator: "\n").map(String.init).filter { $0.hasPrefix("error: ") } }
    }

    /// Runs ablab (`binary`, default the built one) with `args`, optionally under a file-size limit or an
    /// address-space limit (bytes), or as the user `nobody`.
    func ablab(_ args: [String], fileSizeLimit: Int? = nil, addressSpaceLimit: Int? = nil, asNobody: Bool = false,
               binary: String? = nil) throws -> Outcome {
        var command = ([binary ?? TestPaths.ablab!] + args).map { "'" + $0.replacingOccurrences(of: "'", with: "'\\''") + "'" }.joined(separator: " ")
        if let limit = fileSizeLimit { command = "prlimit --fsize=\(limit) -- " + command }
        if let limit = addressSpaceLimit { command = "prlimit --as=\(limit) -- " + command }
        if asNobody { command = "setpriv --reuid=65534 --regid=65534 --clear-groups -- " + command }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/sh")
        p.arguments = ["-c", "trap '' XFSZ; exec " + command]   // an ignored SIGXFSZ stays ignored across exec
        let err = Pipe()
        p.standardOutput = FileHandle.nullDevice
        p.standardError = err
        try p.run()
        let data = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return Outcome(status: p.terminationStatus, stderr: String(decoding: data, as: UTF8.self))
    }

    /// Ten short English train prompts of the shipped data.
    func promptFile(_ dir: String) throws -> String {
        let all = try PromptFile.load([TestPaths.root.appendingPathComponent("notebooks-scripts/data/prompts/harmful.jsonl").path,
                                       TestPaths.root.appendingPathComponent("notebooks-scripts/data/prompts/harmless.jsonl").path],
                                      splits: ["train"])
        let chosen = Array(all.filter { $0.label == "harmful" }.prefix(5)) + Array(all.filter { $0.label == "harmless" }.prefix(5))
        let lines = try chosen.map { p in
            String(decoding: try JSONSerialization.data(withJSONObject: ["id": p.id, "text": p.text, "label": p.label, "split": "train"]), as: UTF8.self)
        }
        let path = dir + "/prompts.jsonl"
        try (lines.joined(separator: "\n") + "\n").write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    func tempDir() throws -> String {
        let d = NSTemporaryDirectory() + "ablab-outsafety-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true)
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: d)
        return d
    }

    func record(_ out: String, _ prompts: String) -> [String] {
        ["record", "--model", TestPaths.smolGGUF, "--prompts", prompts, "--name", "smol", "--out", out, "--threads", "1", "--prompts-per-shard", "2"]
    }

    @Test("record into a read-only folder: exit 3 and one line naming the folder; nothing written", .enabled(if: ready))
    func readOnlyFolder() throws {
        let tmp = try tempDir()
        defer { try? FileManager.default.removeItem(atPath: tmp) }
        let prompts = try promptFile(tmp)
        let ro = tmp + "/readonly"
        try FileManager.default.createDirectory(atPath: ro, withIntermediateDirectories: false)
        try FileManager.default.setAttributes([.posixPermissions: 0o555], ofItemAtPath: ro)
        try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: prompts)
        let asRoot = geteuid() == 0
        var binary = TestPaths.ablab!, args = record(ro + "/run", prompts)
        if asRoot {
            try #require(FileManager.default.isExecutableFile(atPath: "/usr/bin/setpriv"), "as root, the test needs setpriv to drop privileges")
            // `nobody` may not be able to enter the checkout (e.g. a 0700 temporary folder): give it its own
            // copies (hard links where possible) of the program and the model, in this test's folder.
            func place(_ src: String, _ name: String) throws -> String {
                let dst = tmp + "/" + name
                if link(src, dst) != 0 { try FileManager.default.copyItem(atPath: src, toPath: dst) }
                return dst
            }
            binary = try place(binary, "ablab")
            args[args.firstIndex(of: TestPaths.smolGGUF)!] = try place(TestPaths.smolGGUF, "model.gguf")
        }
        let o = try ablab(args, asNobody: asRoot, binary: binary)
        #expect(o.status == ExitCode.io, "\(o.stderr)")
        #expect(o.errorLines.count == 1, "\(o.stderr)")
        #expect(o.errorLines.first?.contains(ro) == true && o.errorLines.first?.contains("not writable") == true, "\(o.stderr)")
        #expect(((try? FileManager.default.contentsOfDirectory(atPath: ro)) ?? ["?"]).isEmpty)
    }

    @Test("a checkpoint name with path components writes nothing outside the run folder", .enabled(if: ready))
    func hostileName() throws {
        let tmp = try tempDir()
        defer { try? FileManager.default.removeItem(atPath: tmp) }
        let prompts = try promptFile(tmp)
        var args = record(tmp + "/run", prompts)
        args[args.firstIndex(of: "smol")!] = "../../../escaped/evil name:*"
        let o = try ablab(args)
        #expect(o.status == 0, "\(o.stderr)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: tmp).sorted() == ["prompts.jsonl", "run"])
        let files = try FileManager.default.contentsOfDirectory(atPath: tmp + "/run/activations").filter { $0.hasSuffix(".h5") }
        #expect(files.count == 1 && !files[0].contains("/") && !files[0].hasPrefix("."), "\(files)")
    }

    @Test("record onto a full disk: exit 3, the message says so, the sealed shards survive and a rerun gives the undisturbed result", .enabled(if: ready))
    func fullDiskWhileFinishing() throws {
        let tmp = try tempDir()
        defer { try? FileManager.default.removeItem(atPath: tmp) }
        let prompts = try promptFile(tmp)
        // Each shard (2 prompts × 31 layers × 6 positions × 576 floats) is ~0.86 MB; the finished file ~4.3 MB.
        // The check before recording would refuse this limit (see InputLimitCLITests); here the writes must fail
        // cleanly when the disk fills while recording, so the check is off.
        let o = try ablab(record(tmp + "/full", prompts) + ["--no-disk-check"], fileSizeLimit: 1_000_000)
        #expect(o.status == ExitCode.io, "\(o.stderr)")
        #expect(o.errorLines.count == 1, "\(o.stderr)")
        let line = o.errorLines.first ?? ""
        #expect(line.hasPrefix("error: " + tmp + "/full/activations/smol.h5 ") && line.contains("the disk is full or a file-size limit was reached"), "\(line)")
        let act = tmp + "/full/activations"
        #expect(!FileManager.default.fileExists(atPath: act + "/smol.h5"))
        #expect(try FileManager.default.contentsOfDirectory(atPath: act).filter { $0.contains(".tmp") }.isEmpty, "a half-written file was left behind")
        let shards = try FileManager.default.contentsOfDirectory(atPath: act + "/.smol.partial").filter { $0.hasPrefix("shard-") }
        #expect(shards.count == 5, "\(shards)")

        let rerun = try ablab(record(tmp + "/full", prompts))
        #expect(rerun.status == 0, "\(rerun.stderr)")
        #expect(rerun.stderr.contains("resuming, 10 prompts already recorded"), "\(rerun.stderr)")
        let clean = try ablab(record(tmp + "/clean", prompts))
        try #require(clean.status == 0, "\(clean.stderr)")
        #expect(try datasetDifferences(act + "/smol.h5", tmp + "/clean/activations/smol.h5") == [])
    }

    @Test("generate onto a full disk: exit 3, every answer written before is complete, a rerun adds the rest", .enabled(if: ready))
    func fullDiskWhileGenerating() throws {
        let tmp = try tempDir()
        defer { try? FileManager.default.removeItem(atPath: tmp) }
        let prompts = try promptFile(tmp)
        func generate(_ out: String) -> [String] {
            ["generate", "--model", TestPaths.smolGGUF, "--prompts", prompts, "--split", "train", "--max-new-tokens", "16", "--batch", "4",
             "--threads", "1", "--name", "smol", "--out", out]
        }
        let o = try ablab(generate(tmp + "/full.jsonl"), fileSizeLimit: 1500)
        #expect(o.status == ExitCode.io, "\(o.stderr)")
        #expect(o.errorLines.count == 1 && o.errorLines.first?.contains(tmp + "/full.jsonl") == true, "\(o.stderr)")
        #expect(o.errorLines.first?.contains("the disk is full") == true, "\(o.stderr)")
        let partial = (try? String(contentsOfFile: tmp + "/full.jsonl", encoding: .utf8)) ?? ""
        #expect(partial.isEmpty || partial.hasSuffix("\n"), "the file must end with a complete line")
        let kept = partial.split(separator: "\n")
        #expect(!kept.isEmpty && kept.count < 10, "some but not all answers fit under the limit: \(kept.count)")
        for l in kept { #expect((try? JSONSerialization.jsonObject(with: Data(l.utf8))) != nil, "a torn line was left: \(l)") }

        let rerun = try ablab(generate(tmp + "/full.jsonl"))
        #expect(rerun.status == 0, "\(rerun.stderr)")
        let clean = try ablab(generate(tmp + "/clean.jsonl"))
        try #require(clean.status == 0, "\(clean.stderr)")
        let a = try String(contentsOfFile: tmp + "/full.jsonl", encoding: .utf8)
        let b = try String(contentsOfFile: tmp + "/clean.jsonl", encoding: .utf8)
        #expect(a == b, "the resumed file differs from an undisturbed run")
    }
}

/// The same work run twice gives bit-identical activations and identical generations, also with one
/// thread and unbatched: reductions have a fixed order (each output element is summed by one thread, in
/// the same order, whatever the number of threads or of rows in a batch).
@Suite("Repeatability: two runs, identical outputs", .serialized, .timeLimit(.minutes(10)))
struct RepeatabilityTests {
    let cli = OutputSafetyTests()

    @Test("record twice (default threads), and once with one thread and one prompt per batch: every dataset bit-identical", .enabled(if: OutputSafetyTests.ready))
    func recordTwice() throws {
        let tmp = try cli.tempDir()
        defer { try? FileManager.default.removeItem(atPath: tmp) }
        let prompts = try cli.promptFile(tmp)
        var paths: [String] = []
        for (k, threads) in [nil, nil, "1"].enumerated() {
            var args = ["record", "--model", TestPaths.smolGGUF, "--prompts", prompts, "--name", "smol", "--out", tmp + "/run\(k)"]
            if let threads { args += ["--threads", threads, "--batch-tokens", "40"] }   // one prompt per prefill batch
            let o = try cli.ablab(args)
            try #require(o.status == 0, "\(o.stderr)")
            paths.append(tmp + "/run\(k)/activations/smol.h5")
        }
        #expect(try datasetDifferences(paths[0], paths[1]) == [], "two runs with the default threads differ")
        #expect(try datasetDifferences(paths[0], paths[2]) == [], "one thread, one prompt per batch and the defaults differ")
    }

    @Test("generate twice (default threads), and once with one thread and one sequence at a time: identical files", .enabled(if: OutputSafetyTests.ready))
    func generateTwice() throws {
        let tmp = try cli.tempDir()
        defer { try? FileManager.default.removeItem(atPath: tmp) }
        let prompts = try cli.promptFile(tmp)
        var texts: [String] = []
        for (k, threads) in [nil, nil, "1"].enumerated() {
            var args = ["generate", "--model", TestPaths.smolGGUF, "--prompts", prompts, "--split", "train", "--max-new-tokens", "24",
                        "--name", "smol", "--out", tmp + "/g\(k).jsonl"]
            if let threads { args += ["--threads", threads, "--batch", "1"] }   // one sequence at a time
            let o = try cli.ablab(args)
            try #require(o.status == 0, "\(o.stderr)")
            texts.append(try String(contentsOfFile: tmp + "/g\(k).jsonl", encoding: .utf8))
        }
        #expect(texts[0].split(separator: "\n").count == 10)
        #expect(texts[0] == texts[1], "two runs with the default threads differ")
        #expect(texts[0] == texts[2], "one thread, one sequence at a time and the defaults differ")
    }
}
