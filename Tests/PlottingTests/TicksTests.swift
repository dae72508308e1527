import Foundation
import Testing
@testable import Plotting

@Suite("Ticks follow the nice-number rule")
struct TicksTests {
    @Test("Heckbert nice numbers are 1, 2, 5 or 10 × 10^k")
    func niceNumbers() {
        // Rounded: f < 1.5 → 1, < 3 → 2, < 7 → 5, else 10.
        #expect(Ticks.niceNumber(0.14, round: true) == 0.1)
        #expect(Ticks.niceNumber(0.2, round: true) == 0.2)
        #expect(Ticks.niceNumber(3.4, round: true) == 5)
        #expect(Ticks.niceNumber(7.5, round: true) == 10)
        // Ceiling: smallest of {1, 2, 5, 10} × 10^k that is ≥ x.
        #expect(Ticks.niceNumber(1.0, round: false) == 1)
        #expect(Ticks.niceNumber(2.1, round: false) == 5)
        #expect(Ticks.niceNumber(30, round: false) == 50)
    }

    @Test("0…1 gives 0, 0.2, …, 1 exactly as decimals")
    func unitRange() {
        let t = Ticks.linear(0, 1, maxTicks: 6)
        #expect(t.map(\.value) == [0, 0.2, 0.4, 0.6, 0.8, 1.0])
        #expect(t.map(\.label) == ["0.0", "0.2", "0.4", "0.6", "0.8", "1.0"])
    }

    @Test("0.1…0.7 step 0.1 labels have no floating-point noise")
    func noNoise() {
        // range nice(0.6) = 1, step nice(1/9) = 0.1
        let t = Ticks.linear(0.1, 0.7, maxTicks: 10)
        #expect(t.map(\.label) == ["0.1", "0.2", "0.3", "0.4", "0.5", "0.6", "0.7"])
        #expect(t[2].value == 0.3)  // 3/10 rounded once, not 0.1 + 0.1 + 0.1
    }

    @Test("Ranges and their expected steps", arguments: [
        (0.0, 30.0, 6, [0.0, 10, 20, 30]),
        (0.0, 100.0, 6, [0.0, 20, 40, 60, 80, 100]),
        (-1.0, 1.0, 5, [-1.0, -0.5, 0, 0.5, 1]),
        (2.0, 9.0, 8, [2.0, 3, 4, 5, 6, 7, 8, 9]),
    ])
    func steps(lo: Double, hi: Double, n: Int, expected: [Double]) {
        #expect(Ticks.linear(lo, hi, maxTicks: n).map(\.value) == expected)
    }

    @Test("Too few ticks fall back to the next smaller 1-2-5 step")
    func tooFew() {
        // Heckbert: range nice(0.6) = 1, step nice(1/3) = 0.5 → only 0 and 0.5 inside [0, 0.6];
        // 2 < max(3, 4/2), so the step drops to 0.2 (4 ticks ≤ 4 + 1).
        #expect(Ticks.linear(0, 0.6, maxTicks: 4).map(\.value) == [0, 0.2, 0.4, 0.6])
        // 0…30 keeps step 10: 4 ticks ≥ 3.
        #expect(Ticks.linear(0, 30, maxTicks: 6).map(\.value) == [0, 10, 20, 30])
    }

    @Test("Negative labels use the typographic minus, zero has no sign")
    func minusSign() {
        let t = Ticks.linear(-1, 1, maxTicks: 5)
        #expect(t.map(\.label) == ["\u{2212}1.0", "\u{2212}0.5", "0.0", "0.5", "1.0"])
    }

    @Test("Nice limits enclose the data on step multiples")
    func limits() {
        let l = Ticks.niceLimits(0.03, 0.87, maxTicks: 6)
        #expect(l.lo == 0 && l.hi == 1.0)
        // range nice(50.2) = 100, step nice(100/5) = 20 → [−20, 60]
        let m = Ticks.niceLimits(-3.2, 47, maxTicks: 6)
        #expect(m.lo == -20 && m.hi == 60)
    }

    @Test("Degenerate range is widened, not empty")
    func degenerate() {
        #expect(!Ticks.linear(5, 5).isEmpty)
        #expect(!Ticks.linear(0, 0).isEmpty)
    }

    @Test("Large magnitudes use scientific labels")
    func scientific() throws {
        // range nice(3e7) = 5e7, step nice(5e7/5) = 1e7
        let t = Ticks.linear(0, 3e7, maxTicks: 6)
        #expect(t.map(\.value) == [0, 1e7, 2e7, 3e7])
        try #require(t.count == 4)
        #expect(t[1].label == "10" && t[1].exponent == "7")
        #expect(t[2].label == "2×10" && t[2].exponent == "7")
    }

    @Test("Log 1e-3…10 gives the five decades, minor ticks at 2…9 × 10^k")
    func logDecades() {
        let (major, minor) = Ticks.log(1e-3, 10)
        #expect(major.map(\.value) == [1e-3, 1e-2, 1e-1, 1, 10])
        #expect(major.map(\.exponent) == ["\u{2212}3", "\u{2212}2", "\u{2212}1", "0", "1"])
        #expect(minor.count == 4 * 8)
        #expect(minor.contains(2e-3) && minor.contains(9))
        #expect(!minor.contains(20))
    }

    @Test("Many decades are thinned")
    func logThinned() {
        let (major, _) = Ticks.log(1e-12, 1e12, maxTicks: 7)
        #expect(major.count <= 7 && major.count >= 4)
        #expect(major.first?.value == 1e-12)
    }

    @Test("Log limits round out to decades")
    func logLimits() {
        let l = Ticks.logLimits(0.0042, 37)
        #expect(l.lo == 1e-3 && abs(l.hi - 100) < 1e-9)
    }

    @Test("Compact number labels")
    func compact() {
        #expect(Ticks.compact(0.8312) == "0.83")
        #expect(Ticks.compact(-0.05) == "\u{2212}0.050")
        #expect(Ticks.compact(12.0) == "12")
    }
}
