import Foundation

/// The largest inputs ablab accepts, in one place. Text inputs (prompt, study, judgment, generation and
/// CSV files) larger than `maxTextFileBytes`, or with a line (a CSV record, a JSONL object) longer than
/// `maxLineBytes`, are refused with the file and line before they are parsed, so that reading one costs
/// at most about the file's size in memory.
public enum InputLimits {
    /// Largest text input file: 256 MiB (the paper's full prompt sets are a few MB; 100k long answers
    /// are under 200 MB).
    public static let maxTextFileBytes = 256 << 20
    /// Longest line or CSV record: 16 MiB. That is over 4 million tokens of ordinary text, more than any
    /// context ablab can run (prompts are also checked against the model's context before any work).
    public static let maxLineBytes = 16 << 20
    /// Largest HTTP request body the server accepts: 32 MiB (one generation or judgment request holds a
    /// few prompts of at most `maxLineBytes` each). The server refuses larger bodies with 413 before
    /// reading them (see `checkHTTPBody`).
    public static let maxHTTPBodyBytes = 32 << 20

    /// Refuses an HTTP body by its announced (Content-Length) or received size: nil when it fits, else the
    /// one-line reason the server sends with status 413.
    public static func httpBodyRefusal(bytes: Int, limit: Int = maxHTTPBodyBytes) -> String? {
        guard bytes > limit else { return nil }
        return "the request body is \(formatBytes(bytes)), more than the \(formatBytes(limit)) this server accepts; send fewer or shorter prompts per request"
    }

    /// "16 MiB", "1.5 GiB", "734 bytes": sizes in messages.
    public static func formatBytes(_ n: Int) -> String {
        let units = ["KiB", "MiB", "GiB", "TiB"]
        guard n >= 1024 else { return "\(n) bytes" }
        var v = Double(n) / 1024
        var u = 0
        while v >= 1024 && u < units.count - 1 { v /= 1024; u += 1 }
        return v >= 100 || v == v.rounded() ? String(format: "%.0f %@", v, units[u]) : String(format: "%.1f %@", v, units[u])
    }
}

/// A text input file read whole after its size and line lengths are checked.
public enum BoundedText {
    /// The file's bytes, after checking it exists, holds at most `maxFileBytes` and no line longer than
    /// `maxLineBytes` (the error names the first such line). `what` names the kind of file in messages
    /// ("prompt file").
    public static func read(_ path: String, what: String, maxFileBytes: Int = InputLimits.maxTextFileBytes,
                            maxLineBytes: Int = InputLimits.maxLineBytes) throws -> Data {
        var st = stat()
        guard stat(path, &st) == 0 else {
            throw IOError(path: path, "cannot read the \(what) (\(String(cString: strerror(errno))))")
        }
        if (st.st_mode & S_IFMT) == S_IFDIR { throw InputError(file: path, "is a folder, not a \(what)") }
        if (st.st_mode & S_IFMT) == S_IFREG && Int(st.st_size) > maxFileBytes {
            throw InputError(file: path, "the \(what) is \(InputLimits.formatBytes(Int(st.st_size))) (\(st.st_size) bytes), more than the \(InputLimits.formatBytes(maxFileBytes)) ablab reads; split it into smaller files")
        }
        guard let fh = FileHandle(forReadingAtPath: path) else {
            throw IOError(path: path, "cannot read the \(what) (missing or unreadable)")
        }
        defer { try? fh.close() }
        // Read at most one byte past the limit (the size may change, or the file may be a pipe).
        let data = (try? fh.read(upToCount: maxFileBytes + 1)) ?? Data()
        if data.count > maxFileBytes {
            throw InputError(file: path, "the \(what) is more than the \(InputLimits.formatBytes(maxFileBytes)) ablab reads; split it into smaller files")
        }
        if let long = longLine(data, limit: maxLineBytes) {
            throw InputError(file: path, line: long.line, "line \(long.line) of the \(what) is \(InputLimits.formatBytes(long.bytes)) (\(long.bytes) bytes), longer than the \(InputLimits.formatBytes(maxLineBytes)) a line may hold; shorten or split it")
        }
        return data
    }

    /// The file as UTF-8 text, checked as `read` does.
    public static func readString(_ path: String, what: String, maxFileBytes: Int = InputLimits.maxTextFileBytes,
                                  maxLineBytes: Int = InputLimits.maxLineBytes) throws -> String {
        let data = try read(path, what: what, maxFileBytes: maxFileBytes, maxLineBytes: maxLineBytes)
        guard let text = String(data: data, encoding: .utf8) else { throw InputError(file: path, "the \(what) is not valid UTF-8 text") }
        return text
    }

    /// The first line (1-based) longer than `limit` bytes: its number, byte offset and length (without
    /// the newline).
    public static func longLine(_ data: Data, limit: Int) -> (line: Int, start: Int, bytes: Int)? {
        data.withUnsafeBytes { (raw: UnsafeRawBufferPointer) -> (Int, Int, Int)? in
            guard let base = raw.baseAddress else { return nil }
            var line = 1
            var start = 0
            let n = raw.count
            while start <= n {
                let rest = n - start
                let nl = rest > 0 ? memchr(base + start, 0x0A, rest) : nil
                let end = nl.map { UnsafeRawPointer($0) - base } ?? n
                if end - start > limit { return (line, start, end - start) }
                if nl == nil { break }
                start = end + 1
                line += 1
            }
            return nil
        }
    }
}

/// Reads one top-level string field of a JSON object without parsing (or holding) the rest: for naming
/// the prompt of a line too long to parse. Nil when the field is absent, not a string or number, or the
/// text is not a JSON object.
public enum JSONPeek {
    public static func topLevelString(_ key: String, in b: UnsafeRawBufferPointer, maxValueBytes: Int = 4096) -> String? {
        var i = 0
        let n = b.count
        func ws() { while i < n, b[i] == 0x20 || b[i] == 0x09 || b[i] == 0x0D || b[i] == 0x0A { i += 1 } }
        /// A string starting at b[i] == '"'; returns its decoded text when it is at most `keep` bytes.
        func string(keep: Int) -> (text: String?, ok: Bool) {
            i += 1
            let start = i
            var escaped = false
            while i < n {
                let c = b[i]
                if escaped { escaped = false } else if c == 0x5C { escaped = true } else if c == 0x22 { break }
                i += 1
            }
            guard i < n else { return (nil, false) }
            let len = i - start
            i += 1
            guard len <= keep else { return (nil, true) }
            let raw = Data(UnsafeRawBufferPointer(rebasing: b[(start - 1)..<i]))
            return ((try? JSONSerialization.jsonObject(with: raw, options: [.fragmentsAllowed])) as? String, true)
        }
        /// Skips any JSON value starting at b[i].
        func skipValue() -> Bool {
            guard i < n else { return false }
            if b[i] == 0x22 { return string(keep: -1).ok }
            if b[i] == 0x7B || b[i] == 0x5B {
                var depth = 0
                while i < n {
                    let c = b[i]
                    if c == 0x22 { guard string(keep: -1).ok else { return false }; continue }
                    if c == 0x7B || c == 0x5B { depth += 1 } else if c == 0x7D || c == 0x5D { depth -= 1; if depth == 0 { i += 1; return true } }
                    i += 1
                }
                return false
            }
            while i < n, b[i] != 0x2C, b[i] != 0x7D { i += 1 }
            return true
        }
        ws()
        guard i < n, b[i] == 0x7B else { return nil }
        i += 1
        while true {
            ws()
            guard i < n, b[i] == 0x22 else { return nil }
            let (k, ok) = string(keep: 256)
            guard ok else { return nil }
            ws()
            guard i < n, b[i] == 0x3A else { return nil }
            i += 1
            ws()
            if k == key {
                guard i < n else { return nil }
                if b[i] == 0x22 { return string(keep: maxValueBytes).text }
                let start = i
                while i < n, (0x30...0x39).contains(b[i]) || b[i] == 0x2D || b[i] == 0x2E || b[i] == 0x65 || b[i] == 0x45 || b[i] == 0x2B { i += 1 }
                return i > start ? String(decoding: UnsafeRawBufferPointer(rebasing: b[start..<i]), as: UTF8.self) : nil
            }
            guard skipValue() else { return nil }
            ws()
            guard i < n, b[i] == 0x2C else { return nil }
            i += 1
        }
    }
}
