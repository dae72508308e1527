import AblabCore
import Foundation

extension SplitMix64 {
    /// An index in 0..<n (`bounded(n)`), the draw the bootstrap uses.
    public mutating func index(below n: Int) -> Int { bounded(n) }
}

/// A point estimate with an interval: a bootstrap percentile interval, or (rates) a Wilson score interval.
public struct ConfidenceInterval: Sendable, Equatable {
    public var estimate: Double
    public var lower: Double
    public var upper: Double
    public var level: Double
    /// Replicates drawn, and how many gave a defined (non-nan) statistic; the interval uses those.
    /// Both 0 for a closed-form interval (Wilson).
    public var replicates: Int
    public var valid: Int
}

extension Agreement {
    /// Percentile bootstrap over items: `replicates` times, draw n item indices with replacement
    /// (SplitMix64 seeded with `seed`, indices drawn in order), evaluate `statistic` on them; the
    /// interval is the (1−level)/2 and (1+level)/2 quantiles of the defined replicates with linear
    /// interpolation between order statistics (numpy's default percentile rule).
    public static func bootstrap(
        items n: Int, replicates: Int = 2000, seed: UInt64 = 20251002, level: Double = 0.95,
        statistic: ([Int]) throws -> Double
    ) rethrows -> ConfidenceInterval {
        let estimate = try statistic(Array(0..<n))
        guard n > 0, replicates > 0 else {
            return ConfidenceInterval(estimate: estimate, lower: .nan, upper: .nan, level: level, replicates: 0, valid: 0)
        }
        var rng = SplitMix64(seed: seed)
        var idx = [Int](repeating: 0, count: n)
        var values: [Double] = []
        values.reserveCapacity(replicates)
        for _ in 0..<replicates {
            for i in 0..<n { idx[i] = rng.index(below: n) }
            let v = try statistic(idx)
            if !v.isNaN { values.append(v) }
        }
        values.sort()
        let alpha = (1 - level) / 2
        return ConfidenceInterval(
            estimate: estimate, lower: quantile(sorted: values, alpha), upper: quantile(sorted: values, 1 - alpha),
            level: level, replicates: replicates, valid: values.count)
    }

    /// Cluster (block) bootstrap: `replicates` times, draw as many clusters as there are, with
    /// replacement (SplitMix64 seeded with `seed`, one `index(below: clusters.count)` per draw, in order),
    /// and evaluate `statistic` on the concatenated unit indices of the drawn clusters (each cluster's
    /// units in their order). With one unit per cluster this is `bootstrap(items:)`. Used for κ and
    /// agreement, where every prompt (item) appears once per system: resampling (system, item) pairs
    /// independently would treat correlated units as independent and give too narrow an interval.
    public static func clusterBootstrap(
        clusters: [[Int]], replicates: Int = 2000, seed: UInt64 = 20251002, level: Double = 0.95,
        statistic: ([Int]) throws -> Double
    ) rethrows -> ConfidenceInterval {
        let estimate = try statistic(clusters.flatMap { $0 })
        guard !clusters.isEmpty, replicates > 0 else {
            return ConfidenceInterval(estimate: estimate, lower: .nan, upper: .nan, level: level, replicates: 0, valid: 0)
        }
        var rng = SplitMix64(seed: seed)
        var values: [Double] = []
        var idx: [Int] = []
        for _ in 0..<replicates {
            idx.removeAll(keepingCapacity: true)
            for _ in 0..<clusters.count { idx += clusters[rng.index(below: clusters.count)] }
            let v = try statistic(idx)
            if !v.isNaN { values.append(v) }
        }
        values.sort()
        let alpha = (1 - level) / 2
        return ConfidenceInterval(
            estimate: estimate, lower: quantile(sorted: values, alpha), upper: quantile(sorted: values, 1 - alpha),
            level: level, replicates: replicates, valid: values.count)
    }

    /// Wilson score interval of a proportion (statsmodels `proportion_confint(method="wilson")`): with
    /// z the (1 + level)/2 normal quantile, p̂ = k/n, centre (p̂ + z²/2n)/(1 + z²/n) ± z/(1 + z²/n) ·
    /// √(p̂(1 − p̂)/n + z²/4n²). Unlike a percentile bootstrap it is not [0, 0] at 0/n (0/32 → [0, 0.107]).
    /// n = 0 gives nan.
    public static func wilson(successes k: Int, n: Int, level: Double = 0.95) -> ConfidenceInterval {
        guard n > 0 else { return ConfidenceInterval(estimate: .nan, lower: .nan, upper: .nan, level: level, replicates: 0, valid: 0) }
        let z = normalQuantile((1 + level) / 2)
        let nn = Double(n), p = Double(k) / nn, z2 = z * z
        let denom = 1 + z2 / nn
        let centre = (p + z2 / (2 * nn)) / denom
        let half = z / denom * (p * (1 - p) / nn + z2 / (4 * nn * nn)).squareRoot()
        return ConfidenceInterval(estimate: p, lower: max(0, centre - half), upper: min(1, centre + half),
                                  level: level, replicates: 0, valid: 0)
    }

    /// Inverse of the standard normal CDF (Acklam's rational approximation refined by one Halley step
    /// with erfc; relative error below 1e-15 in (0, 1)).
    public static func normalQuantile(_ p: Double) -> Double {
        guard p > 0, p < 1 else { return p == 0 ? -.infinity : (p == 1 ? .infinity : .nan) }
        let a = [-3.969683028665376e+01, 2.209460984245205e+02, -2.759285104469687e+02, 1.383577518672690e+02, -3.066479806614716e+01, 2.506628277459239e+00]
        let b = [-5.447609879822406e+01, 1.615858368580409e+02, -1.556989798598866e+02, 6.680131188771972e+01, -1.328068155288572e+01]
        let c = [-7.784894002430293e-03, -3.223964580411365e-01, -2.400758277161838e+00, -2.549732539343734e+00, 4.374664141464968e+00, 2.938163982698783e+00]
        let d = [7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e+00, 3.754408661907416e+00]
        let pl = 0.02425
        var x: Double
        if p < pl {
            let q = (-2 * log(p)).squareRoot()
            x = (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) / ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1)
        } else if p <= 1 - pl {
            let q = p - 0.5, r = q * q
            x = (((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q / (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1)
        } else {
            let q = (-2 * log(1 - p)).squareRoot()
            x = -(((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) / ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1)
        }
        // Halley refinement: e = Φ(x) − p.
        let e = 0.5 * erfc(-x / 2.0.squareRoot()) - p
        let u = e * (2 * Double.pi).squareRoot() * exp(x * x / 2)
        x -= u / (1 + x * u / 2)
        return x
    }

    /// Linear-interpolation quantile of sorted values (numpy `percentile`, method "linear"); nan if empty.
    public static func quantile(sorted v: [Double], _ q: Double) -> Double {
        guard !v.isEmpty else { return .nan }
        let pos = q * Double(v.count - 1)
        let lo = Int(pos.rounded(.down)), hi = min(lo + 1, v.count - 1)
        let frac = pos - Double(lo)
        return v[lo] + (v[hi] - v[lo]) * frac
    }

    /// Cluster-bootstrap CIs of Cohen's κ and percent agreement: `a[u]`, `b[u]` are unit u's verdicts and
    /// `cluster[u]` its cluster (the prompt, shared by every system that answered it). Only units both
    /// raters rated take part; clusters in first-seen order.
    public static func clusterBootstrapPair<T: Hashable>(
        _ a: [T?], _ b: [T?], cluster: [String], replicates: Int = 2000, seed: UInt64 = 20251002, level: Double = 0.95
    ) throws -> (kappa: ConfidenceInterval, agreement: ConfidenceInterval) {
        try checkSameLength(a.count, b.count, "two raters")
        try checkSameLength(a.count, cluster.count, "verdicts and clusters")
        var x: [T] = [], y: [T] = []
        var index: [String: Int] = [:], clusters: [[Int]] = []
        for u in 0..<a.count {
            guard let p = a[u], let q = b[u] else { continue }
            if let c = index[cluster[u]] { clusters[c].append(x.count) } else { index[cluster[u]] = clusters.count; clusters.append([x.count]) }
            x.append(p); y.append(q)
        }
        let k = try clusterBootstrap(clusters: clusters, replicates: replicates, seed: seed, level: level) { idx in
            try cohenKappa(idx.map { x[$0] }, idx.map { y[$0] })
        }
        let ag = clusterBootstrap(clusters: clusters, replicates: replicates, seed: seed, level: level) { idx in
            guard !idx.isEmpty else { return .nan }
            var agreed = 0
            for i in idx where x[i] == y[i] { agreed += 1 }
            return Double(agreed) / Double(idx.count)
        }
        return (k, ag)
    }

    /// Bootstrap CI of Cohen's κ over the items both raters rated.
    public static func bootstrapKappa<T: Hashable>(
        _ a: [T?], _ b: [T?], replicates: Int = 2000, seed: UInt64 = 20251002, level: Double = 0.95
    ) throws -> ConfidenceInterval {
        let (x, y) = try paired(a, b)
        return try bootstrap(items: x.count, replicates: replicates, seed: seed, level: level) { idx in
            try cohenKappa(idx.map { x[$0] }, idx.map { y[$0] })
        }
    }

    /// Bootstrap CI of percent agreement over the items both raters rated.
    public static func bootstrapAgreement<T: Hashable>(
        _ a: [T?], _ b: [T?], replicates: Int = 2000, seed: UInt64 = 20251002, level: Double = 0.95
    ) throws -> ConfidenceInterval {
        let (x, y) = try paired(a, b)
        return bootstrap(items: x.count, replicates: replicates, seed: seed, level: level) { idx in
            guard !idx.isEmpty else { return .nan }
            var agreed = 0
            for i in idx where x[i] == y[i] { agreed += 1 }
            return Double(agreed) / Double(idx.count)
        }
    }

    /// Bootstrap CI of the refusal rate over the items that have a verdict.
    public static func bootstrapRefusalRate(
        _ v: [VerdictLabel?], replicates: Int = 2000, seed: UInt64 = 20251002, level: Double = 0.95
    ) -> ConfidenceInterval {
        let x = v.compactMap { $0 }
        return bootstrap(items: x.count, replicates: replicates, seed: seed, level: level) { idx in
            guard !idx.isEmpty else { return .nan }
            var r = 0
            for i in idx where x[i] == .refusal { r += 1 }
            return Double(r) / Double(idx.count)
        }
    }

    /// The items both raters rated, in order.
    static func paired<T: Hashable>(_ a: [T?], _ b: [T?]) throws -> ([T], [T]) {
        try checkSameLength(a.count, b.count, "two raters")
        var x: [T] = [], y: [T] = []
        for i in 0..<a.count { if let p = a[i], let q = b[i] { x.append(p); y.append(q) } }
        return (x, y)
    }
}

/// A sign that a judge is not judging: constant output, or one class for (almost) everything on a set
/// built to be balanced.
public struct JudgeWarning: Sendable, Equatable, CustomStringConvertible {
    public enum Kind: Sendable, Equatable { case constant, dominantClass }
    public var judge: String
    public var kind: Kind
    public var label: VerdictLabel
    public var fraction: Double
    public var items: Int

    public var description: String {
        switch kind {
        case .constant:
            return "judge '\(judge)' said \(label.rawValue) for all \(items) items: it is probably not reading the responses"
        case .dominantClass:
            return "judge '\(judge)' said \(label.rawValue) for \(Int((fraction * 100).rounded()))% of \(items) items on a balanced harmful/harmless set: check its prompt or patterns"
        }
    }
}

extension Agreement {
    /// Warnings for one judge. `promptLabels[i]` is item i's prompt class (e.g. harmful / harmless);
    /// the set counts as balanced when it has at least two classes and none above `balancedMax` of it.
    /// A dominant class is one at or above `dominantMin` of the judged items.
    public static func brokenJudgeWarnings(
        judge: String, verdicts: [VerdictLabel?], promptLabels: [String],
        dominantMin: Double = 0.9, balancedMax: Double = 0.6
    ) throws -> [JudgeWarning] {
        try checkSameLength(verdicts.count, promptLabels.count, "verdicts and prompt labels")
        var judgedLabels: [String: Int] = [:]
        var refusals = 0, n = 0
        for (v, l) in zip(verdicts, promptLabels) {
            guard let v else { continue }
            n += 1
            if v == .refusal { refusals += 1 }
            judgedLabels[l, default: 0] += 1
        }
        guard n >= 2 else { return [] }
        let top: VerdictLabel = refusals * 2 >= n ? .refusal : .nonRefusal
        let topCount = top == .refusal ? refusals : n - refusals
        let frac = Double(topCount) / Double(n)
        if topCount == n {
            return [JudgeWarning(judge: judge, kind: .constant, label: top, fraction: 1, items: n)]
        }
        let balanced = judgedLabels.count >= 2 && Double(judgedLabels.values.max() ?? 0) / Double(n) <= balancedMax
        if balanced && frac >= dominantMin {
            return [JudgeWarning(judge: judge, kind: .dominantClass, label: top, fraction: frac, items: n)]
        }
        return []
    }
}
