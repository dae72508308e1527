import Foundation
import Testing
@testable import Study

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
    @Test("one array task per checkpoint and shard; the finishing job merges shards")
    func plan() throws {
        let spec = try StudyFile.parse("""
        [study]
        name = "s"
        [[checkpoints]]
        name = "a"
        model = "a.gguf"
        [[checkpoints]]
        name = "b"
        model = "b.gguf"
        """, file: "s.toml")
        var plan = SlurmPlan(studyFile: "s.toml", spec: spec)
        plan.shards = 3
        #expect(plan.tasks.count == 6)
        let rec = plan.recordScript()
        #expect(rec.contains("#SBATCH --array=0-5"))
        #expect(rec.contains("--stages record --checkpoint"))
        let fin = plan.finishScript()
        #expect(fin.components(separatedBy: "ablab merge").count - 1 == 2)
        #expect(fin.contains("runs/s/activations/a.shard-2-of-3.h5"))
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
        default: Issue.record("no check for key \(key)")
        }
    }

    @Test("bad values of the new keys are errors naming the key")
    func badValues() throws {
        for (toml, key) in [(Self.base + "[judges]\nself_judgment_question = \"maybe\"\n", "judges.self_judgment_question"),
                            (Self.base + "[abliteration]\nedit = \"both\"\n", "abliteration.edit"),
                            (Self.base + "[prompts]\nvalidation_per_class = -1\n", "prompts.validation_per_class")] {
            let e = try #require(throws: StudyError.self) { try StudyFile.parse(toml, file: "k.toml") }
            #expect(e.key == key && e.line != nil)
        }
    }
}
