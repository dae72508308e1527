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

/// Every key of the README's study table is read: a non-default value in the file must reach the spec
/// (a parser that ignored the key would leave the default and fail here).
@Suite("Every documented study key is read")
struct StudyKeyTests {
    static let base = "[study]\nname = \"k\"\n"
    static let cases: [(key: String, toml: String)] = [
        ("study.out", "[study]\nname = \"k\"\nout = \"elsewhere\"\n"),
        ("study.system_prompt", "[study]\nname = \"k\"\nsystem_prompt = \"\"\n"),
        ("checkpoints", base + "[[checkpoints]]\nname = \"a\"\nmodel = \"a.gguf\"\nchat_format = \"chatml\"\n"),
        ("prompts.files", base + "[prompts]\nfiles = [\"p.jsonl\"]\n"),
        ("prompts.train_per_class", base + "[prompts]\ntrain_per_class = 7\n"),
        ("prompts.test_per_class", base + "[prompts]\ntest_per_class = 7\n"),
        ("prompts.validation_per_class", base + "[prompts]\nvalidation_per_class = 7\n"),
        ("record.positions", base + "[record]\npositions = \"-5:\"\n"),
        ("record.dtype", base + "[record]\ndtype = \"float16\"\n"),
        ("record.hooks", base + "[record]\nhooks = [\"blocks.1.hook_attn_out\"]\n"),
        ("record.hook_positions", base + "[record]\nhook_positions = \"-1\"\n"),
        ("record.compress", base + "[record]\ncompress = true\n"),
        ("analysis.bootstrap", base + "[analysis]\nbootstrap = 7\n"),
        ("analysis.max_components", base + "[analysis]\nmax_components = 7\n"),
        ("abliteration.method", base + "[abliteration]\nmethod = \"pc1\"\n"),
        ("abliteration.layer", base + "[abliteration]\nlayer = 7\n"),
        ("abliteration.position", base + "[abliteration]\nposition = -2\n"),
        ("abliteration.alphas", base + "[abliteration]\nalphas = [0.5, 2]\n"),
        ("abliteration.export_weights", base + "[abliteration]\nexport_weights = true\n"),
        ("abliteration.select_top", base + "[abliteration]\nselect_top = 7\n"),
        ("abliteration.select_prompts", base + "[abliteration]\nselect_prompts = 7\n"),
        ("abliteration.select_required", base + "[abliteration]\nselect_required = true\n"),
        ("abliteration.edit", base + "[abliteration]\nedit = \"study\"\nskip_begin = 2\nskip_end = 3\n"),
        ("generation.harmful", base + "[generation]\nharmful = 7\n"),
        ("generation.harmless", base + "[generation]\nharmless = 7\n"),
        ("generation.max_new_tokens", base + "[generation]\nmax_new_tokens = 7\n"),
        ("generation.batch_size", base + "[generation]\nbatch_size = 7\n"),
        ("judges.use", base + "[judges]\nuse = [\"substring:arditi\"]\n"),
        ("judges.reference", base + "[judges]\nreference = \"substring:arditi\"\n"),
        ("judges.self_judgment", base + "[judges]\nself_judgment = false\n"),
        ("judges.self_judgment_question", base + "[judges]\nself_judgment_question = \"served\"\n"),
        ("judges.patterns", base + "[[judges.patterns]]\nname = \"p\"\npatterns = [\"no\"]\nregex = true\n"),
        ("judges.labels", base + "[[judges.labels]]\nname = \"h\"\nfile = \"h.csv\"\nid_column = \"qid\"\nsystem_column = \"model\"\nverdict_column = \"v\"\nrefusal_values = [\"yes\"]\n"),
        ("paper.data", base + "[paper]\ndata = \"d\"\n"),
        ("report.figures", base + "[report]\nfigures = \"f\"\n"),
        ("abliteration.full_grid", base + "[abliteration]\nfull_grid = true\n"),
        ("generation.costs", base + "[generation]\ncosts = false\n"),
        ("subspace.ks", base + "[subspace]\nks = [4, 1, 4]\n"),
        ("subspace.bases", base + "[subspace]\nbases = [\"layers\"]\n"),
        ("subspace.threshold", base + "[subspace]\nthreshold = 0.25\n"),
        ("subspace.harmful", base + "[subspace]\nharmful = 7\n"),
        ("subspace.harmless", base + "[subspace]\nharmless = 7\n"),
        ("subspace.max_new_tokens", base + "[subspace]\nmax_new_tokens = 7\n"),
        ("subspace.checkpoints", base + "[[checkpoints]]\nname = \"a\"\nmodel = \"a.gguf\"\n[[checkpoints]]\nname = \"b\"\nmodel = \"b.gguf\"\n[subspace]\ncheckpoints = [\"b\"]\n"),
        ("abliteration.method=per-layer", base + "[abliteration]\nmethod = \"per-layer\"\n"),
        ("abliteration.method=projected", base + "[abliteration]\nmethod = \"projected\"\n"),
        ("abliteration.method=norm-preserving", base + "[abliteration]\nmethod = \"norm-preserving\"\n"),
    ]

    @Test("a non-default value of the key reaches the study spec", arguments: cases.map(\.key))
    func keyIsRead(key: String) throws {
        let toml = try #require(Self.cases.first { $0.key == key }).toml
        let s = try StudyFile.parse(toml, file: "k.toml")
        let d = try StudyFile.parse(Self.base, file: "k.toml")
        switch key {
        case "study.out": #expect(s.out == "elsewhere" && d.out == "runs/k")
        case "study.system_prompt": #expect(s.systemPrompt == SystemPromptSetting.none && d.systemPrompt == .modelDefault)
        case "checkpoints": #expect(s.checkpoints == [CheckpointSpec(name: "a", model: "a.gguf", chatFormat: "chatml")])
        case "prompts.files": #expect(s.promptFiles == ["p.jsonl"] && d.promptFiles.isEmpty)
        case "prompts.train_per_class": #expect(s.trainPerClass == 7 && d.trainPerClass == nil)
        case "prompts.test_per_class": #expect(s.testPerClass == 7 && d.testPerClass == nil)
        case "prompts.validation_per_class": #expect(s.validationPerClass == 7 && d.validationPerClass == 32)
        case "record.positions": #expect(s.positions == "-5:" && d.positions == "auto")
        case "record.dtype": #expect(s.dtype == "float16" && d.dtype == "float32")
        case "record.hooks": #expect(s.hooks == ["blocks.1.hook_attn_out"] && d.hooks.isEmpty)
        case "record.hook_positions": #expect(s.hookPositions == "-1" && d.hookPositions == nil)
        case "record.compress": #expect(s.compress && !d.compress)
        case "analysis.bootstrap": #expect(s.bootstrap == 7 && d.bootstrap == 200)
        case "analysis.max_components": #expect(s.maxComponents == 7 && d.maxComponents == 32)
        case "abliteration.method": #expect(s.method == "pc1" && d.method == "mean-diff")
        case "abliteration.layer": #expect(s.layer == 7 && d.layer == nil)
        case "abliteration.position": #expect(s.position == -2 && d.position == -1)
        case "abliteration.alphas": #expect(s.alphas == [0.5, 2] && d.alphas == [1])
        case "abliteration.export_weights": #expect(s.exportWeights && !d.exportWeights)
        case "abliteration.select_top": #expect(s.selectTop == 7 && d.selectTop == 5)
        case "abliteration.select_prompts": #expect(s.selectPrompts == 7 && d.selectPrompts == 32)
        case "abliteration.select_required": #expect(s.selectRequired && !d.selectRequired)
        case "abliteration.edit": #expect(s.edit == "study" && s.skipBegin == 2 && s.skipEnd == 3 && d.edit == "arditi" && d.skipBegin == 1 && d.skipEnd == 0)
        case "generation.harmful": #expect(s.harmfulTest == 7 && d.harmfulTest == 50)
        case "generation.harmless": #expect(s.harmlessTest == 7 && d.harmlessTest == 50)
        case "generation.max_new_tokens": #expect(s.maxNewTokens == 7 && d.maxNewTokens == 256)
        case "generation.batch_size": #expect(s.batchSize == 7 && d.batchSize == 16)
        case "judges.use": #expect(s.judges == ["substring:arditi"] && d.judges == ["regex:paper", "substring:arditi"])
        case "judges.reference": #expect(s.referenceJudge == "substring:arditi" && d.referenceJudge == "regex:paper")
        case "judges.self_judgment": #expect(!s.selfJudgment && d.selfJudgment)
        case "judges.self_judgment_question": #expect(s.selfJudgmentQuestions == ["served"] && d.selfJudgmentQuestions == ["served", "refused"])
        case "judges.patterns": #expect(s.patternJudges == [PatternJudgeSpec(name: "p", patterns: ["no"], regex: true)] && d.patternJudges.isEmpty)
        case "judges.labels":
            #expect(s.labelJudges == [LabelJudgeSpec(name: "h", file: "h.csv", idColumn: "qid", systemColumn: "model", verdictColumn: "v", refusalValues: ["yes"])])
        case "paper.data": #expect(s.paperData == "d" && d.paperData == nil)
        case "report.figures": #expect(s.figures == "f" && d.figures == nil)
        case "abliteration.full_grid": #expect(s.fullGrid && !d.fullGrid)
        case "generation.costs": #expect(!s.costs && d.costs)
        case "subspace.ks": #expect(s.subspace?.ks == [1, 4] && d.subspace == nil)
        case "subspace.bases": #expect(s.subspace?.bases == ["layers"] && SubspaceSpec().bases == ["pca", "layers"])
        case "subspace.threshold": #expect(s.subspace?.threshold == 0.25 && SubspaceSpec().threshold == 0.1)
        case "subspace.harmful": #expect(s.subspace?.harmful == 7 && SubspaceSpec().harmful == nil)
        case "subspace.harmless": #expect(s.subspace?.harmless == 7 && SubspaceSpec().harmless == nil)
        case "subspace.max_new_tokens": #expect(s.subspace?.maxNewTokens == 7 && SubspaceSpec().maxNewTokens == nil && SubspaceSpec().ks == [1, 2, 4, 8])
        case "subspace.checkpoints": #expect(s.subspace?.checkpoints == ["b"] && SubspaceSpec().checkpoints == nil)
        case "abliteration.method=per-layer": #expect(s.method == "per-layer")
        case "abliteration.method=projected": #expect(s.method == "projected")
        case "abliteration.method=norm-preserving": #expect(s.method == "norm-preserving")
        default: Issue.record("no check for key \(key)")
        }
    }

    @Test("bad values of the new keys are errors naming the key")
    func badValues() throws {
        for (toml, key) in [(Self.base + "[judges]\nself_judgment_question = \"maybe\"\n", "judges.self_judgment_question"),
                            (Self.base + "[abliteration]\nedit = \"both\"\n", "abliteration.edit"),
                            (Self.base + "[prompts]\nvalidation_per_class = -1\n", "prompts.validation_per_class"),
                            (Self.base + "[subspace]\nks = [0]\n", "subspace.ks"),
                            (Self.base + "[subspace]\nbases = [\"random\"]\n", "subspace.bases"),
                            (Self.base + "[subspace]\nthreshold = 2\n", "subspace.threshold"),
                            (Self.base + "[subspace]\nk = [1]\n", "subspace.k"),
                            (Self.base + "[subspace]\ncheckpoints = [\"nope\"]\n", "subspace.checkpoints"),
                            (Self.base + "[abliteration]\nmethod = \"biprojected\"\n", "abliteration.method")] {
            let e = try #require(throws: StudyError.self) { try StudyFile.parse(toml, file: "k.toml") }
            #expect(e.key == key && e.line != nil)
        }
    }
}
