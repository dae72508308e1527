import LinearAlgebra

/// How well a scalar score separates harmful (positive) from harmless prompts.
public struct Separation: Sendable, Equatable {
    /// (mean_harmful − mean_harmless) / pooled SD (pooled variance with n − 1 per class).
    public var cohenD: Double
    /// Area under the ROC curve, harmful as the positive class (Mann–Whitney U with ties counted ½).
    public var auroc: Double
    public init(cohenD: Double, auroc: Double) { self.cohenD = cohenD; self.auroc = auroc }
}

public enum Stats {
    public static func mean(_ a: [Double]) -> Double { a.isEmpty ? .nan : a.reduce(0, +) / Double(a.count) }

    /// Sample variance (n − 1).
    public static func variance(_ a: [Double]) -> Double {
        guard a.count > 1 else { return 0 }
        let m = mean(a)
        return a.reduce(0) { $0 + ($1 - m) * ($1 - m) } / Double(a.count - 1)
    }

    /// Cohen's d with the pooled standard deviation; 0 when both classes are constant and equal,
    /// ±infinity when they are constant and different, NaN when a class is empty.
    public static func cohenD(_ pos: [Double], _ neg: [Double]) -> Double {
        guard !pos.isEmpty, !neg.isEmpty else { return .nan }
        let diff = mean(pos) - mean(neg)
        let dof = Double(pos.count + neg.count - 2)
        guard dof > 0 else { return .nan }
        let pooled = ((Double(pos.count - 1) * variance(pos) + Double(neg.count - 1) * variance(neg)) / dof).squareRoot()
        if pooled == 0 { return diff == 0 ? 0 : (diff > 0 ? .infinity : -.infinity) }
        return diff / pooled
    }

    /// AUROC = U / (n₊ n₋) with U from average ranks (ties share their mean rank).
    public static func auroc(_ pos: [Double], _ neg: [Double]) -> Double {
        guard !pos.isEmpty, !neg.isEmpty else { return .nan }
        let all = pos.map { ($0, true) } + neg.map { ($0, false) }
        let order = all.indices.sorted { all[$0].0 < all[$1].0 }
        var rankSumPos = 0.0
        var i = 0
        while i < order.count {
            var j = i
            while j + 1 < order.count && all[order[j + 1]].0 == all[order[i]].0 { j += 1 }
            let avgRank = Double(i + j) / 2 + 1 // ranks are 1-based
            for t in i...j where all[order[t]].1 { rankSumPos += avgRank }
            i = j + 1
        }
        let np = Double(pos.count), nn = Double(neg.count)
        return (rankSumPos - np * (np + 1) / 2) / (np * nn)
    }

    public static func separation(_ pos: [Double], _ neg: [Double]) -> Separation {
        Separation(cohenD: cohenD(pos, neg), auroc: auroc(pos, neg))
    }

    /// Pearson correlation; NaN when either side is constant or the lengths differ.
    public static func pearson(_ a: [Double], _ b: [Double]) -> Double {
        guard a.count == b.count, a.count > 1 else { return .nan }
        let ma = mean(a), mb = mean(b)
        var sab = 0.0, saa = 0.0, sbb = 0.0
        for i in 0..<a.count {
            let x = a[i] - ma, y = b[i] - mb
            sab += x * y; saa += x * x; sbb += y * y
        }
        guard saa > 0, sbb > 0 else { return .nan }
        return max(-1, min(1, sab / (saa * sbb).squareRoot()))
    }

    /// Percentile with linear interpolation between order statistics (numpy's default, "type 7").
    public static func percentile(_ a: [Double], _ q: Double) -> Double {
        guard !a.isEmpty else { return .nan }
        let s = a.sorted()
        let h = (Double(s.count - 1)) * q / 100
        let lo = Int(h.rounded(.down)), hi = min(lo + 1, s.count - 1)
        return s[lo] + (h - Double(lo)) * (s[hi] - s[lo])
    }
}

/// Projection scores x · direction of every row of `x` ([n, d]), in Double. [n]
public func projectionScores(_ x: Matrix, _ direction: [Float]) throws -> [Double] {
    try matvec(x, direction).map(Double.init)
}
