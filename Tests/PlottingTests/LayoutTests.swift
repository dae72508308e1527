import Foundation
import Testing
@testable import Plotting

@Suite("Layout: legends, tick labels, statistics")
struct LayoutTests {
    func renderer(_ ax: Axes, width: Double = 400, height: Double = 300) throws -> (AxesRenderer, Rect) {
        let s = try Surface.image(width: width, height: height, scale: 1)
        let r = AxesRenderer(axes: ax, style: Style(), canvas: try Canvas(surface: s))
        return (r, Rect(x: 0, y: 0, width: width, height: height))
    }

    @Test("Legend goes to an empty corner when there is one, and covers no data")
    func legendCorner() throws {
        var ax = Axes()
        // Data only in the lower-left quadrant.
        ax.scatter(x: (0..<50).map { Double($0 % 10) }, y: (0..<50).map { Double($0 / 10) }, label: "a")
        ax.scatter(x: [20], y: [20], label: "b")   // a lone point top-right
        var (r, cell) = try renderer(ax)
        r.prepare()
        r.layout(cell: cell, legend: .none)
        let corner = try #require(r.legendCorner())
        #expect(corner != .topRight)   // the lone point is there
        let size = r.legendSize(horizontal: false, maxWidth: .infinity)
        let box = r.legendBox(corner, size: (size.w, size.h))
        #expect(!r.occupied().contains { $0.intersects(box) })
    }

    @Test("Legend moves outside when every corner holds data")
    func legendOutside() throws {
        var ax = Axes()
        var xs: [Double] = [], ys: [Double] = []
        for i in 0..<40 { for j in 0..<40 { xs.append(Double(i)); ys.append(Double(j)) } }
        ax.scatter(x: xs, y: ys, label: "dense")
        var (r, cell) = try renderer(ax)
        r.prepare()
        r.layout(cell: cell, legend: .none)
        #expect(r.legendCorner() == nil)
        let before = r.plot.width
        r.layout(cell: cell, legend: .outsideRight)
        #expect(r.plot.width < before)   // room made on the right
    }

    @Test("Numeric x tick labels never overlap, even in a narrow plot", arguments: [120.0, 200, 400])
    func xTicksNoOverlap(width: Double) throws {
        var ax = Axes()
        ax.line(x: [0, 123456.7], y: [0, 1])
        var (r, cell) = try renderer(ax, width: width, height: 200)
        r.prepare()
        r.layout(cell: cell, legend: .none)
        #expect(r.x.ticks.count >= 2)
        #expect(!r.xLabelsOverlap(r.x.ticks))
    }

    @Test("Long categorical labels are rotated, numeric ones thinned")
    func categoricalLabels() throws {
        var ax = Axes()
        ax.bars(categories: (0..<8).map { "a rather long system name \($0)" }, groups: [BarGroup("", Array(repeating: 1, count: 8))])
        var (r, cell) = try renderer(ax)
        r.prepare(); r.layout(cell: cell, legend: .none)
        #expect(r.xLabelAngle != 0)
        var hm = Axes()
        let n = 60
        hm.heatmap(Array(repeating: Array(repeating: 0.5, count: n), count: n), rowLabels: (0..<n).map(String.init),
                   columnLabels: (0..<n).map(String.init))
        var (h, hcell) = try renderer(hm, width: 300, height: 300)
        h.prepare(); h.layout(cell: hcell, legend: .none)
        #expect(h.xLabelAngle == 0)
        #expect(h.x.labelEvery > 1 && h.y.labelEvery > 1)
        // Shown labels are spaced wider than the widest label.
        let spacing = h.plot.width / Double(n) * Double(h.x.labelEvery)
        #expect(spacing > h.tickLabelWidth(Tick(value: 0, label: "59"), h.tickFont))
    }

    @Test("Diverging heatmap without limits gets symmetric limits")
    func heatmapSymmetric() {
        let h = HeatmapSeries(values: [[-0.2, 0.7], [0.1, 0.3]], rowLabels: ["a", "b"], columnLabels: ["x", "y"], colorMap: .blueWhiteRed)
        #expect(h.resolvedNorm == ColorNorm(low: -0.7, high: 0.7))
        let v = HeatmapSeries(values: [[-0.2, 0.7]], rowLabels: ["a"], columnLabels: ["x", "y"], colorMap: .viridis)
        #expect(v.resolvedNorm == ColorNorm(low: -0.2, high: 0.7))
    }

    @Test("Log axis auto limits include all positive data; ticks are decades")
    func logAxis() throws {
        var ax = Axes()
        ax.yScale = .log
        ax.line(x: [0, 1, 2], y: [1e-3, 0.5, 10])
        var (r, cell) = try renderer(ax)
        r.prepare(); r.layout(cell: cell, legend: .none)
        #expect(r.y.lo < 1e-3 && r.y.hi > 10)
        #expect(r.y.ticks.map(\.value) == [1e-3, 1e-2, 1e-1, 1, 10])
    }

    @Test("Quantiles follow linear interpolation at (n − 1)·q")
    func quantiles() {
        // Sorted [1, 2, 3, 4]: q = 0.25 → position 0.75 → 1.75; median → 2.5.
        #expect(Stats.quantile([1, 2, 3, 4], 0.25) == 1.75)
        #expect(Stats.quantile([1, 2, 3, 4], 0.5) == 2.5)
        #expect(Stats.quantile([7], 0.9) == 7)
    }

    @Test("Box whiskers stop at the last point within 1.5 IQR; the rest are outliers")
    func box() throws {
        // 1…9 and 100: q1 = 3.25, q3 = 7.75, IQR = 4.5, upper fence 14.5.
        let b = try #require(Stats.box([1, 2, 3, 4, 5, 6, 7, 8, 9, 100]))
        #expect(b.q1 == 3.25 && b.q3 == 7.75 && b.median == 5.5)
        #expect(b.highWhisker == 9 && b.lowWhisker == 1 && b.outliers == [100])
    }

    @Test("Gaussian KDE integrates to 1")
    func kde() {
        let grid = stride(from: -10.0, through: 10.0, by: 0.01).map { $0 }
        let d = Stats.kde([-1, 0, 0.5, 2], grid: grid)
        let integral = d.reduce(0, +) * 0.01
        #expect(abs(integral - 1) < 1e-3)
    }

    @Test("Histogram counts: equal bins, last bin closed")
    func histogram() {
        let c = Stats.histogram([0, 0.1, 0.5, 0.99, 1.0, 2.0], bins: 2, lo: 0, hi: 1)
        #expect(c == [2, 3])
    }
}
