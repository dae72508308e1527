import Foundation
@testable import Plotting

/// Temporary folder for one test, removed by the caller with `cleanup()`.
struct TempDir {
    let path: String
    init(_ name: String = #function) throws {
        let safe = name.filter { $0.isLetter || $0.isNumber }
        path = NSTemporaryDirectory() + "plotting-\(safe)-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }
    func file(_ name: String) -> String { (path as NSString).appendingPathComponent(name) }
    func cleanup() { try? FileManager.default.removeItem(atPath: path) }
}

/// Finds an executable on PATH.
func which(_ tool: String) -> String? {
    for dir in (ProcessInfo.processInfo.environment["PATH"] ?? "").split(separator: ":") {
        let p = "\(dir)/\(tool)"
        if FileManager.default.isExecutableFile(atPath: p) { return p }
    }
    return nil
}

/// Runs a tool and returns its standard output.
func run(_ exe: String, _ args: [String]) throws -> (status: Int32, out: String) {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: exe)
    p.arguments = args
    let pipe = Pipe()
    p.standardOutput = pipe
    p.standardError = FileHandle.nullDevice
    try p.run()
    let data = pipe.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    return (p.terminationStatus, String(decoding: data, as: UTF8.self))
}

/// Page count: `pdfinfo` when installed, otherwise the number of `/Type /Page` objects.
func pdfPageCount(_ path: String) throws -> Int {
    if let tool = which("pdfinfo") {
        let r = try run(tool, [path])
        for line in r.out.split(separator: "\n") where line.hasPrefix("Pages:") {
            return Int(line.dropFirst(6).trimmingCharacters(in: .whitespaces)) ?? -1
        }
        return -1
    }
    return rawPageObjects(path)
}

/// Counts `/Type /Page` (not `/Pages`) in the raw PDF bytes.
func rawPageObjects(_ path: String) -> Int {
    guard let data = FileManager.default.contents(atPath: path) else { return -1 }
    let text = String(decoding: data, as: UTF8.self)
    let re = try! NSRegularExpression(pattern: "/Type\\s*/Page(?![s\\w])")
    return re.numberOfMatches(in: text, range: NSRange(text.startIndex..., in: text))
}

/// Fraction of pixels in `region` (pixel coordinates) that are not near-white.
func inkFraction(_ s: Surface, region: (x0: Int, y0: Int, x1: Int, y1: Int)) -> Double {
    var ink = 0, total = 0
    for yy in region.y0..<region.y1 {
        for xx in region.x0..<region.x1 {
            guard let p = s.pixel(x: xx, y: yy) else { continue }
            total += 1
            if p.a > 0 && (Int(p.r) + Int(p.g) + Int(p.b) < 3 * 235) { ink += 1 }
        }
    }
    return total > 0 ? Double(ink) / Double(total) : 0
}

/// Number of pixels within `tol` (per channel, 0…255) of an opaque colour.
func pixelsNear(_ s: Surface, _ c: Color, tol: Int = 12) -> Int {
    let (w, h) = s.pixelSize
    let (r, g, b) = (Int(c.r * 255), Int(c.g * 255), Int(c.b * 255))
    var n = 0
    for yy in 0..<h {
        for xx in 0..<w {
            guard let p = s.pixel(x: xx, y: yy), p.a == 255 else { continue }
            if abs(Int(p.r) - r) <= tol && abs(Int(p.g) - g) <= tol && abs(Int(p.b) - b) <= tol { n += 1 }
        }
    }
    return n
}
