import Foundation
import Testing
#if canImport(FoundationXML)
import FoundationXML
#endif
@testable import Plotting

@Suite("Rendering to PNG, SVG and PDF")
struct RenderTests {
    static let kinds = Gallery.all.map(\.name)

    func figure(_ name: String) -> Figure { Gallery.all.first { $0.name == name }!.figure }

    @Test("PNG is 2× the size in points and the plot area has ink", arguments: kinds)
    func png(kind: String) throws {
        let dir = try TempDir(); defer { dir.cleanup() }
        let fig = figure(kind)
        let path = dir.file("\(kind).png")
        try fig.write(to: path)
        let img = try Surface.readPNG(path)
        #expect(img.pixelSize.width == Int((fig.width * 2).rounded()))
        #expect(img.pixelSize.height == Int((fig.height * 2).rounded()))
        // Central half of the figure (inside every plot area of these layouts) is drawn on.
        let (w, h) = img.pixelSize
        let ink = inkFraction(img, region: (w / 4, h / 4, 3 * w / 4, 3 * h / 4))
        #expect(ink > 0.04, "only \(ink) of the centre has ink")
    }

    @Test("Nothing is clipped: the outermost 2 px ring of every figure is background, also at 65 % size",
          arguments: kinds, [1.0, 0.65])
    func noClipping(kind: String, size: Double) throws {
        var fig = figure(kind)
        fig.width *= size; fig.height *= size
        let img = try fig.renderImage(scale: 2)
        let (w, h) = img.pixelSize
        var touched = 0
        for xx in 0..<w { for yy in [0, 1, h - 2, h - 1] where inkFraction(img, region: (xx, yy, xx + 1, yy + 1)) > 0 { touched += 1 } }
        for yy in 0..<h { for xx in [0, 1, w - 2, w - 1] where inkFraction(img, region: (xx, yy, xx + 1, yy + 1)) > 0 { touched += 1 } }
        #expect(touched == 0)
    }

    @Test("Series colours come from the palette")
    func paletteColoursDrawn() throws {
        let img = try figure("pc_scatter").renderImage(scale: 1)
        // Scatter points are drawn with alpha, so look for the bars' opaque colours instead.
        let bars = try figure("refusal_bars").renderImage(scale: 1)
        #expect(pixelsNear(bars, Palette.okabeIto.color(0)) > 500)
        #expect(pixelsNear(bars, Palette.okabeIto.color(1)) > 100)
        #expect(inkFraction(img, region: (0, 0, img.pixelSize.width, img.pixelSize.height)) > 0.03)
    }

    @Test("SVG is well-formed XML, sized in points, with text drawn as glyphs", arguments: kinds)
    func svg(kind: String) throws {
        let dir = try TempDir(); defer { dir.cleanup() }
        let fig = figure(kind)
        let path = dir.file("\(kind).svg")
        try fig.write(to: path)
        let data = try #require(FileManager.default.contents(atPath: path))
        let counter = ElementCounter()
        let parser = XMLParser(data: data)
        parser.delegate = counter
        #expect(parser.parse(), "SVG does not parse: \(String(describing: parser.parserError))")
        #expect(counter.root == "svg")
        #expect(counter.rootAttributes["width"] == "\(Int(fig.width))pt")
        // cairo writes text as glyph symbols referenced by <use>; one per drawn character.
        #expect(counter.glyphSymbols >= 10)
        #expect(counter.counts["use", default: 0] >= 20)
        #expect(counter.counts["path", default: 0] > 10)
    }

    @Test("Single-figure PDF has one page of the figure's size")
    func pdf() throws {
        let dir = try TempDir(); defer { dir.cleanup() }
        let path = dir.file("fig.pdf")
        try figure("explained_variance").write(to: path)
        #expect(try pdfPageCount(path) == 1)
        #expect(rawPageObjects(path) == 1)
        if let tool = which("pdfinfo") {
            let out = try run(tool, [path]).out
            let size = out.split(separator: "\n").first { $0.hasPrefix("Page size:") }.map { $0.split(separator: " ", omittingEmptySubsequences: true) }
            #expect(size.map { Array($0[2...5]) } == ["420", "x", "260", "pts"])
        }
    }

    @Test("Unknown extension, missing folder and mismatched data are PlotErrors naming the file")
    func errors() throws {
        let fig = figure("log_line")
        #expect { try fig.write(to: "x.gif") } throws: { e in
            (e as? PlotError)?.description.contains("x.gif") == true
        }
        let missing = "/nonexistent-folder-\(UUID().uuidString)/fig.png"
        #expect { try fig.write(to: missing) } throws: { e in (e as? PlotError)?.file == missing }
        let missingPDF = "/nonexistent-folder-\(UUID().uuidString)/fig.pdf"
        #expect(throws: PlotError.self) { try fig.write(to: missingPDF) }
        var bad = Axes()
        bad.line(x: [1, 2, 3], y: [1, 2])
        #expect { try Figure(axes: bad).write(to: "bad.png") } throws: { e in
            (e as? PlotError)?.description.contains("3 x but 2 y") == true
        }
        var ragged = Axes()
        ragged.heatmap([[1, 2], [3]], rowLabels: ["a", "b"], columnLabels: ["x", "y"])
        #expect(throws: PlotError.self) { try Figure(axes: ragged).validate(file: "f.png") }
    }

    @Test("Bad and degenerate data draw without crashing")
    func degenerateData() throws {
        var ax = Axes(title: "empty and NaN")
        ax.line(x: [1, 2, 3, 4], y: [1, .nan, 3, 4], label: "gap")
        ax.scatter(x: [], y: [])
        ax.histogram([5, 5, 5])
        ax.boxPlot([Distribution("empty", []), Distribution("one", [1])])
        var logAx = Axes(title: "log with non-positive values")
        logAx.yScale = .log
        logAx.line(x: [0, 1, 2], y: [0, -1, 10])
        var fig = Figure(width: 300, height: 200, rows: 1, columns: 2)
        fig[0, 0] = ax
        fig[0, 1] = logAx
        let img = try fig.renderImage(scale: 1)
        #expect(img.pixelSize.width == 300)
    }
}

/// Counts element names and glyph symbols in an SVG.
final class ElementCounter: NSObject, XMLParserDelegate {
    var root: String?
    var rootAttributes: [String: String] = [:]
    var counts: [String: Int] = [:]
    var glyphSymbols = 0
    func parser(_ parser: XMLParser, didStartElement name: String, namespaceURI: String?, qualifiedName: String?,
                attributes: [String: String] = [:]) {
        if root == nil { root = name; rootAttributes = attributes }
        counts[name, default: 0] += 1
        if name == "symbol" || name == "g", attributes["id"]?.hasPrefix("glyph") == true { glyphSymbols += 1 }
    }
}
