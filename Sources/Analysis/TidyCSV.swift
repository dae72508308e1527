import AblabCore
import Foundation

/// One row of the tidy results table.
public struct TidyRow: Sendable, Equatable {
    public var checkpoint: String
    public var layer: Int
    public var position: Int
    /// "mean-diff", "pc1", "pca", "probe" or "site".
    public var method: String
    public var metric: String
    public var value: Double
    public init(checkpoint: String, layer: Int, position: Int, method: String, metric: String, value: Double) {
        self.checkpoint = checkpoint; self.layer = layer; self.position = position
        self.method = method; self.metric = metric; self.value = value
    }
}

/// The tidy CSV: one row per checkpoint × layer × position × method × metric, columns
/// `checkpoint,layer,position,method,metric,value`. Indexed metrics carry their index after an
/// underscore (`explained_variance_ratio_1` is the first PC; `probe_accuracy_8` the probe on 8 PCs).
/// Values are written as the shortest decimal that reads back to the same Double; NaN as `nan`.
public enum TidyCSV {
    public static let header = "checkpoint,layer,position,method,metric,value"

    /// Rows of one site; the spectrum is cut to the first `spectrumComponents` entries (the full
    /// spectrum belongs in analysis.h5).
    public static func rows(_ a: LayerAnalysis, spectrumComponents: Int = 64) -> [TidyRow] {
        var out: [TidyRow] = []
        func add(_ method: String, _ metric: String, _ v: Double) {
            out.append(TidyRow(checkpoint: a.checkpoint, layer: a.layer, position: a.position, method: method, metric: metric, value: v))
        }
        add("site", "width", Double(a.width))
        add("site", "n_train_harmful", Double(a.trainCounts.harmful))
        add("site", "n_train_harmless", Double(a.trainCounts.harmless))
        add("site", "n_test_harmful", Double(a.testCounts.harmful))
        add("site", "n_test_harmless", Double(a.testCounts.harmless))
        add("site", "leakage", a.leakage ? 1 : 0)
        add("pca", "participation_ratio", a.spectrum.participationRatio)
        add("pca", "components", Double(a.spectrum.eigenvalues.count))
        let k = min(spectrumComponents, a.spectrum.eigenvalues.count)
        for i in 0..<k { add("pca", "explained_variance_ratio_\(i + 1)", a.spectrum.explainedVarianceRatio[i]) }
        for i in 0..<k { add("pca", "cumulative_variance_\(i + 1)", a.spectrum.cumulativeVariance[i]) }
        for i in 0..<min(k, a.meanDiffShare.count) { add("pca", "mean_diff_share_\(i + 1)", a.meanDiffShare[i]) }
        add("pca", "cosine_mean_diff_pc1", a.cosineMeanDiffPC1)
        for d in a.directions {
            let m = d.method.rawValue
            add(m, "cohen_d", d.testSeparation.cohenD)
            add(m, "auroc", d.testSeparation.auroc)
            // The candidate ranking's separation: on validation prompts, or on the fit prompts when the cache has none.
            add(m, d.rankedOn == .validation ? "validation_cohen_d" : "fit_cohen_d", d.rankingSeparation.cohenD)
            add(m, d.rankedOn == .validation ? "validation_auroc" : "fit_auroc", d.rankingSeparation.auroc)
            if let s = d.stability {
                add(m, "bootstrap_replicates", Double(s.replicates))
                add(m, "bootstrap_cosine_mean", s.meanCosine)
                add(m, "bootstrap_cosine_lower", s.lower)
                add(m, "bootstrap_cosine_upper", s.upper)
                add(m, "split_half_cosine", s.splitHalfCosine)
            }
        }
        for p in a.probes { add("probe", "probe_accuracy_\(p.components)", p.accuracy) }
        return out
    }

    public static func render(_ rows: [TidyRow]) -> String {
        var s = header + "\n"
        s.reserveCapacity(rows.count * 64)
        for r in rows {
            s += CSV.escape(r.checkpoint) + "," + String(r.layer) + "," + String(r.position) + "," + CSV.escape(r.method)
            s += "," + CSV.escape(r.metric) + "," + format(r.value) + "\n"
        }
        return s
    }

    /// Writes atomically (temporary file + rename).
    public static func write(_ rows: [TidyRow], to path: String) throws {
        try SafeFiles.atomicWrite(Data(render(rows).utf8), to: path)
    }

    static func format(_ v: Double) -> String {
        if v.isNaN { return "nan" }
        if v.isInfinite { return v > 0 ? "inf" : "-inf" }
        return "\(v)"
    }
}
