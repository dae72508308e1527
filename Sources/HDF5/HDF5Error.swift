import AblabCore
import Foundation
import CHDF5

/// A failure of the HDF5 layer, naming the file and (when known) the object path inside it.
public struct HDF5Error: AblabError, Equatable {
    public enum Kind: Sendable, Equatable {
        case fileNotFound      // the file does not exist
        case notHDF5           // the file exists but is not (or no longer) a readable HDF5 file
        case alreadyExists     // refused to overwrite a file or object
        case missingObject     // no group, dataset or attribute at that path
        case typeMismatch      // the stored element type differs from the one asked for
        case shapeMismatch     // offsets/counts/buffer sizes do not fit the dataset's shape
        case invalidArgument   // a bad name, rank or option
        case library           // the HDF5 library reported an error (I/O, full disk, corruption)
    }
    public var kind: Kind
    public var file: String
    public var object: String?
    public var message: String
    /// The library's full error text (shown with `--verbose`).
    public var detail: String?

    public init(_ kind: Kind, file: String, object: String? = nil, _ message: String, detail: String? = nil) {
        self.kind = kind; self.file = file; self.object = object; self.message = message; self.detail = detail
    }

    public var description: String {
        var loc = file
        if let object { loc += " [\(object)]" }
        return "\(loc): \(message)"
    }

    public var exitCode: Int32 {
        switch kind {
        case .fileNotFound, .notHDF5, .typeMismatch, .shapeMismatch, .missingObject, .invalidArgument: return ExitCode.badInput
        case .alreadyExists: return ExitCode.failure
        case .library: return ExitCode.io
        }
    }
}

/// Library set-up shared by every wrapper type.
enum H5Lib {
    private static let opened: Bool = { H5open() >= 0 }()

    /// Opens the library once and silences HDF5's own stderr printing on the calling thread
    /// (in the thread-safe build the setting is per thread).
    @inline(__always) static func quiet() {
        _ = opened
        ablab_h5_silence_errors()
    }

    /// The most specific message on the calling thread's HDF5 error stack, cleared afterwards.
    static func lastError() -> String {
        var buf = [CChar](repeating: 0, count: 512)
        buf.withUnsafeMutableBufferPointer { ablab_h5_last_error($0.baseAddress!) }
        let s = String(decoding: buf.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return s
    }

    /// A library-level error carrying HDF5's own description of what went wrong.
    static func failure(_ what: String, file: String, object: String?) -> HDF5Error {
        let raw = lastError()
        let (short, advice) = summarize(raw)
        let msg = short.isEmpty ? "\(what) failed" : "\(what) failed (HDF5: \(short))"
        return HDF5Error(.library, file: file, object: object, msg + "; " + advice, detail: raw.isEmpty ? nil : raw)
    }

    /// One line from HDF5's error text, and advice. I/O failures carry the system's message and errno
    /// ("file write failed: time = …, errno = 28, error message = 'No space left on device', …").
    static func summarize(_ raw: String) -> (String, String) {
        let line = raw.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }.joined(separator: " ")
        var advice = "check the file is intact, writable and the disk is not full"
        guard let m = line.range(of: "error message = '"), let end = line[m.upperBound...].firstIndex(of: "'") else {
            return (line.count > 300 ? String(line.prefix(300)) + "…" : line, advice)
        }
        let system = String(line[m.upperBound..<end])
        let head = line.components(separatedBy: ":").first ?? line
        var errno: Int32 = 0
        if let r = line.range(of: "errno = ") { errno = Int32(line[r.upperBound...].prefix { $0.isNumber }) ?? 0 }
        switch errno {
        case ENOSPC, EFBIG, EDQUOT: advice = "the disk is full or a file-size limit was reached; free space and run again (finished work is kept)"
        case EACCES, EROFS, EPERM: advice = "the folder or file system is read-only; choose another output folder or fix its permissions"
        default: break
        }
        return ("\(head): \(system)", advice)
    }
}
