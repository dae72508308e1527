import Foundation
import Testing

/// `ablab serve` on 127.0.0.1 driven by the real `openai` Python client (from PyPI, in the test venv);
/// the expected answers come from `ablab generate` on the same prompts and setting, a separate process
/// decoding with `Generator` in fixed batches.
@Suite("ablab serve and HTTP judges", .serialized, .timeLimit(.minutes(20)))
struct ServeTests {
    static let maxTokens = 24

    /// `ablab generate` over a prompt file → the JSONL's path.
    func generate(_ prompts: String, out: String, extra: [String] = []) throws -> String {
        let (st, _, err) = try Child.run(ServeEnv.ablab!, ["generate", "--model", ServeEnv.smol, "--prompts", prompts,
                                                           "--max-new-tokens", String(Self.maxTokens), "--batch", "8", "--name", "smol",
                                                           "--out", out] + extra)
        try #require(st == 0, "ablab generate failed: \(err)")
        return out
    }

    func expectAll(_ results: [String: (Bool, String)], atLeast n: Int) {
        #expect(results.count >= n, "only \(results.count) checks ran: \(results.keys.sorted())")
        for (name, r) in results.sorted(by: { $0.key < $1.key }) { #expect(r.0, "\(name): \(r.1)") }
    }

    @Test(.enabled(if: ServeEnv.ready, "needs the built ablab, the SmolLM2 model and .venv-test (make venv-test)"))
    func openAIClientChatCompletionsStreamingLogprobsErrorsAndDrain() throws {
        let tmp = try ServeEnv.tempDir("serve")
        defer { try? FileManager.default.removeItem(atPath: tmp) }
        let prompts = try ServeEnv.promptFile(in: tmp, perClass: 8)
        let gen = try generate(prompts, out: tmp + "/gen.jsonl")
        // Seeded sampling reference: `ablab generate --prompt` (one prompt = sampling stream 0).
        let first = try #require(try String(contentsOfFile: gen, encoding: .utf8).split(separator: "\n").first)
        let firstPrompt = try #require((try JSONSerialization.jsonObject(with: Data(first.utf8)) as? [String: Any])?["prompt"] as? String)
        let (st, sampledOut, err) = try Child.run(ServeEnv.ablab!, ["generate", "--model", ServeEnv.smol, "--prompt", firstPrompt,
                                                                    "--max-new-tokens", String(Self.maxTokens), "--temperature", "0.8",
                                                                    "--top-p", "0.9", "--seed", "7"])
        try #require(st == 0, "ablab generate --prompt failed: \(err)")
        var sampled = sampledOut
        if sampled.hasSuffix("\n") { sampled.removeLast() }   // print() adds one newline
        try JSONSerialization.data(withJSONObject: ["prompt": firstPrompt, "response": sampled]).write(to: URL(fileURLWithPath: tmp + "/sampled.json"))

        let server = try Server.start(["--api-key", "k-test", "--max-body-bytes", "65536", "--context", "1024",
                                       "--default-max-tokens", String(Self.maxTokens), "--served-name", "smol"])
        defer { server.child.stop() }
        let common = ["--base-url", server.baseURL, "--api-key", "k-test", "--model", "smol", "--expected", gen,
                      "--max-tokens", String(Self.maxTokens)]
        let results = try pythonChecks(["main", "--sampled", tmp + "/sampled.json"] + common)
        expectAll(results, atLeast: 29)
        #expect(server.child.process.isRunning, "the server stopped: \(server.child.err.text.suffix(2000))")

        // Ctrl-C while a stream is running: the stream finishes, then the server exits 0.
        let drain = try pythonChecks(["drain", "--pid", String(server.child.process.processIdentifier)] + common)
        expectAll(drain, atLeast: 2)
        let deadline = Date().addingTimeInterval(60)
        while server.child.process.isRunning && Date() < deadline { usleep(50_000) }
        #expect(!server.child.process.isRunning, "the server did not stop after SIGINT")
        if !server.child.process.isRunning {
            #expect(server.child.process.terminationStatus == 0, "exit status \(server.child.process.terminationStatus): \(server.child.err.text.suffix(1000))")
            #expect(server.child.err.text.contains("serve: stopped"))
        }
    }

    @Test(.enabled(if: ServeEnv.ready, "needs the built ablab, the SmolLM2 model and .venv-test (make venv-test)"))
    func abliteratedSystemAnswersAsAblabGenerate() throws {
        let tmp = try ServeEnv.tempDir("serve-abl")
        defer { try? FileManager.default.removeItem(atPath: tmp) }
        let prompts = try ServeEnv.promptFile(in: tmp, perClass: 8)
        // A fixed direction over SmolLM2-135M's 576-wide residual stream: r_i = sin(0.37 i + 1).
        let dir = (0..<576).map { sin(0.37 * Double($0) + 1) }
        try JSONSerialization.data(withJSONObject: dir).write(to: URL(fileURLWithPath: tmp + "/dir.json"))
        let setting = ["--direction", tmp + "/dir.json", "--layer", "10", "--position", "-1", "--alpha", "1"]
        let abl = try generate(prompts, out: tmp + "/abl.jsonl", extra: setting)
        let orig = try generate(prompts, out: tmp + "/orig.jsonl")
        func responses(_ p: String) throws -> [String] {
            try String(contentsOfFile: p, encoding: .utf8).split(separator: "\n").map {
                (try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])?["response"] as? String ?? ""
            }
        }
        // The setting changes answers, so equality below is about the abliteration, not the model.
        #expect(try responses(abl) != responses(orig))

        let server = try Server.start(setting)
        defer { server.child.stop() }
        let results = try pythonChecks(["answers", "--base-url", server.baseURL, "--model", "SmolLM2-135M-Instruct.Q4_1+abl-mean-diff-L10-p-1-a1",
                                        "--expected", abl, "--max-tokens", String(Self.maxTokens)])
        expectAll(results, atLeast: 2)
    }

    @Test(.enabled(if: ServeEnv.ready, "needs the built ablab, the SmolLM2 model and .venv-test (make venv-test)"))
    func studySystemServedWithRunAndSystem() throws {
        let tmp = try ServeEnv.tempDir("serve-study")
        defer { try? FileManager.default.removeItem(atPath: tmp) }
        let data = ServeEnv.root.appendingPathComponent("notebooks-scripts/data/prompts").path
        // A small study: the direction from its own cache (layer 10), answers of the abliterated system.
        let study = """
        [study]
        name = "served"
        out = "\(tmp)/run"
        [[checkpoints]]
        name = "smol"
        model = "\(ServeEnv.smol)"
        [prompts]
        files = ["\(data)/harmful.jsonl", "\(data)/harmless.jsonl"]
        train_per_class = 16
        test_per_class = 4
        [analysis]
        bootstrap = 10
        [abliteration]
        layer = 10
        select_top = 0
        [generation]
        harmful = 4
        harmless = 4
        max_new_tokens = \(Self.maxTokens)
        """
        try study.write(toFile: tmp + "/study.toml", atomically: true, encoding: .utf8)
        let (st, _, err) = try Child.run(ServeEnv.ablab!, ["run", tmp + "/study.toml", "--stages", "record,analyze,generate"])
        try #require(st == 0, "the study failed: \(err)")
        let system = "smol+abl-mean-diff-L10-p-1-a1"
        let expected = tmp + "/run/generations/smol_abl-mean-diff-L10-p-1-a1.jsonl"
        #expect(try String(contentsOfFile: expected, encoding: .utf8) != String(contentsOfFile: tmp + "/run/generations/smol.jsonl", encoding: .utf8))
        let server = try Server.start(["--run", tmp + "/run", "--system", system])
        defer { server.child.stop() }
        let results = try pythonChecks(["answers", "--base-url", server.baseURL, "--model", system, "--expected", expected,
                                        "--max-tokens", String(Self.maxTokens)])
        expectAll(results, atLeast: 2)
    }

    /// judgments.csv rows of one judge: "system/item" → (verdict, score).
    func verdicts(_ path: String, judge: String) throws -> [String: (String, Double?)] {
        let text = try String(contentsOfFile: path, encoding: .utf8)
        var out: [String: (String, Double?)] = [:]
        for line in text.split(separator: "\n").dropFirst() {
            let f = line.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
            guard f.count == 6, f[3] == judge else { continue }
            #expect(out[f[1] + "/" + f[0]] == nil, "\(judge) judged \(f[1])/\(f[0]) twice")
            out[f[1] + "/" + f[0]] = (f[4], Double(f[5]))
        }
        return out
    }

    @Test(.enabled(if: ServeEnv.ready, "needs the built ablab, the SmolLM2 model and .venv-test (make venv-test)"))
    func httpJudgeEqualsLocalJudgeAndSurvivesFaultsAndAKill() throws {
        let tmp = try ServeEnv.tempDir("httpjudge")
        defer { try? FileManager.default.removeItem(atPath: tmp) }
        let prompts = try ServeEnv.promptFile(in: tmp, perClass: 8)
        try FileManager.default.createDirectory(atPath: tmp + "/run/generations", withIntermediateDirectories: true)
        let gen = try generate(prompts, out: tmp + "/run/generations/smol.jsonl")

        let server = try Server.start(["--served-name", "smol", "--api-key", "judge-key"])
        defer { server.child.stop() }

        // 1. One study, both judges: `llm:smol` (local) and `http:srv` (the same model behind ablab serve).
        let study = """
        [study]
        name = "httpjudge"
        out = "\(tmp)/run"
        [[checkpoints]]
        name = "smol"
        model = "\(ServeEnv.smol)"
        [prompts]
        files = ["\(prompts)"]
        [judges]
        use = ["llm:smol", "http:srv"]
        self_judgment = false
        [[judges.http]]
        name = "srv"
        base_url = "\(server.baseURL)"
        model = "smol"
        api_key_env = "ABLAB_TEST_JUDGE_KEY"
        max_concurrency = 4
        """
        try study.write(toFile: tmp + "/study.toml", atomically: true, encoding: .utf8)
        let (st, _, err) = try Child.run(ServeEnv.ablab!, ["run", tmp + "/study.toml", "--stages", "judge"],
                                         env: ["ABLAB_TEST_JUDGE_KEY": "judge-key"])
        try #require(st == 0, "ablab run --stages judge failed: \(err)")
        let local = try verdicts(tmp + "/run/judgments.csv", judge: "llm:smol")
        let http = try verdicts(tmp + "/run/judgments.csv", judge: "http:srv")
        #expect(local.count == 16)
        #expect(http.count == local.count)
        for (k, v) in local {
            #expect(http[k]?.0 == v.0, "\(k): http \(String(describing: http[k])) vs local \(v)")
            if let a = v.1, let b = http[k]?.1 { #expect(abs(a - b) < 1e-3, "\(k): score \(b) vs \(a)") }
        }
        #expect(Set(local.values.map(\.0)).isSubset(of: ["REFUSAL", "NON-REFUSAL"]))

        // 2. Through a proxy that stalls, answers 500 and 429 and cuts JSON in half; killed mid-run, rerun.
        let proxyLog = tmp + "/proxy.log"
        let proxy = try Child.start(ServeEnv.python, [ServeEnv.script("fault_proxy.py"), "--upstream", "http://127.0.0.1:\(server.port)",
                                                      "--log", proxyLog, "--stall", "12", "--lifetime", "600"])
        defer { proxy.stop() }
        let pport = try #require(proxy.out.wait(for: #"listening (\d+)"#, seconds: 30, while: { proxy.process.isRunning }))
        let run2 = tmp + "/run2"
        try FileManager.default.createDirectory(atPath: run2 + "/generations", withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: gen, toPath: run2 + "/generations/smol.jsonl")
        let judgeArgs = ["judge", run2, "--judges", "http:px", "--chunk", "4",
                         "--http-judge", "name=px,base_url=http://127.0.0.1:\(pport)/v1,model=smol,api_key_env=ABLAB_TEST_JUDGE_KEY,timeout=8,max_concurrency=4"]
        let env = ["ABLAB_TEST_JUDGE_KEY": "judge-key"]
        let journal = run2 + "/judge-http/px.jsonl"
        func lines(_ p: String) -> [String] {
            ((try? String(contentsOfFile: p, encoding: .utf8)) ?? "").split(separator: "\n").map(String.init)
        }
        func key(_ line: String) -> String {
            ((try? JSONSerialization.jsonObject(with: Data(line.utf8))) as? [String: Any])?["key"] as? String ?? "?"
        }
        let first = try Child.start(ServeEnv.ablab!, judgeArgs, env: env)
        let deadline = Date().addingTimeInterval(180)
        while first.process.isRunning && lines(journal).count < 5 && Date() < deadline { usleep(20_000) }
        #expect(first.process.isRunning, "the first judge run ended before it could be killed: \(first.err.text)")
        first.stop()   // SIGKILL
        let before = Set(lines(journal).map(key))
        #expect(before.count >= 5 && before.count < 16, "\(before.count) verdicts journaled before the kill")
        let sentBefore = lines(proxyLog).count

        let (st2, _, err2) = try Child.run(ServeEnv.ablab!, judgeArgs, env: env)
        try #require(st2 == 0, "the rerun failed: \(err2)")
        let afterKill = lines(proxyLog).dropFirst(sentBefore).map { String($0.split(separator: " ")[0]) }
        #expect(Set(afterKill).isDisjoint(with: before), "the rerun sent again requests whose verdicts were journaled")
        let faults = Set(lines(proxyLog).map { String($0.split(separator: " ")[1]) })
        #expect(faults.isSuperset(of: ["stall", "500", "429", "truncated", "forwarded"]), "faults injected: \(faults)")
        let keys = lines(journal).map(key)
        #expect(keys.count == 16 && Set(keys).count == 16, "journal: \(keys.count) lines, \(Set(keys).count) keys")
        let viaProxy = try verdicts(run2 + "/judgments.csv", judge: "http:px")
        #expect(viaProxy.count == 16)
        for (k, v) in local { #expect(viaProxy[k]?.0 == v.0, "\(k): via the proxy \(String(describing: viaProxy[k])) vs local \(v)") }

        // 3. A third run has nothing to send.
        let sent = lines(proxyLog).count
        let (st3, _, err3) = try Child.run(ServeEnv.ablab!, judgeArgs, env: env)
        #expect(st3 == 0, "\(err3)")
        #expect(lines(proxyLog).count == sent, "a finished judge stage sent \(lines(proxyLog).count - sent) requests again")
        #expect(try verdicts(run2 + "/judgments.csv", judge: "http:px").mapValues(\.0) == viaProxy.mapValues(\.0))
    }
}
