import AblabCore
import Foundation
import Judging
import Plotting

/// What `StudyReport.render` produced.
public struct ReportSummary: Sendable {
    public var pdf: String
    public var pages: Int
    public var figuresDirectory: String
    public var figures: [String]
    /// Sections that could not be rendered, with the reason.
    public var missing: [String: String]
}

extension StudyReport {
    /// Loads the run, writes the figures and `<run>/report.pdf`.
    public static func render(run: String, options: ReportOptions = ReportOptions(), now: Date = Date()) throws -> ReportSummary {
        let inputs = load(run: run, options: options)
        let figs = figures(inputs, options: options)
        let dir = options.figuresDirectory ?? RunFolder(run).figures
        if options.writeFigureFiles { try writeFigures(figs, to: dir) }
        try inputs.mechanisms?.writeCalibration(run: run)
        let pdf = RunFolder(run).reportPDF
        let pages = try writePDF(inputs, figures: figs, options: options, to: pdf, now: now)
        return ReportSummary(pdf: pdf, pages: pages, figuresDirectory: dir, figures: figs.map(\.name), missing: inputs.notes)
    }

    static func f3(_ x: Double) -> String { x.isFinite ? String(format: "%.3f", x) : "–" }
    static func pct0(_ x: Double, sign: Bool = true) -> String { x.isFinite ? String(format: sign ? "%.0f %%" : "%.0f", x * 100) : "–" }
    static func pct(_ x: Double) -> String { x.isFinite ? String(format: "%.1f %%", x * 100) : "–" }

    /// Draws the report; returns the page count.
    public static func writePDF(_ r: ReportInputs, figures figs: [StudyFigure], options: ReportOptions, to path: String, now: Date = Date()) throws -> Int {
        let m = r.manifest
        let study = (m?.study).flatMap { $0.isEmpty ? nil : $0 } ?? URL(fileURLWithPath: r.run).lastPathComponent
        let flow = try PageFlow(path: path, title: "AbliterationLab report: \(study)")
        let p = flow.page

        // Title page
        flow.y += 40
        flow.y += p.paragraph("AbliterationLab report", at: Point(flow.margin, flow.y), width: flow.width, font: Font(size: 22, bold: true)) + 6
        flow.y += p.paragraph(study, at: Point(flow.margin, flow.y), width: flow.width, font: Font(size: 15)) + 14
        let df = ISO8601DateFormatter()
        df.formatOptions = [.withFullDate]
        var facts = ["Rendered: \(df.string(from: now))", "ablab version: \(AblabVersion.string)"]
        if let m, !m.ablabVersion.isEmpty, m.ablabVersion != AblabVersion.string { facts.append("Run made with ablab \(m.ablabVersion)") }
        if let m, !m.studyFile.isEmpty { facts.append("Study file: \(m.studyFile)") }
        if let started = m?.stages.values.filter({ !$0.isEmpty }).min() { facts.append("Run started: \(started)") }
        if let m, !m.machine.isEmpty { facts.append("Machine: \(m.machine)") }
        facts.append("Run folder: \(URL(fileURLWithPath: r.run).lastPathComponent)")
        if let j = r.judgments, let c = r.counts {
            let file = r.judgmentsFile.map { String($0.dropFirst(min($0.count, r.run.count + 1))) } ?? "judgments.csv"
            facts.append("Judgments: \(file) (\(j.count) verdicts, \(c.judges.count) judges, \(c.systems.count) systems)")
        }
        if let p = options.paperDirectory { facts.append("Study data: \(URL(fileURLWithPath: p).lastPathComponent)/ (arXiv 2510.02768)") }
        for f in facts { try flow.paragraph(f) }
        if m == nil { try flow.paragraph("No manifest.json in the run folder (\(r.notes["manifest"] ?? "missing")); models and settings below come from the other files.", font: Font(size: 8.5, italic: true), color: .gray) }

        try flow.heading("Models", level: 2)
        var modelRows: [[String]] = []
        var seen = Set<String>()
        for c in r.caches {
            seen.insert(c.checkpoint)
            modelRows.append([c.checkpoint, "\(c.architecture), \(c.nLayers) layers, d = \(c.dModel)", c.modelSHA256])
        }
        for (ck, sha) in (m?.models ?? [:]).sorted(by: { $0.key < $1.key }) where !seen.contains(ck) { modelRows.append([ck, "", sha]) }
        if modelRows.isEmpty {
            try flow.paragraph("No model information (no manifest and no activation cache).", font: Font(size: 9, italic: true), color: .gray)
        } else {
            try flow.table(header: ["Checkpoint", "Model", "SHA-256"], rows: modelRows, widths: [0.22, 0.28, 0.5], font: Font(size: 7.5),
                           alignments: [.left, .left, .left])
        }
        try flow.heading("Prompt sets", level: 2)
        var promptRows: [[String]] = []
        for (file, sha) in (m?.promptFiles ?? [:]).sorted(by: { $0.key < $1.key }) {
            promptRows.append([file, promptCount(file, run: r.run).map(String.init) ?? "–", sha])
        }
        for c in r.caches {
            let counts = c.promptCounts.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")
            promptRows.append(["cache of \(c.checkpoint): \(counts)", String(c.nPrompts), c.promptSetSHA256])
        }
        if promptRows.isEmpty {
            try flow.paragraph("No prompt-set information (no manifest and no activation cache).", font: Font(size: 9, italic: true), color: .gray)
        } else {
            try flow.table(header: ["Prompt set", "Prompts", "SHA-256"], rows: promptRows, widths: [0.4, 0.1, 0.5], font: Font(size: 7.5),
                           alignments: [.left, .right, .left])
        }
        for (stage, ids) in (m?.skippedTooLong ?? [:]).sorted(by: { $0.key < $1.key }) where !ids.isEmpty {
            try flow.paragraph("Left out as too long for the model's context (\(stage), skip_too_long): \(ids.count) prompt\(ids.count == 1 ? "" : "s"): \(ids.joined(separator: ", ")).",
                               font: Font(size: 8.5), color: .gray)
        }

        // Methods
        try flow.newPage()
        try flow.heading("Methods")
        try flow.paragraph(methodsText(r, options: options))

        // Tables
        try flow.heading("Results tables")
        try tables(r, flow: flow, options: options)
        try mechanismsSection(r, flow: flow)
        if let s = r.subspace { try SubspaceSection.write(s, flow: flow) }
        if let c = r.costs { try CostsSection.write(c, flow: flow) }

        // Figures
        let firstCaption = figs.first.map { "Figure 1. " + $0.caption } ?? ""
        try flow.heading("Figures", keepWith: figs.first.map { let l = flow.figureLayout($0.figure, caption: firstCaption); return l.height + l.captionHeight + 8 } ?? 80)
        let missingFigures = missingFigureNotes(r)
        if figs.isEmpty { try flow.paragraph("No figures: none of their inputs exist yet.", font: Font(size: 9, italic: true), color: .gray) }
        for (i, f) in figs.enumerated() {
            try flow.figure(f.figure, caption: "Figure \(i + 1). " + f.caption)
        }
        if !missingFigures.isEmpty {
            try flow.heading("Figures not drawn", level: 2)
            for n in missingFigures { try flow.paragraph("• " + n, font: Font(size: 8.5)) }
        }

        // Appendix
        try flow.newPage()
        try flow.heading("Appendix: example responses")
        try appendix(r, flow: flow, options: options)
        return try flow.close()
    }

    /// Lines of a prompt file (JSONL: one prompt per non-empty line), resolved against the run's parent folders.
    static func promptCount(_ file: String, run: String) -> Int? {
        let candidates = file.hasPrefix("/") ? [file] : [run + "/" + file, run + "/../" + file, FileManager.default.currentDirectoryPath + "/" + file]
        for c in candidates {
            if let a = try? FileManager.default.attributesOfItem(atPath: c), let s = a[.size] as? Int, s < 256 << 20,
               let d = FileManager.default.contents(atPath: c), let t = String(data: d, encoding: .utf8) {
                return t.split(separator: "\n").filter { !$0.trimmingCharacters(in: .whitespaces).isEmpty }.count
            }
        }
        return nil
    }

    static func missingFigureNotes(_ r: ReportInputs) -> [String] {
        var out: [String] = []
        let what: [(String, String)] = [("analysis", "PCA spectra, separation and probes"), ("similarity", "direction cosines and cross-checkpoint CKA"),
                                        ("scatter", "PC1–PC2 scatter"), ("judgments", "refusal rates, judge heatmaps, judge agreement and α sweep"),
                                        ("self", "self-judgment accuracy")]
        for (k, name) in what { if let n = r.notes[k] { out.append("\(name): \(n)") } }
        return out
    }

    static func methodsText(_ r: ReportInputs, options: ReportOptions) -> String {
        var s: [String] = []
        if let c = r.caches.first {
            let models = r.caches.map { "\($0.checkpoint) (\($0.architecture), \($0.nLayers) layers, width \($0.dModel))" }.joined(separator: "; ")
            // system prompts differ per model (each model's default); name each one
            let systems = r.caches.map { "\($0.checkpoint): \($0.systemPrompt.isEmpty ? "none" : "\"\($0.systemPrompt)\"")" }
            let sameSystem = Set(r.caches.map(\.systemPrompt)).count == 1
            let systemText = sameSystem ? (c.systemPrompt.isEmpty ? "no system prompt" : "the system prompt \"\(c.systemPrompt)\"")
                                        : "its system prompt (\(systems.joined(separator: "; ")))"
            let positionText = Set(r.caches.map(\.positions)).count == 1 ? c.positions.map(String.init).joined(separator: ", ")
                : r.caches.map { "\($0.checkpoint): \($0.positions.map(String.init).joined(separator: ", "))" }.joined(separator: "; ")
            s.append("Each checkpoint answered its chat template with \(systemText); the residual stream after every block was cached at token positions \(positionText) (negative: counted from the end of the prompt). Models: \(models).")
            let counts = c.promptCounts.sorted { $0.key < $1.key }.map { "\($0.value) \($0.key)" }.joined(separator: ", ")
            s.append("Prompts (label/split): \(counts).")
        } else {
            s.append("No activation cache was found, so the recording settings are not known to this report.")
        }
        if let m = r.metrics {
            let pos = options.position ?? m.defaultPosition ?? -1
            let probeKs = Set(m.rows.filter { $0.method == "probe" }.compactMap { Int($0.metric.replacingOccurrences(of: "probe_accuracy_", with: "")) }).sorted()
            var t = "Refusal directions were fit on the train prompts only, as the normalised difference of the class means (mean-diff) and as the first principal component of the pooled, centred activations oriented towards the harmful mean (pc1); separation (Cohen's d, AUROC) and linear probes (logistic regression on \(probeKs.map(String.init).joined(separator: ", ")) leading PCs) were evaluated on the test prompts. Analysis figures show token position \(pos)."
            if let b = r.analysisAttributes["bootstrap"] { t += " Direction stability used \(b) bootstrap replicates (seed \(r.analysisAttributes["seed"] ?? "?"))." }
            if r.analysisAttributes["leakage"] == "1" || m.rows.contains(where: { $0.metric == "leakage" && $0.value == 1 }) {
                t += " WARNING: train and test prompts overlap in this run, so test metrics are optimistic."
            }
            s.append(t)
        }
        // the manifest also caches file hashes under "hash:<path>:…" keys; those are not settings
        let set = (r.manifest?.settings ?? [:]).filter { !$0.key.hasPrefix("hash:") }
        if !set.isEmpty {
            s.append("Settings recorded in the manifest: " + set.sorted { $0.key < $1.key }.map { "\($0.key) = \($0.value)" }.joined(separator: "; ") + ".")
        }
        if let c = r.counts {
            let judge = primaryJudge(c, options: options) ?? "?"
            s.append("Answers were judged by \(c.judges.joined(separator: ", ")) (from \(URL(fileURLWithPath: r.judgmentsFile ?? "judgments.csv").lastPathComponent)); refusal-rate figures use \(judge). Refusal-rate intervals are \(Int(c.level * 100)) % Wilson score intervals; agreement intervals are cluster bootstraps by item (\(options.replicates) replicates, seed \(options.seed)). Abliterated systems are named <checkpoint>+abl-<method>-L<layer>-p<position>-a<alpha> (ending in -study for the study's edit scheme and in -fallback when no candidate passed the selection's filters).")
        }
        if options.paperDirectory != nil { s.append("Figures marked \"the study's data\" are drawn from the CSV files published with arXiv 2510.02768.") }
        return s.joined(separator: " ")
    }

    static func tables(_ r: ReportInputs, flow: PageFlow, options: ReportOptions) throws {
        guard let c = r.counts, let j = r.judgments else {
            try flow.paragraph("No judgments yet: \(r.notes["judgments"] ?? "missing"). Refusal-rate, confusion and agreement tables appear once `ablab judge` has run.",
                               font: Font(size: 9, italic: true), color: .gray)
            return
        }
        try flow.heading("Refusal rates", level: 2)
        let sysOrder = SystemPair.grouped(c.systems)
        let groups = sysOrder.flatMap { s in c.labels.sorted { ($0 == "harmful" ? 0 : 1, $0) < ($1 == "harmful" ? 0 : 1, $1) }
            .filter { l in c.rows.contains { $0.system == s && $0.label == l } }.map { s + "\u{1}" + $0 } }
        let judges = c.judges
        // at most 4 judge columns per table, spread evenly (5 judges: 3 + 2)
        let tablesNeeded = max(1, (judges.count + 3) / 4)
        let perTable = max(1, (judges.count + tablesNeeded - 1) / tablesNeeded)
        for chunkStart in stride(from: 0, to: judges.count, by: perTable) {
            let js = Array(judges[chunkStart..<min(judges.count, chunkStart + perTable)])
            let rows = groups.map { g -> [String] in
                let parts = g.components(separatedBy: "\u{1}")
                return [SystemName.shortName(parts[0]), parts[1]] + js.map { jj in
                    guard let row = c.row(system: parts[0], label: parts[1], judge: jj), row.total > 0 else { return "–" }
                    return "\(pct0(row.rate)) [\(pct0(row.lower, sign: false))–\(pct0(row.upper, sign: false))] \(row.refused)/\(row.total)"
                }
            }
            try flow.paragraph("Refusal rate in % with its \(Int(c.level * 100)) % bootstrap interval and refused/judged counts.", font: Font(size: 8.5))
            try flow.table(header: ["System", "Label"] + js, rows: rows,
                           widths: [0.36, 0.09] + js.map { _ in 0.55 / Double(js.count) }, font: Font(size: 7.5),
                           alignments: [.left, .left] + js.map { _ in .right })
        }
        guard let table = try? JudgmentTable(j) else { return }
        let ref = options.reference.flatMap { table.judges.contains($0) ? $0 : nil } ?? (table.judges.contains("human_1") ? "human_1" : nil)
        let rep = try? AgreementReport.compute(table, options: .init(reference: ref, replicates: min(options.replicates, 500), seed: options.seed))
        try flow.heading("Confusion counts", level: 2)
        if let rep, let ref, !rep.referenceRows.isEmpty {
            try flow.paragraph("Each judge against the reference judge \(ref) (positive class: refusal).", font: Font(size: 8.5))
            let rows = rep.referenceRows.map { x -> [String] in
                let k = x.confusion
                return [x.judge, "\(k.n)", "\(k.tp)", "\(k.fp)", "\(k.fn)", "\(k.tn)", f3(k.accuracy), f3(k.precision), f3(k.recall), f3(x.kappa)]
            }
            try flow.table(header: ["Judge", "n", "TP", "FP", "FN", "TN", "Accuracy", "Precision", "Recall", "κ"], rows: rows,
                           widths: [0.24, 0.07, 0.06, 0.06, 0.06, 0.06, 0.11, 0.11, 0.11, 0.08], font: Font(size: 7.5))
        } else {
            try flow.paragraph("No reference judge (give --reference, or include human labels as judge human_1).", font: Font(size: 8.5, italic: true), color: .gray)
        }
        try flow.heading("Judge agreement", level: 2)
        if let rep, !rep.pairs.isEmpty {
            let rows = zip(rep.pairs, rep.correlations).map { (p, q) -> [String] in
                [p.judgeA, p.judgeB, "\(p.n)", "\(pct0(p.agreement.estimate)) [\(pct0(p.agreement.lower, sign: false))–\(pct0(p.agreement.upper, sign: false))]",
                 "\(f3(p.kappa.estimate)) [\(f3(p.kappa.lower))–\(f3(p.kappa.upper))]", f3(q.pearson)]
            }
            try flow.table(header: ["Judge A", "Judge B", "n", "Agreement [CI]", "Cohen's κ [CI]", "Pearson (refusal counts)"], rows: rows,
                           widths: [0.2, 0.2, 0.07, 0.18, 0.22, 0.13], font: Font(size: 7.5),
                           alignments: [.left, .left, .right, .right, .right, .right])
            try flow.paragraph("Fleiss' κ over the \(rep.fleiss.items) items every judge judged: \(f3(rep.fleiss.kappa)); Krippendorff's α (nominal): \(f3(rep.krippendorffAlpha)).", font: Font(size: 8.5))
            for w in rep.warnings { try flow.paragraph("Warning: \(w)", font: Font(size: 8.5), color: Color(hex: 0xB2182B)) }
        } else {
            try flow.paragraph("Agreement needs at least two judges.", font: Font(size: 8.5, italic: true), color: .gray)
        }
    }

    static func appendix(_ r: ReportInputs, flow: PageFlow, options: ReportOptions) throws {
        guard let gens = r.generations else {
            try flow.paragraph("No generations yet: \(r.notes["generations"] ?? "missing"). Example answers appear once `ablab generate` has written <run>/generations/<system>.jsonl.",
                               font: Font(size: 9, italic: true), color: .gray)
            return
        }
        var bySystem: [String: [String: Generation]] = [:]
        for g in gens { bySystem[g.system, default: [:]][g.id] = g }
        let pairs = SystemPair.pairs(orderedUnique(gens.map(\.system))).filter { $0.original != nil && $0.abliterated != nil }
        guard !pairs.isEmpty else {
            try flow.paragraph("The generations hold no original/abliterated pair of the same checkpoint (systems: \(orderedUnique(gens.map(\.system)).joined(separator: ", "))).",
                               font: Font(size: 9, italic: true), color: .gray)
            return
        }
        var verdicts: [String: String] = [:]
        for j in r.judgments ?? [] { if let v = j.verdict { verdicts[j.system + "\u{1}" + j.itemID, default: ""] += (verdicts[j.system + "\u{1}" + j.itemID] == nil ? "" : ", ") + "\(j.judge): \(v.rawValue)" } }
        var reference: [String: VerdictLabel] = [:]
        let refJudge = options.reference ?? "regex:paper"
        for j in r.judgments ?? [] where j.judge == refJudge { if let v = j.verdict { reference[j.system + "\u{1}" + j.itemID] = v } }
        try flow.paragraph("Answers of the original and the abliterated model to the same prompts (\(options.examples) harmful prompts per model: first those the original refused and the abliterated model answered, by \(refJudge); long answers are cut at 900 characters)" + (r.generationsSource.map { "; from \($0)." } ?? "."), font: Font(size: 8.5))
        let shownPairs = pairs.prefix(options.appendixModels)
        for pr in shownPairs {
            let o = bySystem[pr.original!]!, a = bySystem[pr.abliterated!]!
            let ids = gens.filter { $0.system == pr.original! && $0.label == "harmful" && a[$0.id] != nil }.map(\.id)
            // Prefer prompts the original refused and the abliterated model did not (by the reference
            // judge), the effect the study is about; then any harmful prompts both answered.
            let flipped = ids.filter { reference[pr.original! + "\u{1}" + $0] == .refusal && reference[pr.abliterated! + "\u{1}" + $0] == .nonRefusal }
            let ordered = flipped + ids.filter { !flipped.contains($0) }
            let pick = ordered.isEmpty ? Array(gens.filter { $0.system == pr.original! && a[$0.id] != nil }.map(\.id).prefix(options.examples)) : Array(ordered.prefix(options.examples))
            guard !pick.isEmpty else { continue }
            try flow.heading(pr.checkpoint, level: 2)
            for id in pick {
                let go = o[id]!, ga = a[id]!
                try flow.ensure(60)
                try flow.paragraph("Prompt \(id) (\(go.label))" + (go.prompt.map { ": " + cut($0, 400) } ?? ""), font: Font(size: 8.5, bold: true))
                for (sys, g) in [(pr.original!, go), (pr.abliterated!, ga)] {
                    let v = verdicts[sys + "\u{1}" + id].map { " — \($0)" } ?? ""
                    try flow.paragraph("\(sys)\(v)", font: Font(size: 8, italic: true), color: .gray, indent: 10)
                    try flow.paragraph(cut(g.response, 900), font: Font(size: 8), indent: 10)
                }
                flow.space(6)
            }
        }
        if let note = cutNote(pairs, shown: shownPairs.count) { try flow.paragraph(note, font: Font(size: 8.5, italic: true), color: .gray) }
    }

    static func cutNote(_ pairs: [SystemPair], shown: Int) -> String? {
        pairs.count > shown ? "Not shown (\(pairs.count - shown) more models; raise --appendix-models): " + pairs.dropFirst(shown).map(\.checkpoint).joined(separator: ", ") + "." : nil
    }

    static func cut(_ s: String, _ n: Int) -> String {
        let t = s.replacingOccurrences(of: "\r", with: "").replacingOccurrences(of: "\t", with: "    ")
        return t.count <= n ? t : String(t.prefix(n)) + " …"
    }
}
