/// SplitMix64 (Steele, Lea & Flood 2014; Vigna's constants): a small, fast, seedable generator whose
/// stream is the same on every platform. Every random choice in ablab comes from it — bootstrap resamples
/// and split halves (analysis, agreement), sampling during generation, fuzz cases — so results are
/// reproducible from their seeds (tests compare the stream with a Python implementation).
public struct SplitMix64: RandomNumberGenerator, Sendable {
    public var state: UInt64
    public init(seed: UInt64) { state = seed }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// An integer in 0..<n: the high 64 bits of next() · n (Lemire's multiply-shift, no rejection step;
    /// the bias is below n / 2⁶⁴). n = 0 gives 0.
    public mutating func bounded(_ n: Int) -> Int {
        Int(truncatingIfNeeded: next().multipliedFullWidth(by: UInt64(max(n, 0))).high)
    }

    /// Fisher–Yates from the end: for i = count − 1 down to 1, swap a[i] with a[bounded(i + 1)].
    public mutating func shuffle<T>(_ a: inout [T]) {
        guard a.count > 1 else { return }
        for i in stride(from: a.count - 1, to: 0, by: -1) { a.swapAt(i, bounded(i + 1)) }
    }

    /// Uniform in [0, 1) with 53 random bits.
    public mutating func uniform() -> Double { Double(next() >> 11) * 0x1.0p-53 }
}
