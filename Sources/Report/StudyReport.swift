import ActivationCache
import AblabCore
import Analysis
import Foundation
import HDF5
import Judging
import Plotting

/// A figure of the report: its file name (without extension), caption and drawing.
public struct StudyFigure: Sendable {
    public var name: String
    public var caption: String
    public var figure: Figure
    public init(name: String, caption: String, figure: Figure) { self.name = name; self.caption = caption; self.figure = figure }
}

/// Knobs of `ablab report`.
public struct ReportOptions: Sendable {
    /// Where figures go (default `<run>/figures`).
    public var figuresDirectory: String?
    /// The study's CSV folder (notebooks-scripts/data/paper): adds the study's judge × model heatmap
    /// and judge-correlation heatmap.
    public var paperDirectory: String?
    /// Judge used for refusal-rate figures (default: the first judge in the judgments).
    public var judge: String?
    /// Reference judge for confusion counts (default: human_1 when present).
    public var reference: String?
    /// Token position of the analysis figures (default −1).
    public var position: Int?
    /// Layers of the PC scatter (default: about 1/3, 2/3 and the last).
    public var scatterLayers: [Int]?
    /// Prompts per model shown in the appendix.
    public var examples: Int = 2
    /// Models (original/abliterated pairs) shown in the appendix.
    public var appendixModels: Int = 4
    /// Bootstrap replicates of the intervals.
    public var replicates: Int = 1000
    public var seed: UInt64 = 20251002
    /// Write PNG + PDF of each figure.
    public var writeFigureFiles = true
    public init() {}
}

/// One activation cache's header, for the title page and the methods paragraph.
public struct CacheInfo: Sendable {
    public var checkpoint: String
    public var modelPath: String
    public var modelSHA256: String
    public var architecture: String
    public var nLayers: Int
    public var dModel: Int
    public var positions: [Int]
    public var systemPrompt: String
    public var promptSetSHA256: String
    /// "harmful/train" → count
    public var promptCounts: [String: Int]
    public var nPrompts: Int
}

/// Everything the report reads from a run folder. A missing or unreadable input leaves its field nil
/// and records why in `notes` (keyed by section), so the rest still renders.
public struct ReportInputs: Sendable {
    public var run: String
    public var manifest: RunManifest?
    public var caches: [CacheInfo] = []
    public var metrics: AnalysisMetrics?
    public var similarity: [SimilarityRow]?
    public var analysisAttributes: [String: String] = [:]
    public var scatter: PCScatterData?
    public var judgments: [Judgment]?
    public var judgmentsFile: String?
    public var counts: RefusalCounts?
    public var paperAll: RefusalCounts?
    public var paper10q: RefusalCounts?
    public var selfJudgments: [SelfJudgmentEntry]?
    public var generations: [Generation]?
    /// Where the appendix answers come from when not `<run>/generations`.
    public var generationsSource: String?
    /// Component attribution, harmfulness vs refusal, selection criteria and self-judgment calibration.
    public var mechanisms: MechanismData?
    /// The subspace-ablation sweep (`analysis/subspace.csv`), when the study ran it.
    public var subspace: SubspaceSweepData?
    /// What abliteration costs (`analysis/costs.csv`).
    public var costs: CostsData?
    /// Arditi's full grid, one per checkpoint (`analysis/grid-<checkpoint>.csv`).
    public var grids: [GridData] = []
    public var notes: [String: String] = [:]
    public init(run: String) { self.run = run }
}

public enum StudyReport {
    static let log = AblabLog.logger("report")

    // MARK: loading

    /// Loads every input the report can use; never fails on a missing file.
    public static func load(run: String, options: ReportOptions = ReportOptions()) -> ReportInputs {
        let rf = RunFolder(run)
        var r = ReportInputs(run: run)
        func attempt<T>(_ section: String, _ path: String, _ body: () throws -> T) -> T? {
            guard RunFolder.exists(path) else { r.notes[section] = "\(path) does not exist yet"; return nil }
            do { return try body() } catch {
                r.notes[section] = "\(error)"
                log.warning("report: \(section): \(error)")
                return nil
            }
        }
        r.manifest = attempt("manifest", rf.manifest) { try RunManifest.load(rf.manifest) }
        if RunFolder.exists(rf.activations) {
            do {
                let cache = try ActivationCache(run: run)
                for name in try cache.checkpoints() {
                    let f = try cache.open(name)
                    var counts: [String: Int] = [:]
                    for p in f.prompts { counts["\(p.label)/\(p.split.isEmpty ? "-" : p.split)", default: 0] += 1 }
                    let h = f.header
                    r.caches.append(CacheInfo(checkpoint: h.checkpoint, modelPath: h.modelPath, modelSHA256: h.modelSHA256,
                                              architecture: h.architecture, nLayers: h.nLayers, dModel: h.dModel,
                                              positions: h.positions.map(Int.init), systemPrompt: h.systemPrompt,
                                              promptSetSHA256: f.promptSetSHA256, promptCounts: counts, nPrompts: f.nPromptsTotal))
                }
                r.scatter = try PCScatterData.load(run: run, position: options.position, layers: options.scatterLayers)
            } catch {
                r.notes["scatter"] = "\(error)"
                log.warning("report: activation cache: \(error)")
            }
        } else {
            r.notes["scatter"] = "\(rf.activations) does not exist (the PC1–PC2 scatter needs the activation cache)"
        }
        r.metrics = attempt("analysis", rf.metricsCSV) { try AnalysisMetrics.load(rf.metricsCSV) }
        r.similarity = attempt("similarity", rf.similarityCSV) { try SimilarityFile.load(rf.similarityCSV) }
        if RunFolder.exists(rf.analysisH5), let f = try? H5File.open(rf.analysisH5, requireChecksums: true) {
            for k in ["bootstrap", "seed", "ablab_version", "format_version", "leakage"] {
                if let s = try? f.stringAttribute(k) { r.analysisAttributes[k] = s }
                else if let i = try? f.intAttribute(k) { r.analysisAttributes[k] = String(i) }
            }
            f.close()
        }
        let jPath = RunFolder.exists(rf.judgmentsCSV) ? rf.judgmentsCSV : rf.paperJudgmentsCSV
        r.judgments = attempt("judgments", jPath) { try JudgmentsFile.read(jPath) }
        if r.judgments != nil { r.judgmentsFile = jPath; r.notes["judgments"] = nil }
        else if !RunFolder.exists(rf.judgmentsCSV) && !RunFolder.exists(rf.paperJudgmentsCSV) {
            r.notes["judgments"] = "neither \(rf.judgmentsCSV) nor \(rf.paperJudgmentsCSV) exists yet (run `ablab judge` or `ablab agree`)"
        }
        if let p = options.paperDirectory, var j = r.judgments, let names = studyDisplayNames(p), !names.isEmpty {
            // the study's short model names ("Score 0 - ALB"), as its figures use them
            for i in j.indices { if let n = names[j[i].system] { j[i].system = n } }
            r.judgments = j
        }
        if let j = r.judgments { r.counts = RefusalCounts.from(j, replicates: options.replicates, seed: options.seed) }
        if let p = options.paperDirectory {
            let all = p + "/" + PaperStudy.summaryAllRenamedFile, q = p + "/" + PaperStudy.summary10qRenamedFile
            r.paperAll = attempt("paper", all) { RefusalCounts.from(summary: try PaperStudy.readSummary(all), replicates: options.replicates, seed: options.seed) }
            r.paper10q = attempt("paper10q", q) { RefusalCounts.from(summary: try PaperStudy.readSummary(q), replicates: options.replicates, seed: options.seed) }
        }
        if RunFolder.exists(run + "/analysis/subspace.csv") {
            r.subspace = attempt("subspace", run + "/analysis/subspace.csv") { try SubspaceSweepData.load(run: run) }
        }
        do { r.grids = try GridData.loadAll(run: run) } catch { r.notes["grid"] = "\(error)" }
        if RunFolder.exists(run + "/analysis/costs.csv") {
            r.costs = attempt("costs", run + "/analysis/costs.csv") { try CostsData.load(run + "/analysis/costs.csv") }
        }
        r.selfJudgments = attempt("self", rf.selfJudgmentCSV) { try SelfJudgmentEntry.load(rf.selfJudgmentCSV) }
        do { r.mechanisms = try MechanismData.load(run: run) } catch {
            r.notes["mechanisms"] = "\(error)"
            log.warning("report: mechanisms: \(error)")
        }
        r.generations = attempt("generations", rf.generations) { try Generation.loadFolder(rf.generations) }
        if r.generations?.isEmpty == true { r.generations = nil; r.notes["generations"] = "\(rf.generations) holds no .jsonl files" }
        if r.generations == nil, let p = options.paperDirectory, let study = try? PaperStudy.load(directory: p) {
            // no generations of our own: show the study's annotated answers (original vs "-ALB")
            let names = studyDisplayNames(p) ?? [:]
            r.generations = study.responses.map {
                Generation(id: $0.qid, label: $0.label, system: names[$0.model] ?? $0.model, response: $0.response, prompt: $0.question)
            }
            r.notes["generations"] = nil
            r.generationsSource = "the study's user-study responses (\(PaperStudy.annotator1File))"
        }
        return r
    }

    /// The study's model names: its summary file and the renamed copy list the same rows in the same
    /// order, so zipping their `model` columns maps the long model ids to the short names. nil when the
    /// files are missing or do not line up.
    public static func studyDisplayNames(_ dir: String) -> [String: String]? {
        guard let a = try? PaperStudy.readSummary(dir + "/" + PaperStudy.summary10qFile),
              let b = try? PaperStudy.readSummary(dir + "/" + PaperStudy.summary10qRenamedFile), a.count == b.count else { return nil }
        var out: [String: String] = [:]
        for (x, y) in zip(a, b) {
            guard x.label == y.label, x.refused == y.refused, x.total == y.total else { return nil }
            if let old = out[x.model], old != y.model { return nil }
            out[x.model] = y.model
        }
        return out
    }

    /// The judge of the refusal-rate figures.
    public static func primaryJudge(_ c: RefusalCounts, options: ReportOptions) -> String? {
        if let j = options.judge, c.judges.contains(j) { return j }
        return c.judges.first
    }

    // MARK: figures

    /// Every figure the inputs allow, in report order. Pure: only reads `inputs`.
    public static func figures(_ r: ReportInputs, options: ReportOptions = ReportOptions()) -> [StudyFigure] {
        var out: [StudyFigure] = []
        if let m = r.metrics, let pos = options.position ?? m.defaultPosition {
            let spec = SpectrumData.from(m, position: pos)
            if !spec.checkpoints.isEmpty {
                out.append(StudyFigure(name: "pca_spectrum", caption: "Explained-variance ratio of the leading principal components of the pooled harmful + harmless train activations at each layer (token position \(pos)); dashed: their total.", figure: AnalysisFigures.spectrumLines(spec)))
                out.append(StudyFigure(name: "pca_spectrum_heatmap", caption: "Explained-variance ratio per layer (rows) and principal component (columns), token position \(pos).", figure: AnalysisFigures.spectrumHeatmap(spec)))
            }
            let sep = SeparationData.from(m, position: pos)
            if !(sep.cohenD.isEmpty && sep.auroc.isEmpty && sep.probeAccuracy.isEmpty) {
                out.append(StudyFigure(name: "separation", caption: "Separation of harmful and harmless test prompts along each refusal direction (Cohen's d, AUROC; solid: mean difference, dashed: PC1) and accuracy of a logistic-regression probe on the leading PCs, per layer (token position \(pos)). Grey lines: chance.", figure: AnalysisFigures.separation(sep)))
            }
        }
        if let s = r.scatter, !s.panels.isEmpty {
            out.append(StudyFigure(name: "pc_scatter", caption: "Test prompts projected on the first two principal components of the train activations (token position \(s.position)): harmful prompts as vermillion circles, harmless prompts as blue squares. PC1 is oriented so harmful prompts score higher; axis labels give each component's share of the variance.", figure: AnalysisFigures.pcScatter(s)))
        }
        if let sim = r.similarity {
            let pos = options.position ?? r.metrics?.defaultPosition ?? sim.map(\.position).max() ?? -1
            for method in DirectionMethod.allCases.map(\.rawValue) {
                let d = LayerCosineData.from(sim, method: method, position: pos)
                if !d.checkpoints.isEmpty {
                    out.append(StudyFigure(name: "layer_cosine_\(method)", caption: "Cosine similarity between the \(method) refusal directions of every pair of layers within each checkpoint (token position \(pos)); blue negative, white 0, red positive.", figure: AnalysisFigures.layerCosines(d)))
                }
            }
            let cks = r.metrics?.checkpoints ?? orderedUnique(sim.map(\.checkpointA))
            var layerCounts: [String: Int] = [:]
            for c in r.caches { layerCounts[c.checkpoint] = c.nLayers }
            for x in sim where x.checkpointA == x.checkpointB { layerCounts[x.checkpointA] = max(layerCounts[x.checkpointA] ?? 0, x.layerA) }
            // every layer of the first checkpoint when there are few checkpoints (drawn as lines), else four depths (heatmaps)
            let refLayers = cks.first.flatMap { layerCounts[$0] } ?? 0
            let depths: [Double] = cks.count <= 4 && refLayers > 0 ? (1...refLayers).map { Double($0) / Double(refLayers) } : [0.25, 0.5, 0.75, 1.0]
            // The debiased estimate (unbiased HSIC) with its shuffled-pairing baseline; analysis files
            // written before it existed have only the plug-in estimate, which is biased upward with
            // fewer prompts than dimensions, and say so.
            var cka = CrossCheckpointData.from(sim, metric: "cka_debiased", method: "-", position: pos, checkpoints: cks, layerCounts: layerCounts, depths: depths)
            if !cka.panels.isEmpty {
                cka.baseline = CrossCheckpointData.from(sim, metric: "cka_debiased_permuted_p95", method: "-", position: pos, checkpoints: cks, layerCounts: layerCounts, depths: depths).panels
                cka.baselineLabel = "dashed: prompts' pairing shuffled (95th percentile)"
                out.append(StudyFigure(name: "cross_checkpoint_cka", caption: "Debiased linear CKA (unbiased HSIC estimator) between the test-prompt activations of every pair of checkpoints at matched relative depth (token position \(pos)); 1 = the same geometry up to rotation and scale, 0 = none. Dashed, same colour: the estimate with one checkpoint's prompts shuffled against the other's (95th percentile of 20 shuffles), the level a value must exceed to be more than chance. The plug-in (biased) estimate is in similarity.csv as cka.", figure: AnalysisFigures.crossCheckpoint(cka)))
            } else {
                let plugin = CrossCheckpointData.from(sim, metric: "cka", method: "-", position: pos, checkpoints: cks, layerCounts: layerCounts, depths: depths)
                if !plugin.panels.isEmpty {
                    out.append(StudyFigure(name: "cross_checkpoint_cka", caption: "Linear CKA (plug-in estimate: this analysis file predates the debiased one; rerun the analyze stage) between the test-prompt activations of every pair of checkpoints at matched relative depth (token position \(pos)). It is biased upward when there are fewer prompts than dimensions.", figure: AnalysisFigures.crossCheckpoint(plugin)))
                }
            }
            let cos = CrossCheckpointData.from(sim, metric: "cosine", method: "mean-diff", position: pos, checkpoints: cks, layerCounts: layerCounts, depths: depths)
            if !cos.panels.isEmpty {
                out.append(StudyFigure(name: "cross_checkpoint_cosine", caption: "Cosine between the mean-difference refusal directions of every pair of checkpoints at matched relative depth (equal widths only; token position \(pos)).", figure: AnalysisFigures.crossCheckpoint(cos)))
            }
        }
        if let c = r.counts, let judge = primaryJudge(c, options: options) {
            let pairs = SystemPair.pairs(c.systems)
            if !pairs.isEmpty {
                out.append(StudyFigure(name: "refusal_rates", caption: "Refusal rate of each model before (blue) and after (vermillion) abliteration, judged by \(judge); error bars: \(Int(c.level * 100)) % Wilson score intervals.", figure: JudgingFigures.refusalRates(c, judge: judge)))
            }
            if c.systems.count > 12 {
                for label in c.labels.sorted() {
                    let sub = RefusalCounts(rows: c.rows.filter { $0.label == label }, level: c.level)
                    out.append(StudyFigure(name: "judge_system_heatmap_\(SafeFiles.sanitize(label))", caption: "\(label.capitalized) prompts: refusal rate given by each judge (columns) to each system's answers (rows); each model is followed by its abliterated copies.", figure: JudgingFigures.judgeSystemHeatmap(sub)))
                }
            } else {
                out.append(StudyFigure(name: "judge_system_heatmap", caption: "Refusal rate given by each judge (columns) to each system's answers (rows); each model is followed by its abliterated copies.", figure: JudgingFigures.judgeSystemHeatmap(c)))
            }
            if let j = r.judgments, let t = try? JudgmentTable(j), t.judges.count >= 2 {
                out.append(StudyFigure(name: "judge_kappa", caption: "Cohen's κ between every pair of judges over the answers both judged (diverging map centred at 0).", figure: JudgingFigures.judgeMatrix(JudgeMatrix.kappa(t))))
                out.append(StudyFigure(name: "judge_correlation", caption: "Pearson correlation between judges computed the study's way: over the refused and not-refused counts of every (system, prompt label) group.", figure: JudgingFigures.judgeMatrix(JudgeMatrix.studyCorrelation(c), triangle: true)))
            }
            let sweep = AlphaSweepData.from(c, judge: judge)
            if !sweep.lines.isEmpty {
                out.append(StudyFigure(name: "alpha_sweep", caption: "Refusal rate on harmful prompts against the abliteration strength α (α = 0: the original model), judged by \(judge); bands: \(Int(c.level * 100)) % bootstrap intervals.", figure: JudgingFigures.alphaSweep(sweep)))
            }
        }
        if let s = r.subspace, !s.points.isEmpty {
            out.append(StudyFigure(name: "subspace_refusal_vs_k", caption: SubspaceSection.caption(s), figure: SubspaceFigures.refusalVsK(s)))
        }
        for g in r.grids where !g.cells.isEmpty {
            let best = g.bestBypass.map { " Lowest bypass with KL ≤ 0.1: layer \($0.layer), position \($0.position)." } ?? " No cell has KL ≤ 0.1."
            out.append(StudyFigure(name: "grid_\(SafeFiles.sanitize(g.checkpoint))", caption: "Arditi et al.'s selection grid for \(SystemName.shortName(g.checkpoint)): every layer × post-instruction position's mean-diff direction scored on the validation prompts — bypass (refusal log-odds on harmful prompts with the direction ablated), induce (on harmless prompts with it added) and next-token KL on harmless prompts.\(best)", figure: GridFigures.grid(g)))
        }
        if let c = r.costs, !c.rows.isEmpty {
            out.append(StudyFigure(name: "abliteration_costs", caption: "What abliteration costs: (top) cross-entropy of each checkpoint's own greedy answers to the harmless test prompts under each system (the original's is its baseline); (bottom) harmful refusal rate of each system's answers cut to their first 48 tokens and in full (\(c.rows.first!.judge)).", figure: CostsFigures.costs(c)))
        }
        if let s = r.selfJudgments, !s.isEmpty {
            out.append(StudyFigure(name: "self_judgment", caption: "How often each model's verdict on its own answer matches the reference verdict, before and after abliteration, one panel per question wording put to the model; error bars: 95 % bootstrap percentile intervals over items.", figure: JudgingFigures.selfJudgment(SelfJudgmentData.from(s, replicates: options.replicates, seed: options.seed))))
        }
        if let m = r.mechanisms { out += MechanismFigures.figures(m) }
        if let p = r.paperAll {
            for label in p.labels.sorted() {
                let sub = RefusalCounts(rows: p.rows.filter { $0.label == label }, level: p.level)
                out.append(StudyFigure(name: "paper_judge_system_heatmap_\(SafeFiles.sanitize(label))", caption: "The study's data, \(label) prompts: refusal rate given by each judge (columns) to each model's 50 answers (rows); \"-ALB\": abliterated.", figure: JudgingFigures.judgeSystemHeatmap(sub)))
            }
        }
        if let p = r.paper10q {
            let order = ["Human 1", "Human 2", "ChatGPT5", "GLM-4", "regex", "Qwen3", "SmolLM2", "GPT-oss"].filter { p.judges.contains($0) }
            out.append(StudyFigure(name: "paper_judge_correlation", caption: "The study's data: Pearson correlation between judges over the refused and not-refused counts of the 10-question sample (the study's method).", figure: JudgingFigures.judgeMatrix(JudgeMatrix.studyCorrelation(p, judges: order), triangle: true)))
        }
        return out
    }

    /// Writes `<dir>/<name>.png` (2×) and `.pdf` for each figure.
    public static func writeFigures(_ figs: [StudyFigure], to dir: String) throws {
        try SafeFiles.createDirectory(dir)
        for f in figs {
            try f.figure.validate(file: dir + "/" + f.name)
            try f.figure.write(to: dir + "/" + f.name + ".png", scale: 2)
            try f.figure.write(to: dir + "/" + f.name + ".pdf")
        }
    }
}
