import Foundation
import Plotting
import Judging
import Testing
@testable import Report

// Expected values below come from the fixture's construction (known counts) or from the formulas
// stated next to them, never from the code under test.

func lines(_ ax: Axes) -> [LineSeries] { ax.series.compactMap { if case .line(let l) = $0 { return l } else { return nil } } }
func bars(_ ax: Axes) -> BarSeries? { ax.series.compactMap { if case .bars(let b) = $0 { return b } else { return nil } }.first }
func heat(_ ax: Axes) -> HeatmapSeries? { ax.series.compactMap { if case .heatmap(let h) = $0 { return h } else { return nil } }.first }

@Suite struct SystemNameTests {
    @Test func canonicalRoundTrip() {
        let n = SystemName.parse("smollm2-135m+abl-mean-diff-L12-a0.5")
        #expect(n.checkpoint == "smollm2-135m")
        #expect(n.abliteration == .init(method: "mean-diff", layer: 12, alpha: 0.5))
        #expect(n.formatted == "smollm2-135m+abl-mean-diff-L12-a0.5")
        #expect(SystemName(checkpoint: "q", abliteration: .init(method: "pc1", layer: 3, alpha: 1)).formatted == "q+abl-pc1-L3-a1")
    }

    /// The names `ablab generate` and `ablab run` write carry the position ("-p-1"), as Abliteration.SystemName formats them.
    @Test(arguments: [("Qwen2.5-Coder-0.5B-Instruct+abl-mean-diff-L16-p-1-a1", "Qwen2.5-Coder-0.5B-Instruct", "mean-diff", 16, 1.0),
                      ("SmolLM2+abl-pc1-L3-p-5-a0.5", "SmolLM2", "pc1", 3, 0.5), ("m+abl-mean-diff-L2-p7-a2", "m", "mean-diff", 2, 2.0),
                      ("m+abl-mean-diff-L23-p-1-a1-fallback", "m", "mean-diff", 23, 1.0),
                      ("m+abl-pc1-L4-p-1-a0.5-study-fallback", "m", "pc1", 4, 0.5), ("m+abl-pc1-L4-p-1-a1.5-study", "m", "pc1", 4, 1.5)])
    func namesWithPositions(raw: String, base: String, method: String, layer: Int, alpha: Double) {
        let n = SystemName.parse(raw)
        #expect(n.isAbliterated)
        #expect(n.checkpoint == base)
        #expect(n.abliteration == .init(method: method, layer: layer, alpha: alpha))
    }

    @Test(arguments: [("SmolLM2-ALB", "SmolLM2"), ("Score 0 - ALB", "Score 0"), ("Score 0 + Rephrase -ALB", "Score 0 + Rephrase")])
    func studyNames(raw: String, base: String) {
        let n = SystemName.parse(raw)
        #expect(n.isAbliterated)
        #expect(n.checkpoint == base)
        #expect(n.raw == raw)
    }

    @Test func plainAndMalformedAreOriginal() {
        #expect(!SystemName.parse("Qwen3").isAbliterated)
        #expect(!SystemName.parse("x+abl-L2").isAbliterated)
        #expect(SystemName.parse("x+abl-L2").checkpoint == "x+abl-L2")
    }

    @Test func pairsPreferAlphaOne() {
        let p = SystemPair.pairs(["a", "a+abl-pc1-L2-a0.5", "a+abl-pc1-L2-a1", "b+abl-pc1-L1-a0.25", "b+abl-pc1-L1-a0.75", "b"])
        #expect(p == [SystemPair(checkpoint: "a", original: "a", abliterated: "a+abl-pc1-L2-a1"),
                      SystemPair(checkpoint: "b", original: "b", abliterated: "b+abl-pc1-L1-a0.75")])
    }
}

@Suite struct FigureSeriesTests {
    @Test func spectrumLinesHaveOneLinePerComponentPlusTotal() {
        let d = SpectrumData(position: -1, checkpoints: [
            .init(name: "a", layers: [1, 2, 3], ratios: [[0.5, 0.2, 0.1, 0.05], [0.4, 0.3, 0.1, 0.1], [0.6, 0.1, 0.1, 0.1]]),
            .init(name: "b", layers: [1, 2], ratios: [[0.3, 0.2, 0.2, 0.1], [0.2, 0.2, 0.2, 0.2]]),
        ])
        let f = AnalysisFigures.spectrumLines(d, components: 3)
        #expect(f.axes.count == 2)
        let l = lines(f.axes[0])
        #expect(l.map(\.label) == ["PC1", "PC2", "PC3", "PC1–3 total"])
        #expect(l[0].x == [1, 2, 3])
        #expect(l[1].y == [0.2, 0.3, 0.1])
        // total of the first three ratios, by hand: 0.8, 0.8, 0.8
        for (v, e) in zip(l[3].y, [0.8, 0.8, 0.8]) { #expect(abs(v - e) < 1e-12) }
        #expect(f.axes[1].title == "b")
        let h = AnalysisFigures.spectrumHeatmap(d, components: 2)
        let hm = heat(h.axes[0])!
        #expect(hm.values == [[0.5, 0.2], [0.4, 0.3], [0.6, 0.1]])
        #expect(hm.columnLabels == ["1", "2"])
        #expect(hm.resolvedNorm == ColorNorm(low: 0, high: 0.6))   // shared scale: 0 to the largest ratio shown
        #expect(hm.rowLabels == ["1", "2", "3"])
        #expect(hm.colorMap == .viridis)   // sequential for variance
    }

    @Test func cosinesUseDivergingMapFixedAtPlusMinusOne() {
        let rows: [SimilarityRow] = [(1, 1, 1.0), (1, 2, -0.5), (2, 1, -0.5), (2, 2, 1.0)].map {
            SimilarityRow(checkpointA: "a", layerA: $0.0, checkpointB: "a", layerB: $0.1, position: -1, method: "mean-diff", metric: "cosine", value: $0.2)
        }
        let d = LayerCosineData.from(rows, method: "mean-diff", position: -1)
        #expect(d.checkpoints.count == 1)
        #expect(d.checkpoints[0].cosines == [[1, -0.5], [-0.5, 1]])
        let h = heat(AnalysisFigures.layerCosines(d).axes[0])!
        #expect(h.colorMap == .blueWhiteRed)
        #expect(h.resolvedNorm == ColorNorm(low: -1, high: 1))
        #expect(h.resolvedNorm.t(0) == 0.5)   // 0 sits at the neutral centre
    }

    @Test func crossCheckpointMatchesDepths() {
        // a has 4 layers, b has 8: depth 50 % is a's layer 2 and b's layer mapped 2·8/4 = 4
        let rows = [SimilarityRow(checkpointA: "a", layerA: 2, checkpointB: "b", layerB: 4, position: -1, method: "-", metric: "cka", value: 0.7),
                    SimilarityRow(checkpointA: "a", layerA: 4, checkpointB: "b", layerB: 8, position: -1, method: "-", metric: "cka", value: 0.9)]
        let d = CrossCheckpointData.from(rows, metric: "cka", method: "-", position: -1, checkpoints: ["a", "b"], layerCounts: ["a": 4, "b": 8],
                                         depths: [0.5, 1.0])
        #expect(d.panels.count == 2)
        #expect(d.panels[0].values == [[1, 0.7], [0.7, 1]])
        #expect(d.panels[1].values == [[1, 0.9], [0.9, 1]])
        let h = heat(AnalysisFigures.crossCheckpoint(d).axes[0])!
        #expect(h.colorMap == .viridis && h.resolvedNorm == ColorNorm(low: 0, high: 1))
    }

    static func judgments(_ spec: [(String, String, String, Int, Int)]) -> [Judgment] {
        // (system, label, judge, refusals, total): items i < refusals are refusals
        spec.flatMap { s in (0..<s.4).map { i in
            Judgment(itemID: "q\(i)", system: s.0, label: s.1, judge: s.2, verdict: i < s.3 ? .refusal : .nonRefusal)
        } }
    }

    @Test func refusalRatesBarsAndIntervals() {
        let j = Self.judgments([("m", "harmful", "r", 8, 10), ("m+abl-pc1-L2-a1", "harmful", "r", 1, 10),
                                ("m", "harmless", "r", 1, 10), ("m+abl-pc1-L2-a1", "harmless", "r", 0, 10),
                                ("n", "harmful", "r", 5, 10)])
        let c = RefusalCounts.from(j, replicates: 200)
        #expect(c.row(system: "m", label: "harmful", judge: "r")?.refused == 8)
        #expect(c.row(system: "m", label: "harmful", judge: "r")?.total == 10)
        let r = c.row(system: "m", label: "harmful", judge: "r")!
        #expect(r.lower <= 0.8 && r.upper >= 0.8 && r.lower >= 0 && r.upper <= 1)
        let f = JudgingFigures.refusalRates(c, judge: "r")
        #expect(f.axes.count == 2)
        let b = bars(f.axes[0])!
        #expect(b.categories == ["m", "n"])
        #expect(b.groups.map(\.name) == ["original", "abliterated"])
        #expect(b.groups[0].values == [0.8, 0.5])
        #expect(b.groups[1].values[0] == 0.1)
        #expect(b.groups[1].values[1].isNaN)      // n has no abliterated variant
        // the interval of m's original bar is drawn as a segment from lower to upper
        let segs = lines(f.axes[0]).filter { $0.x.count == 2 && $0.x[0] == $0.x[1] }
        #expect(segs.contains { $0.y == [r.lower, r.upper] })
        #expect(bars(f.axes[1])!.groups[0].values[0] == 0.1)
        #expect(f.axes[0].title == "Harmful prompts")
    }

    @Test func judgeSystemHeatmapIsSequentialOnZeroOne() {
        let c = RefusalCounts.from(Self.judgments([("m", "harmful", "j1", 3, 4), ("m", "harmful", "j2", 1, 4), ("k", "harmful", "j1", 0, 4)]), replicates: 0)
        let h = heat(JudgingFigures.judgeSystemHeatmap(c).axes[0])!
        #expect(h.rowLabels == ["m", "k"])
        #expect(h.columnLabels == ["j1", "j2"])
        #expect(h.values[0] == [0.75, 0.25])
        #expect(h.values[1][0] == 0 && h.values[1][1].isNaN)
        #expect(h.colorMap == .viridis && h.resolvedNorm == ColorNorm(low: 0, high: 1))
    }

    @Test func kappaMatrixMatchesHandComputation() throws {
        // 10 items: A refuses 0–4, B refuses 0–3 and 5. Agreement po = 8/10; pe = .5·.5 + .5·.5 = .5; κ = (.8 − .5)/.5 = .6
        var rows: [Judgment] = []
        for i in 0..<10 {
            rows.append(Judgment(itemID: "q\(i)", system: "s", label: "harmful", judge: "A", verdict: i < 5 ? .refusal : .nonRefusal))
            rows.append(Judgment(itemID: "q\(i)", system: "s", label: "harmful", judge: "B", verdict: (i < 4 || i == 5) ? .refusal : .nonRefusal))
        }
        let m = JudgeMatrix.kappa(try JudgmentTable(rows))
        #expect(m.judges == ["A", "B"])
        #expect(abs(m.values[0][1] - 0.6) < 1e-12)
        #expect(abs(m.values[0][0] - 1) < 1e-12)
        let f = JudgingFigures.judgeMatrix(m)
        let h = heat(f.axes[0])!
        #expect(h.colorMap == .blueWhiteRed && h.resolvedNorm == ColorNorm(low: -1, high: 1))
        #expect(h.cellLabels)
    }

    @Test func studyCorrelationAndLowerTriangle() {
        // groups g1, g2 with 10 items. A: refused 2, 6; B: refused 3, 5; C: refused 8, 4.
        // vectors refused ++ not_refused: A = [2, 6, 8, 4], B = [3, 5, 7, 5], C = [8, 4, 2, 6]
        // mean 5 each; A−5 = [−3, 1, 3, −1]; B−5 = [−2, 0, 2, 0]; C−5 = [3, −1, −3, 1] = −(A−5)
        // r(A,B) = (6 + 0 + 6 + 0) / sqrt(20 · 8) = 12 / sqrt(160); r(A,C) = −1
        let c = RefusalCounts(rows: [("A", 2, 6), ("B", 3, 5), ("C", 8, 4)].flatMap { j in
            [RefusalCounts.Row(system: "g1", label: "harmful", judge: j.0, refused: j.1, total: 10),
             RefusalCounts.Row(system: "g2", label: "harmful", judge: j.0, refused: j.2, total: 10)]
        })
        let m = JudgeMatrix.studyCorrelation(c)
        #expect(abs(m.values[0][1] - 12 / 160.0.squareRoot()) < 1e-12)
        #expect(abs(m.values[0][2] + 1) < 1e-12)
        let h = heat(JudgingFigures.judgeMatrix(m, triangle: true).axes[0])!
        #expect(h.rowLabels == ["A", "B"])
        #expect(h.columnLabels == ["B", "C"])
        #expect(abs(h.values[0][0] - 12 / 160.0.squareRoot()) < 1e-12)   // r(A, B)
        #expect(abs(h.values[0][1] + 1) < 1e-12)                          // r(A, C)
        #expect(h.values[1][0].isNaN)                                     // (B, B): below the staircase
        #expect(abs(h.values[1][1] - m.values[1][2]) < 1e-15)             // r(B, C)
    }

    @Test func groupedSystemOrder() {
        #expect(SystemPair.grouped(["a", "b", "a-ALB", "b+abl-pc1-L1-a1", "c - ALB"]) == ["a", "a-ALB", "b", "b+abl-pc1-L1-a1", "c - ALB"])
    }

    @Test func selfJudgmentAndAlphaSweep() {
        var s: [SelfJudgmentEntry] = []
        for i in 0..<10 {
            s.append(SelfJudgmentEntry(system: "m", itemID: "q\(i)", label: "harmful", selfVerdict: i < 7 ? .refusal : .nonRefusal, referenceVerdict: .refusal))
            s.append(SelfJudgmentEntry(system: "m+abl-pc1-L1-a1", itemID: "q\(i)", label: "harmful", selfVerdict: i < 4 ? .refusal : .nonRefusal, referenceVerdict: .refusal))
        }
        let d = SelfJudgmentData.from(s, replicates: 100)
        #expect(d.rows.map(\.accuracy) == [0.7, 0.4])
        let b = bars(JudgingFigures.selfJudgment(d).axes[0])!
        #expect(b.categories == ["m"])
        #expect(b.groups.map { $0.values[0] } == [0.7, 0.4])

        // Two question wordings: one panel each, the original and abliterated systems paired within it
        // (accuracies counted by hand: 7/10 and 4/10 served, 2/10 and 9/10 refused).
        var w: [SelfJudgmentEntry] = []
        for i in 0..<10 {
            for (q, orig, abl) in [("served", 7, 4), ("refused", 2, 9)] {
                w.append(SelfJudgmentEntry(system: "m", itemID: "q\(i)", label: "harmful", selfVerdict: i < orig ? .refusal : .nonRefusal,
                                           referenceVerdict: .refusal, question: q))
                w.append(SelfJudgmentEntry(system: "m+abl-pc1-L1-a1", itemID: "q\(i)", label: "harmful", selfVerdict: i < abl ? .refusal : .nonRefusal,
                                           referenceVerdict: .refusal, question: q))
            }
        }
        let dw = SelfJudgmentData.from(w, replicates: 50)
        #expect(dw.questions == ["served", "refused"])
        let fw = JudgingFigures.selfJudgment(dw)
        #expect(fw.axes.count == 2)
        for (k, expected) in [[0.7, 0.4], [0.2, 0.9]].enumerated() {
            let bw = bars(fw.axes[k])!
            #expect(bw.categories == ["m"])
            #expect(bw.groups.map { $0.values[0] } == expected)
        }

        let c = RefusalCounts.from(Self.judgments([("m", "harmful", "r", 10, 10), ("m+abl-pc1-L1-a0.5", "harmful", "r", 6, 10),
                                                   ("m+abl-pc1-L1-a1", "harmful", "r", 2, 10), ("m+abl-pc1-L1-a0.5", "harmless", "r", 1, 10)]), replicates: 50)
        let sw = AlphaSweepData.from(c, judge: "r")
        #expect(sw.lines.count == 1)
        #expect(sw.lines[0].alphas == [0, 0.5, 1])
        #expect(sw.lines[0].rates == [1.0, 0.6, 0.2])
        let l = lines(JudgingFigures.alphaSweep(sw).axes[0])
        #expect(l.count == 1 && l[0].y == [1.0, 0.6, 0.2] && l[0].label == "m")
    }
}
