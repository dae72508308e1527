import Foundation

/// Small statistics used by histogram, box and violin plots.
enum Stats {
    /// Percentile with linear interpolation between order statistics (numpy's default, "linear"):
    /// position (n − 1)·q in the sorted sample.
    static func quantile(_ sorted: [Double], _ q: Double) -> Double {
        guard !sorted.isEmpty else { return .nan }
        let pos = Double(sorted.count - 1) * q
        let i = Int(floor(pos)), j = min(i + 1, sorted.count - 1)
        return sorted[i] + (sorted[j] - sorted[i]) * (pos - Double(i))
    }

    struct Box { var q1, median, q3, lowWhisker, highWhisker: Double; var outliers: [Double] }

    /// Quartiles, whiskers at the most extreme data within 1.5 IQR of the box (Tukey), outliers beyond.
    static func box(_ values: [Double]) -> Box? {
        let s = values.filter(\.isFinite).sorted()
        guard !s.isEmpty else { return nil }
        let q1 = quantile(s, 0.25), med = quantile(s, 0.5), q3 = quantile(s, 0.75)
        let iqr = q3 - q1
        let lo = s.first { $0 >= q1 - 1.5 * iqr } ?? q1
        let hi = s.last { $0 <= q3 + 1.5 * iqr } ?? q3
        return Box(q1: q1, median: med, q3: q3, lowWhisker: lo, highWhisker: hi,
                   outliers: s.filter { $0 < lo || $0 > hi })
    }

    /// Sample standard deviation (n − 1).
    static func std(_ v: [Double]) -> Double {
        guard v.count > 1 else { return 0 }
        let m = v.reduce(0, +) / Double(v.count)
        return sqrt(v.reduce(0) { $0 + ($1 - m) * ($1 - m) } / Double(v.count - 1))
    }

    /// Gaussian KDE evaluated at `grid`; bandwidth defaults to Scott's rule σ·n^(−1/5) (scipy's default).
    static func kde(_ values: [Double], grid: [Double], bandwidth: Double? = nil) -> [Double] {
        let v = values.filter(\.isFinite)
        guard !v.isEmpty else { return grid.map { _ in 0 } }
        var bw = bandwidth ?? std(v) * pow(Double(v.count), -0.2)
        if !(bw > 0) { bw = max(abs(v[0]) * 0.05, 1e-3) }
        let norm = 1 / (Double(v.count) * bw * (2 * Double.pi).squareRoot())
        return grid.map { g in v.reduce(0) { $0 + exp(-0.5 * (($1 - g) / bw) * (($1 - g) / bw)) } * norm }
    }

    /// Counts in `bins` equal-width bins over [lo, hi] (the last bin includes hi, like numpy).
    static func histogram(_ values: [Double], bins: Int, lo: Double, hi: Double) -> [Double] {
        let n = max(bins, 1)
        var counts = [Double](repeating: 0, count: n)
        guard hi > lo else { counts[0] = Double(values.filter(\.isFinite).count); return counts }
        for v in values where v.isFinite && v >= lo && v <= hi {
            let i = min(Int((v - lo) / (hi - lo) * Double(n)), n - 1)
            counts[i] += 1
        }
        return counts
    }
}
