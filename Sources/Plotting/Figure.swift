import Foundation

// MARK: - Figure model (plain values; drawing lives in Renderer.swift)

public enum AxisScale: Sendable, Hashable { case linear, log }

public enum AxisLimits: Sendable, Hashable {
    /// From the data, padded by 4 % (bars, histograms and heatmaps start exactly at their edges).
    case auto
    case fixed(Double, Double)
}

/// Where the legend goes. `.auto` takes the emptiest corner inside the plot area when the legend
/// covers no data there, otherwise places it outside on the right. It never covers data.
public enum LegendPlacement: Sendable, Hashable {
    case auto, outsideRight, below, none
    case topLeft, topRight, bottomLeft, bottomRight
}

public enum Grid: Sendable, Hashable {
    /// Horizontal lines for bars, box and violin plots; both directions for lines and scatter; none for heatmaps.
    case auto
    case none, x, y, both
}

public enum Marker: Sendable, Hashable { case none, circle, square, triangle, diamond }

/// Common dash patterns (points).
public enum Dash {
    public static let solid: [Double] = []
    public static let dashed: [Double] = [5, 3]
    public static let dotted: [Double] = [1.2, 2.4]
    public static let dashDot: [Double] = [6, 2.5, 1.2, 2.5]
}

/// A line, optionally with markers and a shaded band (e.g. ± one standard deviation).
public struct LineSeries: Sendable {
    public var x: [Double]
    public var y: [Double]
    public var label: String?
    public var color: Color?
    public var width: Double = 1.6
    public var dash: [Double] = []
    public var marker: Marker = .none
    public var markerSize: Double = 4
    /// Lower and upper edges of a shaded band, one value per point.
    public var band: (lower: [Double], upper: [Double])?
    public var bandAlpha: Double = 0.2
    public init(x: [Double], y: [Double], label: String? = nil, color: Color? = nil, width: Double = 1.6,
                dash: [Double] = [], marker: Marker = .none, band: (lower: [Double], upper: [Double])? = nil) {
        self.x = x; self.y = y; self.label = label; self.color = color; self.width = width; self.dash = dash
        self.marker = marker; self.band = band
    }
}

/// Points; several series give one colour per group.
public struct ScatterSeries: Sendable {
    public var x: [Double]
    public var y: [Double]
    public var label: String?
    public var color: Color?
    public var alpha: Double = 0.65
    public var size: Double = 3.5
    public var marker: Marker = .circle
    public init(x: [Double], y: [Double], label: String? = nil, color: Color? = nil, alpha: Double = 0.65,
                size: Double = 3.5, marker: Marker = .circle) {
        self.x = x; self.y = y; self.label = label; self.color = color; self.alpha = alpha; self.size = size; self.marker = marker
    }
}

/// One named set of bar heights, one per category.
public struct BarGroup: Sendable {
    public var name: String
    public var values: [Double]
    public var errors: [Double]?
    public var color: Color?
    public init(_ name: String, _ values: [Double], errors: [Double]? = nil, color: Color? = nil) {
        self.name = name; self.values = values; self.errors = errors; self.color = color
    }
}

public enum BarLayout: Sendable, Hashable { case grouped, stacked }

/// Bars over categories: one group gives simple bars, several are grouped side by side or stacked.
public struct BarSeries: Sendable {
    public var categories: [String]
    public var groups: [BarGroup]
    public var layout: BarLayout = .grouped
    public var horizontal = false
    /// Print each value at the end of its bar.
    public var valueLabels = false
    /// Decimals of the value labels.
    public var valueDecimals = 2
    /// Fraction of a category slot covered by its bars.
    public var slotFraction = 0.8
    public init(categories: [String], groups: [BarGroup], layout: BarLayout = .grouped, horizontal: Bool = false,
                valueLabels: Bool = false) {
        self.categories = categories; self.groups = groups; self.layout = layout; self.horizontal = horizontal
        self.valueLabels = valueLabels
    }
}

/// A matrix of values drawn as coloured cells (row 0 at the top), with a colour bar.
public struct HeatmapSeries: Sendable {
    /// [rows][columns]
    public var values: [[Double]]
    public var rowLabels: [String]
    public var columnLabels: [String]
    public var colorMap: ColorMap = .viridis
    /// nil: symmetric around 0 for a diverging map, data range otherwise.
    public var norm: ColorNorm?
    public var colorBarLabel: String?
    public var showColorBar = true
    /// Print each value in its cell, in black or white for contrast.
    public var cellLabels = false
    /// Decimals of the cell labels.
    public var cellDecimals = 2
    public init(values: [[Double]], rowLabels: [String], columnLabels: [String], colorMap: ColorMap = .viridis,
                norm: ColorNorm? = nil, colorBarLabel: String? = nil, cellLabels: Bool = false) {
        self.values = values; self.rowLabels = rowLabels; self.columnLabels = columnLabels; self.colorMap = colorMap
        self.norm = norm; self.colorBarLabel = colorBarLabel; self.cellLabels = cellLabels
    }
    public var resolvedNorm: ColorNorm {
        if let norm { return norm }
        let flat = values.flatMap { $0 }
        return colorMap.isDiverging ? ColorNorm.symmetric(flat) : ColorNorm.range(flat)
    }
}

public struct HistogramSeries: Sendable {
    public var values: [Double]
    public var bins: Int = 20
    /// Histogram range; nil shares the range of all histograms on the same axes.
    public var range: (Double, Double)?
    public var label: String?
    public var color: Color?
    public var alpha: Double = 0.55
    /// Normalise so the bars integrate to 1.
    public var density = false
    public init(values: [Double], bins: Int = 20, range: (Double, Double)? = nil, label: String? = nil,
                color: Color? = nil, alpha: Double = 0.55, density: Bool = false) {
        self.values = values; self.bins = bins; self.range = range; self.label = label; self.color = color
        self.alpha = alpha; self.density = density
    }
}

/// A sample of values for box and violin plots.
public struct Distribution: Sendable {
    public var label: String
    public var values: [Double]
    public var color: Color?
    public init(_ label: String, _ values: [Double], color: Color? = nil) { self.label = label; self.values = values; self.color = color }
}

/// Box plots: median, quartiles, whiskers at the furthest point within 1.5 IQR, outliers as points.
public struct BoxSeries: Sendable {
    public var groups: [Distribution]
    public var width = 0.55
    public init(groups: [Distribution]) { self.groups = groups }
}

/// Violin plots: Gaussian kernel density (Scott's bandwidth) mirrored, cut at the data range, with the
/// median and quartiles marked.
public struct ViolinSeries: Sendable {
    public var groups: [Distribution]
    public var width = 0.8
    public var bandwidth: Double?
    public init(groups: [Distribution], bandwidth: Double? = nil) { self.groups = groups; self.bandwidth = bandwidth }
}

public enum Series: Sendable {
    case line(LineSeries)
    case scatter(ScatterSeries)
    case bars(BarSeries)
    case heatmap(HeatmapSeries)
    case histogram(HistogramSeries)
    case box(BoxSeries)
    case violin(ViolinSeries)
}

/// Text and reference lines in data coordinates. Labelled reference lines appear in the legend.
public enum Annotation: Sendable {
    case text(String, x: Double, y: Double, align: HAlign = .left, color: Color = .text)
    case horizontalLine(y: Double, label: String? = nil, color: Color = .gray, dash: [Double] = Dash.dashed)
    case verticalLine(x: Double, label: String? = nil, color: Color = .gray, dash: [Double] = Dash.dashed)
}

/// One plot area with its axes, series, legend and annotations.
public struct Axes: Sendable {
    public var title: String?
    public var xLabel: String?
    public var yLabel: String?
    public var xScale: AxisScale = .linear
    public var yScale: AxisScale = .linear
    public var xLimits: AxisLimits = .auto
    public var yLimits: AxisLimits = .auto
    public var grid: Grid = .auto
    public var legend: LegendPlacement = .auto
    public var legendTitle: String?
    public var palette: Palette = .okabeIto
    public var series: [Series] = []
    public var annotations: [Annotation] = []
    /// One data unit has the same length on both axes (square heatmap cells, undistorted PCA scatter).
    public var equalAspect = false
    /// Ask for integer ticks only (e.g. layer indices).
    public var xIntegerTicks = false
    public var yIntegerTicks = false

    public init(title: String? = nil, xLabel: String? = nil, yLabel: String? = nil) {
        self.title = title; self.xLabel = xLabel; self.yLabel = yLabel
    }

    public mutating func add(_ s: Series) { series.append(s) }

    public mutating func line(x: [Double], y: [Double], label: String? = nil, color: Color? = nil, dash: [Double] = [],
                              marker: Marker = .none, band: (lower: [Double], upper: [Double])? = nil) {
        series.append(.line(LineSeries(x: x, y: y, label: label, color: color, dash: dash, marker: marker, band: band)))
    }
    public mutating func scatter(x: [Double], y: [Double], label: String? = nil, color: Color? = nil, alpha: Double = 0.65,
                                 size: Double = 3.5, marker: Marker = .circle) {
        series.append(.scatter(ScatterSeries(x: x, y: y, label: label, color: color, alpha: alpha, size: size, marker: marker)))
    }
    /// One scatter series per distinct group name, in order of first appearance (one colour each).
    public mutating func scatter(x: [Double], y: [Double], groups: [String], alpha: Double = 0.65, size: Double = 3.5) {
        var order: [String] = []
        var idx: [String: [Int]] = [:]
        for (i, g) in groups.enumerated() where i < min(x.count, y.count) {
            if idx[g] == nil { order.append(g) }
            idx[g, default: []].append(i)
        }
        for g in order {
            let ii = idx[g]!
            scatter(x: ii.map { x[$0] }, y: ii.map { y[$0] }, label: g, alpha: alpha, size: size)
        }
    }
    public mutating func bars(categories: [String], groups: [BarGroup], layout: BarLayout = .grouped,
                              horizontal: Bool = false, valueLabels: Bool = false) {
        series.append(.bars(BarSeries(categories: categories, groups: groups, layout: layout, horizontal: horizontal,
                                      valueLabels: valueLabels)))
    }
    public mutating func heatmap(_ values: [[Double]], rowLabels: [String], columnLabels: [String], colorMap: ColorMap = .viridis,
                                 norm: ColorNorm? = nil, colorBarLabel: String? = nil, cellLabels: Bool = false) {
        series.append(.heatmap(HeatmapSeries(values: values, rowLabels: rowLabels, columnLabels: columnLabels,
                                             colorMap: colorMap, norm: norm, colorBarLabel: colorBarLabel, cellLabels: cellLabels)))
    }
    public mutating func histogram(_ values: [Double], bins: Int = 20, label: String? = nil, color: Color? = nil,
                                   density: Bool = false) {
        series.append(.histogram(HistogramSeries(values: values, bins: bins, label: label, color: color, density: density)))
    }
    public mutating func boxPlot(_ groups: [Distribution]) { series.append(.box(BoxSeries(groups: groups))) }
    public mutating func violin(_ groups: [Distribution]) { series.append(.violin(ViolinSeries(groups: groups))) }
    public mutating func text(_ s: String, x: Double, y: Double, align: HAlign = .left) {
        annotations.append(.text(s, x: x, y: y, align: align))
    }
    public mutating func horizontalLine(y: Double, label: String? = nil, color: Color = .gray, dash: [Double] = Dash.dashed) {
        annotations.append(.horizontalLine(y: y, label: label, color: color, dash: dash))
    }
    public mutating func verticalLine(x: Double, label: String? = nil, color: Color = .gray, dash: [Double] = Dash.dashed) {
        annotations.append(.verticalLine(x: x, label: label, color: color, dash: dash))
    }
}

/// Text sizes (points) and line widths shared by a figure.
public struct Style: Sendable {
    public var font = Font(size: 9)
    public var tickFontSize = 8.0
    public var labelFontSize = 9.0
    public var titleFontSize = 10.0
    public var figureTitleFontSize = 11.5
    public var legendFontSize = 8.0
    public var cellFontSize = 7.0
    public var axisLineWidth = 0.8
    public var gridLineWidth = 0.5
    public var tickLength = 3.5
    public var background: Color? = .white
    public init() {}
}

/// A figure: a grid of `Axes` (subplots) with an optional overall title. Size in points (72 per inch).
public struct Figure: Sendable {
    public var width: Double
    public var height: Double
    public var title: String?
    public var rows: Int
    public var columns: Int
    /// Row-major, `rows × columns` entries.
    public var axes: [Axes]
    public var style = Style()
    /// Gap between subplots, in points.
    public var spacing = 14.0
    /// Draw "(a)", "(b)", … at the top left of each subplot.
    public var panelLabels = false

    public init(width: Double = 432, height: Double = 288, title: String? = nil, rows: Int = 1, columns: Int = 1) {
        self.width = width; self.height = height; self.title = title
        self.rows = max(rows, 1); self.columns = max(columns, 1)
        axes = Array(repeating: Axes(), count: self.rows * self.columns)
    }

    /// A one-panel figure.
    public init(width: Double = 432, height: Double = 288, title: String? = nil, axes: Axes) {
        self.init(width: width, height: height, title: title)
        self.axes = [axes]
    }

    public subscript(row: Int, column: Int) -> Axes {
        get { axes[row * columns + column] }
        set { axes[row * columns + column] = newValue }
    }
}
