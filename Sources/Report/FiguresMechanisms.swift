import AblabCore
import Analysis
import Foundation
import Judging
import Plotting

// The report's "Where the refusal signal lives" section: component attribution, harmfulness vs refusal,
// the layer each selection criterion picks, and how well each system's P(refused) is calibrated.
// Data from `<run>/analysis/{component_attribution,harmfulness_refusal,cosmic,selection_criteria}.csv`
// (written by the report stage from the activation cache) and `<run>/self_judgment.csv`.

/// Everything the section reads; a missing file leaves its part nil.
public struct MechanismData: Sendable {
    public struct Attribution: Sendable {
        public var checkpoint: String
        public var layer: Int
        public var position: Int
        /// Harmful − harmless mean projection on r̂ of each block's attention and MLP output, blocks 0…L−1.
        public var attn: [Double]
        public var mlp: [Double]
        public var embed: Double
        public var residual: Double
    }
    public struct HarmRefusal: Sendable {
        public var checkpoint: String
        public var layers: [Int]
        public var cosine: [Double]
        public var harmfulnessAUROC: [Double]
        public var refusalAUROC: [Double]
        public var instructionPosition: Int
        public var refusalPosition: Int
    }
    public struct Pick: Sendable { public var checkpoint: String, criterion: String, layer: Int, position: Int, used: Bool }
    public struct CosmicLine: Sendable { public var checkpoint: String; public var position: Int; public var layers: [Int]; public var score: [Double] }
    public struct Calibration: Sendable {
        public var system: String
        public var question: String
        public var result: ProbabilityCalibration
    }
    public var attribution: [Attribution] = []
    public var harmRefusal: [HarmRefusal] = []
    public var picks: [Pick] = []
    public var cosmic: [CosmicLine] = []
    public var calibration: [Calibration] = []
    public var isEmpty: Bool { attribution.isEmpty && harmRefusal.isEmpty && picks.isEmpty && calibration.isEmpty }

    /// Reads what exists; an unreadable file is an error naming it and its line.
    public static func load(run: String) throws -> MechanismData {
        var d = MechanismData()
        let dir = run + "/analysis"
        func exists(_ p: String) -> Bool { FileManager.default.fileExists(atPath: p) }
        let ca = dir + "/component_attribution.csv"
        if exists(ca) {
            let t = try NamedTable.read(ca, required: ["checkpoint", "layer", "position", "block", "component", "difference"])
            var order: [String] = []
            var by: [String: [(block: Int, comp: String, v: Double, layer: Int, pos: Int)]] = [:]
            for r in t.rows {
                let c = t.field(r, "checkpoint")
                if by[c] == nil { order.append(c) }
                by[c, default: []].append((try t.int(r, "block"), t.field(r, "component"), try t.double(r, "difference"), try t.int(r, "layer"), try t.int(r, "position")))
            }
            for c in order {
                let rows = by[c]!
                let nb = (rows.map(\.block).max() ?? -1) + 1
                var a = [Double](repeating: .nan, count: nb), m = a
                for x in rows where x.block >= 0 { if x.comp == "attn" { a[x.block] = x.v } else if x.comp == "mlp" { m[x.block] = x.v } }
                d.attribution.append(Attribution(checkpoint: c, layer: rows[0].layer, position: rows[0].pos, attn: a, mlp: m,
                                                 embed: rows.first { $0.comp == "embed" }?.v ?? .nan,
                                                 residual: rows.first { $0.comp == "residual" }?.v ?? .nan))
            }
        }
        let hr = dir + "/harmfulness_refusal.csv"
        if exists(hr) {
            let t = try NamedTable.read(hr, required: ["checkpoint", "layer", "instruction_position", "refusal_position", "cosine", "harmfulness_auroc", "refusal_auroc"])
            var order: [String] = []
            var by: [String: HarmRefusal] = [:]
            for r in t.rows {
                let c = t.field(r, "checkpoint")
                if by[c] == nil {
                    order.append(c)
                    by[c] = HarmRefusal(checkpoint: c, layers: [], cosine: [], harmfulnessAUROC: [], refusalAUROC: [],
                                        instructionPosition: try t.int(r, "instruction_position"), refusalPosition: try t.int(r, "refusal_position"))
                }
                by[c]!.layers.append(try t.int(r, "layer"))
                by[c]!.cosine.append(try t.double(r, "cosine"))
                by[c]!.harmfulnessAUROC.append(try t.double(r, "harmfulness_auroc"))
                by[c]!.refusalAUROC.append(try t.double(r, "refusal_auroc"))
            }
            d.harmRefusal = order.map { by[$0]! }
        }
        let sc = dir + "/selection_criteria.csv"
        if exists(sc) {
            let t = try NamedTable.read(sc, required: ["checkpoint", "criterion", "layer", "position", "used"])
            d.picks = try t.rows.map { Pick(checkpoint: t.field($0, "checkpoint"), criterion: t.field($0, "criterion"), layer: try t.int($0, "layer"),
                                            position: try t.int($0, "position"), used: t.field($0, "used") == "true") }
        }
        let cs = dir + "/cosmic.csv"
        if exists(cs) {
            let t = try NamedTable.read(cs, required: ["checkpoint", "layer", "position", "score"])
            var lines: [String: CosmicLine] = [:], order: [String] = []
            for r in t.rows {
                let c = t.field(r, "checkpoint"), p = try t.int(r, "position")
                // the line at the position the chosen direction is read at (the last token by default)
                let key = c + "\u{1}" + String(p)
                if lines[key] == nil { order.append(key); lines[key] = CosmicLine(checkpoint: c, position: p, layers: [], score: []) }
                lines[key]!.layers.append(try t.int(r, "layer")); lines[key]!.score.append(try t.double(r, "score"))
            }
            d.cosmic = order.map { lines[$0]! }
        }
        let sj = run + "/self_judgment.csv"
        if exists(sj) {
            // Older self_judgment.csv files have no self_score column: no calibration then.
            let t = try NamedTable.read(sj, required: ["system", "reference_verdict"])
            var order: [String] = []
            if t.columns["self_score"] == nil { return d }
            var by: [String: (p: [Double], y: [Bool])] = [:]
            for r in t.rows {
                let s = t.field(r, "self_score"), v = t.field(r, "reference_verdict").trimmingCharacters(in: .whitespaces)
                guard !s.isEmpty, !v.isEmpty else { continue }
                guard let p = Double(s) else { throw InputError(file: sj, line: r.line, key: "self_score", "'\(s)' is not a number") }
                guard let verdict = VerdictLabel(lenient: v) else { throw InputError(file: sj, line: r.line, key: "reference_verdict", "'\(v)' is not a verdict") }
                let key = t.field(r, "system") + "\u{1}" + t.field(r, "question")
                if by[key] == nil { order.append(key) }
                by[key, default: ([], [])].p.append(p)
                by[key, default: ([], [])].y.append(verdict == .refusal)
            }
            for k in order {
                let parts = k.components(separatedBy: "\u{1}")
                do {
                    d.calibration.append(Calibration(system: parts[0], question: parts.count > 1 ? parts[1] : "",
                                                     result: try ProbabilityCalibration(probabilities: by[k]!.p, outcomes: by[k]!.y)))
                } catch let e as AnalysisError {
                    throw InputError(file: sj, key: parts[0], e.message)
                }
            }
        }
        return d
    }

    /// `<run>/analysis/self_judgment_calibration.csv` and `…_bins.csv` (tidy).
    public func writeCalibration(run: String) throws {
        guard !calibration.isEmpty else { return }
        var s = "system,question,n,reference_refusals,auroc,brier,ece\n"
        var b = "system,question,bin_lower,bin_upper,count,mean_probability,observed_frequency\n"
        func g(_ x: Double) -> String { x.isFinite ? String(format: "%.6g", x) : "nan" }
        for c in calibration {
            let r = c.result
            s += [CSV.escape(c.system), c.question, String(r.n), String(r.positives), g(r.auroc), g(r.brier), g(r.ece)].joined(separator: ",") + "\n"
            for x in r.bins {
                b += [CSV.escape(c.system), c.question, g(x.lower), g(x.upper), String(x.count), g(x.meanProbability), g(x.observedFrequency)].joined(separator: ",") + "\n"
            }
        }
        try SafeFiles.createDirectory(run + "/analysis")
        try SafeFiles.atomicWrite(Data(s.utf8), to: run + "/analysis/self_judgment_calibration.csv")
        try SafeFiles.atomicWrite(Data(b.utf8), to: run + "/analysis/self_judgment_calibration_bins.csv")
    }
}

public enum MechanismFigures {
    /// Layer × component heatmap per checkpoint: harmful − harmless mean write along r̂ of each block's
    /// attention and MLP output, the direction's layer marked.
    public static func attribution(_ d: [MechanismData.Attribution]) -> Figure {
        var f = panels(d.count, maxColumns: 1, panelHeight: 118)
        for (i, a) in d.enumerated() {
            var ax = Axes(title: "\(a.checkpoint): write along r̂ (layer \(a.layer), position \(a.position))", xLabel: "Block", yLabel: nil)
            let nb = a.attn.count
            let step = nb > 24 ? 2 : 1
            let m = (a.attn + a.mlp).filter(\.isFinite).map(abs).max() ?? 1
            ax.heatmap([a.attn, a.mlp], rowLabels: ["attn", "MLP"],
                       columnLabels: (0..<nb).map { $0 % step == 0 ? String($0) : "" },
                       colorMap: .blueWhiteRed, norm: ColorNorm(low: -(m > 0 ? m : 1), high: m > 0 ? m : 1), colorBarLabel: "harm. − harmless")
            if a.layer < nb { ax.verticalLine(x: Double(a.layer) - 0.5, label: nil, color: .text, dash: Dash.dashed) }
            f.axes[i] = ax
        }
        return f
    }

    /// Cosine of the harmfulness and refusal directions per layer, and the test AUROC of each.
    public static func harmfulnessRefusal(_ d: [MechanismData.HarmRefusal]) -> Figure {
        var f = Figure(width: reportFigureWidth, height: 250 + 12 * Double(d.count), rows: 1, columns: 2)
        f.panelLabels = true
        var cos = Axes(title: "Cosine of the two directions", xLabel: "Layer", yLabel: "Cosine")
        var auc = Axes(title: "Test AUROC (dashed: t_inst, solid: t_post)", xLabel: "Layer", yLabel: "AUROC")
        let palette = Palette.okabeIto
        for (i, h) in d.enumerated() {
            let x = h.layers.map(Double.init)
            cos.line(x: x, y: h.cosine, label: h.checkpoint, color: palette.color(i))
            // colours as in panel (a); the caption says which line is which
            auc.line(x: x, y: h.harmfulnessAUROC, label: nil, color: palette.color(i), dash: Dash.dashed)
            auc.line(x: x, y: h.refusalAUROC, label: nil, color: palette.color(i))
        }
        cos.yLimits = .fixed(-0.2, 1.0); cos.xIntegerTicks = true; cos.legend = .below
        auc.yLimits = .fixed(0.4, 1.02); auc.xIntegerTicks = true; auc.legend = .none
        auc.horizontalLine(y: 0.5)
        f.axes = [cos, auc]
        return f
    }

    /// COSMIC's score per layer (at the chosen direction's position), with each criterion's pick.
    public static func criteria(_ lines: [MechanismData.CosmicLine], picks: [MechanismData.Pick]) -> Figure {
        let cks = orderedUnique(lines.map(\.checkpoint))
        var f = panels(cks.count, maxColumns: 2, panelHeight: 190)
        let palette = Palette.okabeIto
        for (i, c) in cks.enumerated() {
            let ps = picks.filter { $0.checkpoint == c }
            let pos = ps.first(where: \.used)?.position ?? -1
            var ax = Axes(title: c, xLabel: "Layer of the direction", yLabel: "COSMIC score (position \(pos))")
            if let l = lines.first(where: { $0.checkpoint == c && $0.position == pos }) {
                ax.line(x: l.layers.map(Double.init), y: l.score, label: "COSMIC score", color: .text)
                // each criterion's pick as a marker on the curve; concentric sizes keep coinciding picks visible
                let markers: [Marker] = [.circle, .square, .diamond, .triangle]
                for (k, p) in ps.enumerated() {
                    guard let i = l.layers.firstIndex(of: p.layer) else { continue }
                    ax.scatter(x: [Double(p.layer)], y: [l.score[i]], label: "\(shortCriterion(p.criterion)): layer \(p.layer)" + (p.used ? " (used)" : ""),
                               color: palette.color(k + 1), alpha: 0.9, size: 10 - 2.5 * Double(k), marker: markers[k % markers.count])
                }
            }
            if let u = ps.first(where: \.used) { ax.verticalLine(x: Double(u.layer), label: nil, color: .gray, dash: Dash.dashed) }
            let n = lines.first { $0.checkpoint == c }?.layers.max() ?? 0
            if n > 0 { ax.verticalLine(x: 0.8 * Double(n), label: "last 20 %", color: .gray, dash: Dash.dotted) }
            ax.xIntegerTicks = true
            f.axes[i] = ax
        }
        return f
    }

    static func shortCriterion(_ c: String) -> String {
        if c.hasPrefix("cache") { return "cache" }
        if c.hasPrefix("model") { return "model" }
        if c.hasPrefix("COSMIC") { return "COSMIC" }
        return "study"
    }

    /// Reliability diagram: observed refusal frequency (reference judge) against the mean stated
    /// P(refused) per bin, one line per system and wording.
    public static func reliability(_ d: [MechanismData.Calibration]) -> Figure {
        let questions = orderedUnique(d.map(\.question))
        var f = panels(questions.count, maxColumns: 1, panelHeight: 250)
        for (i, q) in questions.enumerated() {
            var ax = Axes(title: q.isEmpty ? "Self-judgment" : "Self-judgment, \"\(q)\" wording", xLabel: "Stated P(refused)", yLabel: "Reference refusal frequency")
            ax.line(x: [0, 1], y: [0, 1], label: nil, color: .gray, dash: Dash.dashed)
            for (k, c) in d.filter({ $0.question == q }).enumerated() {
                ax.line(x: c.result.bins.map(\.meanProbability), y: c.result.bins.map(\.observedFrequency),
                        label: "\(c.system) (ECE \(String(format: "%.2f", c.result.ece)))", color: Palette.okabeIto.color(k), marker: .circle)
            }
            ax.xLimits = .fixed(0, 1); ax.yLimits = .fixed(0, 1); ax.legend = .below
            f.axes[i] = ax
        }
        return f
    }

    /// The section's figures, in report order.
    public static func figures(_ d: MechanismData) -> [StudyFigure] {
        var out: [StudyFigure] = []
        if !d.attribution.isEmpty {
            out.append(StudyFigure(name: "component_attribution", caption: "Component attribution: the harmful − harmless difference of the mean projection on the used refusal direction r̂ (test prompts) written by each block's attention and MLP output at the direction's token; the embedding term plus the blocks before the direction's layer add up to the residual's projection there (analysis/component_attribution.csv). Red: the block writes r̂ more for harmful prompts.", figure: MechanismFigures.attribution(d.attribution)))
        }
        if !d.harmRefusal.isEmpty {
            out.append(StudyFigure(name: "harmfulness_vs_refusal", caption: "Harmfulness vs refusal (Zhao et al. 2025): (a) cosine between the mean-difference direction at the instruction's last token (t_inst, harmfulness) and at the post-instruction token (t_post, refusal), per layer, both fit on the fit prompts; (b) AUROC of the projection on each direction, at its own token, on the test prompts (dashed: harmfulness at t_inst, solid: refusal at t_post; colours as in (a)).", figure: MechanismFigures.harmfulnessRefusal(d.harmRefusal)))
        }
        if !d.cosmic.isEmpty {
            out.append(StudyFigure(name: "selection_criteria", caption: "Which layer each criterion picks: COSMIC's cache-only score (ablation + addition cosine, validation prompts) per layer, with the layers picked by the cache ranking (validation Cohen's d), the model-based selection (bypass / induce / KL) and COSMIC; \"used\": the direction the abliterated systems use.", figure: MechanismFigures.criteria(d.cosmic, picks: d.picks)))
        }
        if !d.calibration.isEmpty {
            out.append(StudyFigure(name: "self_judgment_reliability", caption: "Reliability of each system's self-judgment: the reference judge's refusal frequency against the P(refused) the system states about its own answer, in 10 equal-width bins (empty bins left out); dashed: perfect calibration.", figure: MechanismFigures.reliability(d.calibration)))
        }
        return out
    }
}

extension StudyReport {
    /// "Where the refusal signal lives": which layer each criterion picks, the largest attribution terms,
    /// the harmfulness/refusal cosine, and the self-judgment calibration table.
    static func mechanismsSection(_ r: ReportInputs, flow: PageFlow) throws {
        guard let m = r.mechanisms, !m.isEmpty else {
            if let n = r.notes["mechanisms"] { try flow.paragraph("Mechanism analyses not shown: \(n)", font: Font(size: 9, italic: true), color: .gray) }
            return
        }
        try flow.heading("Where the refusal signal lives", level: 2)
        if !m.picks.isEmpty {
            try flow.paragraph("Layer each selection criterion picks (cache ranking: validation Cohen's d of the cached candidates; model-based: Arditi et al.'s bypass / induce / KL on validation prompts; COSMIC: its activation-cosine score from the cache alone, fit and validation prompts, no generations — the intervention is applied to the recorded activations, so later blocks' reaction is not seen). \"Used\" marks the direction the abliterated systems use.", font: Font(size: 8.5))
            let rows = m.picks.map { [$0.checkpoint, $0.criterion, String($0.layer), String($0.position), $0.used ? "used" : ""] }
            try flow.table(header: ["Checkpoint", "Criterion", "Layer", "Position", ""], rows: rows, widths: [0.3, 0.44, 0.08, 0.1, 0.08],
                           font: Font(size: 7.5), alignments: [.left, .left, .right, .right, .left])
        }
        if !m.attribution.isEmpty {
            var lines: [String] = []
            for a in m.attribution {
                let terms = (0..<a.attn.count).flatMap { b in [("attention \(b)", a.attn[b]), ("MLP \(b)", a.mlp[b])] }
                    .filter { $0.1.isFinite && Int($0.0.split(separator: " ").last!)! < a.layer }
                let top = terms.sorted { abs($0.1) > abs($1.1) }.prefix(3)
                let sum = terms.reduce(a.embed) { $0 + $1.1 }
                lines.append("\(a.checkpoint) (layer \(a.layer), position \(a.position)): the harmful − harmless gap along r̂ is \(f3(a.residual)); the largest writers are " + top.map { "\($0.0) (\(f3($0.1)))" }.joined(separator: ", ") + "; embedding + blocks 0–\(a.layer - 1) sum to \(f3(sum)).")
            }
            try flow.paragraph("Component attribution (test prompts). " + lines.joined(separator: " "), font: Font(size: 8.5))
        }
        if !m.harmRefusal.isEmpty {
            let lines = m.harmRefusal.map { h -> String in
                let fin = h.cosine.filter(\.isFinite)
                let minCos = fin.min() ?? .nan, i = h.cosine.firstIndex(of: minCos) ?? 0
                return "\(h.checkpoint): cosine between the harmfulness (position \(h.instructionPosition)) and refusal (position \(h.refusalPosition)) directions from \(f3(fin.first ?? .nan)) at layer \(h.layers.first ?? 0) to \(f3(fin.last ?? .nan)) at layer \(h.layers.last ?? 0), lowest \(f3(minCos)) at layer \(h.layers[i]); best test AUROC \(f3(h.harmfulnessAUROC.filter(\.isFinite).max() ?? .nan)) (harmfulness) and \(f3(h.refusalAUROC.filter(\.isFinite).max() ?? .nan)) (refusal)."
            }
            try flow.paragraph("Harmfulness vs refusal. " + lines.joined(separator: " "), font: Font(size: 8.5))
        }
        if !m.calibration.isEmpty {
            try flow.paragraph("Self-judgment calibration: each system's stated P(refused) about its own answer against the reference judge's verdict (analysis/self_judgment_calibration.csv); AUROC 0.5 = no information, Brier 0.25 = a constant ½, ECE over 10 equal-width bins.", font: Font(size: 8.5))
            let rows = m.calibration.map { c in [c.system, c.question, String(c.result.n), String(c.result.positives), f3(c.result.auroc), f3(c.result.brier), f3(c.result.ece)] }
            try flow.table(header: ["System", "Wording", "n", "Refused (ref.)", "AUROC", "Brier", "ECE"], rows: rows,
                           widths: [0.36, 0.1, 0.07, 0.13, 0.11, 0.11, 0.11], font: Font(size: 7.5),
                           alignments: [.left, .left, .right, .right, .right, .right, .right])
        }
    }
}
