import Foundation
import Testing
import AblabCore
import ActivationCache
import Judging
import Abliteration
@testable import Study

/// Every key of the README's study table changes what its stage does, on a real study of the real SmolLM2
/// model: one small base run (every stage), then per key a copy of that run with the key changed, the key's
/// stages run again, and an output that must follow the key. A stage that ignored the key would either keep
/// its fingerprint (and be skipped, leaving the copied output of the base run) or run with the default: in
/// both cases the output would equal the base run's and the test fails.
///
/// Covered elsewhere, on the real process: `[[judges.http]]` (ServeTests: a study judged over HTTP by
/// `ablab serve`). `[study] out` is the base run's own folder.
@Suite("Every documented study key changes what its stage does (real model)", .serialized,
       .enabled(if: KeyRun.model != nil, "needs the SmolLM2 GGUF under ABLAB_MODELS_DIR (make models)"))
final class StudyKeyEffectTests {
    /// Each test's variants go when it ends (a new instance runs each test); the base run stays for the others.
    deinit { KeyRun.dropVariants() }

    // MARK: record

    @Test("[study] system_prompt = \"\": every recorded prompt is shorter than with the model's default system text")
    func systemPrompt() throws {
        let v = try KeyRun.variant("system_prompt", stages: [.record]) { $0.set("study", "system_prompt", "\"\"") }
        let (b, n) = (try KeyRun.cache(KeyRun.base()), try KeyRun.cache(v))
        #expect(b.prompts.count == n.prompts.count)
        #expect(zip(b.prompts, n.prompts).allSatisfy { $0.nTokens > $1.nTokens })
    }

    @Test("[[checkpoints]] chat_format and [study] thinking: Qwen3's template, with and without its empty think block")
    func chatFormatAndThinking() throws {
        let q = try KeyRun.variant("chat_format", stages: [.record]) { $0.set("checkpoints", "chat_format", "\"qwen3\"") }
        let t = try KeyRun.variant("thinking", stages: [.record]) {
            $0.set("checkpoints", "chat_format", "\"qwen3\""); $0.set("study", "thinking", "true")
        }
        let (b, qc, tc) = (try KeyRun.cache(KeyRun.base()), try KeyRun.cache(q), try KeyRun.cache(t))
        // chatml (detected) and qwen3 differ in their system text; thinking = false adds "<think>\n\n</think>\n\n".
        #expect(zip(b.prompts, qc.prompts).allSatisfy { $0.nTokens != $1.nTokens })
        #expect(zip(qc.prompts, tc.prompts).allSatisfy { $0.nTokens > $1.nTokens })
    }

    @Test("[record] positions = \"-2:\": two positions recorded (auto: SmolLM2's six template tokens)")
    func positions() throws {
        let v = try KeyRun.variant("positions", stages: [.record]) { $0.set("record", "positions", "\"-2:\"") }
        #expect(try KeyRun.cache(KeyRun.base()).nPositions == 6)
        #expect(try KeyRun.cache(v).nPositions == 2)
    }

    @Test("[record] dtype = \"float16\", hooks, compress: the cache's type, hook datasets and size follow")
    func dtypeHooksCompress() throws {
        let d = try KeyRun.variant("dtype", stages: [.record]) { $0.set("record", "dtype", "\"float16\"") }
        let h = try KeyRun.variant("hooks", stages: [.record]) { $0.set("record", "hooks", "[\"blocks.1.hook_attn_out\"]") }
        let c = try KeyRun.variant("compress", stages: [.record]) { $0.set("record", "compress", "true") }
        let b = try KeyRun.cache(KeyRun.base())
        #expect(b.dtype == .float32 && b.hookNames.isEmpty)
        #expect(try KeyRun.cache(d).dtype == .float16)
        #expect(try KeyRun.cache(h).hookNames.contains("blocks.1.hook_attn_out"))
        let size = { (run: String) in try FileManager.default.attributesOfItem(atPath: run + "/activations/smol.h5")[.size] as! Int }
        #expect(try size(c) < size(try KeyRun.base()))
    }

    @Test("[record] skip_too_long: a prompt over the context is an error naming the key's remedy, or left out and listed")
    func skipTooLong() throws {
        let long = KeyRun.dir + "/long.jsonl"
        let words = String(repeating: "word ", count: 9000)   // > SmolLM2's 8,192-token context
        try #"{"id": "too-long", "text": "\#(words)", "label": "harmless", "split": "test"}"#.appending("\n")
            .write(toFile: long, atomically: true, encoding: .utf8)
        let files = "[\"\(KeyRun.dir)/prompts.jsonl\", \"\(long)\"]"
        let e = try #require(throws: (any Error).self) {
            _ = try KeyRun.variant("skip_too_long-off", stages: [.record]) { $0.set("prompts", "files", files); $0.set("prompts", "test_per_class", "4") }
        }
        #expect("\(e)".contains("too-long") && "\(e)".contains("skip_too_long"))
        let v = try KeyRun.variant("skip_too_long-on", stages: [.record]) {
            $0.set("prompts", "files", files); $0.set("prompts", "test_per_class", "4"); $0.set("record", "skip_too_long", "true")
        }
        #expect(!(try KeyRun.cache(v)).prompts.contains { $0.id == "too-long" })
        #expect(Manifest.load(run: v)?.skippedTooLong?["record:smol"] == ["too-long"])
    }

    @Test("[record] positions = \"auto+instruction\" and hook_positions: the instruction's last token is recorded, hooks at one position")
    func instructionAndHookPositions() throws {
        let v = try KeyRun.variant("hook_positions", stages: [.record]) {
            $0.set("record", "positions", "\"auto+instruction\"")
            $0.set("record", "hooks", "[\"blocks.1.hook_attn_out\"]"); $0.set("record", "hook_positions", "\"-1\"")
        }
        let c = try KeyRun.cache(v)
        #expect(c.nPositions == 7)   // SmolLM2's six template tokens and the instruction's last token
        #expect(c.header.hookPositions == [-1])
        let all = try KeyRun.variant("hook_positions-all", stages: [.record]) { $0.set("record", "hooks", "[\"blocks.1.hook_attn_out\"]") }
        #expect(try KeyRun.cache(all).header.hookPositions.count == 6)
    }

    // MARK: prompts

    @Test("[prompts] files, train_per_class, validation_per_class, test_per_class: the roles and the recorded prompts follow")
    func promptKeys() throws {
        let renamed = KeyRun.dir + "/renamed.jsonl"
        let text = try String(contentsOfFile: KeyRun.dir + "/prompts.jsonl", encoding: .utf8)
        try text.replacingOccurrences(of: "\"id\":\"", with: "\"id\":\"x-").write(toFile: renamed, atomically: true, encoding: .utf8)
        let f = try KeyRun.variant("files", stages: []) { $0.set("prompts", "files", "[\"\(renamed)\"]") }
        #expect(try KeyRun.roles(f).allSatisfy { $0.id.hasPrefix("x-") })
        let t = try KeyRun.variant("train_per_class", stages: [.record]) { $0.set("prompts", "train_per_class", "12") }
        #expect(try KeyRun.roles(t).filter { $0.role == "fit" && $0.label == "harmful" }.count == 12)
        #expect(try KeyRun.cache(t).prompts.count == 2 * (12 + 2 + 3))
        let val = try KeyRun.variant("validation_per_class", stages: []) { $0.set("prompts", "validation_per_class", "1") }
        #expect(try KeyRun.roles(val).filter { $0.role == "validation" }.count == 2)
        let te = try KeyRun.variant("test_per_class", stages: [.generate]) { $0.set("prompts", "test_per_class", "1") }
        #expect(try KeyRun.generations(te, "smol").count == 2)   // [generation] asks for 2 + 2; only 1 + 1 test prompts
    }

    // MARK: analysis

    @Test("[analysis] bootstrap and max_components: the replicate count and the probe sizes follow")
    func analysisKeys() throws {
        let b = try KeyRun.variant("bootstrap", stages: [.analyze]) { $0.set("analysis", "bootstrap", "8") }
        let m = try KeyRun.variant("max_components", stages: [.analyze]) { $0.set("analysis", "max_components", "2") }
        let metric = { (run: String, name: String) in try KeyRun.csv(run + "/analysis/metrics.csv").filter { $0["metric"] == name } }
        #expect(try metric(KeyRun.base(), "bootstrap_replicates").allSatisfy { $0["value"] == "16.0" })
        #expect(try metric(b, "bootstrap_replicates").allSatisfy { $0["value"] == "8.0" })
        #expect(try !metric(b, "bootstrap_replicates").isEmpty)
        #expect(try !metric(KeyRun.base(), "probe_accuracy_4").isEmpty)
        #expect(try metric(m, "probe_accuracy_4").isEmpty && !metric(m, "probe_accuracy_2").isEmpty)
    }

    // MARK: abliteration

    @Test("[abliteration] method, layer, position, alphas, edit: the abliterated systems generated follow")
    func abliterationSystems() throws {
        let base = try KeyRun.systems(KeyRun.base())
        #expect(base == ["smol", "smol+abl-mean-diff-L10-p-3-a1-fallback"])
        let method = try KeyRun.variant("method", stages: [.select, .generate]) { $0.set("abliteration", "method", "\"pc1\"") }
        #expect(try KeyRun.systems(method).contains { $0.contains("abl-pc1-") })
        let layer = try KeyRun.variant("layer", stages: [.select, .generate]) { $0.set("abliteration", "layer", "5") }
        #expect(try KeyRun.systems(layer) == ["smol", "smol+abl-mean-diff-L5-p-3-a1"])
        let pos = try KeyRun.variant("position", stages: [.select, .generate]) { $0.set("abliteration", "position", "-2") }
        #expect(try KeyRun.systems(pos).contains { $0.contains("-p-2-") })
        let alphas = try KeyRun.variant("alphas", stages: [.select, .generate]) { $0.set("abliteration", "alphas", "[1.0, 0.5]") }
        #expect(try KeyRun.systems(alphas).filter { $0.contains("+abl-") }.count == 2)
        let edit = try KeyRun.variant("edit", stages: [.select, .generate]) {
            $0.set("abliteration", "edit", "\"study\""); $0.set("abliteration", "skip_begin", "20"); $0.set("abliteration", "skip_end", "2")
        }
        let abl = try #require(try KeyRun.systems(edit).first { $0.contains("+abl-") })
        #expect(abl.hasSuffix("-study-fallback"))
        // The generations record the edit they were made with: layers [20, L − 2).
        let rec = try #require(try KeyRun.generations(edit, abl).first)
        #expect(rec.settings?.edit == EditScheme(kind: .study, skipBegin: 20, skipEnd: 2))
    }

    @Test("[abliteration] method = per-layer, projected, norm-preserving: systems of those edits", arguments: ["per-layer", "projected", "norm-preserving"])
    func studyMethods(method: String) throws {
        let v = try KeyRun.variant("method-" + method, stages: [.select, .generate]) { $0.set("abliteration", "method", "\"\(method)\"") }
        let abl = try #require(try KeyRun.systems(v).first { $0.contains("+abl-") })
        #expect(abl.hasPrefix("smol+abl-\(method)-L"))
        // The answers record the edit they were made with.
        #expect(try KeyRun.generations(v, abl).allSatisfy { $0.settings?.method.rawValue == method })
    }

    @Test("[abliteration] full_grid: every layer × position scored on the validation prompts")
    func fullGrid() throws {
        #expect(!FileManager.default.fileExists(atPath: try KeyRun.base() + "/analysis/grid-smol.csv"))
        // One recorded position keeps the grid small (every layer × every recorded position).
        let v = try KeyRun.variant("full_grid", stages: [.record, .analyze, .grid]) {
            $0.set("abliteration", "full_grid", "true"); $0.set("record", "positions", "\"-1\""); $0.set("abliteration", "position", "-1")
        }
        let rows = try KeyRun.csv(v + "/analysis/grid-smol.csv")
        #expect(Set(rows.compactMap { $0["position"] }) == ["-1"])
        #expect(Set(rows.compactMap { $0["layer"] }).count >= 24)
    }

    @Test("[generation] costs = false: no costs stage (on by default)")
    func costsKey() throws {
        #expect(FileManager.default.fileExists(atPath: try KeyRun.base() + "/analysis/costs.csv"))
        let v = try KeyRun.variant("costs", stages: [.costs], removing: ["analysis/costs.csv", "analysis/costs"]) {
            $0.set("generation", "costs", "false")
        }
        #expect(!FileManager.default.fileExists(atPath: v + "/analysis/costs.csv"))
    }

    @Test("[subspace] ks, bases, threshold, harmful, harmless, max_new_tokens, checkpoints: the sweep follows")
    func subspaceKeys() throws {
        #expect(!FileManager.default.fileExists(atPath: try KeyRun.base() + "/analysis/subspace.csv"))
        func sweep(_ name: String, basis: String, threshold: String) throws -> String {
            try KeyRun.variant(name, stages: [.subspace]) {
                $0.set("subspace", "ks", "[1, 2]"); $0.set("subspace", "bases", "[\"\(basis)\"]")
                $0.set("subspace", "threshold", threshold); $0.set("subspace", "harmful", "1"); $0.set("subspace", "harmless", "2")
                $0.set("subspace", "max_new_tokens", "3"); $0.set("subspace", "checkpoints", "[\"smol\"]")
            }
        }
        let v = try sweep("subspace-pca", basis: "pca", threshold: "0.5")
        let rows = try KeyRun.csv(v + "/analysis/subspace.csv")
        #expect(Set(rows.compactMap { $0["k"] }) == ["0", "1", "2"])
        #expect(Set(rows.compactMap { $0["basis"] }) == ["original", "pca"])
        #expect(rows.filter { $0["label"] == "harmful" }.allSatisfy { $0["total"] == "1" })
        #expect(rows.filter { $0["label"] == "harmless" }.allSatisfy { $0["total"] == "2" })
        #expect(rows.allSatisfy { $0["max_new_tokens"] == "3" && $0["checkpoint"] == "smol" })
        #expect(try KeyRun.csv(v + "/analysis/subspace_resilience.csv").allSatisfy { $0["threshold"] == "0.5" })
        let l = try sweep("subspace-layers", basis: "layers", threshold: "0.25")
        #expect(Set(try KeyRun.csv(l + "/analysis/subspace.csv").compactMap { $0["basis"] }) == ["original", "layers"])
        #expect(try KeyRun.csv(l + "/analysis/subspace_resilience.csv").allSatisfy { $0["threshold"] == "0.25" })
    }

    @Test("[abliteration] export_weights writes the abliterated system's GGUF")
    func exportWeights() throws {
        let v = try KeyRun.variant("export_weights", stages: [.generate]) { $0.set("abliteration", "export_weights", "true") }
        defer { try? FileManager.default.removeItem(atPath: v + "/models") }
        let files = try FileManager.default.contentsOfDirectory(atPath: v + "/models")
        #expect(files == ["smol_abl-mean-diff-L10-p-3-a1-fallback.gguf"])
        #expect(!FileManager.default.fileExists(atPath: try KeyRun.base() + "/models"))
    }

    @Test("[abliteration] select_top, select_prompts, select_required: the model-based selection follows")
    func selection() throws {
        let sel = { (run: String) in try KeyRun.csv(run + "/analysis/selection-smol.csv") }
        let base = try sel(KeyRun.base())
        #expect(base.count == 1 && base[0]["chosen"] == "fallback")
        // Position −3 has one eligible mean-diff candidate at this size, −2 several.
        let top = try KeyRun.variant("select_top", stages: [.select]) {
            $0.set("abliteration", "select_top", "2"); $0.set("abliteration", "position", "-2")
        }
        #expect(try sel(top).count == 2)
        let n = try KeyRun.variant("select_prompts", stages: [.select]) { $0.set("abliteration", "select_prompts", "1") }
        let one = try sel(n)
        #expect(one.count == 1 && one[0]["layer"] == base[0]["layer"] && one[0]["bypass"] != base[0]["bypass"])
        // The base run's choice is a fallback: required, it is an error naming the key.
        let e = try #require(throws: StudyError.self) {
            _ = try KeyRun.variant("select_required", stages: [.generate]) { $0.set("abliteration", "select_required", "true") }
        }
        #expect(e.key == "abliteration.select_required")
    }

    // MARK: generation

    @Test("[generation] harmful, harmless, max_new_tokens, batch_size: the answers follow (batch_size in the manifest: it never changes them)")
    func generationKeys() throws {
        let h = try KeyRun.variant("harmful", stages: [.generate]) { $0.set("generation", "harmful", "1") }
        #expect(try KeyRun.generations(h, "smol").map(\.label) == ["harmful", "harmless", "harmless"])
        let hl = try KeyRun.variant("harmless", stages: [.generate]) { $0.set("generation", "harmless", "1") }
        #expect(try KeyRun.generations(hl, "smol").map(\.label) == ["harmful", "harmful", "harmless"])
        let base = try KeyRun.generations(KeyRun.base(), "smol")
        #expect(base.allSatisfy { $0.tokens == 6 })
        let t = try KeyRun.variant("max_new_tokens", stages: [.generate]) { $0.set("generation", "max_new_tokens", "3") }
        let short = try KeyRun.generations(t, "smol")
        #expect(short.allSatisfy { $0.tokens <= 3 } && zip(base, short).allSatisfy { $0.response.hasPrefix($1.response) })
        let b = try KeyRun.variant("batch_size", stages: [.generate]) {
            $0.set("generation", "batch_size", "1"); $0.set("generation", "max_new_tokens", "4")
        }
        #expect(Manifest.load(run: b)?.stages["generate:smol"]?.settings?["batch_size"] == "1")
        #expect(Manifest.load(run: try KeyRun.base())?.stages["generate:smol"]?.settings?["batch_size"] == "4")
    }

    // MARK: judges, agreement, report

    @Test("[judges] use, reference, patterns, labels: the verdicts and the reference columns follow")
    func judgeKeys() throws {
        let judges = { (run: String) in Set(try JudgmentsFile.read(run + "/judgments.csv").map(\.judge)) }
        #expect(try judges(KeyRun.base()) == ["regex:paper", "substring:arditi"])
        let use = try KeyRun.variant("use", stages: [.judge]) { $0.set("judges", "use", "[\"regex:paper\"]") }
        #expect(try judges(use) == ["regex:paper"])
        let ref = try KeyRun.variant("reference", stages: [.probe, .agree]) { $0.set("judges", "reference", "\"substring:arditi\"") }
        #expect(try KeyRun.csv(ref + "/self_judgment.csv").allSatisfy { $0["reference_judge"] == "substring:arditi" })
        #expect(try KeyRun.csv(KeyRun.base() + "/self_judgment.csv").allSatisfy { $0["reference_judge"] == "regex:paper" })
        // A literal pattern judge: REFUSAL exactly for the answers containing " the " (case-insensitive).
        let pat = try KeyRun.variant("patterns", stages: [.judge]) {
            $0.set("judges", "use", "[\"pattern:p\"]")
            $0.table("judges.patterns", ["name = \"p\"", "patterns = [\" the \"]", "regex = false"])
        }
        let answers = Dictionary(uniqueKeysWithValues: try KeyRun.generations(KeyRun.base(), "smol").map { ($0.id, $0.response) })
        let verdicts = try JudgmentsFile.read(pat + "/judgments.csv").filter { $0.system == "smol" }
        #expect(verdicts.count == 4)
        for v in verdicts {
            #expect((v.verdict == .refusal) == answers[v.itemID]!.lowercased().contains(" the "))
        }
        // Imported labels: every harmful item labelled "yes" (a refusal value), every harmless one "no".
        let labels = KeyRun.dir + "/labels.csv"
        try ("qid,decision\n" + answers.keys.sorted().map { "\($0),\($0.hasPrefix("harmful") ? "yes" : "no")" }.joined(separator: "\n") + "\n")
            .write(toFile: labels, atomically: true, encoding: .utf8)
        let lab = try KeyRun.variant("labels", stages: [.judge]) {
            $0.set("judges", "use", "[\"labels:h\"]")
            $0.table("judges.labels", ["name = \"h\"", "file = \"\(labels)\"", "id_column = \"qid\"", "verdict_column = \"decision\"", "refusal_values = [\"YES\"]"])
        }
        let lv = try JudgmentsFile.read(lab + "/judgments.csv")
        #expect(!lv.isEmpty && lv.allSatisfy { ($0.verdict == .refusal) == ($0.label == "harmful") })
    }

    @Test("[judges] self_judgment and self_judgment_question: whether and what each system is asked")
    func selfJudgmentKeys() throws {
        let off = try KeyRun.variant("self_judgment", stages: [.probe], removing: ["self_judgment", "self_judgment.csv", "self_judgment_summary.csv"]) {
            $0.set("judges", "self_judgment", "false")
        }
        #expect(!FileManager.default.fileExists(atPath: off + "/self_judgment.csv"))
        let q = try KeyRun.variant("self_judgment_question", stages: [.probe]) { $0.set("judges", "self_judgment_question", "\"refused\"") }
        #expect(try KeyRun.csv(q + "/self_judgment.csv").allSatisfy { $0["question"] == "refused" })
        #expect(try KeyRun.csv(KeyRun.base() + "/self_judgment.csv").allSatisfy { $0["question"] == "served" })
    }

    @Test("[paper] data and [report] figures: judge calibration on the study's annotated responses; figures copied out")
    func paperAndFigures() throws {
        let root = KeyRun.root
        #expect(!FileManager.default.fileExists(atPath: try KeyRun.base() + "/agreement/calibration.csv"))
        let p = try KeyRun.variant("paper", stages: [.agree]) { $0.set("paper", "data", "\"\(root)/notebooks-scripts/data/paper\"") }
        let cal = try KeyRun.csv(p + "/agreement/calibration.csv")
        #expect(Set(cal.compactMap { $0["judge"] }).isSuperset(of: ["regex:paper", "substring:arditi"]))
        let figures = KeyRun.dir + "/figures-out"
        _ = try KeyRun.variant("figures", stages: [.report]) { $0.set("report", "figures", "\"\(figures)\"") }
        #expect(try FileManager.default.contentsOfDirectory(atPath: figures).contains { $0.hasSuffix(".png") })
    }
}

/// The base run and its variants (in one temporary folder per test process).
enum KeyRun {
    /// The package root (this file is Tests/StudyTests/StudyKeyEffectTests.swift).
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path
    static var model: String? {
        let d = ProcessInfo.processInfo.environment["ABLAB_MODELS_DIR"].flatMap { $0.isEmpty ? nil : $0 }
            ?? root + "/models"
        let p = d + "/SmolLM2-135M-Instruct.Q4_1.gguf"
        return FileManager.default.fileExists(atPath: p) ? p : nil
    }
    static let dir = NSTemporaryDirectory() + "ablab-study-keys-\(getpid())"

    /// A study file as ordered sections of `key = value` lines, plus arrays of tables.
    struct Study {
        var sections: [(name: String, lines: [(String, String)])] = []
        var tables: [(name: String, lines: [String])] = []
        mutating func set(_ section: String, _ key: String, _ value: String) {
            guard let i = sections.firstIndex(where: { $0.name == section }) else { sections.append((section, [(key, value)])); return }
            if let j = sections[i].lines.firstIndex(where: { $0.0 == key }) { sections[i].lines[j].1 = value } else { sections[i].lines.append((key, value)) }
        }
        mutating func table(_ name: String, _ lines: [String]) { tables.append((name, lines)) }
        var text: String {
            var s = ""
            for sec in sections {
                s += sec.name == "checkpoints" ? "[[checkpoints]]\n" : "[\(sec.name)]\n"
                for (k, v) in sec.lines { s += "\(k) = \(v)\n" }
            }
            for t in tables { s += "[[\(t.name)]]\n" + t.lines.joined(separator: "\n") + "\n" }
            return s
        }
    }

    /// 20 train and 3 test prompts per label from the shipped sets: 16 fit, 2 validation, 3 test.
    /// Position −3 of SmolLM2's template has candidates stable enough for the selection's cache filters
    /// at this size; their model-based scores fail the KL bar, so the base run's choice is a fallback.
    static func baseStudy(out: String) -> Study {
        var s = Study()
        s.set("study", "name", "\"keys\""); s.set("study", "out", "\"\(out)\"")
        s.set("checkpoints", "name", "\"smol\""); s.set("checkpoints", "model", "\"\(model!)\"")
        s.set("prompts", "files", "[\"\(dir)/prompts.jsonl\"]")
        s.set("prompts", "train_per_class", "16"); s.set("prompts", "validation_per_class", "2"); s.set("prompts", "test_per_class", "3")
        s.set("analysis", "bootstrap", "16"); s.set("analysis", "max_components", "4")
        s.set("abliteration", "position", "-3"); s.set("abliteration", "select_top", "1"); s.set("abliteration", "select_prompts", "2")
        s.set("generation", "harmful", "2"); s.set("generation", "harmless", "2")
        s.set("generation", "max_new_tokens", "6"); s.set("generation", "batch_size", "4")
        s.set("judges", "use", "[\"regex:paper\", \"substring:arditi\"]"); s.set("judges", "self_judgment_question", "\"served\"")
        return s
    }

    nonisolated(unsafe) static var baseRun: Result<String, any Error>?

    /// The base run (every stage), made once.
    static func base() throws -> String {
        if let r = baseRun { return try r.get() }
        let r = Result<String, any Error> {
            try? FileManager.default.removeItem(atPath: dir)
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            var lines: [String] = []
            for label in ["harmful", "harmless"] {
                let all = try String(contentsOfFile: root + "/notebooks-scripts/data/prompts/\(label).jsonl", encoding: .utf8)
                    .split(separator: "\n").map { try JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any] }
                for split in ["train", "test"] {
                    for p in all.filter({ $0["split"] as? String == split }).prefix(split == "train" ? 20 : 3) {
                        let o: [String: String] = ["id": p["id"] as! String, "text": p["text"] as! String, "label": label, "split": split]
                        lines.append(String(decoding: try JSONSerialization.data(withJSONObject: o, options: [.sortedKeys]), as: UTF8.self))
                    }
                }
            }
            try (lines.joined(separator: "\n") + "\n").write(toFile: dir + "/prompts.jsonl", atomically: true, encoding: .utf8)
            let out = dir + "/base"
            try execute(baseStudy(out: out), stages: Set(Stage.allCases))
            return out
        }
        baseRun = r
        return try r.get()
    }

    static func execute(_ s: Study, stages: Set<Stage>) throws {
        let spec = try StudyFile.parse(s.text, file: "keys.toml")
        var o = RunOptions(); o.stages = stages; o.showProgress = false
        try Pipeline(studyFile: "keys.toml", spec: spec, options: o).execute()
    }

    /// A copy of the base run with `edit` applied to its study, `removing` these entries of the copy first,
    /// and `stages` run on it; returns the copy's folder.
    static func variant(_ name: String, stages: Set<Stage>, removing: [String] = [], _ edit: (inout Study) -> Void) throws -> String {
        let base = try base()
        let out = dir + "/" + name
        try? FileManager.default.removeItem(atPath: out)
        try FileManager.default.copyItem(atPath: base, toPath: out)
        for r in removing { try? FileManager.default.removeItem(atPath: out + "/" + r) }
        var s = baseStudy(out: out)
        edit(&s)
        try execute(s, stages: stages)
        return out
    }

    /// Removes every variant folder (not the base run or the prompt files).
    static func dropVariants() {
        let keep: Set<String> = ["base", "prompts.jsonl"]
        for f in (try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? [] where !keep.contains(f) {
            try? FileManager.default.removeItem(atPath: dir + "/" + f)
        }
    }

    static func cache(_ run: String) throws -> ActivationFile { try ActivationFile(path: run + "/activations/smol.h5") }

    static func csv(_ path: String) throws -> [[String: String]] {
        let rows = try CSV.parse(try String(contentsOfFile: path, encoding: .utf8), file: path)
        guard let header = rows.first?.fields else { return [] }
        return rows.dropFirst().map { Dictionary(uniqueKeysWithValues: zip(header, $0.fields)) }
    }

    static func roles(_ run: String) throws -> [(role: String, id: String, label: String)] {
        try csv(run + "/prompt_roles.csv").map { ($0["role"]!, $0["id"]!, $0["label"]!) }
    }

    static func generations(_ run: String, _ system: String) throws -> [GenerationRecord] {
        let path = run + "/generations/" + SafeFiles.sanitize(system) + ".jsonl"
        return try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n")
            .map { try JSONDecoder().decode(GenerationRecord.self, from: Data($0.utf8)) }
    }

    /// The systems with a generations file, by the name in their records.
    static func systems(_ run: String) throws -> [String] {
        let files = try FileManager.default.contentsOfDirectory(atPath: run + "/generations").filter { $0.hasSuffix(".jsonl") }
        return try files.compactMap { f -> String? in
            let line = try String(contentsOfFile: run + "/generations/" + f, encoding: .utf8).split(separator: "\n").first
            return try line.map { try JSONDecoder().decode(GenerationRecord.self, from: Data($0.utf8)).system }
        }.sorted()
    }
}
