import Foundation
import AblabCore
import Plotting

/// What abliteration costs (`<run>/analysis/costs.csv`, the study's costs stage): per system, the
/// cross-entropy of the original's harmless answers and the refusal rates in the first 48 tokens and in
/// the full answers.
public struct CostsData: Sendable, Equatable {
    public struct Row: Sendable, Equatable {
        public var checkpoint: String, system: String
        public var answers: Int, tokens: Int
        public var ceOriginal: Double, ceSystem: Double, ceIncrease: Double
        public var harmful48: Double, harmfulFull: Double, harmless48: Double, harmlessFull: Double
        public var maxNewTokens: Int, judge: String
    }
    public var rows: [Row]

    public static func load(_ path: String) throws -> CostsData {
        let rows = try CSV.parse(try String(contentsOfFile: path, encoding: .utf8), file: path)
        guard let h = rows.first?.fields else { throw InputError(file: path, line: 1, "empty file") }
        let need = ["checkpoint", "system", "harmless_answers", "answer_tokens", "ce_original", "ce_system", "ce_increase",
                    "harmful_refusal_first48", "harmful_refusal_full", "harmless_refusal_first48", "harmless_refusal_full", "max_new_tokens", "judge"]
        var idx: [String: Int] = [:]
        for n in need {
            guard let i = h.firstIndex(of: n) else { throw InputError(file: path, line: 1, key: n, "column missing") }
            idx[n] = i
        }
        return CostsData(rows: try rows.dropFirst().map { r in
            let f = r.fields
            guard f.count == h.count else { throw InputError(file: path, line: r.line, "expected \(h.count) fields") }
            let d = { (n: String) in Double(f[idx[n]!]) ?? .nan }
            return Row(checkpoint: f[idx["checkpoint"]!], system: f[idx["system"]!], answers: Int(f[idx["harmless_answers"]!]) ?? 0,
                       tokens: Int(f[idx["answer_tokens"]!]) ?? 0, ceOriginal: d("ce_original"), ceSystem: d("ce_system"),
                       ceIncrease: d("ce_increase"), harmful48: d("harmful_refusal_first48"), harmfulFull: d("harmful_refusal_full"),
                       harmless48: d("harmless_refusal_first48"), harmlessFull: d("harmless_refusal_full"),
                       maxNewTokens: Int(f[idx["max_new_tokens"]!]) ?? 0, judge: f[idx["judge"]!])
        })
    }
}

public enum CostsFigures {
    /// (a) Cross-entropy of the original's harmless answers under each system (nats per token);
    /// (b) harmful refusal rate in the first 48 tokens and in the full answers.
    public static func costs(_ d: CostsData) -> Figure {
        var fig = Figure(width: reportFigureWidth, height: 150 + 36 * Double(d.rows.count), rows: 2, columns: 1)
        let names = d.rows.map(label)
        var a = Axes(title: nil, xLabel: "Cross-entropy of the original's harmless answers (nats per token)")
        a.bars(categories: names, groups: [BarGroup("cross-entropy", d.rows.map(\.ceSystem), color: Palette.okabeIto.color(0))], horizontal: true)
        a.legend = .none
        let top = d.rows.map(\.ceSystem).filter(\.isFinite).max() ?? 1
        a.xLimits = .fixed(0, max(top * 1.1, 1e-3))
        var b = Axes(title: nil, xLabel: "Harmful prompts refused (\(d.rows.first?.judge ?? ""))")
        b.bars(categories: names, groups: [BarGroup("first 48 tokens", d.rows.map(\.harmful48), color: Palette.okabeIto.color(1)),
                                           BarGroup("full answer", d.rows.map(\.harmfulFull), color: Palette.okabeIto.color(2))], horizontal: true)
        b.xLimits = .fixed(0, 1)
        b.legend = .below
        fig.axes = [a, b]
        return fig
    }

    /// "Qwen2.5-Coder-0.5B original" / "… abl. mean-diff L19": the checkpoint without "-Instruct", then the system.
    static func label(_ r: CostsData.Row) -> String {
        let c = SystemName.shortName(r.checkpoint).replacingOccurrences(of: "-Instruct", with: "")
        guard r.system != r.checkpoint, r.system.hasPrefix(r.checkpoint + "+abl-") else { return c + " original" }
        var rest = String(r.system.dropFirst(r.checkpoint.count + 5))   // <method>-L<layer>-p<position>-a<alpha>[-…]
        if let p = rest.range(of: "-p", options: .backwards) { rest = String(rest[..<p.lowerBound]) }
        if let a = SystemName.parse(r.system).abliteration?.alpha, a != 1 { rest += " α \(a)" }
        return c + " abl. " + rest.replacingOccurrences(of: "-L", with: " L")
    }
}

enum CostsSection {
    static func write(_ d: CostsData, flow: PageFlow) throws {
        guard let first = d.rows.first else { return }
        try flow.heading("What abliteration costs", level: 2)
        var text = "Cross-entropy (nats per token) of each checkpoint's own greedy answers to the harmless test prompts (re-tokenized) under the original and under each abliterated system, and the refusal rates (\(first.judge)) of each system's answers cut to their first 48 tokens next to the full answers (at most \(first.maxNewTokens) new tokens"
        text += first.maxNewTokens <= 48 ? "; with this limit the two are the same answers)." : "; a higher full rate means late refusals)."
        try flow.paragraph(text)
        let f = { (x: Double) in x.isFinite ? String(format: "%.3f", x) : "–" }
        let p = { (x: Double) in x.isFinite ? String(format: "%.0f", x * 100) : "–" }
        try flow.table(header: ["System", "CE", "ΔCE", "Harmful % (48 / full)", "Harmless % (48 / full)"],
                       rows: d.rows.map { [SystemName.shortName($0.system), f($0.ceSystem), f($0.ceIncrease),
                                           "\(p($0.harmful48)) / \(p($0.harmfulFull))", "\(p($0.harmless48)) / \(p($0.harmlessFull))"] },
                       widths: [0.44, 0.1, 0.1, 0.18, 0.18], font: Font(size: 7.5), alignments: [.left, .right, .right, .right, .right])
    }
}
