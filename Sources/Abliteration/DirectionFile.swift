import Foundation
import AblabCore

/// Reads a direction vector from a file: NumPy `.npy` (little-endian float32 or float64, shape [d] or
/// [1, d], C order) or JSON (an array of numbers, or an object with a "direction" array).
public enum DirectionFile {
    /// Largest direction accepted (a residual width); guards allocations against corrupt headers.
    static let maxValues = 1 << 20

    public static func load(_ path: String) throws -> [Float] {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw AbliterationError(file: path, "cannot read the direction file (does it exist?)")
        }
        let v: [Float]
        if data.starts(with: [0x93] + Array("NUMPY".utf8)) { v = try npy(data, file: path) } else { v = try json(data, file: path) }
        guard !v.isEmpty else { throw AbliterationError(file: path, "the direction is empty") }
        guard v.allSatisfy({ $0.isFinite }) else { throw AbliterationError(file: path, "the direction holds NaN or infinite values") }
        guard v.contains(where: { $0 != 0 }) else {
            throw AbliterationError(file: path, "the direction is all zeros, so it has no orientation to remove")
        }
        return v
    }

    static func json(_ data: Data, file: String) throws -> [Float] {
        let obj: Any
        do { obj = try JSONSerialization.jsonObject(with: data) } catch {
            throw AbliterationError(file: file, "is neither a .npy file nor valid JSON")
        }
        let arr: Any? = (obj as? [String: Any])?["direction"] ?? obj
        guard let nums = arr as? [Any], nums.count <= maxValues else {
            throw AbliterationError(file: file, key: "direction", "expected an array of numbers (or {\"direction\": [...]})")
        }
        return try nums.enumerated().map { i, x in
            guard let n = x as? NSNumber else {
                throw AbliterationError(file: file, key: "direction[\(i)]", "is not a number")
            }
            return n.floatValue
        }
    }

    static func npy(_ data: Data, file: String) throws -> [Float] {
        let b = [UInt8](data)
        func bad(_ m: String) -> AbliterationError { AbliterationError(file: file, "bad .npy file: \(m)") }
        guard b.count >= 10 else { throw bad("truncated header") }
        let major = b[6]
        let headerLen: Int, start: Int
        if major == 1 {
            headerLen = Int(b[8]) | Int(b[9]) << 8; start = 10
        } else {
            guard b.count >= 12 else { throw bad("truncated header") }
            headerLen = Int(b[8]) | Int(b[9]) << 8 | Int(b[10]) << 16 | Int(b[11]) << 24; start = 12
        }
        guard start + headerLen <= b.count, let header = String(bytes: b[start..<(start + headerLen)], encoding: .ascii) else {
            throw bad("header length beyond the end of the file")
        }
        let compact = header.filter { !$0.isWhitespace }
        let size: Int
        if compact.contains("'descr':'<f4'") { size = 4 } else if compact.contains("'descr':'<f8'") { size = 8 } else {
            throw bad("only little-endian float32 ('<f4') or float64 ('<f8') are supported")
        }
        guard compact.contains("'fortran_order':False") else { throw bad("Fortran order is not supported") }
        guard let s = compact.range(of: "'shape':("), let e = compact[s.upperBound...].firstIndex(of: ")") else {
            throw bad("no shape in the header")
        }
        let dims = compact[s.upperBound..<e].split(separator: ",").map { Int($0) }
        guard dims.allSatisfy({ $0 != nil }), let n = dims.last ?? nil, dims.count == 1 || (dims.count == 2 && dims[0] == 1) else {
            throw bad("shape must be (d,) or (1, d)")
        }
        let dataStart = start + headerLen
        guard n > 0, n <= maxValues, dataStart + n * size <= b.count else { throw bad("shape (\(n)) does not fit the file size") }
        return (0..<n).map { i in
            let o = dataStart + i * size
            if size == 4 {
                var u: UInt32 = 0
                for k in 0..<4 { u |= UInt32(b[o + k]) << (8 * k) }
                return Float(bitPattern: u)
            }
            var u: UInt64 = 0
            for k in 0..<8 { u |= UInt64(b[o + k]) << (8 * k) }
            return Float(Double(bitPattern: u))
        }
    }

    /// Writes a direction as .npy (float32, shape (d,)) atomically.
    public static func writeNPY(_ v: [Float], to path: String) throws {
        var header = "{'descr': '<f4', 'fortran_order': False, 'shape': (\(v.count),), }"
        while (10 + header.utf8.count + 1) % 64 != 0 { header += " " }
        header += "\n"
        var d = Data([0x93] + Array("NUMPY".utf8) + [1, 0])
        let hl = UInt16(header.utf8.count)
        d.append(contentsOf: [UInt8(hl & 0xFF), UInt8(hl >> 8)])
        d.append(contentsOf: Array(header.utf8))
        for x in v { withUnsafeBytes(of: x.bitPattern.littleEndian) { d.append(contentsOf: $0) } }
        try SafeFiles.atomicWrite(d, to: path)
    }
}
