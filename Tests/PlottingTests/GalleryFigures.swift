import Foundation
@testable import Plotting

/// Deterministic pseudo-random numbers (SplitMix64) and Gaussian samples (Box–Muller).
struct RNG {
    var state: UInt64
    init(_ seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E3779B97F4A7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58476D1CE4E5B9
        z = (z ^ (z >> 27)) &* 0x94D049BB133111EB
        return z ^ (z >> 31)
    }
    mutating func uniform() -> Double { Double(next() >> 11) / Double(1 << 53) }
    mutating func normal(_ mean: Double = 0, _ sd: Double = 1) -> Double {
        let u = max(uniform(), 1e-300), v = uniform()
        return mean + sd * (-2 * log(u)).squareRoot() * cos(2 * Double.pi * v)
    }
}

/// Example figures shaped like the study's data (synthetic values, realistic shapes and sizes).
enum Gallery {
    static let systems = ["SmolLM2-135M", "Qwen2.5-0.5B", "SafeLM-1.7B", "Llama-3.2-1B", "Gemma-2-2B", "OLMo-2-1B"]
    static let layers = (0..<30).map(Double.init)

    /// PCA explained variance of the first component per layer, two models, ± band.
    static func explainedVariance() -> Figure {
        var rng = RNG(1)
        var ax = Axes(title: "Refusal direction: variance explained by PC1", xLabel: "Layer", yLabel: "Explained variance ratio")
        for (k, name) in ["SmolLM2-135M", "Qwen2.5-0.5B"].enumerated() {
            let peak = k == 0 ? 17.0 : 21.0
            let y = layers.map { l in 0.08 + (0.42 - 0.08 * Double(k)) * exp(-pow((l - peak) / 7, 2)) + rng.normal(0, 0.008) }
            let sd = layers.map { _ in 0.02 + rng.uniform() * 0.015 }
            ax.line(x: layers, y: y, label: name, marker: .circle, band: (zip(y, sd).map { $0 - $1 }, zip(y, sd).map { $0 + $1 }))
        }
        ax.verticalLine(x: 17, label: "selected layer")
        ax.xIntegerTicks = true
        ax.yLimits = .fixed(0, 0.6)
        return Figure(width: 420, height: 260, axes: ax)
    }

    /// Cosine similarity between per-layer refusal directions: 30 × 30 in [−1, 1].
    static func cosineHeatmap() -> Figure {
        var rng = RNG(2)
        var m = [[Double]](repeating: [Double](repeating: 0, count: 30), count: 30)
        for i in 0..<30 {
            for j in 0..<30 {
                if i == j { m[i][j] = 1; continue }
                if j < i { m[i][j] = m[j][i]; continue }
                let d = Double(abs(i - j))
                var v = exp(-d / 6) * (i > 8 && j > 8 ? 1 : 0.6) - (i < 4 && j > 20 ? 0.35 : 0) + rng.normal(0, 0.04)
                v = min(max(v, -1), 1)
                m[i][j] = v
            }
        }
        var ax = Axes(title: "Cosine similarity of refusal directions", xLabel: "Layer", yLabel: "Layer")
        let labels = (0..<30).map(String.init)
        ax.heatmap(m, rowLabels: labels, columnLabels: labels, colorMap: .blueWhiteRed, norm: ColorNorm(low: -1, high: 1),
                   colorBarLabel: "cosine similarity")
        ax.equalAspect = true
        return Figure(width: 380, height: 330, axes: ax)
    }

    /// Refusal rate on harmful prompts: systems × {original, abliterated}.
    static func refusalBars() -> Figure {
        let original = [0.93, 0.88, 0.97, 0.91, 0.95, 0.84]
        let abliterated = [0.07, 0.12, 0.61, 0.05, 0.18, 0.09]
        var ax = Axes(title: "Refusal rate on harmful prompts", yLabel: "Refusal rate")
        ax.bars(categories: systems, groups: [
            BarGroup("original", original, errors: original.map { _ in 0.025 }),
            BarGroup("abliterated", abliterated, errors: abliterated.map { _ in 0.02 }),
        ], valueLabels: true)
        ax.yLimits = .fixed(0, 1.1)
        ax.legend = .auto
        return Figure(width: 440, height: 270, axes: ax)
    }

    /// Refusal rate per judge (rows) and system (columns), with cell labels.
    static func judgeHeatmap() -> Figure {
        var rng = RNG(3)
        let judges = ["Keyword match", "Llama Guard 3", "HarmBench classifier", "LLM judge (Qwen 7B)"]
        let base = [0.12, 0.18, 0.64, 0.09, 0.21, 0.11]
        let vals = judges.indices.map { j in base.map { min(max($0 + rng.normal(0, 0.05) + (j == 0 ? 0.08 : 0), 0), 1) } }
        var ax = Axes(title: "Refusal rate after abliteration, by judge")
        ax.heatmap(vals, rowLabels: judges, columnLabels: systems, colorMap: .viridis, norm: ColorNorm(low: 0, high: 1),
                   colorBarLabel: "refusal rate", cellLabels: true)
        return Figure(width: 460, height: 260, axes: ax)
    }

    /// Harmful vs harmless activations projected on PC1–PC2.
    static func pcScatter() -> Figure {
        var rng = RNG(4)
        var x: [Double] = [], y: [Double] = [], g: [String] = []
        for _ in 0..<160 { x.append(rng.normal(4.2, 1.3)); y.append(rng.normal(0.8, 1.1)); g.append("harmful") }
        for _ in 0..<160 { x.append(rng.normal(-3.6, 1.2)); y.append(rng.normal(-0.4, 1.0)); g.append("harmless") }
        var ax = Axes(title: "Layer 17 residual stream, PCA", xLabel: "PC1 (38.2 %)", yLabel: "PC2 (7.9 %)")
        ax.scatter(x: x, y: y, groups: g)
        ax.text("refusal direction", x: 1.0, y: 4.0, align: .center)
        return Figure(width: 380, height: 300, axes: ax)
    }

    /// Projection onto the refusal direction, two overlaid histograms.
    static func projectionHistogram() -> Figure {
        var rng = RNG(5)
        let harmful = (0..<400).map { _ in rng.normal(2.1, 0.7) }
        let harmless = (0..<400).map { _ in rng.normal(-0.3, 0.6) }
        var ax = Axes(title: "Projection on the refusal direction", xLabel: "Projection", yLabel: "Density")
        ax.histogram(harmful, bins: 30, label: "harmful", density: true)
        ax.histogram(harmless, bins: 30, label: "harmless", density: true)
        ax.verticalLine(x: 0.9, label: "threshold")
        return Figure(width: 400, height: 250, axes: ax)
    }

    /// Refusal score distributions per system: box plots and violins side by side.
    static func distributions() -> Figure {
        var rng = RNG(6)
        let groups = systems.prefix(5).enumerated().map { (i, s) in
            Distribution(s, (0..<120).map { _ in rng.normal(0.2 + 0.12 * Double(i), 0.08 + 0.02 * Double(i)) } + [0.95 - 0.1 * Double(i)])
        }
        var fig = Figure(width: 560, height: 250, title: "Refusal score per system", rows: 1, columns: 2)
        var box = Axes(title: "Box plot", yLabel: "Refusal score")
        box.boxPlot(Array(groups))
        var violin = Axes(title: "Violin plot", yLabel: "Refusal score")
        violin.violin(Array(groups))
        fig[0, 0] = box
        fig[0, 1] = violin
        return fig
    }

    /// Verdict breakdown per system: stacked horizontal bars.
    static func stackedVerdicts() -> Figure {
        let refuse = [0.07, 0.12, 0.61, 0.05, 0.18, 0.09]
        let partial = [0.10, 0.15, 0.14, 0.08, 0.22, 0.11]
        let comply = zip(refuse, partial).map { 1 - $0 - $1 }
        var ax = Axes(title: "Judge verdicts after abliteration", xLabel: "Fraction of harmful prompts")
        ax.bars(categories: systems, groups: [BarGroup("refusal", refuse), BarGroup("partial", partial), BarGroup("compliance", comply)],
                layout: .stacked, horizontal: true)
        ax.xLimits = .fixed(0, 1)
        ax.legend = .below
        return Figure(width: 420, height: 250, axes: ax)
    }

    /// KL divergence vs ablation strength on log–log axes.
    static func logLine() -> Figure {
        let alphas = stride(from: -3.0, through: 1.0, by: 0.25).map { pow(10, $0) }
        var ax = Axes(title: "Harmless-prompt KL divergence vs ablation scale", xLabel: "Ablation scale α", yLabel: "KL divergence (nats)")
        ax.xScale = .log; ax.yScale = .log
        ax.line(x: alphas, y: alphas.map { 2e-4 + 0.03 * $0 * $0 }, label: "directional ablation", marker: .circle)
        ax.line(x: alphas, y: alphas.map { 5e-4 + 0.06 * $0 }, label: "weight orthogonalisation", dash: Dash.dashed, marker: .square)
        ax.horizontalLine(y: 0.1, label: "budget 0.1 nats")
        return Figure(width: 420, height: 280, axes: ax)
    }

    /// A 2 × 2 summary panel, as in a paper's main figure.
    static func panels() -> Figure {
        var fig = Figure(width: 620, height: 460, title: "Abliteration summary", rows: 2, columns: 2)
        fig.panelLabels = true
        fig[0, 0] = explainedVariance().axes[0]
        fig[0, 1] = refusalBars().axes[0]
        fig[1, 0] = pcScatter().axes[0]
        fig[1, 1] = judgeHeatmap().axes[0]
        return fig
    }

    static let all: [(name: String, figure: Figure)] = [
        ("explained_variance", explainedVariance()),
        ("cosine_heatmap", cosineHeatmap()),
        ("refusal_bars", refusalBars()),
        ("judge_heatmap", judgeHeatmap()),
        ("pc_scatter", pcScatter()),
        ("projection_histogram", projectionHistogram()),
        ("distributions", distributions()),
        ("stacked_verdicts", stackedVerdicts()),
        ("log_line", logLine()),
        ("panels", panels()),
    ]
}
