import Analysis
import Foundation
import Plotting

// Figures of the analysis stage: pure functions from loaded data to `Figure`. The data structs are
// built from `<run>/analysis/*.csv` (and, for the PCA scatter, the activation cache) by their `from`/
// `load` functions, so a researcher can re-render without rerunning any model.

/// Page-wide figure width (points): A4 minus 2 × 56 pt margins.
public let reportFigureWidth = 480.0

/// Panel grid for `n` panels: at most `maxColumns` per row.
func grid(_ n: Int, maxColumns: Int = 2) -> (rows: Int, columns: Int) {
    let c = max(1, min(n, maxColumns))
    return ((n + c - 1) / c, c)
}

/// A figure with `n` panels, empty trailing cells hidden by leaving them without series.
func panels(_ n: Int, maxColumns: Int = 2, panelHeight: Double, title: String? = nil, width: Double = reportFigureWidth) -> Figure {
    let g = grid(n, maxColumns: maxColumns)
    var f = Figure(width: width, height: panelHeight * Double(g.rows) + (title == nil ? 0 : 18), title: title, rows: g.rows, columns: g.columns)
    f.panelLabels = n > 1
    return f
}

// MARK: - PCA spectra

/// Explained-variance ratios of the leading PCs per layer, per checkpoint, at one token position
/// (metrics.csv rows `pca/explained_variance_ratio_<k>`).
public struct SpectrumData: Sendable {
    public struct Checkpoint: Sendable {
        public var name: String
        public var layers: [Int]
        /// [layer][component], component 0 = PC1.
        public var ratios: [[Double]]
        public init(name: String, layers: [Int], ratios: [[Double]]) { self.name = name; self.layers = layers; self.ratios = ratios }
    }
    public var position: Int
    public var checkpoints: [Checkpoint]
    public init(position: Int, checkpoints: [Checkpoint]) { self.position = position; self.checkpoints = checkpoints }

    public static func from(_ m: AnalysisMetrics, position: Int) -> SpectrumData {
        let prefix = "explained_variance_ratio_"
        var byCk: [String: [Int: [Int: Double]]] = [:]
        for r in m.rows where r.method == "pca" && r.position == position && r.metric.hasPrefix(prefix) {
            guard let k = Int(r.metric.dropFirst(prefix.count)), k >= 1 else { continue }
            byCk[r.checkpoint, default: [:]][r.layer, default: [:]][k] = r.value
        }
        let cks = m.checkpoints.filter { byCk[$0] != nil }.map { name -> Checkpoint in
            let perLayer = byCk[name]!
            let layers = perLayer.keys.sorted()
            let kMax = perLayer.values.map { $0.keys.max() ?? 0 }.max() ?? 0
            let ratios = layers.map { l in (1...max(kMax, 1)).map { perLayer[l]![$0] ?? .nan } }
            return Checkpoint(name: name, layers: layers, ratios: ratios)
        }
        return SpectrumData(position: position, checkpoints: cks)
    }
}

public enum AnalysisFigures {
    /// Explained variance of PC1…PC`components` (and their cumulative share) vs layer; one panel per checkpoint.
    public static func spectrumLines(_ d: SpectrumData, components: Int = 3) -> Figure {
        var f = panels(d.checkpoints.count, panelHeight: 200)
        for (i, c) in d.checkpoints.enumerated() {
            var ax = Axes(title: c.name, xLabel: "Layer", yLabel: "Explained variance ratio")
            ax.xIntegerTicks = true
            let x = c.layers.map(Double.init)
            let k = min(components, c.ratios.first?.count ?? 0)
            for j in 0..<k {
                ax.line(x: x, y: c.ratios.map { $0[j] }, label: "PC\(j + 1)", marker: c.layers.count <= 16 ? .circle : .none)
            }
            if k > 1 {
                ax.line(x: x, y: c.ratios.map { $0.prefix(k).reduce(0, +) }, label: "PC1–\(k) total", color: .gray, dash: Dash.dashed)
            }
            // from 0 to a round value above the largest total shown (ratios of wide models are small)
            let top = c.ratios.map { $0.prefix(k).filter(\.isFinite).reduce(0, +) }.max() ?? 1
            ax.yLimits = .fixed(0, min(1, max(0.1, (top * 1.15 * 10).rounded(.up) / 10)))
            ax.legend = i == d.checkpoints.count - 1 ? .outsideRight : .none
            f.axes[i] = ax
        }
        return f
    }

    /// Layer × component heatmap of the explained-variance ratio (first `components` PCs); one panel per checkpoint.
    public static func spectrumHeatmap(_ d: SpectrumData, components: Int = 10) -> Figure {
        let rowsPerPanel = d.checkpoints.map(\.layers.count).max() ?? 1
        var f = panels(d.checkpoints.count, panelHeight: max(170, min(330, 70 + 10 * Double(rowsPerPanel))))
        // one colour scale for every panel so checkpoints compare
        let shown = d.checkpoints.flatMap { c in c.ratios.flatMap { $0.prefix(components) } }.filter(\.isFinite)
        let norm = ColorNorm(low: 0, high: max(shown.max() ?? 1, 1e-6))
        for (i, c) in d.checkpoints.enumerated() {
            let k = min(components, c.ratios.first?.count ?? 0)
            var ax = Axes(title: c.name, xLabel: "Principal component", yLabel: "Layer")
            ax.heatmap(c.ratios.map { Array($0.prefix(k)) }, rowLabels: c.layers.map(String.init),
                       columnLabels: (0..<k).map { String($0 + 1) }, colorMap: .viridis, norm: norm,
                       colorBarLabel: "Variance ratio")
            f.axes[i] = ax
        }
        return f
    }
}

// MARK: - Separation and probes

/// Test-set separation of the harmful and harmless projections on each direction, and probe accuracy,
/// per layer (metrics.csv rows `<method>/cohen_d`, `<method>/auroc`, `probe/probe_accuracy_<k>`).
public struct SeparationData: Sendable {
    public struct Line: Sendable {
        public var checkpoint: String
        /// "mean-diff" or "pc1" for directions; "probe k=<k>" for probes.
        public var method: String
        public var layers: [Int]
        public var values: [Double]
        public init(checkpoint: String, method: String, layers: [Int], values: [Double]) {
            self.checkpoint = checkpoint; self.method = method; self.layers = layers; self.values = values
        }
    }
    public var position: Int
    public var cohenD: [Line]
    public var auroc: [Line]
    public var probeAccuracy: [Line]
    public init(position: Int, cohenD: [Line], auroc: [Line], probeAccuracy: [Line]) {
        self.position = position; self.cohenD = cohenD; self.auroc = auroc; self.probeAccuracy = probeAccuracy
    }

    /// `probeComponents`: which probe sizes to show (default: the smallest and the largest present).
    public static func from(_ m: AnalysisMetrics, position: Int, probeComponents: [Int]? = nil) -> SeparationData {
        func lines(_ metric: String) -> [Line] {
            var out: [Line] = []
            for method in DirectionMethod.allCases.map(\.rawValue) {
                let s = m.series(method: method, metric: metric, position: position)
                for ck in m.checkpoints { if let v = s[ck], !v.isEmpty {
                    out.append(Line(checkpoint: ck, method: method, layers: v.map(\.layer), values: v.map(\.value)))
                } }
            }
            return out
        }
        let prefix = "probe_accuracy_"
        let ks = Set(m.rows.filter { $0.method == "probe" && $0.position == position && $0.metric.hasPrefix(prefix) }
            .compactMap { Int($0.metric.dropFirst(prefix.count)) }).sorted()
        let chosen = probeComponents ?? Array(Set([ks.first, ks.last].compactMap { $0 })).sorted()
        var probes: [Line] = []
        for ck in m.checkpoints {
            for k in chosen where ks.contains(k) {
                if let v = m.series(method: "probe", metric: prefix + String(k), position: position)[ck], !v.isEmpty {
                    probes.append(Line(checkpoint: ck, method: "probe k=\(k)", layers: v.map(\.layer), values: v.map(\.value)))
                }
            }
        }
        return SeparationData(position: position, cohenD: lines("cohen_d"), auroc: lines("auroc"), probeAccuracy: probes)
    }
}

extension AnalysisFigures {
    /// Three panels: Cohen's d, AUROC and probe accuracy vs layer. Colour = checkpoint, dash = method.
    public static func separation(_ d: SeparationData) -> Figure {
        var f = Figure(width: reportFigureWidth, height: 520, rows: 3, columns: 1)
        f.panelLabels = true
        let cks = orderedUnique((d.cohenD + d.auroc + d.probeAccuracy).map(\.checkpoint))
        let palette = Palette.okabeIto
        func dash(_ method: String, _ all: [String]) -> [Double] {
            let styles = [Dash.solid, Dash.dashed, Dash.dotted, Dash.dashDot]
            return styles[(all.firstIndex(of: method) ?? 0) % styles.count]
        }
        func panel(_ lines: [SeparationData.Line], _ title: String, _ yLabel: String, _ limits: AxisLimits, ref: Double?) -> Axes {
            var ax = Axes(title: title, xLabel: "Layer", yLabel: yLabel)
            ax.xIntegerTicks = true
            let methods = orderedUnique(lines.map(\.method))
            for l in lines {
                let ci = cks.firstIndex(of: l.checkpoint) ?? 0
                let label = cks.count > 1 || methods.count > 1 ? (cks.count > 1 ? "\(l.checkpoint) · \(l.method)" : l.method) : l.checkpoint
                ax.line(x: l.layers.map(Double.init), y: l.values, label: label, color: palette.color(ci), dash: dash(l.method, methods),
                        marker: l.layers.count <= 16 ? .circle : .none)
            }
            if let ref { ax.horizontalLine(y: ref, color: .lightGray) }
            if case .fixed(let lo, let hi) = limits {
                // keep the fixed upper limit, extend downwards when the data go lower (AUROC < 0.4 happens)
                let low = lines.flatMap(\.values).filter(\.isFinite).min() ?? lo
                ax.yLimits = .fixed(low < lo ? max(0, (low * 10).rounded(.down) / 10) : lo, hi)
            } else { ax.yLimits = limits }
            ax.legend = .outsideRight
            return ax
        }
        f.axes[0] = panel(d.cohenD, "Separation on the direction (test prompts)", "Cohen's d", .auto, ref: 0)
        f.axes[1] = panel(d.auroc, "AUROC of the projection (test prompts)", "AUROC", .fixed(0.4, 1.0), ref: 0.5)
        f.axes[2] = panel(d.probeAccuracy, "Linear probe on the leading PCs (test prompts)", "Accuracy", .fixed(0.4, 1.0), ref: 0.5)
        return f
    }
}

func orderedUnique(_ xs: [String]) -> [String] { var s = Set<String>(); return xs.filter { s.insert($0).inserted } }

// MARK: - Direction cosines

/// Layer × layer cosine of one method's directions within each checkpoint (similarity.csv rows with
/// checkpoint_a = checkpoint_b, metric `cosine`).
public struct LayerCosineData: Sendable {
    public struct Checkpoint: Sendable {
        public var name: String
        public var layers: [Int]
        /// [layer][layer]
        public var cosines: [[Double]]
        public init(name: String, layers: [Int], cosines: [[Double]]) { self.name = name; self.layers = layers; self.cosines = cosines }
    }
    public var method: String
    public var position: Int
    public var checkpoints: [Checkpoint]
    public init(method: String, position: Int, checkpoints: [Checkpoint]) { self.method = method; self.position = position; self.checkpoints = checkpoints }

    public static func from(_ rows: [SimilarityRow], method: String, position: Int) -> LayerCosineData {
        var order: [String] = []
        var vals: [String: [Int: [Int: Double]]] = [:]
        for r in rows where r.checkpointA == r.checkpointB && r.method == method && r.metric == "cosine" && r.position == position {
            if vals[r.checkpointA] == nil { order.append(r.checkpointA) }
            vals[r.checkpointA, default: [:]][r.layerA, default: [:]][r.layerB] = r.value
        }
        return LayerCosineData(method: method, position: position, checkpoints: order.map { ck in
            let v = vals[ck]!
            let layers = Array(Set(v.keys).union(v.values.flatMap(\.keys))).sorted()
            return Checkpoint(name: ck, layers: layers, cosines: layers.map { a in layers.map { b in v[a]?[b] ?? .nan } })
        })
    }
}

/// Checkpoint × checkpoint similarity at a few relative depths (similarity.csv cross-checkpoint rows).
public struct CrossCheckpointData: Sendable {
    public struct Panel: Sendable {
        /// e.g. "depth 50 % (ckA L12, ckB L8)"
        public var title: String
        /// [checkpoint][checkpoint]; diagonal 1; NaN where the pair was not compared.
        public var values: [[Double]]
        /// Relative depth in [0, 1] (of the first checkpoint).
        public var depth: Double
        public init(title: String, values: [[Double]], depth: Double = .nan) { self.title = title; self.values = values; self.depth = depth }
    }
    /// "cka" or "cosine"
    public var metric: String
    /// Direction method for cosines ("-" for CKA).
    public var method: String
    public var checkpoints: [String]
    public var panels: [Panel]
    /// A chance level drawn with the metric, same layout as `panels` (e.g. the debiased CKA with the
    /// prompts' pairing shuffled, 95th percentile); empty when there is none.
    public var baseline: [Panel] = []
    public var baselineLabel = ""
    public init(metric: String, method: String, checkpoints: [String], panels: [Panel]) {
        self.metric = metric; self.method = method; self.checkpoints = checkpoints; self.panels = panels
    }

    /// "Linear CKA", "Debiased linear CKA" or "Cosine".
    var axisLabel: String {
        switch metric {
        case "cka": return "Linear CKA"
        case "cka_debiased": return "Debiased linear CKA"
        default: return "Cosine"
        }
    }
    var isCKA: Bool { metric.hasPrefix("cka") }

    /// `layerCounts`: residual layers per checkpoint (the largest analysed layer). Depths are fractions
    /// of the first checkpoint's depth; other checkpoints' layers are matched the way the analysis did
    /// (`Similarity.mappedLayer`).
    public static func from(_ rows: [SimilarityRow], metric: String, method: String, position: Int,
                            checkpoints: [String], layerCounts: [String: Int],
                            depths: [Double] = [0.25, 0.5, 0.75, 1.0]) -> CrossCheckpointData {
        let sel = rows.filter { $0.checkpointA != $0.checkpointB && $0.metric == metric && $0.method == method && $0.position == position }
        guard checkpoints.count >= 2, let ref = checkpoints.first, let lRef = layerCounts[ref], lRef > 0 else {
            return CrossCheckpointData(metric: metric, method: method, checkpoints: checkpoints, panels: [])
        }
        var lookup: [String: Double] = [:]
        for r in sel { lookup["\(r.checkpointA)\u{1}\(r.layerA)\u{1}\(r.checkpointB)"] = r.value }
        var panels: [Panel] = []
        var seenLayers = Set<Int>()
        for dpt in depths {
            let lr = max(1, min(lRef, Int((dpt * Double(lRef)).rounded())))
            guard seenLayers.insert(lr).inserted else { continue }
            let layer: [String: Int] = Dictionary(uniqueKeysWithValues: checkpoints.map { c in
                (c, Similarity.mappedLayer(lr, from: lRef + 1, to: (layerCounts[c] ?? lRef) + 1))
            })
            let n = checkpoints.count
            var m = [[Double]](repeating: [Double](repeating: .nan, count: n), count: n)
            var any = false
            for i in 0..<n {
                m[i][i] = 1
                for j in 0..<n where j != i {
                    let a = checkpoints[i], b = checkpoints[j]
                    if let v = lookup["\(a)\u{1}\(layer[a]!)\u{1}\(b)"] ?? lookup["\(b)\u{1}\(layer[b]!)\u{1}\(a)"] { m[i][j] = v; any = true }
                }
            }
            guard any else { continue }
            panels.append(Panel(title: "depth \(Int((dpt * 100).rounded())) % (\(ref) L\(lr))", values: m, depth: Double(lr) / Double(lRef)))
        }
        return CrossCheckpointData(metric: metric, method: method, checkpoints: checkpoints, panels: panels)
    }
}

extension AnalysisFigures {
    /// Layer × layer cosine heatmaps, diverging map fixed to [−1, 1] (0 is white).
    public static func layerCosines(_ d: LayerCosineData) -> Figure {
        var f = panels(d.checkpoints.count, panelHeight: 240)
        for (i, c) in d.checkpoints.enumerated() {
            var ax = Axes(title: c.name, xLabel: "Layer", yLabel: "Layer")
            ax.heatmap(c.cosines, rowLabels: c.layers.map(String.init), columnLabels: c.layers.map(String.init),
                       colorMap: .blueWhiteRed, norm: ColorNorm(low: -1, high: 1), colorBarLabel: "Cosine (\(d.method))")
            ax.equalAspect = true
            f.axes[i] = ax
        }
        return f
    }

    /// One line per pair of checkpoints: the metric against relative depth (%).
    public static func crossCheckpointLines(_ d: CrossCheckpointData) -> Figure {
        let isCKA = d.isCKA
        var f = panels(1, maxColumns: 1, panelHeight: 230)
        var ax = Axes(title: isCKA ? "\(d.axisLabel) at matched relative depth" : "Cosine of the \(d.method) directions at matched relative depth",
                      xLabel: "Relative depth (%)", yLabel: d.axisLabel)
        let palette = Palette.okabeIto
        var k = 0
        var lowest = 0.0
        func series(_ ps: [CrossCheckpointData.Panel], _ i: Int, _ j: Int) -> (x: [Double], y: [Double]) {
            var xs: [Double] = [], ys: [Double] = []
            for p in ps {
                let v = p.values[i][j].isNaN ? p.values[j][i] : p.values[i][j]
                if v.isFinite { xs.append(p.depth * 100); ys.append(v) }
            }
            return (xs, ys)
        }
        for i in 0..<d.checkpoints.count {
            for j in (i + 1)..<d.checkpoints.count {
                let (xs, ys) = series(d.panels, i, j)
                guard !xs.isEmpty else { continue }
                ax.line(x: xs, y: ys, label: "\(d.checkpoints[i]) vs \(d.checkpoints[j])", color: palette.color(k),
                        marker: xs.count <= 12 ? .circle : .none)
                let (bx, by) = series(d.baseline, i, j)
                if !bx.isEmpty {
                    ax.line(x: bx, y: by, label: k == 0 ? d.baselineLabel : nil, color: palette.color(k), dash: Dash.dashed)
                }
                lowest = min(lowest, ys.min() ?? 0, by.min() ?? 0)
                k += 1
            }
        }
        // Long pair names: below the plot rather than beside it (which squeezes the plot area).
        ax.legend = .below
        // The debiased estimate can fall below 0 (no shared geometry beyond chance).
        ax.yLimits = isCKA ? .fixed(lowest < 0 ? max(-1, (lowest * 10).rounded(.down) / 10) : 0, 1) : .fixed(-1, 1)
        f.axes[0] = ax
        return f
    }

    /// Checkpoint × checkpoint heatmaps at a few depths: CKA on a sequential map [0, 1], cosines on the
    /// diverging map [−1, 1].
    public static func crossCheckpoint(_ d: CrossCheckpointData) -> Figure {
        // Few checkpoints: one line per pair over relative depth reads better than tiny heatmaps.
        if d.checkpoints.count <= 4 && d.panels.count >= 3 && d.panels.allSatisfy({ !$0.depth.isNaN }) {
            return crossCheckpointLines(d)
        }
        var f = panels(d.panels.count, maxColumns: 2, panelHeight: 200)
        let isCKA = d.isCKA
        for (i, p) in d.panels.enumerated() {
            var ax = Axes(title: p.title)
            ax.heatmap(p.values, rowLabels: d.checkpoints, columnLabels: d.checkpoints,
                       colorMap: isCKA ? .viridis : .blueWhiteRed,
                       norm: isCKA ? ColorNorm(low: 0, high: 1) : ColorNorm(low: -1, high: 1),
                       colorBarLabel: isCKA ? d.axisLabel : "Cosine (\(d.method))", cellLabels: true)
            ax.equalAspect = true
            f.axes[i] = ax
        }
        return f
    }
}

// MARK: - PC1–PC2 scatter

/// Test prompts projected on the two leading PCs (fit on the train prompts) at a few layers.
public struct PCScatterData: Sendable {
    public struct Panel: Sendable {
        public var checkpoint: String
        public var layer: Int
        /// Explained-variance ratio of PC1 and PC2 (of the train fit).
        public var explained: (Double, Double)
        /// [(pc1, pc2)] per class
        public var harmful: [(Double, Double)]
        public var harmless: [(Double, Double)]
        public init(checkpoint: String, layer: Int, explained: (Double, Double), harmful: [(Double, Double)], harmless: [(Double, Double)]) {
            self.checkpoint = checkpoint; self.layer = layer; self.explained = explained; self.harmful = harmful; self.harmless = harmless
        }
    }
    public var position: Int
    public var panels: [Panel]
    public init(position: Int, panels: [Panel]) { self.position = position; self.panels = panels }
}

extension AnalysisFigures {
    /// Harmful (vermillion) vs harmless (blue) test prompts on PC1–PC2, one panel per (checkpoint, layer).
    public static func pcScatter(_ d: PCScatterData) -> Figure {
        // Three layers per checkpoint: one row per checkpoint, no empty panels.
        var f = panels(d.panels.count, maxColumns: 3, panelHeight: 200)
        for (i, p) in d.panels.enumerated() {
            // Short panel titles: long checkpoint names are cut at their first "-".
            let name = p.checkpoint.count > 14 ? String(p.checkpoint.split(separator: "-").first ?? Substring(p.checkpoint)) : p.checkpoint
            var ax = Axes(title: "\(name) · layer \(p.layer)",
                          xLabel: String(format: "PC1 (%.0f %%)", p.explained.0 * 100),
                          yLabel: String(format: "PC2 (%.0f %%)", p.explained.1 * 100))
            let size = p.harmful.count + p.harmless.count > 120 ? 2.6 : 3.5
            ax.scatter(x: p.harmful.map(\.0), y: p.harmful.map(\.1), label: "harmful", color: Color(hex: 0xD55E00), alpha: 0.7, size: size)
            ax.scatter(x: p.harmless.map(\.0), y: p.harmless.map(\.1), label: "harmless", color: Color(hex: 0x0072B2), alpha: 0.7, size: size, marker: .square)
            // No legend beside a panel (it would squeeze the first one): the caption names the colours.
            ax.legend = .none
            f.axes[i] = ax
        }
        return f
    }
}
