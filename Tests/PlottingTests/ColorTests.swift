import Foundation
import Testing
@testable import Plotting

@Suite("Colour maps and palettes")
struct ColorTests {
    func close(_ c: Color, _ r: Double, _ g: Double, _ b: Double, tol: Double = 1e-6) -> Bool {
        abs(c.r - r) <= tol && abs(c.g - g) <= tol && abs(c.b - b) <= tol
    }

    @Test("Viridis endpoints equal the published table (#440154 … #FDE725)")
    func viridisEndpoints() {
        // First and last entries of the 256-entry viridis table (van der Walt & Smith).
        #expect(close(ColorMap.viridis.color(at: 0), 0.267004, 0.004874, 0.329415))
        #expect(close(ColorMap.viridis.color(at: 1), 0.993248, 0.906157, 0.143936))
        #expect(ColorMap.viridis.color(at: 0).hexString == "#440154")
        #expect(ColorMap.viridis.color(at: 1).hexString == "#FDE725")
    }

    @Test("Viridis middle is within 0.01 of the published entry 128 (#21918C)")
    func viridisMiddle() {
        // Table entry 128 (t = 128/255) is (0.127568, 0.566949, 0.550556).
        #expect(close(ColorMap.viridis.color(at: 128.0 / 255), 0.127568, 0.566949, 0.550556, tol: 0.01))
    }

    @Test("Viridis lightness increases monotonically")
    func viridisMonotone() {
        let l = stride(from: 0.0, through: 1.0, by: 0.05).map { ColorMap.viridis.color(at: $0).luminance }
        #expect(zip(l, l.dropFirst()).allSatisfy { $0 < $1 })
    }

    @Test("Diverging map is neutral at 0 with symmetric limits, blue below and red above")
    func diverging() {
        let norm = ColorNorm.symmetric([-0.3, 0.9, 0.1])
        #expect(norm.low == -0.9 && norm.high == 0.9)
        let mid = ColorMap.blueWhiteRed.color(at: norm.t(0))
        #expect(mid.hexString == "#F7F7F7")
        let neg = ColorMap.blueWhiteRed.color(at: norm.t(-0.9)), pos = ColorMap.blueWhiteRed.color(at: norm.t(0.9))
        #expect(neg.b > neg.r && pos.r > pos.b)
        // Equal distances from 0 are about equally dark (RdBu is lightness-balanced).
        let a = ColorMap.blueWhiteRed.color(at: norm.t(-0.45)).luminance, b = ColorMap.blueWhiteRed.color(at: norm.t(0.45)).luminance
        #expect(abs(a - b) < 0.08)
    }

    @Test("Okabe–Ito colours are the published hex values")
    func okabeIto() {
        let hex = Set(Palette.okabeIto.colors.map(\.hexString))
        #expect(hex == ["#E69F00", "#56B4E9", "#009E73", "#F0E442", "#0072B2", "#D55E00", "#CC79A7", "#000000"])
        #expect(Palette.okabeIto.color(8) == Palette.okabeIto.color(0))
    }

    @Test("Contrasting text is white on dark and dark on light cells (WCAG contrast)")
    func contrastText() {
        #expect(ColorMap.viridis.color(at: 0).contrastingText == .white)
        #expect(ColorMap.viridis.color(at: 1).contrastingText == .text)
        // WCAG: white on black is 21:1.
        #expect(abs(Color.contrast(.white, .black) - 21) < 1e-9)
    }
}
