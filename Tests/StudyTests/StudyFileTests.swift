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
