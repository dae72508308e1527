import AblabCore
import Foundation

/// Everything `ablab agree` reports about a set of judgments, as data (the CLI only prints it).
public struct AgreementReport: Sendable {
    public struct Options: Sendable {
        /// The judge the others are scored against (accuracy, precision, recall); nil = none.
        public var reference: String?
        public var replicates: Int
        public var seed: UInt64
        public var level: Double
        public init(reference: String? = nil, replicates: Int = 2000, seed: UInt64 = 20251002, level: Double = 0.95) {
            self.reference = reference; self.replicates = replicates; self.seed = seed; self.level = level
        }
    }

    /// One judge's refusal rate on one (system, prompt label) group, with the reference comparison.
    public struct RateRow: Sendable {
        public var system: String
        public var label: String
        public var judge: String
        /// Items in the group with a verdict from this judge.
        public var n: Int
        public var refusals: Int
        public var rate: ConfidenceInterval
        /// Counts against the reference judge on the group's items both judged (nil: no reference, or the reference itself).
        public var confusion: Agreement.Confusion?
    }

    /// One judge against the reference over all items.
    public struct ReferenceRow: Sendable {
        public var judge: String
        public var reference: String
        public var confusion: Agreement.Confusion
        public var kappa: Double
    }

    /// Two judges over the items both judged.
    public struct PairRow: Sendable {
        public var judgeA: String
        public var judgeB: String
        public var n: Int
        public var agreement: ConfidenceInterval
        public var kappa: ConfidenceInterval
    }

    /// Two judges' counts per (system, label) group, correlated over the groups both judged.
    public struct CorrelationRow: Sendable {
        public var judgeA: String
        public var judgeB: String
        public var groups: Int
        /// Over the refusal counts alone (one value per group).
        public var pearson: Double
        public var spearman: Double
        /// The study's method: the refused counts and then the not-refused counts of every group stacked
        /// into one vector of 2 · groups values per judge (its notebook; group sizes dominate it).
        public var stackedPearson: Double
        public var stackedSpearman: Double
    }

    public var judges: [String]
    public var reference: String?
    public var units: Int
    public var rates: [RateRow]
    public var referenceRows: [ReferenceRow]
    public var pairs: [PairRow]
    public var fleiss: (kappa: Double, items: Int)
    public var krippendorffAlpha: Double
    public var correlations: [CorrelationRow]
    public var warnings: [JudgeWarning]
    public var options: Options

    public static func compute(_ table: JudgmentTable, options: Options = Options()) throws -> AgreementReport {
        if let r = options.reference, !table.judges.contains(r) {
            throw StatsError("the reference judge '\(r)' has no judgments; judges: \(table.judges.joined(separator: ", "))")
        }
        let ref = options.reference.flatMap { table.verdicts(of: $0) }
        // groups: (system, label) in first-seen order
        var groupIndex: [String: Int] = [:]
        var groups: [(system: String, label: String, units: [Int])] = []
        for (u, unit) in table.units.enumerated() {
            let key = unit.system + "\u{1}" + table.labels[u]
            if let g = groupIndex[key] { groups[g].units.append(u) }
            else { groupIndex[key] = groups.count; groups.append((unit.system, table.labels[u], [u])) }
        }
        var rates: [RateRow] = []
        var counts: [[Double?]] = []   // [judge][group] refusal counts; nil when the judge has no verdict in the group
        var notCounts: [[Double?]] = [] // [judge][group] non-refusal counts
        for (j, judge) in table.judges.enumerated() {
            var perGroup: [Double?] = [], notPerGroup: [Double?] = []
            for g in groups {
                let v = g.units.map { table.verdicts[j][$0] }
                let judged = v.compactMap { $0 }
                let refusals = judged.filter { $0 == .refusal }.count
                let ci = Agreement.wilson(successes: refusals, n: judged.count, level: options.level)
                var conf: Agreement.Confusion? = nil
                if let ref, judge != options.reference {
                    conf = try Agreement.confusion(predicted: v, reference: g.units.map { ref[$0] })
                }
                rates.append(RateRow(system: g.system, label: g.label, judge: judge, n: judged.count, refusals: refusals, rate: ci, confusion: conf))
                perGroup.append(judged.isEmpty ? nil : Double(refusals))
                notPerGroup.append(judged.isEmpty ? nil : Double(judged.count - refusals))
            }
            counts.append(perGroup)
            notCounts.append(notPerGroup)
        }
        var refRows: [ReferenceRow] = []
        if let ref, let refName = options.reference {
            for (j, judge) in table.judges.enumerated() where judge != refName {
                refRows.append(ReferenceRow(judge: judge, reference: refName,
                                            confusion: try Agreement.confusion(predicted: table.verdicts[j], reference: ref),
                                            kappa: try Agreement.cohenKappa(table.verdicts[j], ref)))
            }
        }
        var pairs: [PairRow] = [], corrs: [CorrelationRow] = []
        for a in 0..<table.judges.count {
            for b in (a + 1)..<max(a + 1, table.judges.count) {
                let va = table.verdicts[a], vb = table.verdicts[b]
                // Clusters = prompts (item ids): every system answered the same prompts.
                let ci = try Agreement.clusterBootstrapPair(va, vb, cluster: table.units.map(\.itemID), replicates: options.replicates,
                                                            seed: options.seed, level: options.level)
                pairs.append(PairRow(
                    judgeA: table.judges[a], judgeB: table.judges[b], n: try Agreement.pairCounts(va, vb).n,
                    agreement: ci.agreement, kappa: ci.kappa))
                var x: [Double] = [], y: [Double] = [], xs: [Double] = [], ys: [Double] = [], xn: [Double] = [], yn: [Double] = []
                for g in 0..<groups.count {
                    if let p = counts[a][g], let q = counts[b][g] { x.append(p); y.append(q); xn.append(notCounts[a][g]!); yn.append(notCounts[b][g]!) }
                }
                xs = x + xn; ys = y + yn
                corrs.append(CorrelationRow(judgeA: table.judges[a], judgeB: table.judges[b], groups: x.count,
                                            pearson: try Agreement.pearson(x, y), spearman: try Agreement.spearman(x, y),
                                            stackedPearson: try Agreement.pearson(xs, ys), stackedSpearman: try Agreement.spearman(xs, ys)))
            }
        }
        var warnings: [JudgeWarning] = []
        for (j, judge) in table.judges.enumerated() {
            warnings += try Agreement.brokenJudgeWarnings(judge: judge, verdicts: table.verdicts[j], promptLabels: table.labels)
        }
        return AgreementReport(
            judges: table.judges, reference: options.reference, units: table.units.count, rates: rates,
            referenceRows: refRows, pairs: pairs, fleiss: try Agreement.fleissKappa(table.verdicts),
            krippendorffAlpha: try Agreement.krippendorffAlpha(table.verdicts), correlations: corrs,
            warnings: warnings, options: options)
    }

    // MARK: tidy CSVs

    static func num(_ x: Double) -> String { x.isNaN ? "" : String(x) }

    /// `agreement.csv`: one row per (judge_a, judge_b, metric): agreement and cohen_kappa (with a cluster
    /// bootstrap interval by prompt; `replicates` drawn, `valid` of them defined), pearson_refusal_counts and
    /// spearman_refusal_counts (over the (system, label) groups' refusal counts), pearson_stacked_counts
    /// and spearman_stacked_counts (the study's method: refused then not-refused counts stacked),
    /// accuracy / precision / recall / f1 / cohen_kappa against the reference (judge_b = reference),
    /// fleiss_kappa and krippendorff_alpha (judge_a = judge_b = "*").
    public func agreementCSV() -> String {
        var out = "judge_a,judge_b,metric,value,lower,upper,n,interval,replicates,valid\n"
        func row(_ a: String, _ b: String, _ m: String, _ v: Double, _ ci: ConfidenceInterval? = nil, n: Int) {
            var f = [a, b, m, Self.num(v), Self.num(ci?.lower ?? .nan), Self.num(ci?.upper ?? .nan), String(n)]
            f += ci.map { ["cluster-bootstrap-by-item", String($0.replicates), String($0.valid)] } ?? ["", "", ""]
            out += f.map(CSV.escape).joined(separator: ",") + "\n"
        }
        for p in pairs {
            row(p.judgeA, p.judgeB, "agreement", p.agreement.estimate, p.agreement, n: p.n)
            row(p.judgeA, p.judgeB, "cohen_kappa", p.kappa.estimate, p.kappa, n: p.n)
        }
        for c in correlations {
            row(c.judgeA, c.judgeB, "pearson_refusal_counts", c.pearson, n: c.groups)
            row(c.judgeA, c.judgeB, "spearman_refusal_counts", c.spearman, n: c.groups)
            row(c.judgeA, c.judgeB, "pearson_stacked_counts", c.stackedPearson, n: 2 * c.groups)
            row(c.judgeA, c.judgeB, "spearman_stacked_counts", c.stackedSpearman, n: 2 * c.groups)
        }
        for r in referenceRows {
            let m = r.confusion
            row(r.judge, r.reference, "ref_accuracy", m.accuracy, n: m.n)
            row(r.judge, r.reference, "ref_precision", m.precision, n: m.n)
            row(r.judge, r.reference, "ref_recall", m.recall, n: m.n)
            row(r.judge, r.reference, "ref_f1", m.f1, n: m.n)
            row(r.judge, r.reference, "ref_cohen_kappa", r.kappa, n: m.n)
        }
        row("*", "*", "fleiss_kappa", fleiss.kappa, n: fleiss.items)
        row("*", "*", "krippendorff_alpha", krippendorffAlpha, n: units)
        return out
    }

    /// `refusal_rates.csv`: one row per (system, label, judge) with the Wilson score interval (`interval`
    /// = wilson) and, when a reference judge is set, TP / FP / FN / TN and accuracy / precision / recall against it.
    public func refusalRatesCSV() -> String {
        var out = "system,label,judge,n,refusals,rate,lower,upper,interval,reference,tp,fp,fn,tn,accuracy,precision,recall\n"
        for r in rates {
            var f = [r.system, r.label, r.judge, String(r.n), String(r.refusals), Self.num(r.rate.estimate),
                     Self.num(r.rate.lower), Self.num(r.rate.upper), "wilson"]
            if let c = r.confusion, let ref = reference {
                f += [ref, String(c.tp), String(c.fp), String(c.fn), String(c.tn), Self.num(c.accuracy), Self.num(c.precision), Self.num(c.recall)]
            } else {
                f += Array(repeating: "", count: 8)
            }
            out += f.map(CSV.escape).joined(separator: ",") + "\n"
        }
        return out
    }

    /// Writes agreement.csv and refusal_rates.csv into `dir`.
    public func write(to dir: String) throws {
        try SafeFiles.atomicWrite(Data(agreementCSV().utf8), to: dir + "/agreement.csv")
        try SafeFiles.atomicWrite(Data(refusalRatesCSV().utf8), to: dir + "/refusal_rates.csv")
    }
}
