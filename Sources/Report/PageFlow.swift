import Foundation
import Plotting

/// Flows headings, paragraphs, tables and figures down A4 pages: starts a new page when the next
/// block does not fit, splits long paragraphs and tables (repeating the header), and numbers pages.
final class PageFlow {
    let doc: PDFDocument
    let margin = 56.0
    let width: Double
    var y = 0.0
    var page: Canvas
    var pageNumber = 0
    var bottom: Double { doc.pageSize.height - margin - 14 }
    let body = Font(size: 9.5)
    let small = Font(size: 8)

    init(path: String, title: String) throws {
        doc = try PDFDocument(path: path, pageSize: .a4, title: title)
        width = doc.pageSize.width - 2 * margin
        page = try doc.beginPage()
        startPage()
    }

    private func startPage() {
        pageNumber += 1
        y = margin
        page.text("\(pageNumber)", at: Point(doc.pageSize.width / 2, doc.pageSize.height - margin / 2), font: small,
                  color: .gray, align: .center, valign: .middle)
    }

    func newPage() throws {
        page = try doc.beginPage()
        startPage()
    }

    /// New page unless `height` fits below the cursor (or the page is still empty).
    func ensure(_ height: Double) throws {
        if y + height > bottom && y > margin + 1 { try newPage() }
    }

    func space(_ h: Double) { y += h }

    /// A heading kept on the same page as the first `keepWith` points of what follows (default: a few lines).
    func heading(_ s: String, level: Int = 1, keepWith: Double = 80) throws {
        let f = Font(size: level == 1 ? 14 : 11.5, bold: true)
        let h = page.paragraphHeight(s, width: width, font: f)
        try ensure(h + min(keepWith, bottom - margin - h - 30))
        if y > margin + 1 { y += level == 1 ? 10 : 6 }
        y += page.paragraph(s, at: Point(margin, y), width: width, font: f) + 5
    }

    /// A paragraph split across pages line by line when needed.
    func paragraph(_ s: String, font: Font? = nil, color: Color = .text, indent: Double = 0) throws {
        let f = font ?? body
        let lh = page.lineHeight(f)
        for line in page.wrap(s, font: f, width: width - indent) {
            try ensure(lh)
            page.text(line, at: Point(margin + indent, y), font: f, color: color, valign: .top)
            y += lh
        }
        y += 4
    }

    /// Height of one table row: the tallest wrapped cell plus the row gap.
    func rowHeight(_ cells: [String], widths: [Double], font: Font) -> Double {
        var h = page.lineHeight(font)
        for (i, w) in widths.enumerated() where i < cells.count {
            h = max(h, page.paragraphHeight(cells[i], width: max(w - 8, 1), font: font))
        }
        return h + 3
    }

    /// A booktabs table that continues on the next page (header repeated) when it is long.
    /// `widths` are fractions of the text width.
    func table(header: [String], rows: [[String]], widths: [Double], font: Font = Font(size: 8), alignments: [HAlign]? = nil) throws {
        let total = widths.reduce(0, +)
        let w = widths.map { $0 / total * width }
        let headerH = rowHeight(header, widths: w, font: font.bolded()) + 8
        var i = 0
        var first = true
        while i < rows.count || (rows.isEmpty && first) {
            try ensure(headerH + (rows.isEmpty ? 0 : rowHeight(rows[i], widths: w, font: font)) + 6)
            var avail = bottom - y - headerH - 6
            var chunk: [[String]] = []
            while i < rows.count {
                let h = rowHeight(rows[i], widths: w, font: font)
                if h > avail && !chunk.isEmpty { break }
                chunk.append(rows[i]); avail -= h; i += 1
            }
            if !first { try paragraph("(continued)", font: Font(size: 7.5, italic: true), color: .gray) }
            y += page.table(header: header, rows: chunk, at: Point(margin, y), columnWidths: w, font: font, alignments: alignments) + 8
            first = false
            if i < rows.count { try newPage() }
        }
    }

    /// Scale of a figure on the page, its drawn height and the caption's height.
    func figureLayout(_ f: Figure, caption: String) -> (scale: Double, height: Double, captionHeight: Double) {
        let capH = page.paragraphHeight(caption, width: width, font: Font(size: 8.5)) + 6
        var s = min(1, width / f.width)
        let maxH = bottom - margin - capH - 10
        if f.height * s > maxH { s = maxH / f.height }
        return (s, f.height * s, capH)
    }

    /// A figure scaled to the text width (or to the page height when taller), with a caption below.
    func figure(_ f: Figure, caption: String) throws {
        let capFont = Font(size: 8.5)
        let (s, h, capH) = figureLayout(f, caption: caption)
        let w = f.width * s
        try ensure(h + capH + 8)
        page.draw(f, in: Rect(x: margin + (width - w) / 2, y: y, width: w, height: h), scaleToFit: true)
        y += h + 6
        y += page.paragraph(caption, at: Point(margin, y), width: width, font: capFont) + 12
    }

    func close() throws -> Int {
        try doc.close()
        return doc.pageCount
    }
}
