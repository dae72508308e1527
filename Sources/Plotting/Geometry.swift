/// A point in canvas coordinates (points, y down).
public struct Point: Sendable, Hashable {
    public var x: Double
    public var y: Double
    public init(_ x: Double, _ y: Double) { self.x = x; self.y = y }
}

/// An axis-aligned rectangle in canvas coordinates (points, y down).
public struct Rect: Sendable, Hashable {
    public var x: Double
    public var y: Double
    public var width: Double
    public var height: Double
    public init(x: Double, y: Double, width: Double, height: Double) {
        self.x = x; self.y = y; self.width = width; self.height = height
    }
    public var minX: Double { x }
    public var minY: Double { y }
    public var maxX: Double { x + width }
    public var maxY: Double { y + height }
    public var midX: Double { x + width / 2 }
    public var midY: Double { y + height / 2 }
    /// Shrinks the rectangle by the given margins (clamped so the size never goes negative).
    public func inset(left: Double = 0, top: Double = 0, right: Double = 0, bottom: Double = 0) -> Rect {
        Rect(x: x + left, y: y + top, width: max(0, width - left - right), height: max(0, height - top - bottom))
    }
    public func with(x: Double? = nil, y: Double? = nil, width: Double? = nil, height: Double? = nil) -> Rect {
        Rect(x: x ?? self.x, y: y ?? self.y, width: width ?? self.width, height: height ?? self.height)
    }
    public func contains(_ p: Point) -> Bool { p.x >= minX && p.x <= maxX && p.y >= minY && p.y <= maxY }
    public func intersects(_ o: Rect) -> Bool {
        minX < o.maxX && o.minX < maxX && minY < o.maxY && o.minY < maxY
    }
}

/// Page sizes in points (1/72 inch).
public struct PageSize: Sendable, Hashable {
    public var width: Double
    public var height: Double
    public init(width: Double, height: Double) { self.width = width; self.height = height }
    /// ISO A4, 210 mm × 297 mm.
    public static let a4 = PageSize(width: 595.2756, height: 841.8898)
    /// US letter, 8.5 in × 11 in.
    public static let letter = PageSize(width: 612, height: 792)
    public var landscape: PageSize { PageSize(width: max(width, height), height: min(width, height)) }
}
