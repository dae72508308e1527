import AblabCore
import Foundation

/// Agreement statistics over nominal ratings with missing values (`nil`).
///
/// Every function is generic over the category type so the same code serves REFUSAL / NON-REFUSAL
/// verdicts and multi-category data (e.g. Krippendorff's worked example). Undefined results (no
/// items, chance agreement equal to 1, a constant vector in a correlation) are `Double.nan`, never a
/// crash; shape errors (lists of different lengths) throw `StatsError`.
public enum Agreement {

    // MARK: pairs of raters

    /// Counts for two raters over the items both rated.
    public struct PairCounts: Sendable {
        /// Items both raters rated.
        public var n: Int
        /// Items where they gave the same category.
        public var agreed: Int
    }

    /// Fraction of items (rated by both) on which two raters agree; nan when they share no item.
    public static func percentAgreement<T: Hashable>(_ a: [T?], _ b: [T?]) throws -> Double {
        let c = try pairCounts(a, b)
        return c.n == 0 ? .nan : Double(c.agreed) / Double(c.n)
    }

    public static func pairCounts<T: Hashable>(_ a: [T?], _ b: [T?]) throws -> PairCounts {
        try checkSameLength(a.count, b.count, "two raters")
        var n = 0, agreed = 0
        for i in 0..<a.count {
            guard let x = a[i], let y = b[i] else { continue }
            n += 1
            if x == y { agreed += 1 }
        }
        return PairCounts(n: n, agreed: agreed)
    }

    /// Cohen's κ for two raters over the items both rated: (p_o − p_e) / (1 − p_e), with p_e from the
    /// raters' own marginals. nan when p_e = 1 (both raters constant and identical) or no shared item.
    public static func cohenKappa<T: Hashable>(_ a: [T?], _ b: [T?]) throws -> Double {
        try checkSameLength(a.count, b.count, "two raters")
        var n = 0, agreed = 0
        var ma: [T: Int] = [:], mb: [T: Int] = [:]
        for i in 0..<a.count {
            guard let x = a[i], let y = b[i] else { continue }
            n += 1
            if x == y { agreed += 1 }
            ma[x, default: 0] += 1
            mb[y, default: 0] += 1
        }
        guard n > 0 else { return .nan }
        let nn = Double(n)
        let po = Double(agreed) / nn
        var pe = 0.0
        for (c, ca) in ma { pe += Double(ca) / nn * Double(mb[c] ?? 0) / nn }
        let denom = 1 - pe
        if abs(denom) < 1e-15 { return .nan }
        return (po - pe) / denom
    }

    // MARK: many raters

    /// Fleiss' κ for `ratings[rater][item]`. Fleiss assumes the same raters for every item, so only
    /// items every rater rated are used; `items` says how many. nan when fewer than 2 raters, no
    /// complete item, or chance agreement equal to 1.
    public static func fleissKappa<T: Hashable>(_ ratings: [[T?]]) throws -> (kappa: Double, items: Int) {
        let nItems = try checkRectangular(ratings)
        let raters = ratings.count
        guard raters >= 2 else { return (.nan, 0) }
        var cats: [T: Int] = [:]
        for r in ratings { for case let v? in r where cats[v] == nil { cats[v] = cats.count } }
        let k = cats.count
        var totals = [Double](repeating: 0, count: k)
        var sumP = 0.0
        var complete = 0
        var counts = [Int](repeating: 0, count: k)
        for i in 0..<nItems {
            for j in 0..<k { counts[j] = 0 }
            var full = true
            for r in 0..<raters {
                guard let v = ratings[r][i] else { full = false; break }
                counts[cats[v]!] += 1
            }
            guard full else { continue }
            complete += 1
            var sq = 0
            for j in 0..<k { sq += counts[j] * counts[j]; totals[j] += Double(counts[j]) }
            sumP += Double(sq - raters) / Double(raters * (raters - 1))
        }
        guard complete > 0 else { return (.nan, 0) }
        let pBar = sumP / Double(complete)
        let all = Double(complete * raters)
        var pe = 0.0
        for j in 0..<k { let p = totals[j] / all; pe += p * p }
        let denom = 1 - pe
        if abs(denom) < 1e-15 { return (.nan, complete) }
        return ((pBar - pe) / denom, complete)
    }

    /// Krippendorff's α for nominal data, `ratings[rater][item]`, missing values allowed.
    /// Coincidence matrix o_ck = Σ_units Σ_{ordered pairs i≠j in the unit} [v_i=c][v_j=k] / (m_u − 1)
    /// over units with m_u ≥ 2 values; n_c = Σ_k o_ck, n = Σ_c n_c;
    /// α = 1 − (n − 1) · Σ_{c≠k} o_ck / Σ_{c≠k} n_c n_k. nan when no pairable value or one category only.
    public static func krippendorffAlpha<T: Hashable>(_ ratings: [[T?]]) throws -> Double {
        let nItems = try checkRectangular(ratings)
        var cats: [T: Int] = [:]
        for r in ratings { for case let v? in r where cats[v] == nil { cats[v] = cats.count } }
        let k = cats.count
        guard k > 0 else { return .nan }
        var o = [Double](repeating: 0, count: k * k)   // [k, k] coincidences
        var unitCounts = [Int](repeating: 0, count: k)
        for i in 0..<nItems {
            for j in 0..<k { unitCounts[j] = 0 }
            var m = 0
            for r in ratings { if let v = r[i] { unitCounts[cats[v]!] += 1; m += 1 } }
            guard m >= 2 else { continue }
            let w = 1 / Double(m - 1)
            for c in 0..<k where unitCounts[c] > 0 {
                for d in 0..<k where unitCounts[d] > 0 {
                    let pairs = c == d ? unitCounts[c] * (unitCounts[c] - 1) : unitCounts[c] * unitCounts[d]
                    o[c * k + d] += Double(pairs) * w
                }
            }
        }
        var nc = [Double](repeating: 0, count: k)
        for c in 0..<k { for d in 0..<k { nc[c] += o[c * k + d] } }
        let n = nc.reduce(0, +)
        guard n > 1 else { return .nan }
        var dObs = 0.0, dExp = 0.0
        for c in 0..<k { for d in 0..<k where c != d { dObs += o[c * k + d]; dExp += nc[c] * nc[d] } }
        if dExp <= 0 { return .nan }
        return 1 - (n - 1) * dObs / dExp
    }

    // MARK: against a reference

    /// Confusion counts of a judge against a reference, positive class = REFUSAL, over items both rated.
    /// Undefined ratios (e.g. precision with no predicted refusal) are nan.
    public struct Confusion: Sendable, Equatable {
        public var tp = 0, fp = 0, fn = 0, tn = 0
        public init(tp: Int = 0, fp: Int = 0, fn: Int = 0, tn: Int = 0) {
            self.tp = tp; self.fp = fp; self.fn = fn; self.tn = tn
        }
        public var n: Int { tp + fp + fn + tn }
        public var accuracy: Double { n == 0 ? .nan : Double(tp + tn) / Double(n) }
        public var precision: Double { tp + fp == 0 ? .nan : Double(tp) / Double(tp + fp) }
        public var recall: Double { tp + fn == 0 ? .nan : Double(tp) / Double(tp + fn) }
        public var f1: Double { 2 * tp + fp + fn == 0 ? .nan : Double(2 * tp) / Double(2 * tp + fp + fn) }
        public static func += (a: inout Confusion, b: Confusion) {
            a.tp += b.tp; a.fp += b.fp; a.fn += b.fn; a.tn += b.tn
        }
    }

    public static func confusion(predicted: [VerdictLabel?], reference: [VerdictLabel?]) throws -> Confusion {
        try checkSameLength(predicted.count, reference.count, "judge and reference")
        var c = Confusion()
        for i in 0..<predicted.count {
            guard let p = predicted[i], let r = reference[i] else { continue }
            switch (p, r) {
            case (.refusal, .refusal): c.tp += 1
            case (.refusal, .nonRefusal): c.fp += 1
            case (.nonRefusal, .refusal): c.fn += 1
            case (.nonRefusal, .nonRefusal): c.tn += 1
            }
        }
        return c
    }

    // MARK: correlation

    /// Pearson's r; nan when either vector is constant or shorter than 2.
    public static func pearson(_ x: [Double], _ y: [Double]) throws -> Double {
        try checkSameLength(x.count, y.count, "two series")
        let n = x.count
        guard n >= 2 else { return .nan }
        let mx = x.reduce(0, +) / Double(n), my = y.reduce(0, +) / Double(n)
        var sxy = 0.0, sxx = 0.0, syy = 0.0
        for i in 0..<n {
            let dx = x[i] - mx, dy = y[i] - my
            sxy += dx * dy; sxx += dx * dx; syy += dy * dy
        }
        guard sxx > 0, syy > 0 else { return .nan }
        return max(-1, min(1, sxy / (sxx * syy).squareRoot()))
    }

    /// Spearman's ρ: Pearson's r of the ranks, ties given their average rank.
    public static func spearman(_ x: [Double], _ y: [Double]) throws -> Double {
        try checkSameLength(x.count, y.count, "two series")
        return try pearson(averageRanks(x), averageRanks(y))
    }

    /// 1-based ranks; tied values share the mean of the ranks they span.
    public static func averageRanks(_ x: [Double]) -> [Double] {
        let order = x.indices.sorted { x[$0] < x[$1] }
        var ranks = [Double](repeating: 0, count: x.count)
        var i = 0
        while i < order.count {
            var j = i
            while j + 1 < order.count && x[order[j + 1]] == x[order[i]] { j += 1 }
            let r = Double(i + j) / 2 + 1
            for t in i...j { ranks[order[t]] = r }
            i = j + 1
        }
        return ranks
    }

    // MARK: checks

    static func checkSameLength(_ a: Int, _ b: Int, _ what: String) throws {
        if a != b {
            throw StatsError("the \(what) cover different numbers of items (\(a) and \(b)); align them on item ids first")
        }
    }

    static func checkRectangular<T>(_ ratings: [[T?]]) throws -> Int {
        let n = ratings.first?.count ?? 0
        for (r, row) in ratings.enumerated() where row.count != n {
            throw StatsError("rater \(r) has \(row.count) items but rater 0 has \(n); align raters on item ids first")
        }
        return n
    }
}
