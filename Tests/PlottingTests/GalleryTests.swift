import Foundation
import Testing
@testable import Plotting

/// Writes every gallery figure as PNG, SVG and PDF into $ABLAB_GALLERY_DIR (skipped when unset).
@Suite("Gallery")
struct GalleryTests {
    @Test("Render the gallery", .enabled(if: ProcessInfo.processInfo.environment["ABLAB_GALLERY_DIR"] != nil))
    func gallery() throws {
        let dir = ProcessInfo.processInfo.environment["ABLAB_GALLERY_DIR"]!
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        for (name, fig) in Gallery.all {
            for ext in ["png", "svg", "pdf"] {
                let path = (dir as NSString).appendingPathComponent("\(name).\(ext)")
                try fig.write(to: path)
                #expect(FileManager.default.fileExists(atPath: path))
            }
        }
    }
}
