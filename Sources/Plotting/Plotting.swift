import AblabCore

/// Stage module Plotting: paper-quality figures and PDF pages drawn with Cairo.
///
/// Two layers:
/// - **Cairo wrapper** (`Surface`, `Canvas`, `PDFDocument`): owned surfaces and contexts (PNG at a scale
///   factor, SVG, single- and multi-page PDF in points), lines, rectangles, text in DejaVu Sans
///   (bold/italic, measured extents, word-wrapped paragraphs, booktabs tables) and `Canvas.draw(_:in:)`
///   to place a `Figure` into any rectangle of a page.
/// - **Figure model** (`Figure`, `Axes`, `Series`, `Annotation`): plain values describing subplots with
///   line, scatter, bar, heatmap, histogram, box and violin series; drawn by the renderer onto any
///   canvas, with margins computed from measured text, nice-number and log ticks, thinned or rotated
///   tick labels, and a legend that never covers data.
///
/// ```swift
/// var ax = Axes(title: "Refusal rate", yLabel: "Rate")
/// ax.bars(categories: ["SmolLM2", "Qwen2.5"],
///         groups: [BarGroup("original", [0.93, 0.88]), BarGroup("abliterated", [0.07, 0.12])],
///         valueLabels: true)
/// ax.yLimits = .fixed(0, 1)
/// try Figure(width: 400, height: 260, axes: ax).write(to: "figures/refusal.pdf")   // .png / .svg / .pdf
///
/// let doc = try PDFDocument(path: "report.pdf", pageSize: .a4)
/// let page = try doc.beginPage()
/// let used = page.paragraph(text, at: Point(56, 56), width: 483, font: Font(size: 10))
/// page.draw(figure, in: Rect(x: 56, y: 56 + used + 12, width: 483, height: 300))
/// try doc.close()
/// ```
public enum PlottingModule {}
