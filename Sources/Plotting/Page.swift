import Foundation

extension Canvas {
    /// Draws a figure into `rect`. By default the figure is laid out at the rectangle's size (text keeps
    /// its point size); with `scaleToFit` it is laid out at its own size and scaled uniformly into the
    /// rectangle, centred.
    public func draw(_ figure: Figure, in rect: Rect, scaleToFit: Bool = false) {
        guard scaleToFit, figure.width > 0, figure.height > 0 else {
            figure.draw(on: self, in: rect)
            return
        }
        let s = min(rect.width / figure.width, rect.height / figure.height)
        withState {
            translate(rect.x + (rect.width - figure.width * s) / 2, rect.y + (rect.height - figure.height * s) / 2)
            scale(s, s)
            figure.draw(on: self, in: Rect(x: 0, y: 0, width: figure.width, height: figure.height))
        }
    }

    /// A booktabs-style table (rules above and below the header and at the bottom, no vertical lines).
    /// `alignments` defaults to left for the first column and right for the others. Cells wrap inside
    /// their column. Returns the height used.
    @discardableResult
    public func table(header: [String], rows: [[String]], at origin: Point, columnWidths: [Double],
                      font: Font = Font(size: 9), alignments: [HAlign]? = nil) -> Double {
        let cols = columnWidths.count
        let pad = 4.0
        let align = alignments ?? (0..<cols).map { $0 == 0 ? .left : .right }
        let bold = font.bolded()
        var yy = origin.y
        let width = columnWidths.reduce(0, +)
        func rule(_ w: Double) { line(from: Point(origin.x, yy), to: Point(origin.x + width, yy), color: .text, width: w) }
        func drawRow(_ cells: [String], _ f: Font) {
            var xx = origin.x
            var h = lineHeight(f)
            for c in 0..<cols {
                let text = c < cells.count ? cells[c] : ""
                let inner = max(columnWidths[c] - 2 * pad, 1)
                let a = c < align.count ? align[c] : .left
                h = max(h, paragraph(text, at: Point(xx + pad, yy + 2), width: inner, font: f, align: a))
                xx += columnWidths[c]
            }
            yy += h + 3
        }
        rule(0.9); yy += 2
        drawRow(header, bold)
        rule(0.5); yy += 2
        for r in rows { drawRow(r, font) }
        rule(0.9)
        return yy - origin.y
    }
}
