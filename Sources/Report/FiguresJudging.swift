import Foundation
import Judging
import Plotting

// Figures of the judging stage: pure functions from refusal counts (from `judgments.csv` or the
// study's summary CSVs) and self-judgments to `Figure`.

/// Refused / total counts per (system, prompt label, judge), with a bootstrap interval of the rate.
public struct RefusalCounts: Sendable {
    public struct Row: Sendable, Equatable {
        public var system: String, label: String, judge: String
        public var refused: Int, total: Int
        /// Wilson score interval of the refusal rate (NaN when total = 0).
        public var lower: Double, upper: Double
        public var rate: Double { total == 0 ? .nan : Double(refused) / Double(total) }
        public init(system: String, label: String, judge: String, refused: Int, total: Int, lower: Double = .nan, upper: Double = .nan) {
            self.system = system; self.label = label; self.judge = judge; self.refused = refused; self.total = total
            self.lower = lower; self.upper = upper
        }
    }
    public var rows: [Row]
    /// Confidence level of the intervals.
    public var level: Double
    public init(rows: [Row], level: Double = 0.95) { self.rows = rows; self.level = level }

    public var judges: [String] { orderedUnique(rows.map(\.judge)) }
    public var systems: [String] { orderedUnique(rows.map(\.system)) }
    public var labels: [String] { orderedUnique(rows.map(\.label)) }

    public func row(system: String, label: String, judge: String) -> Row? {
        rows.first { $0.system == system && $0.label == label && $0.judge == judge }
    }

    static func interval(refused: Int, total: Int, replicates: Int, seed: UInt64, level: Double) -> (Double, Double) {
        // Wilson score interval (not a percentile bootstrap, which is [0, 0] at 0 refusals).
        guard total > 0 else { return (.nan, .nan) }
        let ci = Agreement.wilson(successes: refused, n: total, level: level)
        return (ci.lower, ci.upper)
    }

    /// Counts from judgments (missing verdicts are left out of the total).
    public static func from(_ judgments: [Judgment], replicates: Int = 1000, seed: UInt64 = 20251002, level: Double = 0.95) -> RefusalCounts {
        var order: [String] = []
        var acc: [String: (Judgment, Int, Int)] = [:]
        for j in judgments {
            let k = j.system + "\u{1}" + j.label + "\u{1}" + j.judge
            if acc[k] == nil { order.append(k); acc[k] = (j, 0, 0) }
            guard let v = j.verdict else { continue }
            acc[k]!.1 += v == .refusal ? 1 : 0
            acc[k]!.2 += 1
        }
        return RefusalCounts(rows: order.map { k in
            let (j, r, t) = acc[k]!
            let (lo, hi) = interval(refused: r, total: t, replicates: replicates, seed: seed, level: level)
            return Row(system: j.system, label: j.label, judge: j.judge, refused: r, total: t, lower: lo, upper: hi)
        }, level: level)
    }

    /// Counts from the study's summary files (`PaperStudy.readSummary`).
    public static func from(summary: [PaperStudy.SummaryRow], replicates: Int = 1000, seed: UInt64 = 20251002, level: Double = 0.95) -> RefusalCounts {
        RefusalCounts(rows: summary.map { s in
            let (lo, hi) = interval(refused: s.refused, total: s.total, replicates: replicates, seed: seed, level: level)
            return Row(system: s.model, label: s.label, judge: s.judge, refused: s.refused, total: s.total, lower: lo, upper: hi)
        }, level: level)
    }
}

/// Original and abliterated systems of each checkpoint, in first-seen order of checkpoints. When a
/// checkpoint has several abliterated variants, the one with α = 1 is chosen (else the largest α,
/// else the first seen).
public struct SystemPair: Sendable, Equatable {
    public var checkpoint: String
    public var original: String?
    public var abliterated: String?

    /// Systems reordered so each checkpoint's original comes first, followed by its abliterated
    /// variants (in their order), checkpoints in first-seen order.
    public static func grouped(_ systems: [String]) -> [String] {
        var order: [String] = []
        var by: [String: [String]] = [:]
        for s in systems {
            let k = SystemName.parse(s).shortCheckpoint
            if by[k] == nil { order.append(k) }
            if SystemName.parse(s).isAbliterated { by[k, default: []].append(s) } else { by[k, default: []].insert(s, at: 0) }
        }
        return order.flatMap { by[$0]! }
    }

    public static func pairs(_ systems: [String]) -> [SystemPair] {
        var order: [String] = []
        var orig: [String: String] = [:]
        var abl: [String: [SystemName]] = [:]
        for s in systems {
            let n = SystemName.parse(s)
            let k = n.shortCheckpoint
            if orig[k] == nil && abl[k] == nil { order.append(k) }
            if n.isAbliterated { abl[k, default: []].append(n) } else if orig[k] == nil { orig[k] = s }
        }
        return order.map { c in
            let vs = abl[c] ?? []
            let pick = vs.first { $0.abliteration?.alpha == 1 }
                ?? vs.filter { $0.abliteration?.alpha != nil }.max { $0.abliteration!.alpha! < $1.abliteration!.alpha! }
                ?? vs.first
            return SystemPair(checkpoint: c, original: orig[c], abliterated: pick?.raw)
        }
    }
}

/// Judge × judge Cohen's κ over the (system, item) units both judged.
public struct JudgeMatrix: Sendable {
    public var judges: [String]
    /// [judge][judge]; NaN where undefined (no shared items or no variation).
    public var values: [[Double]]
    /// "Cohen's κ" or "Pearson r".
    public var measure: String
    public init(judges: [String], values: [[Double]], measure: String) { self.judges = judges; self.values = values; self.measure = measure }

    public static func kappa(_ table: JudgmentTable) -> JudgeMatrix {
        let n = table.judges.count
        var m = [[Double]](repeating: [Double](repeating: .nan, count: n), count: n)
        for a in 0..<n { for b in 0..<n {
            m[a][b] = (try? Agreement.cohenKappa(table.verdicts[a], table.verdicts[b])) ?? .nan
        } }
        return JudgeMatrix(judges: table.judges, values: m, measure: "Cohen's κ")
    }

    /// The study's judge correlation: Pearson r between two judges over the concatenation of the
    /// refused and the not-refused counts of the (system, label) groups both judged.
    public static func studyCorrelation(_ c: RefusalCounts, judges: [String]? = nil) -> JudgeMatrix {
        let js = judges ?? c.judges
        var byJudge: [String: [String: RefusalCounts.Row]] = [:]
        for r in c.rows { byJudge[r.judge, default: [:]][r.system + "\u{1}" + r.label] = r }
        let n = js.count
        var m = [[Double]](repeating: [Double](repeating: .nan, count: n), count: n)
        for a in 0..<n { for b in 0..<n {
            guard let ra = byJudge[js[a]], let rb = byJudge[js[b]] else { continue }
            let keys = ra.keys.filter { rb[$0] != nil }.sorted()
            let x = keys.map { Double(ra[$0]!.refused) } + keys.map { Double(ra[$0]!.total - ra[$0]!.refused) }
            let y = keys.map { Double(rb[$0]!.refused) } + keys.map { Double(rb[$0]!.total - rb[$0]!.refused) }
            m[a][b] = (try? Agreement.pearson(x, y)) ?? .nan
        } }
        return JudgeMatrix(judges: js, values: m, measure: "Pearson r")
    }
}

/// Self-judgment accuracy per system: how often a system's verdict on its own answer matches the
/// reference verdict.
public struct SelfJudgmentData: Sendable {
    public struct Row: Sendable, Equatable {
        public var system: String
        /// The question's wording ("" when the entries name none): one panel per wording.
        public var question: String = ""
        public var correct: Int, total: Int
        public var lower: Double, upper: Double
        public var accuracy: Double { total == 0 ? .nan : Double(correct) / Double(total) }
    }
    public var rows: [Row]
    public init(rows: [Row]) { self.rows = rows }
    /// The wordings in order of first appearance.
    public var questions: [String] { orderedUnique(rows.map(\.question)) }

    public static func from(_ s: [SelfJudgmentEntry], replicates: Int = 1000, seed: UInt64 = 20251002, level: Double = 0.95) -> SelfJudgmentData {
        // One bar per (system, question wording).
        struct Key: Hashable { let system: String, question: String }
        var seen = Set<Key>()
        let keys = s.map { Key(system: $0.system, question: $0.question) }.filter { seen.insert($0).inserted }
        return SelfJudgmentData(rows: keys.map { k in
            let items = s.filter { $0.system == k.system && $0.question == k.question }
            let a = items.map(\.selfVerdict), b = items.map(\.referenceVerdict)
            let pc = try? Agreement.pairCounts(a, b)
            let ci = try? Agreement.bootstrapAgreement(a, b, replicates: replicates, seed: seed, level: level)
            return Row(system: k.system, question: k.question, correct: pc?.agreed ?? 0, total: pc?.n ?? 0,
                       lower: ci?.lower ?? .nan, upper: ci?.upper ?? .nan)
        })
    }
}

/// Refusal rate vs abliteration strength α, one line per (checkpoint, method, layer); the original
/// system is the point α = 0.
public struct AlphaSweepData: Sendable {
    public struct Line: Sendable {
        public var name: String
        public var alphas: [Double]
        public var rates: [Double]
        public var lower: [Double], upper: [Double]
    }
    public var judge: String
    public var label: String
    public var lines: [Line]

    public static func from(_ c: RefusalCounts, judge: String, label: String = "harmful") -> AlphaSweepData {
        let rows = c.rows.filter { $0.judge == judge && $0.label == label }
        var originals: [String: RefusalCounts.Row] = [:]
        var groups: [String: [(Double, RefusalCounts.Row)]] = [:]
        var order: [String] = []
        for r in rows {
            let n = SystemName.parse(r.system)
            if let a = n.abliteration, let alpha = a.alpha {
                let key = "\(n.checkpoint)\u{1}\(a.method ?? "?") L\(a.layer.map(String.init) ?? "?")"
                if groups[key] == nil { order.append(key) }
                groups[key, default: []].append((alpha, r))
            } else if !n.isAbliterated { originals[n.checkpoint] = r }
        }
        let multi = Set(order.map { $0.components(separatedBy: "\u{1}")[0] }).count < order.count
        let lines = order.compactMap { key -> Line? in
            let parts = key.components(separatedBy: "\u{1}")
            var pts = groups[key]!.sorted { $0.0 < $1.0 }
            guard pts.count + (originals[parts[0]] == nil ? 0 : 1) >= 2 else { return nil }
            if let o = originals[parts[0]], !pts.contains(where: { $0.0 == 0 }) { pts.insert((0, o), at: 0) }
            let name = multi ? "\(parts[0]) (\(parts[1]))" : parts[0]
            return Line(name: name, alphas: pts.map(\.0), rates: pts.map(\.1.rate), lower: pts.map(\.1.lower), upper: pts.map(\.1.upper))
        }
        return AlphaSweepData(judge: judge, label: label, lines: lines)
    }
}

public enum JudgingFigures {
    /// Bars too short to see (value < 0.02 on a [0, 1] axis) get their value written beside the baseline,
    /// so a rate of 0 is not mistaken for a missing bar. With `upper` (the intervals drawn by
    /// `intervalBars`) the label goes just past the interval's end instead of over its whisker; where every
    /// bar of a category is flat with the same value, one label for the category ("0.00 (both)") instead of
    /// one per bar, which would overlap (the bars of a group are thinner than a line of text).
    /// `values[group][category]`.
    static func labelFlatBars(_ ax: inout Axes, values: [[Double]], upper: [[Double]]? = nil, horizontal: Bool = false,
                              slotFraction: Double = 0.8) {
        let n = values.count
        guard n > 0 else { return }
        let w = slotFraction / Double(n)
        let finite = values.flatMap { $0 }.filter(\.isFinite)
        if !finite.isEmpty && finite.allSatisfy({ $0 == 0 }) {
            // every bar is 0: one note instead of a label per bar
            let mid = Double((values.first?.count ?? 1) - 1) / 2
            ax.annotations.append(horizontal ? .text("all rates are 0", x: 0.5, y: mid, align: .center, color: .gray)
                                             : .text("all rates are 0", x: mid, y: 0.5, align: .center, color: .gray))
            return
        }
        func isFlat(_ v: Double) -> Bool { v.isFinite && v < 0.02 }
        // Where a label starts along the value axis: past the interval's upper end when there is one.
        func start(_ gs: [Int], _ i: Int) -> Double {
            let ends = gs.compactMap { g -> Double? in
                guard let u = upper?[g][i], u.isFinite else { return nil }
                return u
            }
            return (ends.max() ?? 0) + (horizontal ? 0.012 : 0.03)
        }
        func put(_ text: String, at v: Double, center c: Double) {
            ax.annotations.append(horizontal ? .text(text, x: v, y: c, align: .left, color: .gray)
                                             : .text(text, x: c, y: v, align: .center, color: .gray))
        }
        let categories = values.map(\.count).max() ?? 0
        for i in 0..<categories {
            let flat = (0..<n).filter { i < values[$0].count && isFlat(values[$0][i]) }
            guard !flat.isEmpty else { continue }
            let texts = Set(flat.map { String(format: "%.2f", values[$0][i]) })
            if n > 1 && flat.count == n && texts.count == 1 {
                put("\(texts.first!) (\(n == 2 ? "both" : "all"))", at: start(flat, i), center: Double(i) - (horizontal ? w * 0.1 : 0))
                continue
            }
            for g in flat {
                let cx = Double(i) - slotFraction / 2 + Double(g) * w + w * 0.46
                put(String(format: "%.2f", values[g][i]), at: start([g], i), center: horizontal ? cx - w * 0.1 : cx)
            }
        }
    }

    /// Draws each bar's interval [lower, upper] (asymmetric, e.g. a bootstrap percentile interval) as a
    /// dark vertical segment with caps, at the centre of the bar (grouped layout, default slot fraction).
    /// `lower[group][category]`.
    static func intervalBars(_ ax: inout Axes, lower: [[Double]], upper: [[Double]], horizontal: Bool = false, slotFraction: Double = 0.8) {
        let n = lower.count
        guard n > 0 else { return }
        let w = slotFraction / Double(n)
        let ink = Color(hex: 0x333333)
        for g in 0..<n {
            for i in lower[g].indices where lower[g][i].isFinite && upper[g][i].isFinite {
                let cx = Double(i) - slotFraction / 2 + Double(g) * w + w * 0.46
                let cap = w * 0.15
                for seg in [([cx, cx], [lower[g][i], upper[g][i]]), ([cx - cap, cx + cap], [lower[g][i], lower[g][i]]),
                            ([cx - cap, cx + cap], [upper[g][i], upper[g][i]])] {
                    ax.add(.line(LineSeries(x: horizontal ? seg.1 : seg.0, y: horizontal ? seg.0 : seg.1, color: ink, width: 0.9)))
                }
            }
        }
    }

    static let original = Color(hex: 0x0072B2)
    static let abliterated = Color(hex: 0xD55E00)

    /// Refusal rate of each checkpoint, original vs abliterated, one panel per prompt label, with the
    /// bootstrap percentile interval drawn as an asymmetric error bar. Rates in [0, 1].
    public static func refusalRates(_ c: RefusalCounts, judge: String) -> Figure {
        let pairs = SystemPair.pairs(c.systems)
        let labels = c.labels.sorted { ($0 == "harmful" ? 0 : 1, $0) < ($1 == "harmful" ? 0 : 1, $1) }
        // many or long model names: horizontal bars, one panel per label stacked, so names stay readable
        let horizontal = pairs.count > 4 || (pairs.map(\.checkpoint.count).max() ?? 0) > 14
        let n = max(labels.count, 1)
        var f = horizontal
            ? Figure(width: reportFigureWidth, height: Double(n) * (48 + 19 * Double(pairs.count)), rows: n, columns: 1)
            : Figure(width: reportFigureWidth, height: 210, rows: 1, columns: n)
        f.panelLabels = labels.count > 1
        for (i, label) in labels.enumerated() {
            var ax = horizontal ? Axes(title: "\(label.capitalized) prompts", xLabel: "Refusal rate (\(judge))")
                                : Axes(title: "\(label.capitalized) prompts", yLabel: "Refusal rate (\(judge))")
            let picks: [(String, (SystemPair) -> String?, Color)] = [("original", \.original, original), ("abliterated", \.abliterated, abliterated)]
            let rows = picks.map { pk in pairs.map { p in pk.1(p).flatMap { c.row(system: $0, label: label, judge: judge) } } }
            ax.bars(categories: pairs.map(\.checkpoint),
                    groups: zip(picks, rows).map { BarGroup($0.0, $1.map { $0?.rate ?? .nan }, color: $0.2) }, horizontal: horizontal)
            labelFlatBars(&ax, values: rows.map { $0.map { $0?.rate ?? .nan } }, upper: rows.map { $0.map { $0?.upper ?? .nan } },
                          horizontal: horizontal)
            intervalBars(&ax, lower: rows.map { $0.map { $0?.lower ?? .nan } }, upper: rows.map { $0.map { $0?.upper ?? .nan } }, horizontal: horizontal)
            if horizontal { ax.xLimits = .fixed(0, 1) } else { ax.yLimits = .fixed(0, 1) }
            ax.legend = i == labels.count - 1 ? .auto : .none
            f.axes[i] = ax
        }
        return f
    }

    /// System × judge refusal-rate heatmap (systems as rows so long names stay horizontal), one panel
    /// per prompt label, stacked; sequential map on [0, 1] with the rate in each cell.
    public static func judgeSystemHeatmap(_ c: RefusalCounts) -> Figure {
        let labels = c.labels.sorted { ($0 == "harmful" ? 0 : 1, $0) < ($1 == "harmful" ? 0 : 1, $1) }
        let judges = c.judges, systems = SystemPair.grouped(c.systems)
        // "llm:Qwen2.5-Coder-0.5B-Instruct" → "llm:Qwen2.5-Coder…": column labels stay short
        let judgeLabels = judges.map { j -> String in
            guard j.count > 18, let colon = j.firstIndex(of: ":") else { return j }
            let parts = j[j.index(after: colon)...].split(separator: "-")
            return String(j[...colon]) + parts.prefix(2).joined(separator: "-") + (parts.count > 2 ? "…" : "")
        }
        let longestJudge = Double(judgeLabels.map(\.count).max() ?? 8)
        // rows tall enough that every system's label and the rate in each cell stay readable
        let panelH = 46 + 22 * Double(systems.count) + min(110, 4.6 * longestJudge)
        var f = Figure(width: reportFigureWidth, height: panelH * Double(max(labels.count, 1)), rows: max(labels.count, 1), columns: 1)
        f.panelLabels = labels.count > 1
        for (i, label) in labels.enumerated() {
            var ax = Axes(title: "\(label.capitalized) prompts: refusal rate", xLabel: "Judge", yLabel: nil)
            let m = systems.map { s in judges.map { j in c.row(system: s, label: label, judge: j)?.rate ?? .nan } }
            ax.heatmap(m, rowLabels: systems.map(SystemName.shortName), columnLabels: judgeLabels, colorMap: .viridis, norm: ColorNorm(low: 0, high: 1),
                       colorBarLabel: "Refusal rate", cellLabels: true)
            f.axes[i] = ax
        }
        return f
    }

    /// Judge × judge matrix on the diverging map fixed to [−1, 1] (0 is white). `triangle` shows each
    /// pair once, without the diagonal, in the study's layout (first judge's row on top).
    public static func judgeMatrix(_ m: JudgeMatrix, triangle: Bool = false) -> Figure {
        let n = m.judges.count
        var values = m.values
        var rows = m.judges, cols = m.judges
        if triangle && n > 1 {
            // The study's layout: rows judges 0…n−2, columns judges 1…n−1; cell (i, j) = r(judge i,
            // judge j+1) on and above the staircase (j + 1 > i), empty below.
            rows = Array(m.judges.dropLast()); cols = Array(m.judges.dropFirst())
            var v = [[Double]](repeating: [Double](repeating: .nan, count: n - 1), count: n - 1)
            for i in 0..<(n - 1) { for j in 0..<(n - 1) where j + 1 > i { v[i][j] = m.values[i][j + 1] } }
            values = v
        }
        let side = min(360, 60 + 26 * Double(n))
        let longest = Double(m.judges.map(\.count).max() ?? 6)
        var ax = Axes(title: nil)
        ax.heatmap(values, rowLabels: rows, columnLabels: cols, colorMap: .blueWhiteRed, norm: ColorNorm(low: -1, high: 1),
                   colorBarLabel: m.measure, cellLabels: true)
        ax.equalAspect = true
        return Figure(width: min(reportFigureWidth, side + 5.5 * longest + 90), height: side + 5.5 * longest * 0.8 + 20, axes: ax)
    }

    /// Self-judgment accuracy per checkpoint, original vs abliterated, with bootstrap intervals; one panel
    /// per question wording (the systems pair up within a wording, as in the refusal-rate figure).
    public static func selfJudgment(_ d: SelfJudgmentData) -> Figure {
        let questions = d.questions.isEmpty ? [""] : d.questions
        let pairsByQuestion = questions.map { q in SystemPair.pairs(d.rows.filter { $0.question == q }.map(\.system)) }
        let maxPairs = max(1, pairsByQuestion.map(\.count).max() ?? 1)
        // long model names: horizontal bars, as in the refusal-rate figure, so names stay readable
        let horizontal = maxPairs > 4 || (pairsByQuestion.joined().map(\.checkpoint.count).max() ?? 0) > 14
        let panels = Double(questions.count)
        var f = horizontal
            ? Figure(width: reportFigureWidth, height: panels * (48 + 19 * Double(maxPairs)), rows: questions.count, columns: 1)
            : Figure(width: min(reportFigureWidth, 200 + 110 * Double(maxPairs)), height: 220 * panels, rows: questions.count, columns: 1)
        f.panelLabels = questions.count > 1
        for (k, q) in questions.enumerated() {
            let qrows = d.rows.filter { $0.question == q }
            let pairs = pairsByQuestion[k]
            let title: String? = q.isEmpty ? nil : "Question wording: \(q)"
            var ax = horizontal ? Axes(title: title, xLabel: "Self-judgment accuracy") : Axes(title: title, yLabel: "Self-judgment accuracy")
            let picks: [(String, (SystemPair) -> String?, Color)] = [("original", \.original, original), ("abliterated", \.abliterated, abliterated)]
            let rows = picks.map { pk in pairs.map { p in pk.1(p).flatMap { s in qrows.first { $0.system == s } } } }
            ax.bars(categories: pairs.map(\.checkpoint), groups: zip(picks, rows).map { BarGroup($0.0, $1.map { $0?.accuracy ?? .nan }, color: $0.2) },
                    horizontal: horizontal)
            labelFlatBars(&ax, values: rows.map { $0.map { $0?.accuracy ?? .nan } }, upper: rows.map { $0.map { $0?.upper ?? .nan } },
                          horizontal: horizontal)
            intervalBars(&ax, lower: rows.map { $0.map { $0?.lower ?? .nan } }, upper: rows.map { $0.map { $0?.upper ?? .nan } },
                         horizontal: horizontal)
            if horizontal { ax.xLimits = .fixed(0, 1) } else { ax.yLimits = .fixed(0, 1) }
            ax.legend = k == questions.count - 1 ? .auto : .none
            f.axes[k] = ax
        }
        return f
    }

    /// Refusal rate vs α, one line per checkpoint (per method and layer when there are several), with bands.
    public static func alphaSweep(_ d: AlphaSweepData) -> Figure {
        var ax = Axes(title: nil, xLabel: "Abliteration strength α", yLabel: "Refusal rate, \(d.label) (\(d.judge))")
        for (i, l) in d.lines.enumerated() {
            let band: (lower: [Double], upper: [Double])? = l.lower.allSatisfy(\.isFinite) ? (l.lower, l.upper) : nil
            var ls = LineSeries(x: l.alphas, y: l.rates, label: l.name, color: Palette.okabeIto.color(i), marker: .circle, band: band)
            ls.bandAlpha = 0.12
            ax.add(.line(ls))
        }
        ax.yLimits = .fixed(0, 1)
        ax.legend = .auto
        return Figure(width: reportFigureWidth, height: 240, axes: ax)
    }
}
