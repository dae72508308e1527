import CCairo
import Foundation

/// Font description for cairo's toy text API (DejaVu Sans by default).
public struct Font: Sendable, Hashable {
    public var family: String
    public var size: Double
    public var bold: Bool
    public var italic: Bool
    public init(size: Double, bold: Bool = false, italic: Bool = false, family: String = "DejaVu Sans") {
        self.family = family; self.size = size; self.bold = bold; self.italic = italic
    }
    public func with(size: Double) -> Font { var f = self; f.size = size; return f }
    public func bolded(_ b: Bool = true) -> Font { var f = self; f.bold = b; return f }
}

/// Measured size of a run of text, in points.
public struct TextMetrics: Sendable, Hashable {
    /// Advance width (where the next glyph would start).
    public var width: Double
    /// Font ascent above the baseline (independent of the text, so lines align).
    public var ascent: Double
    /// Font descent below the baseline.
    public var descent: Double
    public var height: Double { ascent + descent }
}

public enum HAlign: Sendable { case left, center, right }
public enum VAlign: Sendable { case top, middle, baseline, bottom }

/// An owned cairo surface: an in-memory image (written as PNG), an SVG file or a PDF file.
public final class Surface {
    public enum Kind: Sendable, Equatable { case image(scale: Double), svg, pdf }
    let raw: OpaquePointer
    public let kind: Kind
    /// Size in points (the PNG has `scale` pixels per point).
    public let width: Double
    public let height: Double
    /// The output file, or "<memory>" for image surfaces.
    public let path: String
    private var finished = false

    private init(raw: OpaquePointer, kind: Kind, width: Double, height: Double, path: String) throws {
        self.raw = raw; self.kind = kind; self.width = width; self.height = height; self.path = path
        let st = cairo_surface_status(raw)
        guard st == CAIRO_STATUS_SUCCESS else {
            cairo_surface_destroy(raw)
            throw PlotError(file: path, "cairo could not create the surface (\(Surface.describe(st))); check the folder exists and is writable")
        }
    }

    deinit { cairo_surface_destroy(raw) }

    static func describe(_ st: cairo_status_t) -> String { String(cString: cairo_status_to_string(st)) }

    static func checkSize(_ width: Double, _ height: Double, _ path: String) throws {
        guard width.isFinite, height.isFinite, width >= 1, height >= 1, width <= 20_000, height <= 20_000 else {
            throw PlotError(file: path, "size \(width)×\(height) pt is not drawable; use 1…20000 points per side")
        }
    }

    /// An ARGB image of `width`×`height` points at `scale` pixels per point (2 for sharp screen images).
    public static func image(width: Double, height: Double, scale: Double = 2) throws -> Surface {
        try checkSize(width, height, "<memory>")
        guard scale.isFinite, scale > 0, scale <= 8 else { throw PlotError(file: "<memory>", "PNG scale \(scale) must be in (0, 8]") }
        let w = Int32((width * scale).rounded()), h = Int32((height * scale).rounded())
        guard let s = cairo_image_surface_create(CAIRO_FORMAT_ARGB32, w, h) else {
            throw PlotError(file: "<memory>", "cairo could not allocate a \(w)×\(h) image")
        }
        return try Surface(raw: s, kind: .image(scale: scale), width: width, height: height, path: "<memory>")
    }

    /// A vector SVG file; the document unit is the point.
    public static func svg(path: String, width: Double, height: Double) throws -> Surface {
        try checkSize(width, height, path)
        guard let s = cairo_svg_surface_create(path, width, height) else { throw PlotError(file: path, "cairo could not create the SVG file") }
        let surface = try Surface(raw: s, kind: .svg, width: width, height: height, path: path)
        cairo_svg_surface_set_document_unit(s, CAIRO_SVG_UNIT_PT)
        return surface
    }

    /// A vector PDF file whose first page is `width`×`height` points.
    public static func pdf(path: String, width: Double, height: Double, title: String? = nil) throws -> Surface {
        try checkSize(width, height, path)
        guard let s = cairo_pdf_surface_create(path, width, height) else { throw PlotError(file: path, "cairo could not create the PDF file") }
        let surface = try Surface(raw: s, kind: .pdf, width: width, height: height, path: path)
        if let title { cairo_pdf_surface_set_metadata(s, CAIRO_PDF_METADATA_TITLE, title) }
        cairo_pdf_surface_set_metadata(s, CAIRO_PDF_METADATA_CREATOR, "ablab")
        return surface
    }

    /// Reads a PNG file into an image surface (scale 1: one pixel per point).
    public static func readPNG(_ path: String) throws -> Surface {
        guard FileManager.default.fileExists(atPath: path) else { throw PlotError(file: path, "no such PNG file") }
        guard let s = cairo_image_surface_create_from_png(path) else { throw PlotError(file: path, "cairo could not read the PNG") }
        let w = Double(cairo_image_surface_get_width(s)), h = Double(cairo_image_surface_get_height(s))
        return try Surface(raw: s, kind: .image(scale: 1), width: w, height: h, path: path)
    }

    /// Pixel size of an image surface (0×0 for vector surfaces).
    public var pixelSize: (width: Int, height: Int) {
        guard case .image = kind else { return (0, 0) }
        return (Int(cairo_image_surface_get_width(raw)), Int(cairo_image_surface_get_height(raw)))
    }

    /// Premultiplied ARGB of pixel (x, y) of an image surface, as (a, r, g, b) in 0…255; nil outside.
    public func pixel(x: Int, y: Int) -> (a: UInt8, r: UInt8, g: UInt8, b: UInt8)? {
        guard case .image = kind else { return nil }
        cairo_surface_flush(raw)
        let (w, h) = pixelSize
        guard x >= 0, y >= 0, x < w, y < h, let data = cairo_image_surface_get_data(raw) else { return nil }
        let stride = Int(cairo_image_surface_get_stride(raw))
        let p = data.advanced(by: y * stride + 4 * x).withMemoryRebound(to: UInt32.self, capacity: 1) { $0.pointee }
        return (UInt8(p >> 24), UInt8((p >> 16) & 0xFF), UInt8((p >> 8) & 0xFF), UInt8(p & 0xFF))
    }

    /// Writes an image surface as PNG.
    public func writePNG(to path: String) throws {
        guard case .image = kind else { throw PlotError(file: path, "only image surfaces can be written as PNG; use Surface.image") }
        cairo_surface_flush(raw)
        let st = cairo_surface_write_to_png(raw, path)
        guard st == CAIRO_STATUS_SUCCESS else {
            throw PlotError(file: path, "could not write PNG (\(Surface.describe(st))); check the folder exists and is writable")
        }
    }

    /// Finishes a vector surface: flushes and closes its file. Further drawing is ignored.
    public func finish() throws {
        guard !finished else { return }
        finished = true
        cairo_surface_finish(raw)
        let st = cairo_surface_status(raw)
        guard st == CAIRO_STATUS_SUCCESS else {
            throw PlotError(file: path, "could not finish writing (\(Surface.describe(st))); check disk space and permissions")
        }
    }
}

/// A drawing context on a surface, in points (y down). Owns its `cairo_t`.
public final class Canvas {
    public let surface: Surface
    let cr: OpaquePointer
    private var font = Font(size: 10)

    public init(surface: Surface) throws {
        self.surface = surface
        guard let cr = cairo_create(surface.raw) else { throw PlotError(file: surface.path, "cairo could not create a drawing context") }
        self.cr = cr
        let st = cairo_status(cr)
        guard st == CAIRO_STATUS_SUCCESS else {
            cairo_destroy(cr)
            throw PlotError(file: surface.path, "cairo drawing context failed (\(Surface.describe(st)))")
        }
        if case .image(let scale) = surface.kind { cairo_scale(cr, scale, scale) }
        cairo_set_line_join(cr, CAIRO_LINE_JOIN_ROUND)
        setFont(font)
    }

    deinit { cairo_destroy(cr) }

    /// Throws if cairo recorded an error on this context (e.g. out of memory, write error).
    public func check() throws {
        let st = cairo_status(cr)
        guard st == CAIRO_STATUS_SUCCESS else { throw PlotError(file: surface.path, "drawing failed (\(Surface.describe(st)))") }
    }

    // MARK: state

    public func save() { cairo_save(cr) }
    public func restore() { cairo_restore(cr); applyFont() }
    /// Runs `body` between save and restore.
    public func withState<T>(_ body: () throws -> T) rethrows -> T { save(); defer { restore() }; return try body() }
    public func translate(_ dx: Double, _ dy: Double) { cairo_translate(cr, dx, dy) }
    public func scale(_ sx: Double, _ sy: Double) { cairo_scale(cr, sx, sy) }
    /// Rotates by `radians` (positive is clockwise because y points down).
    public func rotate(_ radians: Double) { cairo_rotate(cr, radians) }
    public func clip(to r: Rect) { cairo_rectangle(cr, r.x, r.y, r.width, r.height); cairo_clip(cr) }

    public func setColor(_ c: Color) { cairo_set_source_rgba(cr, c.r, c.g, c.b, c.a) }
    public func setLineWidth(_ w: Double) { cairo_set_line_width(cr, w) }
    /// Dash pattern in points (empty for solid lines).
    public func setDash(_ pattern: [Double], offset: Double = 0) {
        pattern.withUnsafeBufferPointer { cairo_set_dash(cr, $0.baseAddress, Int32($0.count), offset) }
    }
    public func setLineCap(round: Bool) { cairo_set_line_cap(cr, round ? CAIRO_LINE_CAP_ROUND : CAIRO_LINE_CAP_BUTT) }

    // MARK: paths

    public func moveTo(_ p: Point) { cairo_move_to(cr, p.x, p.y) }
    public func lineTo(_ p: Point) { cairo_line_to(cr, p.x, p.y) }
    public func closePath() { cairo_close_path(cr) }
    public func newPath() { cairo_new_path(cr) }
    public func addRect(_ r: Rect) { cairo_rectangle(cr, r.x, r.y, r.width, r.height) }
    public func addCircle(center: Point, radius: Double) {
        cairo_new_sub_path(cr); cairo_arc(cr, center.x, center.y, radius, 0, 2 * Double.pi)
    }
    public func addPolyline(_ pts: [Point], closed: Bool = false) {
        guard let first = pts.first else { return }
        moveTo(first)
        for p in pts.dropFirst() { lineTo(p) }
        if closed { closePath() }
    }
    public func fill(preserve: Bool = false) { preserve ? cairo_fill_preserve(cr) : cairo_fill(cr) }
    public func stroke(preserve: Bool = false) { preserve ? cairo_stroke_preserve(cr) : cairo_stroke(cr) }

    /// Convenience: a straight line segment.
    public func line(from a: Point, to b: Point, color: Color, width: Double, dash: [Double] = []) {
        setColor(color); setLineWidth(width); setDash(dash)
        moveTo(a); lineTo(b); stroke()
        setDash([])
    }
    /// Convenience: fill (and optionally outline) a rectangle.
    public func fillRect(_ r: Rect, color: Color, stroke: Color? = nil, lineWidth: Double = 0.5) {
        addRect(r); setColor(color)
        if let stroke { fill(preserve: true); setColor(stroke); setLineWidth(lineWidth); self.stroke() } else { fill() }
    }

    /// Paints the whole clip area with one colour.
    public func paint(_ c: Color) { setColor(c); cairo_paint(cr) }

    // MARK: text

    public func setFont(_ f: Font) { font = f; applyFont() }
    public var currentFont: Font { font }
    private func applyFont() {
        cairo_select_font_face(cr, font.family, font.italic ? CAIRO_FONT_SLANT_ITALIC : CAIRO_FONT_SLANT_NORMAL,
                               font.bold ? CAIRO_FONT_WEIGHT_BOLD : CAIRO_FONT_WEIGHT_NORMAL)
        cairo_set_font_size(cr, font.size)
    }

    /// Width and font ascent/descent of `text` in `font`.
    public func measure(_ text: String, font f: Font) -> TextMetrics {
        let old = font; setFont(f); defer { setFont(old) }
        var te = cairo_text_extents_t(), fe = cairo_font_extents_t()
        cairo_text_extents(cr, text, &te)
        cairo_font_extents(cr, &fe)
        return TextMetrics(width: te.x_advance, ascent: fe.ascent, descent: fe.descent)
    }

    /// Line height (ascent + descent, plus 15 % leading) for paragraphs in `font`.
    public func lineHeight(_ f: Font) -> Double { let m = measure("Hg", font: f); return m.height * 1.15 }

    /// Draws one line of text anchored at `at`; `rotation` in radians (negative is counter-clockwise,
    /// -π/2 reads bottom to top). Returns the unrotated metrics.
    @discardableResult
    public func text(_ s: String, at p: Point, font f: Font, color: Color = .text, align: HAlign = .left,
                     valign: VAlign = .baseline, rotation: Double = 0) -> TextMetrics {
        let m = measure(s, font: f)
        let dx: Double = switch align { case .left: 0; case .center: -m.width / 2; case .right: -m.width }
        let dy: Double = switch valign {
        case .top: m.ascent; case .middle: (m.ascent - m.descent) / 2; case .baseline: 0; case .bottom: -m.descent
        }
        save()
        setFont(f); setColor(color)
        cairo_translate(cr, p.x, p.y)
        if rotation != 0 { cairo_rotate(cr, rotation) }
        cairo_move_to(cr, dx, dy)
        cairo_show_text(cr, s)
        cairo_new_path(cr)
        restore()
        return m
    }

    /// Splits `text` into lines no wider than `width` (explicit newlines start new paragraphs;
    /// words longer than the width are broken between characters).
    public func wrap(_ text: String, font f: Font, width: Double) -> [String] {
        var lines: [String] = []
        for para in text.split(separator: "\n", omittingEmptySubsequences: false) {
            var current = ""
            for word in para.split(separator: " ", omittingEmptySubsequences: true).map(String.init) {
                let candidate = current.isEmpty ? word : current + " " + word
                if measure(candidate, font: f).width <= width { current = candidate; continue }
                if !current.isEmpty { lines.append(current); current = "" }
                if measure(word, font: f).width <= width { current = word; continue }
                var piece = ""
                for ch in word {
                    if !piece.isEmpty && measure(piece + String(ch), font: f).width > width { lines.append(piece); piece = "" }
                    piece.append(ch)
                }
                current = piece
            }
            lines.append(current)
        }
        return lines
    }

    /// Draws a word-wrapped paragraph with its first line's top at `origin`; returns the height used.
    @discardableResult
    public func paragraph(_ text: String, at origin: Point, width: Double, font f: Font, color: Color = .text,
                          align: HAlign = .left, lineSpacing: Double = 1.0) -> Double {
        let lh = lineHeight(f) * lineSpacing
        let lines = wrap(text, font: f, width: width)
        let x: Double = switch align { case .left: origin.x; case .center: origin.x + width / 2; case .right: origin.x + width }
        for (i, line) in lines.enumerated() where !line.isEmpty {
            self.text(line, at: Point(x, origin.y + Double(i) * lh), font: f, color: color, align: align, valign: .top)
        }
        return Double(lines.count) * lh
    }

    /// Height a paragraph would use, without drawing.
    public func paragraphHeight(_ text: String, width: Double, font f: Font, lineSpacing: Double = 1.0) -> Double {
        Double(wrap(text, font: f, width: width).count) * lineHeight(f) * lineSpacing
    }
}

/// A multi-page PDF: `beginPage`, draw on `canvas`, `showPage`; `close()` writes the file.
public final class PDFDocument {
    public let path: String
    public let surface: Surface
    public let canvas: Canvas
    public private(set) var pageSize: PageSize
    public private(set) var pageCount = 0
    private var pageOpen = false

    public init(path: String, pageSize: PageSize = .a4, title: String? = nil) throws {
        self.path = path
        self.pageSize = pageSize
        surface = try Surface.pdf(path: path, width: pageSize.width, height: pageSize.height, title: title)
        canvas = try Canvas(surface: surface)
    }

    /// Starts a page (optionally of a different size) and returns the canvas to draw on.
    @discardableResult
    public func beginPage(size: PageSize? = nil) throws -> Canvas {
        if pageOpen { try showPage() }
        if let size {
            try Surface.checkSize(size.width, size.height, path)
            pageSize = size
        }
        cairo_pdf_surface_set_size(surface.raw, pageSize.width, pageSize.height)
        pageOpen = true
        return canvas
    }

    /// Ends the current page.
    public func showPage() throws {
        guard pageOpen else { throw PlotError(file: path, "showPage() without beginPage(); call beginPage() first") }
        cairo_show_page(canvas.cr)
        pageOpen = false
        pageCount += 1
        try canvas.check()
    }

    /// Ends an open page and writes the file.
    public func close() throws {
        if pageOpen { try showPage() }
        guard pageCount > 0 else { throw PlotError(file: path, "the document has no pages; call beginPage() before close()") }
        try canvas.check()
        try surface.finish()
    }
}
