import ArgumentParser
import Foundation
import AblabCore
import ModelRuntime
import LinearAlgebra
import Judging

/// `NAME=PATH` pairs of a repeatable option.
private func pairs(_ values: [String], option: String) throws -> [String: String] {
    var out: [String: String] = [:]
    for v in values {
        guard let eq = v.firstIndex(of: "="), eq != v.startIndex, v.index(after: eq) != v.endIndex else {
            throw ValidationError("\(option) takes NAME=PATH, not '\(v)'")
        }
        out[String(v[..<eq])] = String(v[v.index(after: eq)...])
    }
    return out
}

private var modelsDir: String { ProcessInfo.processInfo.environment["ABLAB_MODELS_DIR"] ?? "models" }

struct JudgeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "judge",
        abstract: "Judge every generated answer of a run into RUN_DIR/judgments.csv (resumable).",
        discussion: """
        Reads RUN_DIR/generations/*.jsonl and runs every judge on every answer. Rows already in
        judgments.csv for the same (item, system, judge) are kept and not judged again, so an interrupted
        run continues where it stopped. Judges:
        \(Judges.help)
        llm:NAME_OR_PATH       a local chat model asked whether the answer refused (P(refusal) from the
                               logits of the answer letters "A" = refusal / "B"; --show-prompt prints
                               the prompt); NAME is resolved with --model-for, else as a path, else
                               in $ABLAB_MODELS_DIR (NAME.gguf, NAME, hf/NAME)
        http:NAME              the llm: question sent to an OpenAI-compatible API, defined by
                               --http-judge name=NAME,base_url=URL,model=M[,api_key_env=VAR]
                               [,max_concurrency=4][,timeout=60][,attempts=6] (added to --judges);
                               verdicts are journaled in RUN_DIR/judge-http/NAME.jsonl, so a rerun
                               sends only what was not answered
        """)
    @OptionGroup var global: GlobalOptions
    @Argument(help: "The run folder.") var run: String = ""
    @Flag(name: .customLong("show-prompt"), help: "Print the LLM judge's prompt and the self-judgment question, then exit.")
    var showPrompt = false
    @Option(name: .long, help: "Judges, comma-separated (e.g. regex:paper,substring:arditi,llm:SmolLM2-135M-Instruct).")
    var judges: String = "regex:paper,substring:arditi"
    @Option(name: .customLong("model-for"), parsing: .singleValue, help: "NAME=PATH for an llm:NAME judge (repeatable).")
    var modelFor: [String] = []
    @Option(name: .customLong("http-judge"), parsing: .singleValue,
            help: "name=N,base_url=URL,model=M[,api_key_env=VAR][,max_concurrency=K][,timeout=S][,attempts=A]: an http:N judge (repeatable).")
    var httpJudge: [String] = []
    @Option(name: .long, help: "Answers per judge call and per file update.") var chunk: Int = 32
    @Option(name: .long, help: "Threads for matrix multiplies (default: all cores).") var threads: Int?

    func run() async throws {
        global.bootstrap()
        try await runReportingErrors {
            if showPrompt {
                print("LLM judge prompt (one user turn; {request} cut to 256 tokens, {response} to 384):\n")
                print(LLMJudge.template)
                print("\nSelf-judgment (user: request, assistant: its own answer, then this user turn):\n")
                print(SelfJudgment.question)
                return
            }
            guard !run.isEmpty else { throw ValidationError("give the run folder") }
            if let threads { setThreads(threads) }
            let map = try pairs(modelFor, option: "--model-for")
            let gens = try GenerationsFile.readRun(run)
            var specs = judges.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
            let http = try httpJudge.map { try HTTPJudgeSpec(option: $0) }
            for h in http where !specs.contains("http:" + h.name) { specs.append("http:" + h.name) }
            guard !specs.isEmpty else { throw InputError(file: "--judges", "give at least one judge") }
            let path = (run as NSString).appendingPathComponent("judgments.csv")
            var total = 0
            // One judge at a time, so only one judge model is in memory.
            for spec in specs {
                let judge: any Judge
                if spec.hasPrefix("http:") {
                    guard let h = http.first(where: { "http:" + $0.name == spec }) else {
                        throw JudgeSpecError(spec: spec, "define it with --http-judge name=\(spec.dropFirst(5)),base_url=URL,model=M")
                    }
                    let hj = try HTTPJudge(spec: h, journalDirectory: (run as NSString).appendingPathComponent("judge-http"))
                    hj.progress = false   // JudgeRun shows the progress
                    judge = hj
                } else {
                    judge = try Judges.make(spec: spec, modelFor: map, modelsDir: modelsDir)
                }
                total += try JudgeRun.run(items: gens.map(\.item), judges: [judge], judgmentsPath: path, chunk: chunk)
                if let h = judge as? HTTPJudge, h.unparsed > 0 {
                    FileHandle.standardError.write(Data("judge: \(spec): \(h.unparsed) replies UNPARSED (no verdict; see \(h.journalPath))\n".utf8))
                }
            }
            FileHandle.standardError.write(Data("judge: \(total) new judgments for \(gens.count) answers\n".utf8))
            print(path)
        }
    }
}

struct Probe: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Self-judgment: each system judges whether its own answers refused.",
        discussion: """
        For every system in RUN_DIR/generations/*.jsonl, its checkpoint (--model CHECKPOINT=PATH) is shown
        each of its own (prompt, response) pairs and asked whether it refused; P(refusal) comes from the
        logits of the answer letters. An abliterated system (<checkpoint>+abl-…) judges with its
        abliteration active: pass --direction SYSTEM=FILE (or CHECKPOINT=FILE for all its abliterated
        systems), a text file of dModel numbers; the direction is projected out of every layer's
        residual stream, attention and MLP outputs. Abliterated systems without a direction are skipped.
        The reference is --reference JUDGE: its rows in judgments.csv, or for a rule judge computed
        directly; by default a human judge found in judgments.csv (a judge name starting with 'human'
        or 'labels:'), else regex:paper. Writes RUN_DIR/self_judgment.csv and
        RUN_DIR/self_judgment_summary.csv (accuracy, Cohen's kappa, confusion counts per system).
        """)
    @OptionGroup var global: GlobalOptions
    @Argument(help: "The run folder.") var run: String
    @Option(name: .long, parsing: .singleValue, help: "CHECKPOINT=PATH of a system's model (repeatable).")
    var model: [String] = []
    @Option(name: .long, parsing: .singleValue, help: "SYSTEM=FILE or CHECKPOINT=FILE: the refusal direction to ablate (repeatable).")
    var direction: [String] = []
    @Option(name: .long, help: "The reference judge.") var reference: String?
    @Option(name: .long, help: "Threads for matrix multiplies (default: all cores).") var threads: Int?

    func run() async throws {
        global.bootstrap()
        try await runReportingErrors {
            if let threads { setThreads(threads) }
            let models = try pairs(model, option: "--model")
            let directions = try pairs(direction, option: "--direction")
            let gens = try GenerationsFile.readRun(run)
            let judgmentsPath = (run as NSString).appendingPathComponent("judgments.csv")
            let existing = FileManager.default.fileExists(atPath: judgmentsPath) ? try JudgmentsFile.read(judgmentsPath) : []
            let refName = reference
                ?? existing.first(where: { $0.judge.lowercased().hasPrefix("human") || $0.judge.hasPrefix("labels:") })?.judge
                ?? "regex:paper"
            let ref = try SelfJudgment.referenceVerdicts(refName, existing: existing, generations: gens)
            var rows: [SelfJudgmentRow] = []
            var loaded: (checkpoint: String, model: ChatModel)?
            for (system, lines) in SelfJudgment.bySystem(gens) {
                let ckpt = lines[0].checkpoint
                guard let path = models[ckpt] else {
                    FileHandle.standardError.write(Data("probe: skipping \(system): no --model \(ckpt)=PATH\n".utf8))
                    continue
                }
                if loaded?.checkpoint != ckpt { loaded = nil; loaded = (ckpt, try ChatModel(path: path)) }
                let m = loaded!.model
                var hooks = HookSet()
                if lines[0].isAbliterated {
                    guard let file = directions[system] ?? directions[ckpt] else {
                        FileHandle.standardError.write(Data("probe: skipping \(system): abliterated but no --direction \(system)=FILE\n".utf8))
                        continue
                    }
                    let dir = try SelfJudgment.readDirection(file, width: m.config.dModel)
                    hooks = HookSet.directionAblation(direction: dir, layers: 0..<m.config.nLayers)
                }
                let bar = AblabCore.Progress("probe \(system)", total: lines.count, unit: "answers")
                var start = 0
                while start < lines.count {
                    let part = Array(lines[start..<min(lines.count, start + 32)])
                    rows += try SelfJudgment.probe(model: m, items: part.map(\.item), hooks: hooks,
                                                   referenceJudge: refName, reference: ref[system] ?? [:])
                    bar.advance(by: part.count)
                    start += part.count
                }
                bar.finish()
            }
            let summary = try SelfJudgment.write(rows, run: run)
            for s in summary {
                FileHandle.standardError.write(Data("probe: \(s.system) n=\(s.n) accuracy=\(String(format: "%.3f", s.accuracy)) kappa=\(String(format: "%.3f", s.kappa))\n".utf8))
            }
            print((run as NSString).appendingPathComponent("self_judgment_summary.csv"))
        }
    }
}
