import Foundation
import AblabCore
import Plotting

/// The subspace-ablation sweep of a run (`<run>/analysis/subspace.csv` and `subspace_resilience.csv`,
/// written by the study's subspace stage): refusal rates and harmless KL against the number k of
/// directions removed, per checkpoint and basis.
public struct SubspaceSweepData: Sendable, Equatable {
    public struct Point: Sendable, Equatable {
        public var checkpoint: String, basis: String, k: Int, label: String
        public var refused: Int, total: Int, rate: Double, lower: Double, upper: Double
        public var harmlessKL: Double
    }
    public struct Resilience: Sendable, Equatable {
        public var checkpoint: String, basis: String, threshold: Double
        /// nil: not reached within the largest k tried.
        public var smallestK: Int?
        public var largestK: Int
    }
    public var points: [Point]
    public var resilience: [Resilience]
    public var judge: String
    public var maxNewTokens: Int?
    public var layers: [String: Int]

    public var checkpoints: [String] { orderedUnique(points.map(\.checkpoint)) }
    public var bases: [String] { orderedUnique(points.map(\.basis).filter { $0 != "original" }) }

    /// The curve of one checkpoint and basis for `label`: the original (k = 0) then each k, in k order.
    public func curve(_ checkpoint: String, basis: String, label: String) -> [Point] {
        points.filter { $0.checkpoint == checkpoint && $0.label == label && ($0.basis == basis || $0.basis == "original") }
            .sorted { $0.k < $1.k }
    }

    public static func load(run: String) throws -> SubspaceSweepData {
        let path = run + "/analysis/subspace.csv"
        let rows = try CSV.parse(try String(contentsOfFile: path, encoding: .utf8), file: path)
        guard let h = rows.first?.fields else { throw InputError(file: path, line: 1, "empty file") }
        func col(_ n: String) throws -> Int {
            guard let i = h.firstIndex(of: n) else { throw InputError(file: path, line: 1, key: n, "column missing") }
            return i
        }
        let c = try (col("checkpoint"), col("basis"), col("k"), col("label"), col("refused"), col("total"), col("rate"),
                     col("lower"), col("upper"), col("harmless_kl_mean"), col("judge"), col("layer"), col("max_new_tokens"))
        var points: [Point] = []
        var judge = "", maxNew: Int?, layers: [String: Int] = [:]
        for r in rows.dropFirst() {
            let f = r.fields
            guard f.count == h.count, let k = Int(f[c.2]), let refused = Int(f[c.4]), let total = Int(f[c.5]) else {
                throw InputError(file: path, line: r.line, "expected \(h.count) fields with integer k, refused and total")
            }
            let num = { (s: String) in Double(s) ?? .nan }
            points.append(Point(checkpoint: f[c.0], basis: f[c.1], k: k, label: f[c.3], refused: refused, total: total,
                                rate: num(f[c.6]), lower: num(f[c.7]), upper: num(f[c.8]), harmlessKL: num(f[c.9])))
            judge = f[c.10]; maxNew = Int(f[c.12]); layers[f[c.0]] = Int(f[c.11])
        }
        var res: [Resilience] = []
        let rp = run + "/analysis/subspace_resilience.csv"
        if FileManager.default.fileExists(atPath: rp) {
            let rr = try CSV.parse(try String(contentsOfFile: rp, encoding: .utf8), file: rp)
            for r in rr.dropFirst() where r.fields.count >= 6 {
                res.append(Resilience(checkpoint: r.fields[0], basis: r.fields[1], threshold: Double(r.fields[2]) ?? .nan,
                                      smallestK: Int(r.fields[3]), largestK: Int(r.fields[5]) ?? 0))
            }
        }
        return SubspaceSweepData(points: points, resilience: res, judge: judge, maxNewTokens: maxNew, layers: layers)
    }
}

public enum SubspaceFigures {
    /// Three panels: harmful refusal rate, harmless refusal rate and harmless next-token KL against k
    /// (k = 0: the original model). One colour per checkpoint, solid for the principal-axes basis, dashed
    /// for the layers basis; bands: Wilson 95 % intervals; dotted grey line: the resilience threshold.
    public static func refusalVsK(_ d: SubspaceSweepData) -> Figure {
        let legendRows = Double((d.checkpoints.count * d.bases.count + 1) / 2)
        var fig = Figure(width: reportFigureWidth, height: 440 + 14 * legendRows, rows: 3, columns: 1)
        let ks = Set(d.points.map(\.k)).sorted()
        let threshold = d.resilience.first?.threshold
        for (panel, what) in [(0, "harmful"), (1, "harmless"), (2, "kl")].enumerated() {
            var ax = Axes(title: nil, xLabel: what.1 == "kl" ? "k (orthonormal directions removed; 0 = original)" : nil,
                          yLabel: what.1 == "kl" ? "Harmless KL (nats)" : "Refused, \(what.1)")
            ax.xIntegerTicks = true
            ax.legend = what.1 == "kl" ? .below : .none
            if let kMax = ks.last { ax.xLimits = .fixed(-0.4, Double(kMax) + 0.4) }
            for (ci, c) in d.checkpoints.enumerated() {
                for (bi, b) in d.bases.enumerated() {
                    let pts = d.curve(c, basis: b, label: what.1 == "kl" ? "harmless" : what.1)
                    guard !pts.isEmpty else { continue }
                    let x = pts.map { Double($0.k) }
                    let y = what.1 == "kl" ? pts.map(\.harmlessKL) : pts.map(\.rate)
                    let band: (lower: [Double], upper: [Double])? = what.1 == "kl" ? nil : (pts.map(\.lower), pts.map(\.upper))
                    var ls = LineSeries(x: x, y: y, label: "\(SystemName.shortName(c)) · \(b == "pca" ? "PCA" : "layers")", color: Palette.okabeIto.color(ci),
                                        dash: bi == 0 ? Dash.solid : Dash.dashed, marker: bi == 0 ? .circle : .square, band: band)
                    ls.bandAlpha = 0.08
                    ax.add(.line(ls))
                }
            }
            if what.1 == "kl" {
                ax.yLimits = .auto
            } else {
                ax.yLimits = .fixed(0, 1)
                if what.1 == "harmful", let t = threshold { ax.horizontalLine(y: t, label: nil, color: .gray, dash: Dash.dotted) }
            }
            fig.axes[panel] = ax
        }
        return fig
    }
}

/// The report's "Subspace ablation" section: the resilience numbers and the sweep table.
enum SubspaceSection {
    static func basisName(_ b: String) -> String {
        b == "pca" ? "principal axes of harmful − harmless" : b == "layers" ? "mean-diff of nearby layers" : b
    }

    static func caption(_ s: SubspaceSweepData) -> String {
        let t = s.resilience.first.map { " Dotted line: the resilience threshold (\(Int(($0.threshold * 100).rounded())) %)." } ?? ""
        return "Subspace ablation: refusal rates on harmful and harmless test prompts (judged by \(s.judge)\(s.maxNewTokens.map { ", answers of at most \($0) tokens" } ?? "")) and the harmless next-token KL against the number k of orthonormal directions removed at once (k = 0: the original model). Solid: principal axes of the harmful − harmless fit differences; dashed: mean-diff directions of the chosen layer and its neighbours, orthonormalised. Bands: Wilson 95 % intervals.\(t)"
    }

    static func write(_ s: SubspaceSweepData, flow: PageFlow) throws {
        try flow.heading("Subspace ablation", level: 2)
        var text = "Each checkpoint loses the first k directions of a basis fit on its fit prompts at its chosen layer (\(s.layers.sorted { $0.key < $1.key }.map { "\(SystemName.shortName($0.key)): layer \($0.value)" }.joined(separator: ", "))), at inference time. "
        text += "Resilience: the smallest k that brings harmful refusals (\(s.judge)) to or below the threshold. "
        text += s.resilience.map { r in
            "\(SystemName.shortName(r.checkpoint)), \(basisName(r.basis)): " + (r.smallestK.map { $0 == 0 ? "k = 0 (the original is already at or below it)" : "k = \($0)" } ?? "not reached (k ≤ \(r.largestK))")
        }.joined(separator: "; ") + "."
        try flow.paragraph(text)
        let pct = { (x: Double) in x.isFinite ? String(format: "%.0f", x * 100) : "–" }
        var rows: [[String]] = []
        for c in s.checkpoints {
            for b in s.bases {
                let hf = s.curve(c, basis: b, label: "harmful"), hl = s.curve(c, basis: b, label: "harmless")
                for p in hf where p.k > 0 || b == s.bases.first {
                    let q = hl.first { $0.k == p.k }
                    rows.append([SystemName.shortName(c), p.k == 0 ? "original" : b, String(p.k),
                                 "\(pct(p.rate)) (\(p.refused)/\(p.total))", q.map { "\(pct($0.rate)) (\($0.refused)/\($0.total))" } ?? "–",
                                 q.map { $0.harmlessKL.isFinite ? String(format: "%.3f", $0.harmlessKL) : "–" } ?? "–"])
                }
            }
        }
        try flow.table(header: ["Checkpoint", "Basis", "k", "Harmful refused %", "Harmless refused %", "Harmless KL"], rows: rows,
                       widths: [0.34, 0.12, 0.06, 0.18, 0.18, 0.12], font: Font(size: 7.5),
                       alignments: [.left, .left, .right, .right, .right, .right])
    }
}
