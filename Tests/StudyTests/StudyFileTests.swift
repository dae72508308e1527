import Foundation
import Testing
@testable import Study
import AblabCore

@Suite("Study files")
struct StudyFileTests {
    let minimal = """
    [study]
    name = "t"

    [[checkpoints]]
    name = "a"
    model = "models/a.gguf"
    """

    @Test("defaults follow the study's protocol")
    func defaults() throws {
        let s = try StudyFile.parse(minimal, file: "t.toml")
        #expect(s.name == "t")
        #expect(s.out == "runs/t")
        #expect(s.checkpoints == [CheckpointSpec(name: "a", model: "models/a.gguf", chatFormat: nil)])
        #expect(s.harmfulTest == 50 && s.harmlessTest == 50 && s.maxNewTokens == 256)
        #expect(s.positions == "auto" && s.method == "mean-diff" && s.alphas == [1.0])
        #expect(s.systemPrompt == .modelDefault)
    }

    @Test("system prompt: default, none, or text")
    func systemPrompt() throws {
        #expect(SystemPromptSetting(studyValue: "") == SystemPromptSetting.none)
        #expect(SystemPromptSetting(studyValue: "default") == .modelDefault)
        #expect(SystemPromptSetting(studyValue: "Be brief.") == .text("Be brief."))
    }

    @Test("an unknown key is an error naming the key and its line")
    func unknownKey() throws {
        let text = minimal + "\n\n[generation]\nmax_new_tokns = 12\n"
        let e = try #require(throws: StudyError.self) { try StudyFile.parse(text, file: "t.toml") }
        #expect(e.key == "generation.max_new_tokns")
        #expect(e.line == 9)
        #expect(e.description.hasPrefix("t.toml:9 [generation.max_new_tokns]"))
    }

    @Test("a wrong type is an error naming the key and its line")
    func wrongType() throws {
        let text = minimal + "\n[generation]\nmax_new_tokens = \"many\"\n"
        let e = try #require(throws: StudyError.self) { try StudyFile.parse(text, file: "t.toml") }
        #expect(e.key == "generation.max_new_tokens" && e.line == 8)
    }

    @Test("a syntax error names its line")
    func syntax() throws {
        let e = try #require(throws: StudyError.self) { try StudyFile.parse("[study]\nname = \n", file: "s.toml") }
        #expect(e.line == 2)
    }

    @Test("missing [study] and duplicate checkpoint names are errors")
    func missing() throws {
        #expect(throws: StudyError.self) { try StudyFile.parse("[record]\ndtype = \"float32\"\n", file: "s.toml") }
        let dup = minimal + "\n[[checkpoints]]\nname = \"a\"\nmodel = \"b.gguf\"\n"
        #expect(throws: StudyError.self) { try StudyFile.parse(dup, file: "s.toml") }
    }

    @Test("fingerprints change with any input and not with order")
    func fingerprints() {
        #expect(fingerprint(["a": "1", "b": "2"]) == fingerprint(["b": "2", "a": "1"]))
        #expect(fingerprint(["a": "1"]) != fingerprint(["a": "2"]))
    }
}

@Suite("Shipped study files parse")
struct ShippedStudies {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    @Test(arguments: ["default.toml", "paper-full.toml", "paper-judges.toml", "template-hf-checkpoints.toml"])
    func parses(name: String) throws {
        let s = try StudyFile.load(ShippedStudies.root.appendingPathComponent("notebooks-scripts/studies/\(name)").path)
        #expect(!s.name.isEmpty)
    }
}

@Suite("Slurm scripts")
struct SlurmTests {
    let twoCheckpoints = """
    [study]
    name = "s"
    [[checkpoints]]
    name = "a"
    model = "a.gguf"
    [[checkpoints]]
    name = "b"
    model = "b.gguf"
    [abliteration]
    alphas = [1.0, 0.5]
    """

    @Test("arrays: record per checkpoint × shard, select per checkpoint, generate/judge/probe per system; a finishing job")
    func plan() throws {
        let spec = try StudyFile.parse(twoCheckpoints, file: "s.toml")
        var plan = SlurmPlan(studyFile: "s.toml", spec: spec)
        plan.shards = 3
        #expect(plan.tasks.count == 6)
        #expect(plan.systemTasks.map { "\($0.checkpoint) \($0.system)" } ==
                ["a original", "a alpha=1.0", "a alpha=0.5", "b original", "b alpha=1.0", "b alpha=0.5"])
        #expect(plan.jobs.map(\.name) == ["record", "analyze", "select", "generate", "judge", "probe", "finish"])
        #expect(plan.jobs.map { $0.after.map { "\($0.kind):\($0.job)" } ?? "" } ==
                ["", "afterok:record", "afterok:analyze", "afterok:select", "aftercorr:generate", "aftercorr:judge", "afterok:probe"])
        #expect(plan.recordScript().contains("#SBATCH --array=0-5"))
        #expect(plan.selectScript().contains("#SBATCH --array=0-1"))
        #expect(plan.systemScript("judge").contains("#SBATCH --array=0-5"))
        #expect(plan.analyzeScript().contains("--stages record,analyze --merge-shards 3"))
        // A fixed layer needs no selection; no self-judgment, no probe array.
        let fixed = try StudyFile.parse(twoCheckpoints + "\nlayer = 3\n[judges]\nself_judgment = false\n", file: "s.toml")
        #expect(SlurmPlan(studyFile: "s.toml", spec: fixed).jobs.map(\.name) == ["record", "analyze", "generate", "judge", "finish"])
        var bad = plan
        bad.time = "1:00:00\n#SBATCH --x"
        #expect(throws: InputError.self) { try bad.validate() }
    }

    /// Runs a program; returns its exit status.
    @discardableResult
    func run(_ exe: String, _ args: [String], env: [String: String] = [:], cwd: String) throws -> Int32 {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: exe)
        p.arguments = args
        p.currentDirectoryURL = URL(fileURLWithPath: cwd)
        p.environment = ProcessInfo.processInfo.environment.merging(env) { _, b in b }
        p.standardOutput = FileHandle.nullDevice
        try p.run()
        p.waitUntilExit()
        return p.terminationStatus
    }

    /// The real bash runs submit.sh (with an `sbatch` on PATH that logs its arguments) and every job script
    /// (with the ablab executable a script that logs its arguments), in folders whose names hold spaces,
    /// quotes, `$( )` and backticks: every argument arrives as one intact word and nothing is executed.
    @Test("paths with spaces, quotes and command substitutions reach sbatch and ablab intact")
    func quoting() throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("ablab-slurm-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: root) }
        let hostile = root + "/a b'c\"d $(touch PWNED) `touch PWNED2` 100%"
        let bin = hostile + "/bin dir"
        try FileManager.default.createDirectory(atPath: bin, withIntermediateDirectories: true)
        let log = root + "/calls.log"
        // Each call appends its arguments, one per line, then a line "--".
        let logger = { (extra: String) in "#!/bin/bash\nfor a in \"$@\"; do printf '%s\\n' \"$a\" >> \"$CALLS\"; done\necho -- >> \"$CALLS\"\n" + extra }
        try logger("n=$(( $(cat \"$COUNTER\" 2>/dev/null || echo 100) + 1 )); echo $n > \"$COUNTER\"; echo \"$n;cluster\"\n")
            .write(toFile: bin + "/sbatch", atomically: true, encoding: .utf8)
        try logger("").write(toFile: bin + "/ablab it's", atomically: true, encoding: .utf8)
        chmod(bin + "/sbatch", 0o755); chmod(bin + "/ablab it's", 0o755)
        let study = hostile + "/study 'x'.toml"
        let text = twoCheckpoints.replacingOccurrences(of: "name = \"a\"", with: "name = \"a b'$(touch PWNED3)\"")
        try text.write(toFile: study, atomically: true, encoding: .utf8)
        var spec = try StudyFile.parse(text, file: study)
        spec.out = hostile + "/run \"dir\""
        var plan = SlurmPlan(studyFile: study, spec: spec)
        plan.shards = 2
        plan.ablab = bin + "/ablab it's"
        plan.workingDirectory = hostile
        let written = try plan.write(to: spec.out + "/slurm")
        #expect(written.count == 8)
        let env = ["PATH": bin + ":" + (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"), "CALLS": log, "COUNTER": root + "/n",
                   "SLURM_CPUS_PER_TASK": "2"]
        #expect(try run("/bin/bash", [written.last!], env: env, cwd: root) == 0)
        func calls() throws -> [[String]] {
            let t = try String(contentsOfFile: log, encoding: .utf8)
            var out: [[String]] = [], cur: [String] = []
            for line in t.split(separator: "\n", omittingEmptySubsequences: false).dropLast() {
                if line == "--" { out.append(cur); cur = [] } else { cur.append(String(line)) }
            }
            return out
        }
        let sb = try calls()
        #expect(sb.count == 7)
        let slurmDir = spec.out + "/slurm"
        let logs = "--output=" + slurmDir.replacingOccurrences(of: "%", with: "%%") + "/logs/%x-"
        let common = ["--parsable", "--chdir=" + hostile]
        #expect(sb.first == common + [logs + "%A_%a.log", slurmDir + "/record.sbatch"])
        #expect(sb[1] == common + [logs + "%j.log", "--dependency=afterok:101", slurmDir + "/analyze.sbatch"])
        #expect(sb[4] == common + [logs + "%A_%a.log", "--dependency=aftercorr:104", slurmDir + "/judge.sbatch"])
        #expect(FileManager.default.fileExists(atPath: slurmDir + "/logs"))

        // The job scripts, one array task each.
        try FileManager.default.removeItem(atPath: log)
        let a = "a b'$(touch PWNED3)"
        let jobs: [(String, String, [String])] = [
            ("record", "1", ["run", study, "--stages", "record", "--checkpoint", a, "--shard", "1/2", "--threads", "2"]),
            ("analyze", "", ["run", study, "--stages", "record,analyze", "--merge-shards", "2", "--threads", "2"]),
            ("select", "0", ["run", study, "--stages", "select", "--checkpoint", a, "--threads", "2"]),
            ("generate", "2", ["run", study, "--stages", "generate", "--checkpoint", a, "--system", "alpha=0.5", "--threads", "2"]),
            ("probe", "3", ["run", study, "--stages", "probe", "--checkpoint", "b", "--system", "original", "--threads", "2"]),
            ("finish", "", ["run", study, "--threads", "2"]),
        ]
        for (job, task, _) in jobs {
            #expect(try run("/bin/bash", [slurmDir + "/\(job).sbatch"], env: env.merging(["SLURM_ARRAY_TASK_ID": task]) { _, b in b }, cwd: hostile) == 0)
        }
        #expect(try calls() == jobs.map(\.2))
        for f in ["PWNED", "PWNED2", "PWNED3"] {
            #expect(!FileManager.default.fileExists(atPath: hostile + "/" + f) && !FileManager.default.fileExists(atPath: root + "/" + f))
        }
    }
}
