import Foundation

/// One tick: its data value and label. A label with an `exponent` is drawn as `label` with the
/// exponent as a superscript (e.g. "10" and "−3" for 10⁻³).
public struct Tick: Sendable, Hashable {
    public var value: Double
    public var label: String
    public var exponent: String?
    public init(value: Double, label: String, exponent: String? = nil) {
        self.value = value; self.label = label; self.exponent = exponent
    }
}

/// Tick positions and labels.
public enum Ticks {
    /// The typographic minus sign used in labels (U+2212), as in typeset figures.
    public static let minus = "\u{2212}"

    /// Heckbert's "nice number" (Graphics Gems, 1990): a number of the form {1, 2, 5} × 10^k close to `x`
    /// (`round`: nearest; otherwise the smallest nice number ≥ x).
    public static func niceNumber(_ x: Double, round: Bool) -> Double {
        guard x > 0, x.isFinite else { return 1 }
        let e = floor(log10(x))
        let f = x / pow(10, e)
        let nf: Double
        if round { nf = f < 1.5 ? 1 : f < 3 ? 2 : f < 7 ? 5 : 10 } else { nf = f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10 }
        return nf * pow(10, e)
    }

    /// Step chosen by the nice-number rule for about `maxTicks` ticks over [lo, hi], as
    /// mantissa ∈ {1, 2, 5} and decimal exponent (step = mantissa × 10^exponent).
    static func niceStep(_ lo: Double, _ hi: Double, maxTicks: Int) -> (mantissa: Int, exponent: Int) {
        let range = niceNumber(hi - lo, round: false)
        let step = niceNumber(range / Double(max(maxTicks - 1, 1)), round: true)
        var e = Int(floor(log10(step) + 1e-9))
        var m = Int((step / pow(10, Double(e))).rounded())
        if m >= 10 { m /= 10; e += 1 }
        return (m, e)
    }

    /// k × mantissa × 10^e as the double nearest to that decimal (no 0.30000000000000004).
    static func decimal(_ k: Int, _ m: Int, _ e: Int) -> Double {
        e >= 0 ? Double(k * m) * pow(10, Double(e)) : Double(k * m) / pow(10, Double(-e))
    }

    /// Nice limits enclosing [lo, hi]: both rounded outwards to multiples of the nice step.
    public static func niceLimits(_ lo: Double, _ hi: Double, maxTicks: Int = 6) -> (lo: Double, hi: Double) {
        let (lo, hi) = widen(lo, hi)
        let (m, e) = niceStep(lo, hi, maxTicks: maxTicks)
        let step = decimal(1, m, e)
        return (decimal(Int(floor(lo / step + 1e-9)), m, e), decimal(Int(ceil(hi / step - 1e-9)), m, e))
    }

    /// A degenerate or reversed range widened to something drawable.
    static func widen(_ lo: Double, _ hi: Double) -> (Double, Double) {
        guard lo.isFinite, hi.isFinite else { return (0, 1) }
        if hi > lo { return (lo, hi) }
        let d = lo == 0 ? 1 : abs(lo) * 0.1
        return (lo - d, lo + d)
    }

    /// Ticks at multiples of a nice step (1, 2 or 5 × 10^k) inside [lo, hi], about `maxTicks` of them.
    /// When the nice-number step leaves fewer than max(3, maxTicks / 2) ticks inside the range (the
    /// rounded-up range can waste most of it), the next smaller 1-2-5 step is used instead, as long as
    /// that gives at most maxTicks + 1 ticks.
    public static func linear(_ lo: Double, _ hi: Double, maxTicks: Int = 6) -> [Tick] {
        let (lo, hi) = widen(lo, hi)
        var (m, e) = niceStep(lo, hi, maxTicks: maxTicks)
        func count(_ m: Int, _ e: Int) -> Int {
            let step = decimal(1, m, e), tol = step * 1e-6
            return Int(floor((hi + tol) / step)) - Int(ceil((lo - tol) / step)) + 1
        }
        if maxTicks >= 3 {
            while count(m, e) < max(3, maxTicks / 2) {
                let (m2, e2) = m == 1 ? (5, e - 1) : m == 2 ? (1, e) : (2, e)
                if count(m2, e2) > maxTicks + 1 { break }
                (m, e) = (m2, e2)
            }
        }
        let step = decimal(1, m, e)
        let tol = step * 1e-6
        let k0 = Int(ceil((lo - tol) / step)), k1 = Int(floor((hi + tol) / step))
        guard k1 >= k0, k1 - k0 < 1000 else { return [] }
        let values = (k0...k1).map { decimal($0, m, e) }
        return labels(values, mantissa: m, exponent: e)
    }

    /// Labels for values that are multiples of m × 10^e: fixed decimals normally, scientific
    /// (mantissa × 10^k) for very large or very small magnitudes.
    static func labels(_ values: [Double], mantissa m: Int, exponent e: Int) -> [Tick] {
        let maxAbs = values.map(abs).max() ?? 0
        if maxAbs >= 1e6 || (e < -4 && maxAbs < 1e-3) {
            return values.map { v in
                if v == 0 { return Tick(value: 0, label: "0") }
                let k = Int(floor(log10(abs(v)) + 1e-9))
                let mant = v / pow(10, Double(k))
                let digits = max(0, k - e)
                var s = String(format: "%.\(min(digits, 6))f", mant)
                if s.contains(".") { while s.hasSuffix("0") { s.removeLast() }; if s.hasSuffix(".") { s.removeLast() } }
                let label = (s == "1" ? "" : s.replacingOccurrences(of: "-", with: minus) + "×") + "10"
                return Tick(value: v, label: label, exponent: k < 0 ? minus + String(-k) : String(k))
            }
        }
        let decimals = max(0, -e)
        return values.map { v in Tick(value: v, label: format(v, decimals: decimals)) }
    }

    /// Fixed-point label with a typographic minus and no "-0".
    public static func format(_ v: Double, decimals: Int) -> String {
        var s = String(format: "%.\(decimals)f", v)
        if s.hasPrefix("-") {
            if Double(s) == 0 { s.removeFirst() } else { s = minus + s.dropFirst() }
        }
        return s
    }

    /// A short general-purpose number label (for cell values, annotations): `digits` significant digits.
    public static func compact(_ v: Double, digits: Int = 2) -> String {
        guard v.isFinite else { return v.isNaN ? "NaN" : (v > 0 ? "∞" : minus + "∞") }
        if v == 0 { return "0" }
        let mag = Int(floor(log10(abs(v))))
        let decimals = max(0, digits - 1 - mag)
        if mag >= 6 || mag < -4 { return String(format: "%.\(max(digits - 1, 0))e", v).replacingOccurrences(of: "-", with: minus) }
        return format(v, decimals: min(decimals, 6))
    }

    /// Decade ticks 10^k inside [lo, hi] (labelled 10^k; every n-th decade when there are many) and minor
    /// ticks at 2…9 × 10^k. Requires 0 < lo < hi.
    public static func log(_ lo: Double, _ hi: Double, maxTicks: Int = 8) -> (major: [Tick], minor: [Double]) {
        guard lo > 0, hi > lo, lo.isFinite, hi.isFinite else { return ([], []) }
        let e0 = Int(floor(log10(lo) + 1e-9)), e1 = Int(ceil(log10(hi) - 1e-9))
        let decades = e1 - e0
        let every = max(1, Int(ceil(Double(decades + 1) / Double(max(maxTicks, 2)))))
        var major: [Tick] = [], minor: [Double] = []
        let inRange = { (v: Double) in v >= lo * (1 - 1e-9) && v <= hi * (1 + 1e-9) }
        for k in e0...e1 {
            let v = Double("1e\(k)")!
            if inRange(v) {
                if (k - e0) % every == 0 {
                    major.append(Tick(value: v, label: "10", exponent: k < 0 ? minus + String(-k) : String(k)))
                } else {
                    minor.append(v)
                }
            }
            if every == 1 { for m in 2...9 { let mv = Double(m) * v; if inRange(mv) { minor.append(mv) } } }
        }
        return (major, minor)
    }

    /// Nice log limits: the enclosing decades.
    public static func logLimits(_ lo: Double, _ hi: Double) -> (lo: Double, hi: Double) {
        guard lo > 0, hi >= lo, lo.isFinite, hi.isFinite else { return (1, 10) }
        let e0 = floor(log10(lo) + 1e-9), e1 = ceil(log10(hi) - 1e-9)
        return (pow(10, e0), pow(10, max(e1, e0 + 1)))
    }
}
