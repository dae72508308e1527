import Foundation

// MARK: - Public entry points

extension Figure {
    /// Draws the figure into `rect` of any canvas (a PNG, SVG or PDF page).
    public func draw(on canvas: Canvas, in rect: Rect) {
        canvas.withState {
            canvas.clip(to: rect)
            if let bg = style.background { canvas.fillRect(rect, color: bg) }
            var area = rect.inset(left: 4, top: 4, right: 4, bottom: 4)
            if let title, !title.isEmpty {
                let f = style.font.with(size: style.figureTitleFontSize).bolded()
                let h = canvas.paragraph(title, at: Point(area.x, area.y + 2), width: area.width, font: f, align: .center)
                area = area.inset(top: h + 6)
            }
            let cw = (area.width - spacing * Double(columns - 1)) / Double(columns)
            let ch = (area.height - spacing * Double(rows - 1)) / Double(rows)
            let inset = panelLabels ? canvas.measure("(m)", font: style.font.with(size: style.titleFontSize).bolded()).width + 4 : 0
            func cellRect(_ r: Int, _ c: Int) -> Rect {
                Rect(x: area.x + Double(c) * (cw + spacing), y: area.y + Double(r) * (ch + spacing), width: cw, height: ch)
            }
            // Align plot areas: equal top/bottom margins along a row, equal left/right along a column.
            // A cell is aligned only when that keeps at least 75 % of its own plot width / height.
            var rowTop = [Double](repeating: 0, count: rows), rowBottom = rowTop
            var colLeft = [Double](repeating: 0, count: columns), colRight = colLeft
            var own: [AxesRenderer.Margins] = []
            if rows * columns > 1 {
                for r in 0..<rows {
                    for c in 0..<columns where r * columns + c < axes.count {
                        let m = AxesRenderer.margins(axes: axes[r * columns + c], style: style, canvas: canvas, cell: cellRect(r, c), titleInset: inset)
                        own.append(m)
                        rowTop[r] = max(rowTop[r], m.top); rowBottom[r] = max(rowBottom[r], m.bottom)
                        colLeft[c] = max(colLeft[c], m.left); colRight[c] = max(colRight[c], m.right)
                    }
                }
            }
            func minimum(_ r: Int, _ c: Int) -> AxesRenderer.Margins {
                let i = r * columns + c
                guard i < own.count else { return AxesRenderer.Margins() }
                var m = own[i]
                let ownW = cw - m.left - m.right, ownH = ch - m.top - m.bottom
                if cw - colLeft[c] - colRight[c] >= 0.75 * ownW { m.left = colLeft[c]; m.right = colRight[c] }
                if ch - rowTop[r] - rowBottom[r] >= 0.75 * ownH { m.top = rowTop[r]; m.bottom = rowBottom[r] }
                return m
            }
            for r in 0..<rows {
                for c in 0..<columns where r * columns + c < axes.count {
                    let cell = cellRect(r, c)
                    var renderer = AxesRenderer(axes: axes[r * columns + c], style: style, canvas: canvas)
                    renderer.titleInset = inset
                    renderer.minimum = minimum(r, c)
                    renderer.draw(in: cell)
                    if panelLabels {
                        let label = "(" + String(UnicodeScalar(UInt8(97 + (r * columns + c) % 26))) + ")"
                        canvas.text(label, at: Point(cell.x, cell.y), font: style.font.with(size: style.titleFontSize).bolded(),
                                    valign: .top)
                    }
                }
            }
        }
    }

    /// Checks the data for mistakes a renderer would otherwise silently drop (mismatched lengths, bar
    /// groups not matching their categories, ragged heatmaps). `file` is named in the error.
    public func validate(file: String) throws {
        guard width >= 1, height >= 1, width.isFinite, height.isFinite else {
            throw PlotError(file: file, "figure size \(width)×\(height) pt is not drawable; give a positive size")
        }
        for (ai, ax) in axes.enumerated() {
            let at = "axes \(ai)" + (ax.title.map { " (\"\($0)\")" } ?? "")
            for (si, s) in ax.series.enumerated() {
                let where_ = "\(at), series \(si)"
                switch s {
                case .line(let l):
                    if l.x.count != l.y.count { throw PlotError(file: file, "\(where_): line has \(l.x.count) x but \(l.y.count) y values; pass equal lengths") }
                    if let b = l.band, b.lower.count != l.x.count || b.upper.count != l.x.count {
                        throw PlotError(file: file, "\(where_): band needs \(l.x.count) lower and upper values; got \(b.lower.count) and \(b.upper.count)")
                    }
                case .scatter(let p):
                    if p.x.count != p.y.count { throw PlotError(file: file, "\(where_): scatter has \(p.x.count) x but \(p.y.count) y values; pass equal lengths") }
                case .bars(let b):
                    for g in b.groups where g.values.count != b.categories.count {
                        throw PlotError(file: file, "\(where_): bar group \"\(g.name)\" has \(g.values.count) values for \(b.categories.count) categories")
                    }
                case .heatmap(let h):
                    if h.values.count != h.rowLabels.count || h.values.contains(where: { $0.count != h.columnLabels.count }) {
                        throw PlotError(file: file, "\(where_): heatmap must be \(h.rowLabels.count) rows × \(h.columnLabels.count) columns like its labels")
                    }
                default: break
                }
            }
        }
    }

    /// Renders to an in-memory image of `width·scale × height·scale` pixels.
    public func renderImage(scale: Double = 2) throws -> Surface {
        let surface = try Surface.image(width: width, height: height, scale: scale)
        let canvas = try Canvas(surface: surface)
        draw(on: canvas, in: Rect(x: 0, y: 0, width: width, height: height))
        try canvas.check()
        return surface
    }

    /// Writes the figure; the format follows the extension: .png (at `scale` pixels per point), .svg or .pdf.
    public func write(to path: String, scale: Double = 2) throws {
        try validate(file: path)
        let ext = (path as NSString).pathExtension.lowercased()
        switch ext {
        case "png":
            try renderImage(scale: scale).writePNG(to: path)
        case "svg", "pdf":
            let surface = ext == "svg" ? try Surface.svg(path: path, width: width, height: height)
                                       : try Surface.pdf(path: path, width: width, height: height, title: title)
            let canvas = try Canvas(surface: surface)
            draw(on: canvas, in: Rect(x: 0, y: 0, width: width, height: height))
            try canvas.check()
            try surface.finish()
        default:
            throw PlotError(file: path, "unknown figure format \".\(ext)\"; use .png, .svg or .pdf")
        }
    }
}

// MARK: - Axis model

/// One axis after limits and ticks are resolved: maps data values to a fraction of the axis length.
struct AxisModel {
    var scale: AxisScale = .linear
    var lo = 0.0
    var hi = 1.0
    var categories: [String]? = nil
    /// Categories run top to bottom (heatmap rows).
    var reversed = false
    var integer = false
    var ticks: [Tick] = []
    var minor: [Double] = []
    /// Show only every n-th categorical label.
    var labelEvery = 1

    func frac(_ v: Double) -> Double {
        var f: Double
        if scale == .log {
            guard v > 0 else { return .nan }
            f = (log10(v) - log10(lo)) / (log10(hi) - log10(lo))
        } else {
            f = (v - lo) / (hi - lo)
        }
        return reversed ? 1 - f : f
    }

    mutating func makeTicks(maxTicks: Int) {
        if let cats = categories {
            ticks = cats.enumerated().map { Tick(value: Double($0.offset), label: $0.element) }
            minor = []
            return
        }
        if scale == .log {
            (ticks, minor) = Ticks.log(lo, hi, maxTicks: maxTicks)
            if ticks.count < 2 {   // less than a decade: label nice linear values instead
                ticks = Ticks.linear(lo, hi, maxTicks: maxTicks).filter { $0.value > 0 }
                minor = []
            }
            return
        }
        ticks = Ticks.linear(lo, hi, maxTicks: maxTicks)
        if integer {
            let ints = ticks.filter { $0.value == $0.value.rounded() }
            ticks = ints.map { Tick(value: $0.value, label: Ticks.format($0.value, decimals: 0)) }
        }
        minor = []
    }
}

/// Data extent gathered from the series of one axis direction.
struct Extent {
    var lo = Double.infinity
    var hi = -Double.infinity
    var categories: [String]? = nil
    var reversed = false
    /// Bars and histograms: the baseline 0 is an exact edge (no padding below it).
    var sticky = false
    /// Heatmap / categorical: no padding at all.
    var tight = false
    /// Extra room beyond the largest value, as a fraction of the range (bar value labels).
    var headroom = 0.0
    mutating func add(_ v: Double, positiveOnly: Bool = false) {
        guard v.isFinite, !positiveOnly || v > 0 else { return }
        lo = min(lo, v); hi = max(hi, v)
    }
    mutating func add(_ vs: [Double], positiveOnly: Bool = false) { for v in vs { add(v, positiveOnly: positiveOnly) } }
}

// MARK: - Legend

struct LegendEntry {
    enum Swatch { case line(Color, [Double], Marker, Double), marker(Color, Marker), patch(Color) }
    var label: String
    var swatch: Swatch
}

// MARK: - Axes renderer

struct AxesRenderer {
    let axes: Axes
    let style: Style
    let canvas: Canvas

    var x = AxisModel()
    var y = AxisModel()
    var plot = Rect(x: 0, y: 0, width: 1, height: 1)
    var xLabelAngle = 0.0        // radians, 0 or −π/4 or −π/2
    var histograms: [(edges: [Double], counts: [Double])] = []
    var legendEntries: [LegendEntry] = []
    var heatmap: HeatmapSeries? = nil
    var colorIndex: [Int] = []   // first palette index of each series

    init(axes: Axes, style: Style, canvas: Canvas) {
        self.axes = axes; self.style = style; self.canvas = canvas
    }

    var tickFont: Font { style.font.with(size: style.tickFontSize) }
    /// Tick label sizes per axis: categorical labels shrink (down to 5 pt) before they are thinned.
    var xTickSize: Double? = nil
    var yTickSize: Double? = nil
    var xFont: Font { tickFont.with(size: xTickSize ?? style.tickFontSize) }
    var yFont: Font { tickFont.with(size: yTickSize ?? style.tickFontSize) }
    /// Space kept free at the left and right of the title line (for panel labels).
    var titleInset = 0.0
    /// Minimum margins (aligning plot areas of subplots in the same row / column).
    var minimum = Margins()
    /// Margins of the last layout.
    var used = Margins()
    var labelFont: Font { style.font.with(size: style.labelFontSize) }
    var titleFont: Font { style.font.with(size: style.titleFontSize).bolded() }
    var legendFont: Font { style.font.with(size: style.legendFontSize) }

    func color(_ explicit: Color?, _ i: Int) -> Color { explicit ?? axes.palette.color(i) }

    // MARK: preparation

    mutating func prepare() {
        var ci = 0
        var ex = Extent(), ey = Extent()
        let xLog = axes.xScale == .log, yLog = axes.yScale == .log
        // Shared histogram range for histograms without an explicit range.
        var hLo = Double.infinity, hHi = -Double.infinity
        for case .histogram(let h) in axes.series where h.range == nil {
            for v in h.values where v.isFinite { hLo = min(hLo, v); hHi = max(hHi, v) }
        }
        for s in axes.series {
            colorIndex.append(ci)
            switch s {
            case .line(let l):
                ex.add(l.x, positiveOnly: xLog); ey.add(l.y, positiveOnly: yLog)
                if let b = l.band { ey.add(b.lower, positiveOnly: yLog); ey.add(b.upper, positiveOnly: yLog) }
                if let label = l.label { legendEntries.append(LegendEntry(label: label, swatch: .line(color(l.color, ci), l.dash, l.marker, l.width))) }
                ci += 1
            case .scatter(let p):
                ex.add(p.x, positiveOnly: xLog); ey.add(p.y, positiveOnly: yLog)
                if let label = p.label { legendEntries.append(LegendEntry(label: label, swatch: .marker(color(p.color, ci), p.marker))) }
                ci += 1
            case .bars(let b):
                var cat = Extent(); cat.categories = b.categories; cat.tight = true
                var val = Extent(); val.sticky = true
                if b.valueLabels { val.headroom = 0.1 }
                val.add(0)
                for (gi, g) in b.groups.enumerated() {
                    if b.groups.count > 1 || !g.name.isEmpty {
                        legendEntries.append(LegendEntry(label: g.name, swatch: .patch(color(g.color, ci + gi))))
                    }
                    if b.layout == .grouped {
                        for (i, v) in g.values.enumerated() {
                            val.add(v)
                            if let e = g.errors, i < e.count { val.add(v + e[i]); val.add(v - e[i]) }
                        }
                    }
                }
                if b.layout == .stacked {
                    for i in b.categories.indices {
                        var pos = 0.0, neg = 0.0
                        for g in b.groups where i < g.values.count && g.values[i].isFinite {
                            if g.values[i] >= 0 { pos += g.values[i] } else { neg += g.values[i] }
                        }
                        val.add(pos); val.add(neg)
                    }
                }
                if b.groups.count == 1 && b.groups[0].name.isEmpty { legendEntries.removeAll { _ in false } }
                if b.horizontal { ey.categories = cat.categories; ey.tight = true; ey.reversed = true; merge(&ex, val) }
                else { ex.categories = cat.categories; ex.tight = true; merge(&ey, val) }
                ci += b.groups.count
            case .heatmap(let h):
                ex.categories = h.columnLabels; ex.tight = true
                ey.categories = h.rowLabels; ey.tight = true; ey.reversed = true
                heatmap = h
            case .histogram(let h):
                let (lo, hi) = h.range ?? (hLo.isFinite ? (hLo, hHi) : (0, 1))
                let n = max(h.bins, 1)
                var counts = Stats.histogram(h.values, bins: n, lo: lo, hi: hi)
                let width = hi > lo ? (hi - lo) / Double(n) : 1
                if h.density {
                    let total = counts.reduce(0, +)
                    if total > 0 { counts = counts.map { $0 / (total * width) } }
                }
                let edges = (0...n).map { lo + Double($0) * width }
                histograms.append((edges, counts))
                ex.add(edges.first!); ex.add(edges.last!)
                ey.add(0); ey.add(counts.max() ?? 1); ey.sticky = true
                if let label = h.label { legendEntries.append(LegendEntry(label: label, swatch: .patch(color(h.color, ci).withAlpha(h.alpha)))) }
                ci += 1
            case .box(let b):
                ex.categories = b.groups.map(\.label); ex.tight = true
                for g in b.groups { ey.add(g.values, positiveOnly: yLog) }
            case .violin(let v):
                ex.categories = v.groups.map(\.label); ex.tight = true
                for g in v.groups { ey.add(g.values, positiveOnly: yLog) }
            }
        }
        for a in axes.annotations {
            switch a {
            case .text(_, let ax, let ay, _, _): if ex.categories == nil { ex.add(ax) }; if ey.categories == nil { ey.add(ay) }
            case .horizontalLine(let v, let label, let c, let dash):
                if ey.categories == nil { ey.add(v, positiveOnly: yLog) }
                if let label { legendEntries.append(LegendEntry(label: label, swatch: .line(c, dash, .none, 1))) }
            case .verticalLine(let v, let label, let c, let dash):
                if ex.categories == nil { ex.add(v, positiveOnly: xLog) }
                if let label { legendEntries.append(LegendEntry(label: label, swatch: .line(c, dash, .none, 1))) }
            }
        }
        x = resolve(ex, scale: axes.xScale, limits: axes.xLimits, integer: axes.xIntegerTicks)
        y = resolve(ey, scale: axes.yScale, limits: axes.yLimits, integer: axes.yIntegerTicks)
    }

    func merge(_ e: inout Extent, _ v: Extent) {
        e.lo = min(e.lo, v.lo); e.hi = max(e.hi, v.hi); e.sticky = e.sticky || v.sticky; e.headroom = max(e.headroom, v.headroom)
    }

    func resolve(_ e: Extent, scale: AxisScale, limits: AxisLimits, integer: Bool) -> AxisModel {
        var m = AxisModel()
        m.scale = e.categories == nil ? scale : .linear
        m.integer = integer
        if let cats = e.categories {
            m.categories = cats; m.reversed = e.reversed
            m.lo = -0.5; m.hi = Double(max(cats.count, 1)) - 0.5
            if case .fixed(let a, let b) = limits { m.lo = a; m.hi = b }
            return m
        }
        if case .fixed(let a, let b) = limits, b > a, m.scale == .linear || a > 0 {
            m.lo = a; m.hi = b
            return m
        }
        var lo = e.lo, hi = e.hi
        if !(lo.isFinite && hi.isFinite) { lo = m.scale == .log ? 1 : 0; hi = m.scale == .log ? 10 : 1 }
        if m.scale == .log {
            if hi <= lo { lo /= 2; hi *= 2 }
            let span = log10(hi) - log10(lo)
            m.lo = pow(10, log10(lo) - 0.04 * span); m.hi = pow(10, log10(hi) + 0.04 * span)
            return m
        }
        if hi <= lo { let d = lo == 0 ? 1 : abs(lo) * 0.1; lo -= d; hi += d }
        let pad = e.tight ? 0 : 0.04 * (hi - lo)
        m.lo = (e.sticky && lo >= 0) ? lo : lo - pad
        m.hi = (e.sticky && hi <= 0) ? hi : hi + pad + e.headroom * (hi - lo)
        return m
    }

    // MARK: layout

    func tickLabelWidth(_ t: Tick, _ f: Font) -> Double {
        var w = canvas.measure(t.label, font: f).width
        if let e = t.exponent { w += canvas.measure(e, font: f.with(size: f.size * 0.72)).width + 0.5 }
        return w
    }

    /// True when horizontal x tick labels would touch each other.
    func xLabelsOverlap(_ ticks: [Tick], every: Int = 1) -> Bool {
        var lastRight = -Double.infinity
        for (i, t) in ticks.enumerated() where i % every == 0 {
            let px = plot.minX + x.frac(t.value) * plot.width
            let w = tickLabelWidth(t, xFont)
            if px - w / 2 < lastRight + 5 { return true }
            lastRight = px + w / 2
        }
        return false
    }

    var legendPlacement: LegendPlacement {
        legendEntries.isEmpty ? .none : axes.legend
    }

    /// Size of the legend box: entries stacked vertically, or flowed in rows of at most `maxWidth` (below).
    func legendSize(horizontal: Bool, maxWidth: Double) -> (w: Double, h: Double, rows: [[Int]]) {
        let lh = canvas.lineHeight(legendFont)
        let swatch = 18.0, gap = 5.0, pad = 5.0, colGap = 12.0
        let widths = legendEntries.map { swatch + gap + canvas.measure($0.label, font: legendFont).width }
        var titleH = 0.0, titleW = 0.0
        if let t = axes.legendTitle { titleH = lh; titleW = canvas.measure(t, font: legendFont.bolded()).width }
        if !horizontal {
            let w = max(widths.max() ?? 0, titleW) + 2 * pad
            return (w, Double(widths.count) * lh + titleH + 2 * pad - 2, widths.indices.map { [$0] })
        }
        var rows: [[Int]] = [[]], rowW = 0.0, maxRow = 0.0
        for (i, w) in widths.enumerated() {
            if !rows[rows.count - 1].isEmpty && rowW + colGap + w > maxWidth - 2 * pad { rows.append([]); rowW = 0 }
            rowW += (rows[rows.count - 1].isEmpty ? 0 : colGap) + w
            rows[rows.count - 1].append(i)
            maxRow = max(maxRow, rowW)
        }
        return (max(maxRow, titleW) + 2 * pad, Double(rows.count) * lh + titleH + 2 * pad - 2, rows)
    }

    struct Margins { var left = 0.0, top = 0.0, right = 0.0, bottom = 0.0 }

    /// Computes the plot rectangle inside `cell` from measured text; `legend` is the resolved placement.
    mutating func layout(cell: Rect, legend: LegendPlacement) {
        let tl = style.tickLength
        let tickH = canvas.measure("0", font: tickFont).height
        let labelH = canvas.lineHeight(labelFont)
        var m = Margins(left: 2, top: 2, right: 6, bottom: 2)
        if let t = axes.title, !t.isEmpty { m.top += canvas.paragraphHeight(t, width: titleWidth(cell), font: titleFont) + 4 }
        else { m.top += tickH / 2 }  // room for the top y tick label
        // y ticks (count from the available height)
        let approxH = max(cell.height - m.top - 3 * labelH, 40)
        y.makeTicks(maxTicks: max(3, min(8, Int(approxH / 32) + 1)))
        yTickSize = nil; xTickSize = nil
        if let cats = y.categories, !cats.allSatisfy({ Double($0) != nil }) {
            // Text labels: shrink to the row height rather than drop any.
            let spacing = approxH / Double(max(cats.count, 1))
            let fit = style.tickFontSize * (spacing - 1) / tickH
            if fit < style.tickFontSize { yTickSize = max(5, fit) }
        }
        let yTickW = y.ticks.map { tickLabelWidth($0, yFont) }.max() ?? 0
        m.left += yTickW + tl + 3
        if let l = axes.yLabel, !l.isEmpty { m.left += labelH + 3 }
        // colour bar
        if let h = heatmap, h.showColorBar {
            let norm = h.resolvedNorm
            let cbTicks = Ticks.linear(norm.low, norm.high, maxTicks: colorBarTickCount(approxH))
            let w = cbTicks.map { tickLabelWidth($0, tickFont) }.max() ?? 0
            m.right += 10 + 10 + tl + 3 + w + ((h.colorBarLabel?.isEmpty == false) ? labelH + 4 : 0)
        }
        if legend == .outsideRight { m.right += legendSize(horizontal: false, maxWidth: .infinity).w + 8 }
        m.left = max(m.left, minimum.left); m.right = max(m.right, minimum.right); m.top = max(m.top, minimum.top)
        // x tick labels: choose count / rotation / thinning for the width now known
        plot = cell.inset(left: m.left, top: m.top, right: m.right, bottom: m.bottom)
        xLabelAngle = 0
        x.labelEvery = 1
        var xTickExtent = tickH
        if let cats = x.categories {
            x.makeTicks(maxTicks: 0)
            let spacing = plot.width / Double(max(cats.count, 1))
            var maxW = x.ticks.map { tickLabelWidth($0, xFont) }.max() ?? 0
            let numeric = cats.allSatisfy { Double($0) != nil }
            if maxW + 4 > spacing {
                if numeric {
                    x.labelEvery = AxesRenderer.thinning(needed: maxW + 6, spacing: spacing)
                } else if tickH * 1.5 <= spacing && maxW < 90 {
                    xLabelAngle = -Double.pi / 4
                } else {
                    xLabelAngle = -Double.pi / 2
                    if tickH + 1 > spacing {
                        // Shrink vertical text labels to the column width, then thin if still too tight.
                        xTickSize = max(5, style.tickFontSize * (spacing - 1) / tickH)
                        maxW = x.ticks.map { tickLabelWidth($0, xFont) }.max() ?? 0
                        let h = canvas.measure("0", font: xFont).height
                        if h + 1 > spacing { x.labelEvery = AxesRenderer.thinning(needed: h + 2, spacing: spacing) }
                    }
                }
            }
            if xLabelAngle != 0 {
                let a = abs(xLabelAngle)
                xTickExtent = maxW * sin(a) + canvas.measure("0", font: xFont).height * cos(a)
                // 45° labels hang left of their tick: make room for the first one.
                if xLabelAngle > -Double.pi / 2.1, let first = x.ticks.first {
                    let hang = tickLabelWidth(first, xFont) * cos(a) - spacing / 2 - m.left
                    if hang > 0 { m.left += hang }
                }
            }
        } else {
            var n = max(3, min(9, Int(plot.width / 50) + 1))
            x.makeTicks(maxTicks: n)
            while n > 2 && xLabelsOverlap(x.ticks) { n -= 1; x.makeTicks(maxTicks: n) }
            if xLabelsOverlap(x.ticks) { x.ticks = [x.ticks.first, x.ticks.last].compactMap { $0 } }
            // Labels at the ends may stick out of the plot: keep them inside the cell.
            if let last = x.ticks.last {
                let over = plot.minX + x.frac(last.value) * plot.width + tickLabelWidth(last, xFont) / 2 - (cell.maxX - 1)
                if over > 0 { m.right += over }
            }
        }
        m.bottom += tl + 3 + xTickExtent
        if let l = axes.xLabel, !l.isEmpty { m.bottom += labelH + 3 }
        if legend == .below {
            m.bottom += legendSize(horizontal: true, maxWidth: cell.width - m.left - m.right).h + 6
        }
        m.bottom = max(m.bottom, minimum.bottom); m.left = max(m.left, minimum.left)
        used = m
        plot = cell.inset(left: m.left, top: m.top, right: m.right, bottom: m.bottom)
        if plot.width < 10 || plot.height < 10 {  // tiny cell: keep something visible
            plot = cell.inset(left: cell.width * 0.15, top: cell.height * 0.1, right: cell.width * 0.05, bottom: cell.height * 0.15)
        }
        if axes.equalAspect && x.scale == .linear && y.scale == .linear && x.hi > x.lo && y.hi > y.lo {
            // One data unit is as long on both axes: shrink the longer side and centre it.
            let sx = plot.width / (x.hi - x.lo), sy = plot.height / (y.hi - y.lo)
            if sx > sy {
                let w = (x.hi - x.lo) * sy
                plot = plot.with(x: plot.x + (plot.width - w) / 2, width: w)
                if x.categories != nil, x.labelEvery > 1 || xLabelAngle == 0 {
                    let spacing = plot.width / Double(max(x.categories!.count, 1))
                    let maxW = x.ticks.map { tickLabelWidth($0, xFont) }.max() ?? 0
                    if maxW + 4 > spacing && xLabelAngle == 0 {
                        x.labelEvery = AxesRenderer.thinning(needed: maxW + 6, spacing: spacing)
                    }
                } else if x.categories == nil {
                    var n = x.ticks.count
                    while n > 2 && xLabelsOverlap(x.ticks) { n -= 1; x.makeTicks(maxTicks: n) }
                }
            } else if sy > sx {
                let h = (y.hi - y.lo) * sx
                plot = plot.with(y: plot.y + (plot.height - h) / 2, height: h)
            }
        }
        // Categorical y labels: thin when rows are shorter than the text.
        if let cats = y.categories {
            y.makeTicks(maxTicks: 0)
            let spacing = plot.height / Double(max(cats.count, 1))
            let numeric = cats.allSatisfy { Double($0) != nil }
            let h = canvas.measure("0", font: yFont).height
            y.labelEvery = h + 1 > spacing ? AxesRenderer.thinning(needed: h + (numeric ? 4 : 1), spacing: spacing) : 1
        } else {
            // Re-pick y ticks for the final height.
            var n = max(3, min(8, Int(plot.height / 32) + 1))
            y.makeTicks(maxTicks: n)
            while n > 2 && y.ticks.count > 1 && plot.height / Double(y.ticks.count - 1) < tickH * 1.6 { n -= 1; y.makeTicks(maxTicks: n) }
        }
    }

    func titleWidth(_ cell: Rect) -> Double { max(cell.width - 2 * titleInset, 20) }

    /// Colour bar ticks: about one per 22 points of bar height, 2 to 6.
    func colorBarTickCount(_ height: Double) -> Int { max(2, min(6, Int(height / 22) + 1)) }

    /// `font`, shrunk (down to 6 pt) so `text` fits in `length`.
    func fitted(_ text: String, _ font: Font, _ length: Double) -> Font {
        let w = canvas.measure(text, font: font).width
        guard w > length, w > 0 else { return font }
        return font.with(size: max(6, font.size * length / w))
    }

    /// Smallest step in 1, 2, 5, 10, 20, … with step × spacing ≥ needed.
    static func thinning(needed: Double, spacing: Double) -> Int {
        guard spacing > 0 else { return 1 }
        var k = 1
        let steps = [1, 2, 5]
        var mag = 1
        while true {
            for s in steps { k = s * mag; if Double(k) * spacing >= needed { return k } }
            mag *= 10
            if mag > 100_000 { return k }
        }
    }

    // MARK: data → canvas

    func px(_ v: Double) -> Double { plot.minX + x.frac(v) * plot.width }
    func py(_ v: Double) -> Double { plot.maxY - y.frac(v) * plot.height }
    func pt(_ a: Double, _ b: Double) -> Point { Point(px(a), py(b)) }

    // MARK: occupancy for the legend

    /// Rectangles (canvas coordinates) that hold data, for choosing a legend corner.
    func occupied() -> [Rect] {
        var r: [Rect] = []
        func dot(_ p: Point, _ rad: Double = 1.5) {
            if p.x.isFinite && p.y.isFinite { r.append(Rect(x: p.x - rad, y: p.y - rad, width: 2 * rad, height: 2 * rad)) }
        }
        func segment(_ a: Point, _ b: Point) {
            guard a.x.isFinite, a.y.isFinite, b.x.isFinite, b.y.isFinite else { return }
            let n = max(1, Int(hypot(b.x - a.x, b.y - a.y) / 3))
            for i in 0...n { let t = Double(i) / Double(n); dot(Point(a.x + (b.x - a.x) * t, a.y + (b.y - a.y) * t)) }
        }
        var hi = 0
        for (si, s) in axes.series.enumerated() {
            switch s {
            case .line(let l):
                let n = min(l.x.count, l.y.count)
                for i in 0..<n { if i > 0 { segment(pt(l.x[i - 1], l.y[i - 1]), pt(l.x[i], l.y[i])) } else { dot(pt(l.x[0], l.y[0])) } }
                if let b = l.band {
                    for i in 0..<min(n, b.lower.count, b.upper.count) { segment(pt(l.x[i], b.lower[i]), pt(l.x[i], b.upper[i])) }
                }
            case .scatter(let p):
                for i in 0..<min(p.x.count, p.y.count) { dot(pt(p.x[i], p.y[i]), p.size) }
            case .bars(let b):
                let rects = barRects(b, colorBase: colorIndex[si])
                for rect in rects {
                    r.append(rect.rect)
                    if let e = rect.error, e.isFinite {
                        if b.horizontal { r.append(rectFrom(pt(rect.value - e, 0), pt(rect.value + e, 0)).inset(top: -3, bottom: -3)) }
                        else { r.append(rectFrom(pt(0, rect.value - e), pt(0, rect.value + e)).with(x: rect.rect.minX, width: rect.rect.width)) }
                    }
                }
                if b.valueLabels { for l in valueLabels(b, rects) { r.append(l.box) } }
            case .histogram:
                let h = histograms[hi]; hi += 1
                for i in h.counts.indices where h.counts[i] > 0 {
                    r.append(rectFrom(pt(h.edges[i], 0), pt(h.edges[i + 1], h.counts[i])))
                }
            case .box(let b):
                for (i, g) in b.groups.enumerated() {
                    let v = g.values.filter(\.isFinite)
                    if let lo = v.min(), let hi = v.max() { r.append(rectFrom(pt(Double(i) - b.width / 2, lo), pt(Double(i) + b.width / 2, hi))) }
                }
            case .violin(let v):
                for (i, g) in v.groups.enumerated() {
                    let vals = g.values.filter(\.isFinite)
                    if let lo = vals.min(), let hi = vals.max() { r.append(rectFrom(pt(Double(i) - v.width / 2, lo), pt(Double(i) + v.width / 2, hi))) }
                }
            case .heatmap:
                r.append(plot)
            }
        }
        for a in axes.annotations {
            switch a {
            case .text(let s, let ax, let ay, let align, _):
                let m = canvas.measure(s, font: tickFont)
                let p = pt(ax, ay)
                let x0 = align == .left ? p.x : align == .center ? p.x - m.width / 2 : p.x - m.width
                r.append(Rect(x: x0, y: p.y - m.ascent, width: m.width, height: m.height))
            case .horizontalLine(let v, _, _, _):
                r.append(Rect(x: plot.minX, y: py(v) - 1, width: plot.width, height: 2))
            case .verticalLine(let v, _, _, _):
                r.append(Rect(x: px(v) - 1, y: plot.minY, width: 2, height: plot.height))
            }
        }
        return r
    }

    func rectFrom(_ a: Point, _ b: Point) -> Rect {
        Rect(x: min(a.x, b.x), y: min(a.y, b.y), width: abs(b.x - a.x), height: abs(b.y - a.y))
    }

    /// Inside candidates in preference order, with the number of occupied rectangles each would cover.
    func legendCorner() -> LegendPlacement? {
        let size = legendSize(horizontal: false, maxWidth: .infinity)
        guard size.w < plot.width * 0.6, size.h < plot.height * 0.7 else { return nil }
        let occ = occupied()
        let candidates: [LegendPlacement] = [.topRight, .topLeft, .bottomRight, .bottomLeft]
        var best: (LegendPlacement, Int)? = nil
        for c in candidates {
            let box = legendBox(c, size: (size.w, size.h)).inset(left: -4, top: -4, right: -4, bottom: -4)
            let hits = occ.reduce(0) { $0 + ($1.intersects(box) ? 1 : 0) }
            if hits == 0 { return c }
            if best == nil || hits < best!.1 { best = (c, hits) }
        }
        return nil
    }

    func legendBox(_ p: LegendPlacement, size: (w: Double, h: Double)) -> Rect {
        let inset = 5.0
        switch p {
        case .topLeft: return Rect(x: plot.minX + inset, y: plot.minY + inset, width: size.w, height: size.h)
        case .bottomLeft: return Rect(x: plot.minX + inset, y: plot.maxY - inset - size.h, width: size.w, height: size.h)
        case .bottomRight: return Rect(x: plot.maxX - inset - size.w, y: plot.maxY - inset - size.h, width: size.w, height: size.h)
        default: return Rect(x: plot.maxX - inset - size.w, y: plot.minY + inset, width: size.w, height: size.h)
        }
    }

    // MARK: drawing

    /// Prepares the data, lays out the cell and resolves the legend placement.
    mutating func resolveLayout(cell: Rect) -> LegendPlacement {
        prepare()
        var placement = legendPlacement
        if placement == .auto {
            layout(cell: cell, legend: .none)
            if let corner = legendCorner() { placement = corner } else { placement = .outsideRight; layout(cell: cell, legend: placement) }
        } else {
            layout(cell: cell, legend: placement)
        }
        return placement
    }

    /// Margins this axes needs in `cell` (used to align plot areas across subplots).
    static func margins(axes: Axes, style: Style, canvas: Canvas, cell: Rect, titleInset: Double) -> Margins {
        var r = AxesRenderer(axes: axes, style: style, canvas: canvas)
        r.titleInset = titleInset
        _ = r.resolveLayout(cell: cell)
        return r.used
    }

    mutating func draw(in cell: Rect) {
        let placement = resolveLayout(cell: cell)
        drawGrid()
        canvas.withState {
            canvas.clip(to: plot)
            drawSeries()
            drawAnnotations()
        }
        drawValueLabels()
        drawAxes()
        drawLabels(cell: cell)
        if let h = heatmap, h.showColorBar { drawColorBar(h) }
        drawLegend(placement, cell: cell)
    }

    var gridMode: Grid {
        if axes.grid != .auto { return axes.grid }
        if heatmap != nil { return .none }
        let categorical = axes.series.contains { s in
            switch s { case .bars, .box, .violin, .histogram: return true; default: return false }
        }
        if categorical {
            if case .bars(let b) = axes.series.first(where: { if case .bars = $0 { return true }; return false }), b.horizontal { return .x }
            return .y
        }
        return .both
    }

    func drawGrid() {
        let g = gridMode
        let c = Color.grid
        if g == .y || g == .both, y.categories == nil {
            for t in y.ticks { let v = py(t.value); canvas.line(from: Point(plot.minX, v), to: Point(plot.maxX, v), color: c, width: style.gridLineWidth) }
        }
        if g == .x || g == .both, x.categories == nil {
            for t in x.ticks { let v = px(t.value); canvas.line(from: Point(v, plot.minY), to: Point(v, plot.maxY), color: c, width: style.gridLineWidth) }
        }
    }

    struct BarRect { var rect: Rect; var color: Color; var value: Double; var error: Double? }

    func barRects(_ b: BarSeries, colorBase: Int) -> [BarRect] {
        var out: [BarRect] = []
        let n = b.groups.count
        guard n > 0 else { return out }
        let slot = b.slotFraction
        var pos = [Double](repeating: 0, count: b.categories.count), neg = pos
        for (gi, g) in b.groups.enumerated() {
            let col = color(g.color, colorBase + gi)
            for (i, v) in g.values.enumerated() where i < b.categories.count && v.isFinite {
                let c0: Double, c1: Double, v0: Double, v1: Double
                if b.layout == .grouped {
                    let w = slot / Double(n)
                    c0 = Double(i) - slot / 2 + Double(gi) * w
                    c1 = c0 + w * 0.92
                    v0 = 0; v1 = v
                } else {
                    c0 = Double(i) - slot / 2; c1 = Double(i) + slot / 2
                    if v >= 0 { v0 = pos[i]; v1 = pos[i] + v; pos[i] = v1 } else { v0 = neg[i]; v1 = neg[i] + v; neg[i] = v1 }
                }
                let r = b.horizontal ? rectFrom(pt(v0, c0), pt(v1, c1)) : rectFrom(pt(c0, v0), pt(c1, v1))
                out.append(BarRect(rect: r, color: col, value: v, error: g.errors.flatMap { i < $0.count ? $0[i] : nil }))
            }
        }
        return out
    }

    func drawMarker(_ m: Marker, at p: Point, size: Double, color: Color, edge: Color? = nil) {
        guard p.x.isFinite, p.y.isFinite else { return }
        let r = size / 2
        switch m {
        case .none: return
        case .circle: canvas.addCircle(center: p, radius: r)
        case .square: canvas.addRect(Rect(x: p.x - r, y: p.y - r, width: size, height: size))
        case .triangle: canvas.addPolyline([Point(p.x, p.y - r * 1.2), Point(p.x + r * 1.1, p.y + r * 0.8), Point(p.x - r * 1.1, p.y + r * 0.8)], closed: true)
        case .diamond: canvas.addPolyline([Point(p.x, p.y - r * 1.3), Point(p.x + r, p.y), Point(p.x, p.y + r * 1.3), Point(p.x - r, p.y)], closed: true)
        }
        canvas.setColor(color)
        if let edge { canvas.fill(preserve: true); canvas.setColor(edge); canvas.setLineWidth(0.6); canvas.stroke() } else { canvas.fill() }
    }

    func drawSeries() {
        var hi = 0
        for (si, s) in axes.series.enumerated() {
            let ci = colorIndex[si]
            switch s {
            case .heatmap(let h): drawHeatmap(h)
            case .bars(let b): drawBars(b, colorBase: ci)
            case .histogram(let h):
                let hist = histograms[hi]; hi += 1
                let c = color(h.color, ci)
                for i in hist.counts.indices where hist.counts[i] > 0 {
                    let r = rectFrom(pt(hist.edges[i], 0), pt(hist.edges[i + 1], hist.counts[i]))
                    canvas.fillRect(r, color: c.withAlpha(h.alpha), stroke: c.mix(.white, 0.3).withAlpha(min(1, h.alpha + 0.3)), lineWidth: 0.4)
                }
            case .box(let b): drawBoxes(b)
            case .violin(let v): drawViolins(v)
            case .line(let l): drawLine(l, color: color(l.color, ci))
            case .scatter(let p):
                let c = color(p.color, ci)
                for i in 0..<min(p.x.count, p.y.count) {
                    drawMarker(p.marker, at: pt(p.x[i], p.y[i]), size: p.size * 2, color: c.withAlpha(p.alpha),
                               edge: Color.white.withAlpha(0.6 * p.alpha))
                }
            }
        }
    }

    func drawLine(_ l: LineSeries, color c: Color) {
        let n = min(l.x.count, l.y.count)
        if let b = l.band {
            let m = min(n, b.lower.count, b.upper.count)
            var upper: [Point] = [], lower: [Point] = []
            for i in 0..<m {
                let u = pt(l.x[i], b.upper[i]), lo = pt(l.x[i], b.lower[i])
                if u.x.isFinite && u.y.isFinite && lo.y.isFinite { upper.append(u); lower.append(lo) }
            }
            if !upper.isEmpty {
                canvas.addPolyline(upper + lower.reversed(), closed: true)
                canvas.setColor(c.withAlpha(l.bandAlpha)); canvas.fill()
            }
        }
        // Break the line at non-finite values (and non-positive ones on log axes).
        var run: [Point] = []
        func flush() {
            if run.count > 1 {
                canvas.addPolyline(run); canvas.setColor(c); canvas.setLineWidth(l.width); canvas.setDash(l.dash)
                canvas.setLineCap(round: l.dash.isEmpty); canvas.stroke(); canvas.setDash([])
            }
            run = []
        }
        for i in 0..<n {
            let p = pt(l.x[i], l.y[i])
            if p.x.isFinite && p.y.isFinite { run.append(p) } else { flush() }
        }
        flush()
        if l.marker != .none {
            for i in 0..<n { drawMarker(l.marker, at: pt(l.x[i], l.y[i]), size: l.markerSize * 1.4, color: c, edge: .white) }
        }
    }

    func drawBars(_ b: BarSeries, colorBase: Int) {
        let rects = barRects(b, colorBase: colorBase)
        for r in rects {
            canvas.fillRect(r.rect, color: r.color, stroke: b.layout == .stacked ? .white : nil, lineWidth: 0.6)
        }
        for r in rects {
            if let e = r.error, e.isFinite, e > 0 {
                let dark = Color(hex: 0x333333)
                if b.horizontal {
                    let cy = r.rect.midY, end = r.value >= 0 ? r.rect.maxX : r.rect.minX
                    let d = abs(px(r.value + e) - px(r.value))
                    canvas.line(from: Point(end - d, cy), to: Point(end + d, cy), color: dark, width: 0.9)
                    for xx in [end - d, end + d] { canvas.line(from: Point(xx, cy - 2.5), to: Point(xx, cy + 2.5), color: dark, width: 0.9) }
                } else {
                    let cx = r.rect.midX, end = r.value >= 0 ? r.rect.minY : r.rect.maxY
                    let d = abs(py(r.value + e) - py(r.value))
                    canvas.line(from: Point(cx, end - d), to: Point(cx, end + d), color: dark, width: 0.9)
                    for yy in [end - d, end + d] { canvas.line(from: Point(cx - 2.5, yy), to: Point(cx + 2.5, yy), color: dark, width: 0.9) }
                }
            }
        }
    }

    struct ValueLabel {
        var text: String; var at: Point; var align: HAlign; var valign: VAlign; var rotation: Double; var font: Font; var box: Rect
        var color: Color = .text
    }

    /// Value labels at the ends of bars: shrunk to the bar width when needed (down to 5.5 pt), written
    /// vertically when even that does not fit.
    func valueLabels(_ b: BarSeries, _ rects: [BarRect]) -> [ValueLabel] {
        var out: [ValueLabel] = []
        let base = tickFont.with(size: style.tickFontSize * 0.9)
        let texts = rects.map { Ticks.format($0.value, decimals: b.valueDecimals) }
        let widest = texts.map { canvas.measure($0, font: base).width }.max() ?? 0
        let narrowest = rects.map { b.horizontal ? $0.rect.height : $0.rect.width }.min() ?? 0
        var f = base
        var vertical = false
        if !b.horizontal && widest > narrowest + 2 {
            let size = base.size * (narrowest + 2) / widest
            if size >= 5.5 { f = base.with(size: size) } else { vertical = true }
        }
        for (r, s) in zip(rects, texts) {
            let m = canvas.measure(s, font: f)
            let pos = r.value >= 0
            let errPx: Double = {
                guard let e = r.error, e.isFinite, e > 0 else { return 0 }
                return b.horizontal ? abs(px(r.value + e) - px(r.value)) : abs(py(r.value + e) - py(r.value))
            }()
            // Outside the bar end when there is room inside the plot, otherwise inside the bar end in a
            // colour that contrasts with the bar (skipped when the bar is too short for it).
            let inside = r.color.contrastingText
            if b.horizontal {
                let x0 = (pos ? r.rect.maxX + 2 : r.rect.minX - 2) + (pos ? errPx : -errPx)
                let box = Rect(x: pos ? x0 : x0 - m.width, y: r.rect.midY - m.height / 2, width: m.width, height: m.height)
                if box.maxX <= plot.maxX + 2 && box.minX >= plot.minX - 2 {
                    out.append(ValueLabel(text: s, at: Point(x0, r.rect.midY), align: pos ? .left : .right, valign: .middle, rotation: 0, font: f, box: box))
                } else if m.width + 4 + errPx <= r.rect.width {
                    let xi = pos ? r.rect.maxX - 2 - errPx : r.rect.minX + 2 + errPx
                    out.append(ValueLabel(text: s, at: Point(xi, r.rect.midY), align: pos ? .right : .left, valign: .middle, rotation: 0, font: f,
                                          box: Rect(x: pos ? xi - m.width : xi, y: box.y, width: m.width, height: m.height), color: inside))
                }
            } else if !vertical {
                let y0 = (pos ? r.rect.minY - 1.5 - errPx : r.rect.maxY + 1.5 + errPx)
                let box = Rect(x: r.rect.midX - m.width / 2, y: pos ? y0 - m.height : y0, width: m.width, height: m.height)
                if box.minY >= plot.minY - 3 && box.maxY <= plot.maxY + 3 {
                    out.append(ValueLabel(text: s, at: Point(r.rect.midX, y0), align: .center, valign: pos ? .bottom : .top, rotation: 0, font: f, box: box))
                } else if m.height + 4 + errPx <= r.rect.height {
                    let yi = pos ? r.rect.minY + 2 + errPx : r.rect.maxY - 2 - errPx
                    out.append(ValueLabel(text: s, at: Point(r.rect.midX, yi), align: .center, valign: pos ? .top : .bottom, rotation: 0, font: f,
                                          box: Rect(x: box.x, y: pos ? yi : yi - m.height, width: m.width, height: m.height), color: inside))
                }
            } else {
                let y0 = (pos ? r.rect.minY - 2 - errPx : r.rect.maxY + 2 + errPx)
                let box = Rect(x: r.rect.midX - m.height / 2, y: pos ? y0 - m.width : y0, width: m.height, height: m.width)
                if box.minY >= plot.minY - 3 && box.maxY <= plot.maxY + 3 {
                    out.append(ValueLabel(text: s, at: Point(r.rect.midX, y0), align: pos ? .left : .right, valign: .middle, rotation: -Double.pi / 2, font: f, box: box))
                } else if m.width + 4 + errPx <= r.rect.height {
                    let yi = pos ? r.rect.minY + 2 + errPx : r.rect.maxY - 2 - errPx
                    out.append(ValueLabel(text: s, at: Point(r.rect.midX, yi), align: pos ? .right : .left, valign: .middle, rotation: -Double.pi / 2, font: f,
                                          box: Rect(x: box.x, y: pos ? yi : yi - m.width, width: m.height, height: m.width), color: inside))
                }
            }
        }
        return out
    }

    /// Value labels are drawn outside the plot clip so the ones near the top are not cut.
    func drawValueLabels() {
        for (si, s) in axes.series.enumerated() {
            guard case .bars(let b) = s, b.valueLabels else { continue }
            for l in valueLabels(b, barRects(b, colorBase: colorIndex[si])) {
                canvas.text(l.text, at: l.at, font: l.font, color: l.color, align: l.align, valign: l.valign, rotation: l.rotation)
            }
        }
    }

    func drawHeatmap(_ h: HeatmapSeries) {
        let norm = h.resolvedNorm
        let rows = h.values.count
        var cellFont = tickFont.with(size: style.cellFontSize)
        var labels = h.cellLabels
        if labels {
            let cw = plot.width / Double(max(h.columnLabels.count, 1)), ch = plot.height / Double(max(rows, 1))
            let widest = h.values.flatMap { $0 }.map { canvas.measure(Ticks.format($0, decimals: h.cellDecimals), font: cellFont).width }.max() ?? 0
            var size = min(style.cellFontSize, ch * 0.55)
            if widest > 0 { size = min(size, style.cellFontSize * (cw * 0.9) / widest) }
            if size < 4.5 { labels = false } else { cellFont = cellFont.with(size: size) }
        }
        for r in 0..<rows {
            for c in 0..<h.values[r].count {
                let v = h.values[r][c]
                let col = h.colorMap.color(at: norm.t(v))
                // Overlap cells by a hair so anti-aliasing leaves no seams.
                let rect = rectFrom(pt(Double(c) - 0.5, Double(r) - 0.5), pt(Double(c) + 0.5, Double(r) + 0.5))
                canvas.fillRect(Rect(x: rect.x, y: rect.y, width: rect.width + 0.3, height: rect.height + 0.3), color: col)
                if labels && v.isFinite {
                    canvas.text(Ticks.format(v, decimals: h.cellDecimals), at: Point(rect.midX, rect.midY), font: cellFont,
                                color: col.contrastingText, align: .center, valign: .middle)
                }
            }
        }
    }

    func drawBoxes(_ b: BoxSeries) {
        let dark = Color(hex: 0x333333)
        for (i, g) in b.groups.enumerated() {
            guard let s = Stats.box(g.values) else { continue }
            let c = color(g.color, i)
            let x0 = Double(i) - b.width / 2, x1 = Double(i) + b.width / 2, xc = Double(i)
            canvas.line(from: pt(xc, s.lowWhisker), to: pt(xc, s.q1), color: dark, width: 0.9)
            canvas.line(from: pt(xc, s.q3), to: pt(xc, s.highWhisker), color: dark, width: 0.9)
            for w in [s.lowWhisker, s.highWhisker] {
                canvas.line(from: pt(xc - b.width / 4, w), to: pt(xc + b.width / 4, w), color: dark, width: 0.9)
            }
            canvas.fillRect(rectFrom(pt(x0, s.q1), pt(x1, s.q3)), color: c.mix(.white, 0.15), stroke: dark, lineWidth: 0.9)
            canvas.line(from: pt(x0, s.median), to: pt(x1, s.median), color: dark, width: 1.6)
            for o in s.outliers {
                canvas.addCircle(center: pt(xc, o), radius: 2)
                canvas.setColor(dark); canvas.setLineWidth(0.7); canvas.stroke()
            }
        }
    }

    func drawViolins(_ v: ViolinSeries) {
        let dark = Color(hex: 0x333333)
        for (i, g) in v.groups.enumerated() {
            let vals = g.values.filter(\.isFinite).sorted()
            guard let lo = vals.first, let hi = vals.last else { continue }
            let c = color(g.color, i)
            let n = 80
            let grid = (0..<n).map { lo + (hi - lo) * Double($0) / Double(n - 1) }
            let dens = Stats.kde(vals, grid: grid, bandwidth: v.bandwidth)
            let peak = dens.max() ?? 1
            let half = v.width / 2
            var right: [Point] = [], left: [Point] = []
            for (k, yv) in grid.enumerated() {
                let w = peak > 0 ? dens[k] / peak * half : 0
                right.append(pt(Double(i) + w, yv)); left.append(pt(Double(i) - w, yv))
            }
            canvas.addPolyline(right + left.reversed(), closed: true)
            canvas.setColor(c.withAlpha(0.75)); canvas.fill(preserve: true)
            canvas.setColor(c.mix(.black, 0.35)); canvas.setLineWidth(0.8); canvas.stroke()
            let q1 = Stats.quantile(vals, 0.25), q3 = Stats.quantile(vals, 0.75), med = Stats.quantile(vals, 0.5)
            canvas.line(from: pt(Double(i), lo), to: pt(Double(i), hi), color: dark, width: 0.8)
            canvas.line(from: pt(Double(i), q1), to: pt(Double(i), q3), color: dark, width: 4)
            canvas.addCircle(center: pt(Double(i), med), radius: 2.2)
            canvas.setColor(.white); canvas.fill()
        }
    }

    func drawAnnotations() {
        let f = tickFont
        for a in axes.annotations {
            switch a {
            case .text(let s, let ax, let ay, let align, let c):
                canvas.text(s, at: pt(ax, ay), font: f, color: c, align: align, valign: .baseline)
            case .horizontalLine(let v, let label, let c, let dash):
                let yy = py(v)
                guard yy.isFinite else { continue }
                canvas.line(from: Point(plot.minX, yy), to: Point(plot.maxX, yy), color: c, width: 1, dash: dash)
                _ = label  // shown in the legend
            case .verticalLine(let v, let label, let c, let dash):
                let xx = px(v)
                guard xx.isFinite else { continue }
                canvas.line(from: Point(xx, plot.minY), to: Point(xx, plot.maxY), color: c, width: 1, dash: dash)
                _ = label  // shown in the legend
            }
        }
    }

    func drawTickLabel(_ t: Tick, at p: Point, align: HAlign, valign: VAlign, rotation: Double = 0, font: Font? = nil) {
        let tickFont = font ?? self.tickFont
        guard let e = t.exponent else {
            canvas.text(t.label, at: p, font: tickFont, color: .text, align: align, valign: valign, rotation: rotation)
            return
        }
        // Base plus raised, smaller exponent, aligned as one unit.
        let ef = tickFont.with(size: tickFont.size * 0.72)
        let bw = canvas.measure(t.label, font: tickFont).width, ew = canvas.measure(e, font: ef).width
        let total = bw + ew + 0.5
        let m = canvas.measure(t.label, font: tickFont)
        let x0: Double = switch align { case .left: p.x; case .center: p.x - total / 2; case .right: p.x - total }
        let base: Double = switch valign {
        case .top: p.y + m.ascent + 2; case .middle: p.y + (m.ascent - m.descent) / 2 + 1; case .baseline: p.y; case .bottom: p.y - m.descent
        }
        canvas.text(t.label, at: Point(x0, base), font: tickFont)
        canvas.text(e, at: Point(x0 + bw + 0.5, base - m.ascent * 0.45), font: ef)
    }

    func drawAxes() {
        let c = Color.axis, lw = style.axisLineWidth, tl = style.tickLength
        let isHeat = heatmap != nil
        if !isHeat {
            canvas.line(from: Point(plot.minX, plot.maxY), to: Point(plot.maxX, plot.maxY), color: c, width: lw)
            canvas.line(from: Point(plot.minX, plot.minY), to: Point(plot.minX, plot.maxY), color: c, width: lw)
        }
        // x ticks
        for (i, t) in x.ticks.enumerated() {
            let xx = px(t.value)
            guard xx >= plot.minX - 0.5, xx <= plot.maxX + 0.5 else { continue }
            let show = i % x.labelEvery == 0
            canvas.line(from: Point(xx, plot.maxY), to: Point(xx, plot.maxY + (show ? tl : tl * 0.6)), color: c, width: lw)
            guard show else { continue }
            let p = Point(xx, plot.maxY + tl + 2)
            if xLabelAngle == 0 {
                drawTickLabel(t, at: p, align: .center, valign: .top, font: xFont)
            } else if xLabelAngle < -1.5 {
                canvas.text(t.label, at: p, font: xFont, align: .right, valign: .middle, rotation: xLabelAngle)
            } else {
                canvas.text(t.label, at: Point(p.x + 2, p.y), font: xFont, align: .right, valign: .top, rotation: xLabelAngle)
            }
        }
        for v in x.minor {
            let xx = px(v)
            if xx >= plot.minX - 0.5 && xx <= plot.maxX + 0.5 { canvas.line(from: Point(xx, plot.maxY), to: Point(xx, plot.maxY + tl * 0.55), color: c, width: lw * 0.7) }
        }
        for (i, t) in y.ticks.enumerated() {
            let yy = py(t.value)
            guard yy >= plot.minY - 0.5, yy <= plot.maxY + 0.5 else { continue }
            let show = i % y.labelEvery == 0
            canvas.line(from: Point(plot.minX, yy), to: Point(plot.minX - (show ? tl : tl * 0.6), yy), color: c, width: lw)
            if show { drawTickLabel(t, at: Point(plot.minX - tl - 2.5, yy), align: .right, valign: .middle, font: yFont) }
        }
        for v in y.minor {
            let yy = py(v)
            if yy >= plot.minY - 0.5 && yy <= plot.maxY + 0.5 { canvas.line(from: Point(plot.minX, yy), to: Point(plot.minX - tl * 0.55, yy), color: c, width: lw * 0.7) }
        }
    }

    func drawLabels(cell: Rect) {
        let labelH = canvas.lineHeight(labelFont)
        if let t = axes.title, !t.isEmpty {
            let w = titleWidth(cell)
            let h = canvas.paragraphHeight(t, width: w, font: titleFont)
            canvas.paragraph(t, at: Point(cell.midX - w / 2, max(cell.minY + 2, plot.minY - 4 - h)), width: w, font: titleFont, align: .center)
        }
        if let l = axes.xLabel, !l.isEmpty {
            let tickH = canvas.measure("0", font: xFont).height
            let extent: Double
            if xLabelAngle == 0 { extent = tickH } else {
                let a = abs(xLabelAngle)
                let maxW = x.ticks.map { tickLabelWidth($0, xFont) }.max() ?? 0
                extent = maxW * sin(a) + tickH * cos(a)
            }
            canvas.text(l, at: Point(plot.midX, plot.maxY + style.tickLength + 3 + extent + 3), font: fitted(l, labelFont, cell.width - 4),
                        align: .center, valign: .top)
        }
        if let l = axes.yLabel, !l.isEmpty {
            let yTickW = y.ticks.enumerated().filter { $0.offset % y.labelEvery == 0 }.map { tickLabelWidth($0.element, yFont) }.max() ?? 0
            let xx = plot.minX - style.tickLength - 3 - yTickW - 3 - labelH / 2
            canvas.text(l, at: Point(max(xx, cell.minX + labelH / 2), plot.midY), font: fitted(l, labelFont, plot.height + 20),
                        align: .center, valign: .middle, rotation: -Double.pi / 2)
        }
    }

    func drawColorBar(_ h: HeatmapSeries) {
        let norm = h.resolvedNorm
        let bar = Rect(x: plot.maxX + 10, y: plot.minY, width: 10, height: plot.height)
        let n = 128
        for k in 0..<n {
            let t0 = Double(k) / Double(n)
            let y1 = bar.maxY - t0 * bar.height
            let r = Rect(x: bar.x, y: y1 - bar.height / Double(n) - 0.3, width: bar.width, height: bar.height / Double(n) + 0.3)
            canvas.fillRect(r, color: h.colorMap.color(at: t0 + 0.5 / Double(n)))
        }
        canvas.addRect(bar); canvas.setColor(.axis); canvas.setLineWidth(0.5); canvas.stroke()
        let ticks = Ticks.linear(norm.low, norm.high, maxTicks: colorBarTickCount(bar.height))
        var maxW = 0.0
        for t in ticks {
            let yy = bar.maxY - norm.t(t.value) * bar.height
            canvas.line(from: Point(bar.maxX, yy), to: Point(bar.maxX + style.tickLength, yy), color: .axis, width: style.axisLineWidth)
            drawTickLabel(t, at: Point(bar.maxX + style.tickLength + 2.5, yy), align: .left, valign: .middle)
            maxW = max(maxW, tickLabelWidth(t, tickFont))
        }
        if let l = h.colorBarLabel, !l.isEmpty {
            let xx = bar.maxX + style.tickLength + 3 + maxW + 4 + canvas.lineHeight(labelFont) / 2
            canvas.text(l, at: Point(xx, bar.midY), font: fitted(l, labelFont, bar.height + 30), align: .center, valign: .middle,
                        rotation: -Double.pi / 2)
        }
    }

    func drawLegend(_ placement: LegendPlacement, cell: Rect) {
        guard placement != .none, placement != .auto, !legendEntries.isEmpty else { return }
        let lh = canvas.lineHeight(legendFont)
        let pad = 5.0, swatch = 18.0, gap = 5.0, colGap = 12.0
        let horizontal = placement == .below
        let size = legendSize(horizontal: horizontal, maxWidth: horizontal ? plot.width : .infinity)
        var box: Rect
        switch placement {
        case .outsideRight:
            var x0 = plot.maxX + 8
            if let h = heatmap, h.showColorBar { x0 = cell.maxX - size.w - 2 }
            box = Rect(x: x0, y: plot.minY, width: size.w, height: size.h)
        case .below:
            box = Rect(x: plot.midX - size.w / 2, y: cell.maxY - size.h - 2, width: size.w, height: size.h)
        default:
            box = legendBox(placement, size: (size.w, size.h))
            canvas.addRect(box)
            canvas.setColor(Color.white.withAlpha(0.9)); canvas.fill(preserve: true)
            canvas.setColor(Color(hex: 0xCCCCCC)); canvas.setLineWidth(0.5); canvas.stroke()
        }
        var yTop = box.minY + pad
        if let t = axes.legendTitle {
            canvas.text(t, at: Point(box.minX + pad, yTop), font: legendFont.bolded(), valign: .top)
            yTop += lh
        }
        for row in size.rows {
            var xx = box.minX + pad
            for i in row {
                let e = legendEntries[i]
                let cy = yTop + lh / 2 - 1
                switch e.swatch {
                case .line(let c, let dash, let marker, let w):
                    canvas.line(from: Point(xx, cy), to: Point(xx + swatch, cy), color: c, width: w, dash: dash)
                    if marker != .none { drawMarker(marker, at: Point(xx + swatch / 2, cy), size: 5.5, color: c, edge: .white) }
                case .marker(let c, let m):
                    drawMarker(m, at: Point(xx + swatch / 2, cy), size: 6, color: c)
                case .patch(let c):
                    canvas.fillRect(Rect(x: xx + 3, y: cy - 4.5, width: swatch - 6, height: 9), color: c)
                }
                canvas.text(e.label, at: Point(xx + swatch + gap, cy), font: legendFont, valign: .middle)
                xx += swatch + gap + canvas.measure(e.label, font: legendFont).width + colGap
            }
            yTop += lh
        }
    }
}
