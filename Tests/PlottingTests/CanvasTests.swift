import Foundation
import Testing
@testable import Plotting

@Suite("Cairo layer: surfaces, text, multi-page PDF")
struct CanvasTests {
    @Test("Image surface has scale × points pixels")
    func imageScale() throws {
        let s = try Surface.image(width: 100, height: 50, scale: 2)
        #expect(s.pixelSize.width == 200 && s.pixelSize.height == 100)
        let c = try Canvas(surface: s)
        c.fillRect(Rect(x: 0, y: 0, width: 50, height: 50), color: .black)   // left half in points
        #expect(s.pixel(x: 99, y: 50)?.r == 0)      // inside (pixels)
        #expect(s.pixel(x: 101, y: 50)?.a == 0)     // outside: untouched, transparent
    }

    @Test("Invalid sizes and scales are PlotErrors")
    func invalid() {
        #expect(throws: PlotError.self) { try Surface.image(width: 0, height: 10) }
        #expect(throws: PlotError.self) { try Surface.image(width: 10, height: 10, scale: .nan) }
        #expect(throws: PlotError.self) { try Surface.pdf(path: "x.pdf", width: 1e9, height: 10) }
    }

    @Test("Text width grows with the string and with bold; ascent/descent are positive")
    func metrics() throws {
        let c = try Canvas(surface: try Surface.image(width: 10, height: 10))
        let f = Font(size: 10)
        let a = c.measure("abc", font: f), b = c.measure("abcabc", font: f)
        #expect(a.width > 10 && abs(b.width - 2 * a.width) < 0.5)
        #expect(c.measure("WWW", font: f.bolded()).width > c.measure("WWW", font: f).width)
        #expect(a.ascent > 5 && a.descent > 1)
        // Font size scales linearly.
        #expect(abs(c.measure("abc", font: Font(size: 20)).width - 2 * a.width) < 0.5)
    }

    @Test("Wrapped lines fit the width and the height is lines × line height")
    func wrapping() throws {
        let c = try Canvas(surface: try Surface.image(width: 10, height: 10))
        let f = Font(size: 9)
        let text = String(repeating: "Abliteration removes the refusal direction from the residual stream. ", count: 6)
        let lines = c.wrap(text, font: f, width: 200)
        #expect(lines.count > 3)
        #expect(lines.allSatisfy { c.measure($0, font: f).width <= 200 })
        #expect(lines.joined(separator: " ").split(separator: " ") == text.split(separator: " "))
        #expect(abs(c.paragraphHeight(text, width: 200, font: f) - Double(lines.count) * c.lineHeight(f)) < 1e-9)
        // A word longer than the width is broken between characters.
        let long = c.wrap(String(repeating: "x", count: 200), font: f, width: 50)
        #expect(long.count > 3 && long.allSatisfy { c.measure($0, font: f).width <= 50 })
        // Explicit newlines start new lines.
        #expect(c.wrap("a\nb", font: f, width: 500) == ["a", "b"])
    }

    @Test("Two-page PDF: text, table and a figure; pages counted and rendered")
    func twoPagePDF() throws {
        let dir = try TempDir(); defer { dir.cleanup() }
        let path = galleryDirectory().map { dir in
            try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            return (dir as NSString).appendingPathComponent("two_pages.pdf")
        }
            ?? dir.file("two_pages.pdf")
        let doc = try PDFDocument(path: path, pageSize: .a4, title: "Abliteration report")
        let margin = 56.0
        let width = PageSize.a4.width - 2 * margin
        var c = try doc.beginPage()
        var y = margin
        y += c.paragraph("Abliteration report", at: Point(margin, y), width: width, font: Font(size: 18, bold: true))
        y += 6
        y += c.paragraph("SmolLM2-135M-Instruct · 30 layers · 128 harmful / 128 harmless prompts", at: Point(margin, y),
                         width: width, font: Font(size: 10, italic: true), color: .gray)
        y += 12
        let body = "We compute the refusal direction as the difference of mean residual-stream activations between harmful and harmless prompts at every layer, select the layer whose direction best separates the two sets, and project it out of every weight matrix that writes to the residual stream. The table below lists refusal rates before and after abliteration as judged by four judges."
        y += c.paragraph(body, at: Point(margin, y), width: width, font: Font(size: 10))
        y += 12
        let h = c.table(header: ["System", "Original", "Abliterated", "Δ"],
                        rows: [["SmolLM2-135M", "0.93", "0.07", "−0.86"], ["Qwen2.5-0.5B", "0.88", "0.12", "−0.76"],
                               ["SafeLM-1.7B", "0.97", "0.61", "−0.36"]],
                        at: Point(margin, y), columnWidths: [200, 90, 90, 80])
        #expect(h > 50)
        try doc.showPage()
        c = try doc.beginPage(size: PageSize.a4.landscape)
        c.paragraph("Figure 1. Refusal rates and directions.", at: Point(margin, margin), width: 600, font: Font(size: 11, bold: true))
        c.draw(Gallery.panels(), in: Rect(x: margin, y: margin + 24, width: PageSize.a4.landscape.width - 2 * margin,
                                         height: PageSize.a4.landscape.height - 2 * margin - 24))
        try doc.close()
        #expect(doc.pageCount == 2)
        #expect(try pdfPageCount(path) == 2)
        #expect(rawPageObjects(path) == 2)

        if let tool = which("pdftoppm") {
            let prefix = (path as NSString).deletingPathExtension
            #expect(try run(tool, ["-png", "-r", "60", path, prefix]).status == 0)
            let pages = try FileManager.default.contentsOfDirectory(atPath: (path as NSString).deletingLastPathComponent)
                .filter { $0.hasPrefix((prefix as NSString).lastPathComponent + "-") && $0.hasSuffix(".png") }.sorted()
            #expect(pages.count == 2)
            for p in pages {
                let img = try Surface.readPNG(((path as NSString).deletingLastPathComponent as NSString).appendingPathComponent(p))
                let (w, hh) = img.pixelSize
                #expect(inkFraction(img, region: (0, 0, w, hh)) > 0.01)
            }
            // Page 2 is landscape A4.
            if let second = pages.last {
                let img = try Surface.readPNG(((path as NSString).deletingLastPathComponent as NSString).appendingPathComponent(second))
                #expect(img.pixelSize.width > img.pixelSize.height)
            }
        }
    }

    @Test("US letter and A4 page sizes in points")
    func pageSizes() throws {
        // 8.5 × 11 in = 612 × 792 pt; 210 × 297 mm = 595.28 × 841.89 pt.
        #expect(PageSize.letter == PageSize(width: 612, height: 792))
        #expect(abs(PageSize.a4.width - 210 / 25.4 * 72) < 0.01 && abs(PageSize.a4.height - 297 / 25.4 * 72) < 0.01)
        let dir = try TempDir(); defer { dir.cleanup() }
        let path = dir.file("letter.pdf")
        let doc = try PDFDocument(path: path, pageSize: .letter)
        let c = try doc.beginPage()
        c.text("US letter", at: Point(72, 72), font: Font(size: 12, italic: true))
        try doc.close()
        if let tool = which("pdfinfo") {
            let line = try run(tool, [path]).out.split(separator: "\n").first { $0.hasPrefix("Page size:") }
            #expect(line?.split(separator: " ", omittingEmptySubsequences: true)[2...4].joined(separator: " ") == "612 x 792")
        }
        #expect(try pdfPageCount(path) == 1)
    }

    @Test("PDFDocument misuse is a PlotError")
    func pdfMisuse() throws {
        let dir = try TempDir(); defer { dir.cleanup() }
        let doc = try PDFDocument(path: dir.file("x.pdf"))
        #expect(throws: PlotError.self) { try doc.showPage() }
        #expect(throws: PlotError.self) { try doc.close() }
    }

    @Test("Figure scaled to fit a rectangle keeps its aspect ratio")
    func scaleToFit() throws {
        let s = try Surface.image(width: 400, height: 400, scale: 1)
        let c = try Canvas(surface: s)
        c.paint(.white)
        var fig = Gallery.refusalBars()
        fig.style.background = Color(hex: 0xFF0000)
        c.draw(fig, in: Rect(x: 0, y: 0, width: 400, height: 400), scaleToFit: true)
        // 440 × 270 scaled by 400/440: 400 × 245.5, centred vertically → rows 0…76 stay white.
        #expect(s.pixel(x: 200, y: 60)?.g == 255)
        #expect(s.pixel(x: 2, y: 200)?.r == 255 && s.pixel(x: 2, y: 200)?.g == 0)
    }
}
