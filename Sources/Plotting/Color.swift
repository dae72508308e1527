import Foundation

/// An sRGB colour with alpha; components in [0, 1].
public struct Color: Sendable, Hashable {
    public var r: Double
    public var g: Double
    public var b: Double
    public var a: Double
    public init(r: Double, g: Double, b: Double, a: Double = 1) { self.r = r; self.g = g; self.b = b; self.a = a }
    /// `Color(hex: 0x0072B2)`.
    public init(hex: UInt32, alpha: Double = 1) {
        r = Double((hex >> 16) & 0xFF) / 255; g = Double((hex >> 8) & 0xFF) / 255; b = Double(hex & 0xFF) / 255
        a = alpha
    }
    public init(gray: Double, alpha: Double = 1) { self.init(r: gray, g: gray, b: gray, a: alpha) }

    public static let black = Color(gray: 0)
    public static let white = Color(gray: 1)
    public static let text = Color(hex: 0x222222)
    public static let axis = Color(hex: 0x333333)
    public static let grid = Color(hex: 0xDDDDDD)
    public static let lightGray = Color(hex: 0xBBBBBB)
    public static let gray = Color(hex: 0x777777)

    public func withAlpha(_ alpha: Double) -> Color { Color(r: r, g: g, b: b, a: alpha) }

    /// Linear mix: t = 0 gives self, t = 1 gives other.
    public func mix(_ other: Color, _ t: Double) -> Color {
        Color(r: r + (other.r - r) * t, g: g + (other.g - g) * t, b: b + (other.b - b) * t, a: a + (other.a - a) * t)
    }

    /// Relative luminance (WCAG 2: sRGB decoded to linear light, Rec. 709 weights).
    public var luminance: Double {
        func lin(_ c: Double) -> Double { c <= 0.04045 ? c / 12.92 : pow((c + 0.055) / 1.055, 2.4) }
        return 0.2126 * lin(r) + 0.7152 * lin(g) + 0.0722 * lin(b)
    }

    /// WCAG contrast ratio between two opaque colours (1 … 21).
    public static func contrast(_ x: Color, _ y: Color) -> Double {
        let (l1, l2) = (max(x.luminance, y.luminance), min(x.luminance, y.luminance))
        return (l1 + 0.05) / (l2 + 0.05)
    }

    /// Near-black or white, whichever contrasts more with this background.
    public var contrastingText: Color {
        Color.contrast(self, .text) >= Color.contrast(self, .white) ? .text : .white
    }

    /// "#RRGGBB".
    public var hexString: String {
        func c(_ v: Double) -> Int { Int((min(max(v, 0), 1) * 255).rounded()) }
        return String(format: "#%02X%02X%02X", c(r), c(g), c(b))
    }
}

/// Colour-blind-safe categorical palettes.
public enum Palette: Sendable, Hashable {
    /// Okabe & Ito (2008), "Color Universal Design", reordered so the first colours are the most distinct;
    /// black is left out (it is used for text and reference lines).
    case okabeIto
    /// Paul Tol's "bright" qualitative scheme (grey last).
    case tolBright

    public var colors: [Color] {
        switch self {
        case .okabeIto:
            return [0x0072B2, 0xD55E00, 0x009E73, 0xE69F00, 0x56B4E9, 0xCC79A7, 0xF0E442, 0x000000].map { Color(hex: $0) }
        case .tolBright:
            return [0x4477AA, 0xEE6677, 0x228833, 0xCCBB44, 0x66CCEE, 0xAA3377, 0xBBBBBB].map { Color(hex: $0) }
        }
    }

    /// The i-th colour, cycling.
    public func color(_ i: Int) -> Color { let c = colors; return c[((i % c.count) + c.count) % c.count] }
}

/// Continuous colour maps for heatmaps and colour bars.
public enum ColorMap: Sendable, Hashable {
    /// Perceptually uniform sequential map of van der Walt & Smith (matplotlib's default since 2.0).
    case viridis
    /// Diverging blue – white – red (ColorBrewer RdBu, 11 classes, reversed so negative is blue):
    /// neutral #F7F7F7 at the centre, for signed quantities such as cosines and correlations.
    case blueWhiteRed
    /// Light to dark grey.
    case grays

    /// True when the map is meant for values symmetric around zero.
    public var isDiverging: Bool { self == .blueWhiteRed }

    /// The colour at t in [0, 1] (clamped; NaN gives light grey).
    public func color(at t: Double) -> Color {
        guard t.isFinite else { return Color(hex: 0xCCCCCC) }
        let t = min(max(t, 0), 1)
        switch self {
        case .viridis: return ColorMap.interpolate(ColorMap.viridisAnchors, t)
        case .blueWhiteRed: return ColorMap.interpolate(ColorMap.rdbuAnchors, t)
        case .grays: return Color(gray: 0.96 - 0.86 * t)
        }
    }

    /// Evenly spaced anchors, linearly interpolated in sRGB.
    static func interpolate(_ anchors: [Color], _ t: Double) -> Color {
        let pos = t * Double(anchors.count - 1)
        let i = min(Int(pos), anchors.count - 2)
        return anchors[i].mix(anchors[i + 1], pos - Double(i))
    }

    /// Viridis: every 15th entry (indices 0, 15, …, 255) of the published 256-entry table
    /// (van der Walt & Smith, CC0). Linear interpolation between these 18 anchors stays within
    /// about 0.01 of the full table.
    static let viridisAnchors: [Color] = [
        (0.267004, 0.004874, 0.329415), (0.281924, 0.089666, 0.412415), (0.280255, 0.165693, 0.476498),
        (0.263663, 0.237631, 0.518762), (0.237441, 0.305202, 0.541921), (0.208623, 0.367752, 0.552675),
        (0.182256, 0.426184, 0.557120), (0.159194, 0.482237, 0.558073), (0.137770, 0.537492, 0.554906),
        (0.121148, 0.592739, 0.544641), (0.128087, 0.647749, 0.523491), (0.180653, 0.701402, 0.488189),
        (0.274149, 0.751988, 0.436601), (0.395174, 0.797475, 0.367757), (0.535621, 0.835785, 0.281908),
        (0.688944, 0.865448, 0.182725), (0.845561, 0.887322, 0.099702), (0.993248, 0.906157, 0.143936),
    ].map { Color(r: $0.0, g: $0.1, b: $0.2) }

    /// ColorBrewer RdBu (11 classes) from blue (#053061) through #F7F7F7 to red (#67001F).
    static let rdbuAnchors: [Color] = [
        0x053061, 0x2166AC, 0x4393C3, 0x92C5DE, 0xD1E5F0, 0xF7F7F7, 0xFDDBC7, 0xF4A582, 0xD6604D, 0xB2182B, 0x67001F,
    ].map { Color(hex: $0) }
}

/// How a heatmap maps values to [0, 1] of its colour map.
public struct ColorNorm: Sendable, Hashable {
    public var low: Double
    public var high: Double
    public init(low: Double, high: Double) { self.low = low; self.high = high }
    /// Limits symmetric around zero: [-m, m] with m = max |v| (so 0 is the neutral centre).
    public static func symmetric(_ values: [Double]) -> ColorNorm {
        let m = values.filter(\.isFinite).map(abs).max() ?? 1
        return ColorNorm(low: -(m > 0 ? m : 1), high: m > 0 ? m : 1)
    }
    public static func range(_ values: [Double]) -> ColorNorm {
        let f = values.filter(\.isFinite)
        guard let lo = f.min(), let hi = f.max() else { return ColorNorm(low: 0, high: 1) }
        return lo == hi ? ColorNorm(low: lo - 0.5, high: hi + 0.5) : ColorNorm(low: lo, high: hi)
    }
    public func t(_ v: Double) -> Double { high == low ? 0.5 : (v - low) / (high - low) }
}
