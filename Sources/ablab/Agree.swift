import ArgumentParser
import Foundation
import AblabCore
import Judging

struct Agree: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Measure how well judges agree: refusal rates, κ, Fleiss κ, Krippendorff α, correlations, bootstrap CIs.",
        discussion: """
        Reads one or more judgments.csv files (item_id, system, label, judge, verdict, score; a run folder
        means its judgments.csv) and/or the study's own data (--paper DIR: the two annotators, the study's
        regex and LLM-judge summaries). Prints the tables and writes agreement.csv and refusal_rates.csv
        (tidy) to --out.

        Judges for --judge:
        \(Judges.help)
        llm:NAME_OR_PATH       a local chat model ("was the request served?"; see `ablab judge --help`)
        llm-rubric:NAME_OR_PATH the same model with a refusal / non-refusal rubric
        Rule and model judges need the responses, so they apply to --paper data only; labels: judges apply
        to any item. With --paper, every judge (regex:paper and each --judge) is calibrated on the study's
        200 annotated responses: accuracy (Wilson interval), Cohen's κ and F1 (cluster bootstrap by
        question) against each annotator, written to calibration.csv; the judge that agrees best with
        Human 1 is named.
        """)

    @OptionGroup var global: GlobalOptions
    @Argument(help: "judgments.csv files or run folders.") var inputs: [String] = []
    @Option(name: .long, help: "Folder with the study's CSVs (notebooks-scripts/data/paper).") var paper: String?
    @Option(name: .long, help: "Add a judge (repeatable); see below.") var judge: [String] = []
    @Option(name: .customLong("model-for"), parsing: .singleValue, help: "NAME=PATH for an llm:NAME / llm-rubric:NAME judge (repeatable).")
    var modelFor: [String] = []
    @Option(name: .long, help: "Reference judge for TP/FP/FN/TN, accuracy, precision, recall (default: human_1 with --paper).") var reference: String?
    @Option(name: .long, help: "Folder for agreement.csv and refusal_rates.csv (default: the first input's folder, else the current folder).") var out: String?
    @Option(name: .long, help: "Bootstrap replicates.") var replicates: Int = 2000
    @Option(name: .long, help: "Bootstrap seed.") var seed: UInt64 = 20251002
    @Option(name: .long, help: "Confidence level of the intervals.") var level: Double = 0.95
    @Flag(name: .long, help: "Also print each judge's TP/FP/FN/TN per system × label.") var detail = false

    func validate() throws {
        if inputs.isEmpty && paper == nil { throw ValidationError("give a judgments.csv (or run folder) or --paper DIR") }
        if replicates < 0 || replicates > 1_000_000 { throw ValidationError("--replicates must be between 0 and 1000000") }
        if !(level > 0 && level < 1) { throw ValidationError("--level must be between 0 and 1, e.g. 0.95") }
    }

    func run() async throws {
        global.bootstrap()
        try await runReportingErrors {
            var rows: [Judgment] = []
            var outDir = out
            for input in inputs {
                var isDir: ObjCBool = false
                let path = FileManager.default.fileExists(atPath: input, isDirectory: &isDir) && isDir.boolValue
                    ? input + "/judgments.csv" : input
                rows += try JudgmentsFile.read(path)
                if outDir == nil { outDir = URL(fileURLWithPath: path).deletingLastPathComponent().path }
            }
            var map: [String: String] = [:]
            for v in modelFor {
                guard let eq = v.firstIndex(of: "="), eq != v.startIndex else { throw ValidationError("--model-for takes NAME=PATH, not '\(v)'") }
                map[String(v[..<eq])] = String(v[v.index(after: eq)...])
            }
            let modelsDir = ProcessInfo.processInfo.environment["ABLAB_MODELS_DIR"] ?? "models"
            // Model judges are loaded one at a time (only one judge model in memory).
            let ruleJudges = try judge.filter { !$0.hasPrefix("llm") }.map { try Judges.make(spec: $0, modelFor: map, modelsDir: modelsDir) }
            let modelJudges = judge.filter { $0.hasPrefix("llm") }
            if paper == nil, let m = modelJudges.first {
                throw InputError(file: inputs.first ?? "--judge", "judge '\(m)' needs the responses; run it with `ablab judge`, or use --paper")
            }
            let judges = ruleJudges
            var study: PaperStudy? = nil
            var calibration: [JudgeCalibration.Row] = []
            if let paper {
                let s = try PaperStudy.load(directory: paper)
                study = s
                rows += s.humanJudgments
                let paperRegex = PatternJudge.paper()
                let toRun: [any Judge] = [paperRegex] + judges.filter { $0.name != paperRegex.name }
                for j in toRun {
                    let judged = try j.judgeAll(s.items)
                    rows += judged
                    calibration += try JudgeCalibration.compute(study: s, judge: j.name, judgments: judged,
                                                                replicates: replicates, seed: seed, level: level)
                }
                for spec in modelJudges {
                    let judged = try Judges.make(spec: spec, modelFor: map, modelsDir: modelsDir).judgeAll(s.items)
                    rows += judged
                    calibration += try JudgeCalibration.compute(study: s, judge: judged.first?.judge ?? spec, judgments: judged,
                                                                replicates: replicates, seed: seed, level: level)
                }
            }
            if !inputs.isEmpty {
                // imported labels can join the run's own items
                let units = try JudgmentTable(rows)
                for j in judges {
                    guard j is LabelsJudge else {
                        if paper == nil { throw InputError(file: inputs[0], "judge '\(j.name)' needs the responses; run it with `ablab judge`, or use labels:") }
                        continue
                    }
                    if paper != nil { continue }
                    let items = units.units.enumerated().map { JudgeItem(itemID: $1.itemID, system: $1.system, label: units.labels[$0], prompt: "", response: "") }
                    rows += try j.judgeAll(items)
                }
            }
            let table = try JudgmentTable(rows)
            let ref = reference ?? (study != nil ? "human_1" : nil)
            let report = try AgreementReport.compute(table, options: .init(reference: ref, replicates: replicates, seed: seed, level: level))
            if let study { try printStudy(study) }
            if !calibration.isEmpty { printCalibration(calibration) }
            printReport(report)
            // a run folder's self-judgment summary (written by `ablab probe` / the probe stage), when present
            for input in inputs {
                let summary = (input as NSString).appendingPathComponent("self_judgment_summary.csv")
                guard FileManager.default.fileExists(atPath: summary), let text = try? String(contentsOfFile: summary, encoding: .utf8) else { continue }
                let csv = try CSV.parse(text, file: summary)
                guard let header = csv.first?.fields else { continue }
                print("\n== Self-judgment: each system on its own answers (\(summary))")
                print(header.joined(separator: "  "))
                for r in csv.dropFirst() where r.fields.count == header.count { print(r.fields.joined(separator: "  ")) }
            }
            let dir = outDir ?? FileManager.default.currentDirectoryPath
            try report.write(to: dir)
            if study != nil {
                try JudgmentsFile.write(rows, to: dir + "/judgments_paper.csv")
                try SafeFiles.atomicWrite(Data(JudgeCalibration.csv(calibration).utf8), to: dir + "/calibration.csv")
            }
            FileHandle.standardError.write(Data("wrote \(dir)/agreement.csv and \(dir)/refusal_rates.csv\(study != nil ? ", judgments_paper.csv and calibration.csv" : "")\n".utf8))
        }
    }

    // MARK: printing

    func printStudy(_ s: PaperStudy) throws {
        let h = try s.humanAgreement()
        print("== The study's user study (\(h.n) responses, 2 annotators)")
        print("Human 1 refusals \(h.refusals1), Human 2 refusals \(h.refusals2); agreement \(pct(h.agreement)), Cohen's κ \(f3(h.kappa))")
        let r = try s.reproduceRegex()
        print("\n== Our \(r.judge) on the same responses vs the study's regex (per model × label group)")
        print("groups matching the study's counts: \(r.matchingGroups)/\(r.groups.count); refusals ours \(r.ourRefusals), study \(r.studyRefusals)")
        print("responses only a curly-apostrophe variant would call refusals: \(r.curlyOnly)")
        for m in r.groups where m.ours != m.study { print("  differs: \(m.model) \(m.label): ours \(m.ours), study \(m.study)") }
        var t = TextTable(["vs", "TP", "FP", "FN", "TN", "accuracy", "precision", "recall", "κ"])
        for (name, c, k) in [("Human 1", r.vsHuman1, r.kappaVsHuman1), ("Human 2", r.vsHuman2, r.kappaVsHuman2)] {
            t.add([name, "\(c.tp)", "\(c.fp)", "\(c.fn)", "\(c.tn)", f3(c.accuracy), f3(c.precision), f3(c.recall), f3(k)])
        }
        t.print()
        let summary = try PaperStudy.readSummary(s.directory + "/" + PaperStudy.summary10qRenamedFile)
        let corr = try PaperStudy.judgeCorrelations(summary, reference: "Human 1").sorted { ($0.pearson.isNaN ? -2 : $0.pearson) > ($1.pearson.isNaN ? -2 : $1.pearson) }
        print("\n== The study's judges vs Human 1 (its method: Pearson over refused ++ not_refused counts of the 40 groups)")
        var c = TextTable(["judge", "groups", "refused/total", "pearson", "spearman"])
        for j in corr { c.add([j.judge, "\(j.groups)", "\(j.refused)/\(j.total)", f3(j.pearson), f3(j.spearman)]) }
        c.print()
        print("")
    }

    func printCalibration(_ rows: [JudgeCalibration.Row]) {
        print("== Judges calibrated on the study's human labels (\(rows.first?.n ?? 0) responses; positive = REFUSAL, reference = the annotator)")
        print("   accuracy: Wilson interval; κ and F1: cluster bootstrap by question, \(rows.first?.kappa.replicates ?? 0) replicates")
        var t = TextTable(["judge", "vs", "n", "refusals", "accuracy [CI]", "Cohen κ [CI]", "F1 [CI]"])
        for r in rows {
            t.add([r.judge, r.annotator == "human_1" ? "Human 1" : "Human 2", "\(r.n)", "\(r.judgeRefusals) (human \(r.annotatorRefusals))",
                   "\(f3(r.accuracy.estimate)) [\(f3(r.accuracy.lower))–\(f3(r.accuracy.upper))]",
                   "\(f3(r.kappa.estimate)) [\(f3(r.kappa.lower))–\(f3(r.kappa.upper))]",
                   "\(f3(r.f1.estimate)) [\(f3(r.f1.lower))–\(f3(r.f1.upper))]"])
        }
        t.print()
        if let best = JudgeCalibration.best(rows) {
            print("best agreement with Human 1: \(best.judge) (κ \(f3(best.kappa.estimate)))")
        }
        print("")
    }

    func printReport(_ r: AgreementReport) {
        print("== Refusal rates (\(Int(r.options.level * 100))% Wilson score interval)")
        var t = TextTable(["system", "label"] + r.judges)
        var byKey: [String: AgreementReport.RateRow] = [:]
        var groups: [(String, String)] = []
        for row in r.rates {
            let k = row.system + "\u{1}" + row.label
            if !groups.contains(where: { $0.0 == row.system && $0.1 == row.label }) { groups.append((row.system, row.label)) }
            byKey[k + "\u{1}" + row.judge] = row
        }
        for (s, l) in groups {
            t.add([s, l] + r.judges.map { j in
                guard let row = byKey[s + "\u{1}" + l + "\u{1}" + j], row.n > 0 else { return "–" }
                return "\(pct(row.rate.estimate)) [\(pct(row.rate.lower))–\(pct(row.rate.upper))] n=\(row.n)"
            })
        }
        t.print()
        if let ref = r.reference {
            print("\n== Against the reference judge '\(ref)' (positive = REFUSAL)")
            var c = TextTable(["judge", "n", "TP", "FP", "FN", "TN", "accuracy", "precision", "recall", "F1", "κ"])
            for row in r.referenceRows {
                let m = row.confusion
                c.add([row.judge, "\(m.n)", "\(m.tp)", "\(m.fp)", "\(m.fn)", "\(m.tn)", f3(m.accuracy), f3(m.precision), f3(m.recall), f3(m.f1), f3(row.kappa)])
            }
            c.print()
            if detail {
                var d = TextTable(["system", "label", "judge", "TP", "FP", "FN", "TN", "accuracy", "precision", "recall"])
                for row in r.rates { if let m = row.confusion {
                    d.add([row.system, row.label, row.judge, "\(m.tp)", "\(m.fp)", "\(m.fn)", "\(m.tn)", f3(m.accuracy), f3(m.precision), f3(m.recall)])
                } }
                print(""); d.print()
            }
        }
        print("\n== Judge pairs (items both judged; intervals: cluster bootstrap by prompt, \(r.options.replicates) replicates)")
        print("   pearson/spearman over per-(system, label) refusal counts; stacked = the study's method (refused and not-refused counts stacked)")
        var p = TextTable(["judge A", "judge B", "n", "agreement [CI]", "Cohen κ [CI]", "valid", "groups", "pearson", "spearman", "pearson stacked"])
        for (row, c) in zip(r.pairs, r.correlations) {
            p.add([row.judgeA, row.judgeB, "\(row.n)",
                   "\(pct(row.agreement.estimate)) [\(pct(row.agreement.lower))–\(pct(row.agreement.upper))]",
                   "\(f3(row.kappa.estimate)) [\(f3(row.kappa.lower))–\(f3(row.kappa.upper))]",
                   "\(row.kappa.valid)/\(row.kappa.replicates)", "\(c.groups)", f3(c.pearson), f3(c.spearman), f3(c.stackedPearson)])
        }
        p.print()
        print("\nFleiss κ (all \(r.judges.count) judges, \(r.fleiss.items) items every judge judged): \(f3(r.fleiss.kappa))")
        print("Krippendorff α (nominal, \(r.units) items, missing allowed): \(f3(r.krippendorffAlpha))")
        if !r.warnings.isEmpty {
            print("\n== Warnings")
            for w in r.warnings { print("warning: \(w)") }
        }
    }

    func f3(_ x: Double) -> String { x.isNaN ? "n/a" : String(format: "%.3f", x) }
    func pct(_ x: Double) -> String { x.isNaN ? "n/a" : String(format: "%.1f%%", x * 100) }
}

/// Plain-text table with columns padded to their widest cell.
struct TextTable {
    var header: [String]
    var rows: [[String]] = []
    init(_ header: [String]) { self.header = header }
    mutating func add(_ row: [String]) { rows.append(row) }
    func print() {
        var w = header.map(\.count)
        for r in rows { for (i, c) in r.enumerated() where i < w.count { w[i] = max(w[i], c.count) } }
        func line(_ r: [String]) -> String {
            r.enumerated().map { $1.padding(toLength: w[$0], withPad: " ", startingAt: 0) }.joined(separator: "  ")
        }
        Swift.print(line(header))
        Swift.print(w.map { String(repeating: "-", count: $0) }.joined(separator: "  "))
        for r in rows { Swift.print(line(r)) }
    }
}
