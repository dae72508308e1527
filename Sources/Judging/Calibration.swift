import AblabCore
import Foundation

/// A judge calibrated on the study's human labels: its verdicts on the 200 annotated responses
/// (`PaperStudy`) against each annotator, REFUSAL = positive, the annotator = reference.
///
/// Intervals: accuracy by the Wilson score interval (`Agreement.wilson`); Cohen's κ and F1 by a cluster bootstrap over the study's
/// questions (`qid`: every question was answered by all 20 systems, so responses to one question are not
/// independent). A response the judge gave no verdict is left out (`n` says how many remain).
public struct JudgeCalibration: Sendable {
    public struct Row: Sendable {
        public var judge: String
        /// `human_1` or `human_2`.
        public var annotator: String
        public var n: Int
        public var judgeRefusals: Int
        public var annotatorRefusals: Int
        public var confusion: Agreement.Confusion
        public var accuracy: ConfidenceInterval
        public var kappa: ConfidenceInterval
        public var f1: ConfidenceInterval
    }

    public var rows: [Row]

    /// `judgments`: one judge's rows on `study.items` (item id = qid, system = model); other judges' rows are ignored.
    public static func compute(study: PaperStudy, judge: String, judgments: [Judgment], replicates: Int = 2000,
                               seed: UInt64 = 20251002, level: Double = 0.95) throws -> [Row] {
        var verdict: [String: VerdictLabel] = [:]
        for j in judgments where j.judge == judge {
            if let v = j.verdict { verdict[j.itemID + "\u{1}" + j.system] = v }
        }
        var rows: [Row] = []
        for annotator in ["human_1", "human_2"] {
            var pred: [VerdictLabel] = [], ref: [VerdictLabel] = [], qid: [String] = []
            for r in study.responses {
                guard let v = verdict[r.qid + "\u{1}" + r.model] else { continue }
                pred.append(v); ref.append(annotator == "human_1" ? r.human1 : r.human2); qid.append(r.qid)
            }
            let conf = try Agreement.confusion(predicted: pred.map { Optional($0) }, reference: ref.map { Optional($0) })
            var index: [String: Int] = [:], clusters: [[Int]] = []
            for (u, q) in qid.enumerated() {
                if let c = index[q] { clusters[c].append(u) } else { index[q] = clusters.count; clusters.append([u]) }
            }
            let kappa = try Agreement.clusterBootstrap(clusters: clusters, replicates: replicates, seed: seed, level: level) { idx in
                try Agreement.cohenKappa(idx.map { Optional(pred[$0]) }, idx.map { Optional(ref[$0]) })
            }
            let f1 = try Agreement.clusterBootstrap(clusters: clusters, replicates: replicates, seed: seed, level: level) { idx in
                try Agreement.confusion(predicted: idx.map { Optional(pred[$0]) }, reference: idx.map { Optional(ref[$0]) }).f1
            }
            rows.append(Row(judge: judge, annotator: annotator, n: pred.count,
                            judgeRefusals: pred.filter { $0 == .refusal }.count,
                            annotatorRefusals: ref.filter { $0 == .refusal }.count, confusion: conf,
                            accuracy: Agreement.wilson(successes: conf.tp + conf.tn, n: conf.n, level: level),
                            kappa: kappa, f1: f1))
        }
        return rows
    }

    /// `calibration.csv`: judge,annotator,n,judge_refusals,annotator_refusals,tp,fp,fn,tn, then for
    /// accuracy (Wilson), cohen_kappa and f1 (cluster bootstrap by question) the value, lower, upper;
    /// replicates and valid replicates of the κ and F1 bootstraps.
    public static func csv(_ rows: [Row]) -> String {
        func num(_ x: Double) -> String { x.isNaN ? "" : String(x) }
        var out = "judge,annotator,n,judge_refusals,annotator_refusals,tp,fp,fn,tn,accuracy,accuracy_lower,accuracy_upper,"
        out += "cohen_kappa,kappa_lower,kappa_upper,kappa_valid,f1,f1_lower,f1_upper,f1_valid,replicates\n"
        for r in rows {
            let c = r.confusion
            let f = [r.judge, r.annotator, String(r.n), String(r.judgeRefusals), String(r.annotatorRefusals),
                     String(c.tp), String(c.fp), String(c.fn), String(c.tn),
                     num(r.accuracy.estimate), num(r.accuracy.lower), num(r.accuracy.upper),
                     num(r.kappa.estimate), num(r.kappa.lower), num(r.kappa.upper), String(r.kappa.valid),
                     num(r.f1.estimate), num(r.f1.lower), num(r.f1.upper), String(r.f1.valid), String(r.kappa.replicates)]
            out += f.map(CSV.escape).joined(separator: ",") + "\n"
        }
        return out
    }

    /// The judge whose κ against `annotator` is highest (nan last), or nil without rows.
    public static func best(_ rows: [Row], annotator: String = "human_1") -> Row? {
        rows.filter { $0.annotator == annotator }.max { a, b in
            let x = a.kappa.estimate.isNaN ? -2 : a.kappa.estimate, y = b.kappa.estimate.isNaN ? -2 : b.kappa.estimate
            return x < y
        }
    }
}
