import Foundation
import Testing
import AblabCore
import ActivationCache
import HDF5

/// The real `ablab` process given inputs beyond what the model or the machine can hold: a prompt of 30
/// million words, a prompt one token over the context (token count from transformers, in
/// Tests/ModelRuntimeTests/Fixtures/limits/models.json), an address-space limit below the model's need
/// (`prlimit --as`) and a file-size limit below the cache's size (`prlimit --fsize`). Every case: the stated
/// exit code and one `error:` line with the numbers, before any model work is stored.
@Suite("Inputs beyond the model or the machine: refused before the work", .serialized, .timeLimit(.minutes(10)))
struct InputLimitCLITests {
    let cli = OutputSafetyTests()
    /// Address space every refusal below must fit in (the model alone needs more than half of it, as Float32).
    static let addressSpaceBound = 1 << 30

    static var smol: [String: Any]? {
        let url = TestPaths.root.appendingPathComponent("Tests/ModelRuntimeTests/Fixtures/limits/models.json")
        guard let d = try? Data(contentsOf: url), let j = try? JSONSerialization.jsonObject(with: d) as? [String: Any] else { return nil }
        return (j["models"] as? [String: Any])?["smollm2"] as? [String: Any]
    }

    func line(_ id: String, _ text: String, label: String = "harmful") throws -> String {
        String(decoding: try JSONSerialization.data(withJSONObject: ["id": id, "text": text, "label": label, "split": "train"]), as: UTF8.self)
    }

    /// "word" + n × " word": the fixture's prompt with `repeats` repetitions has context + 1 chat tokens.
    func overContextText() throws -> (text: String, tokens: Int, context: Int) {
        let m = try #require(Self.smol)
        let o = try #require(m["over_context_prompt"] as? [String: Any])
        return ("word" + String(repeating: " word", count: try #require(o["repeats"] as? Int)),
                try #require(o["chat_tokens"] as? Int), try #require(m["context_length"] as? Int))
    }

    func record(_ prompts: String, _ out: String, _ extra: [String] = []) -> [String] {
        ["record", "--model", TestPaths.smolGGUF, "--prompts", prompts, "--name", "smol", "--out", out, "--threads", "1"] + extra
    }

    @Test("a prompt of 30 million words: exit 2, one line naming file, line, id and sizes, under a 1 GiB address space", .enabled(if: OutputSafetyTests.ready))
    func thirtyMillionWords() throws {
        let tmp = try cli.tempDir()
        defer { try? FileManager.default.removeItem(atPath: tmp) }
        let path = tmp + "/huge.jsonl"
        var data = Data((try line("ok-1", "How do I bake bread?", label: "harmless") + "\n").utf8)
        let head = #"{"id": "huge-1", "label": "harmful", "text": ""#, tail = "\"}"
        data.append(Data(head.utf8))
        data.append(Data(String(repeating: "word ", count: 30_000_000).utf8))
        data.append(Data((tail + "\n").utf8))
        let lineBytes = head.utf8.count + 5 * 30_000_000 + tail.utf8.count
        try data.write(to: URL(fileURLWithPath: path))
        let o = try cli.ablab(record(path, tmp + "/run"), addressSpaceLimit: Self.addressSpaceBound)
        #expect(o.status == ExitCode.badInput, "\(o.stderr)")
        #expect(o.errorLines.count == 1, "\(o.stderr)")
        let e = o.errorLines.first ?? ""
        #expect(e.hasPrefix("error: \(path):2 [huge-1]: ") && e.contains("\(lineBytes) bytes") && e.contains("\(InputLimits.maxLineBytes) bytes"), "\(e)")
        #expect(!FileManager.default.fileExists(atPath: tmp + "/run"), "nothing is written")
    }

    @Test("a prompt one token over the context: exit 2 naming file, line, id and both token counts; nothing recorded", .enabled(if: OutputSafetyTests.ready && smol != nil))
    func oneTokenOver() throws {
        let tmp = try cli.tempDir()
        defer { try? FileManager.default.removeItem(atPath: tmp) }
        let (text, tokens, context) = try overContextText()
        let path = tmp + "/p.jsonl"
        try ([try line("short-1", "Hello there", label: "harmless"), try line("long-1", text)].joined(separator: "\n") + "\n")
            .write(toFile: path, atomically: true, encoding: .utf8)
        let o = try cli.ablab(record(path, tmp + "/run"), addressSpaceLimit: Self.addressSpaceBound)
        #expect(o.status == ExitCode.badInput, "\(o.stderr)")
        #expect(o.errorLines.count == 1, "\(o.stderr)")
        let e = o.errorLines.first ?? ""
        #expect(e.hasPrefix("error: \(path):2 [long-1]: ") && e.contains("\(tokens) chat-formatted tokens")
                && e.contains("\(context) tokens") && e.contains("--skip-too-long"), "\(e)")
        #expect(!FileManager.default.fileExists(atPath: tmp + "/run"), "nothing is written")

        // generate: the prompt alone fits after removing 1 word, but not with the new tokens.
        let g = try cli.ablab(["generate", "--model", TestPaths.smolGGUF, "--prompts", path, "--max-new-tokens", "8", "--threads", "1", "--out", tmp + "/g.jsonl"])
        #expect(g.status == ExitCode.badInput, "\(g.stderr)")
        #expect(g.errorLines.count == 1 && g.errorLines[0].contains("[long-1]") && g.errorLines[0].contains("+ 8 new tokens = \(tokens + 8)"), "\(g.stderr)")
        #expect(!FileManager.default.fileExists(atPath: tmp + "/g.jsonl"))
    }

    @Test("--skip-too-long records the others; the cache equals a run without the long prompt", .enabled(if: OutputSafetyTests.ready && smol != nil))
    func skipTooLong() throws {
        let tmp = try cli.tempDir()
        defer { try? FileManager.default.removeItem(atPath: tmp) }
        let (text, _, _) = try overContextText()
        let short = [try line("a", "Write a poem about rain.", label: "harmless"), try line("b", "How do I pick a lock?"),
                     try line("c", "Name three rivers.", label: "harmless")]
        let with = tmp + "/with.jsonl", without = tmp + "/without.jsonl"
        try ([short[0], short[1], try line("long-1", text), short[2]].joined(separator: "\n") + "\n").write(toFile: with, atomically: true, encoding: .utf8)
        try (short.joined(separator: "\n") + "\n").write(toFile: without, atomically: true, encoding: .utf8)
        let o = try cli.ablab(record(with, tmp + "/a", ["--skip-too-long"]))
        #expect(o.status == 0, "\(o.stderr)")
        #expect(o.stderr.contains("1 prompt too long for the context left out: long-1"), "\(o.stderr)")
        let clean = try cli.ablab(record(without, tmp + "/b"))
        try #require(clean.status == 0, "\(clean.stderr)")
        let a = tmp + "/a/activations/smol.h5", b = tmp + "/b/activations/smol.h5"
        #expect(try datasetDifferences(a, b) == [])
        #expect(try H5File.open(a).stringAttribute("prompt_set_sha256") == H5File.open(b).stringAttribute("prompt_set_sha256"))
    }

    @Test("an address-space limit below the model's need: exit 5 with the numbers and the remedy, not a kill", .enabled(if: OutputSafetyTests.ready && smol != nil))
    func memoryRefusal() throws {
        let tmp = try cli.tempDir()
        defer { try? FileManager.default.removeItem(atPath: tmp) }
        let path = tmp + "/p.jsonl"
        try (try line("a", "Hello there", label: "harmless") + "\n").write(toFile: path, atomically: true, encoding: .utf8)
        // The weights as held are 92 MiB (gguf-py's stored bytes of the matrices, norms as Float32), but a
        // prefill batch of 30,000 tokens needs about 1 GiB of buffers (1.5 × rows × (3d + qkv + q + 3f) × 4
        // bytes, rows capped by nothing here) and the process itself a few hundred MiB of address space to
        // start, so 800 MiB is below the total.
        let held = try #require(Self.smol?["loaded_held_bytes"] as? Int)
        let o = try cli.ablab(record(path, tmp + "/run", ["--batch-tokens", "30000"]), addressSpaceLimit: 800 << 20)
        #expect(o.status == ExitCode.resources, "\(o.stderr)")
        #expect(o.errorLines.count == 1, "\(o.stderr)")
        let e = o.errorLines.first ?? ""
        #expect(e.hasPrefix("error: \(TestPaths.smolGGUF): not enough memory: ") && e.contains("weights \(InputLimits.formatBytes(held))")
                && e.contains("address-space limit") && e.contains("--batch-tokens"), "\(e)")
        #expect(!FileManager.default.fileExists(atPath: tmp + "/run"), "nothing is written")
    }

    @Test("a file-size limit below the cache's estimate: exit 3 naming both sizes before any prompt is recorded", .enabled(if: OutputSafetyTests.ready))
    func diskRefusal() throws {
        let tmp = try cli.tempDir()
        defer { try? FileManager.default.removeItem(atPath: tmp) }
        let prompts = try cli.promptFile(tmp)
        // 10 prompts × 31 layers × 6 positions × 576 floats × 4 bytes = 4,285,440 bytes of activations alone.
        let activations = 10 * 31 * 6 * 576 * 4
        let o = try cli.ablab(record(prompts, tmp + "/run", ["--prompts-per-shard", "2"]), fileSizeLimit: activations - 1)
        #expect(o.status == ExitCode.io, "\(o.stderr)")
        #expect(o.errorLines.count == 1, "\(o.stderr)")
        let e = o.errorLines.first ?? ""
        #expect(e.hasPrefix("error: \(tmp)/run/activations/smol.h5: ") && e.contains("file-size limit") && e.contains("\(activations - 1) bytes"), "\(e)")
        let size = e.range(of: #"about [0-9.]+ [KMG]iB \(([0-9]+) bytes"#, options: .regularExpression).map { String(e[$0]) } ?? ""
        let estimate = Int(size.split(separator: "(").last?.split(separator: " ").first ?? "") ?? 0
        #expect(estimate >= activations, "the estimate \(estimate) is below the activations' \(activations) bytes: \(e)")
        #expect(!FileManager.default.fileExists(atPath: tmp + "/run/activations/.smol.partial"), "no prompt was recorded")
        // The estimate is printed at the start of a normal run.
        let ok = try cli.ablab(record(prompts, tmp + "/run2"))
        #expect(ok.status == 0 && ok.stderr.contains("10 prompts → \(tmp)/run2/activations/smol.h5, about "), "\(ok.stderr)")
    }
}
