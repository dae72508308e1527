import Foundation
import Testing
@testable import Plotting

/// Writes every gallery figure as PNG, SVG and PDF into $ABLAB_GALLERY_DIR (skipped when unset;
/// "1" means `figures/gallery` under the package root).
@Suite("Gallery")
struct GalleryTests {
    @Test("Render the gallery", .enabled(if: ProcessInfo.processInfo.environment["ABLAB_GALLERY_DIR"] != nil))
    func gallery() throws {
        let dir = galleryDirectory()!
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        for (name, fig) in Gallery.all {
            for ext in ["png", "svg", "pdf"] {
                let path = (dir as NSString).appendingPathComponent("\(name).\(ext)")
                try fig.write(to: path)
                #expect(FileManager.default.fileExists(atPath: path))
            }
            var small = fig
            small.width *= 0.65; small.height *= 0.65
            try small.write(to: (dir as NSString).appendingPathComponent("\(name)_small.png"))
        }
    }
}

/// $ABLAB_GALLERY_DIR, with "1" or an empty value meaning `<package root>/figures/gallery`.
func galleryDirectory() -> String? {
    guard let v = ProcessInfo.processInfo.environment["ABLAB_GALLERY_DIR"] else { return nil }
    if v.isEmpty || v == "1" {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        return root.appendingPathComponent("figures/gallery").path
    }
    return v
}
