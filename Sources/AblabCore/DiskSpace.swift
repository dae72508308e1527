import Foundation

/// Not enough disk space (or a file-size limit) for what a stage will write; refused before the work.
public struct DiskSpaceError: AblabError {
    public var path: String
    public var message: String
    public init(path: String, _ message: String) { self.path = path; self.message = message }
    public var description: String { "\(path): \(AblabText.oneLine(message))" }
    public var exitCode: Int32 { ExitCode.io }
}

/// Free space and file-size limits, checked before a stage writes large files.
public enum DiskSpace {
    /// Bytes an unprivileged process may still write on the file system holding `path` (or its nearest
    /// existing ancestor), and that folder.
    public static func free(at path: String) -> (bytes: Int, folder: String)? {
        var url = URL(fileURLWithPath: path).standardizedFileURL
        while !FileManager.default.fileExists(atPath: url.path) && url.path != "/" { url.deleteLastPathComponent() }
        var st = statvfs()
        guard statvfs(url.path, &st) == 0 else { return nil }
        let (b, o) = Int(st.f_bavail).multipliedReportingOverflow(by: Int(st.f_frsize))
        return (o ? Int.max : b, url.path)
    }

    /// The largest file this process may write (RLIMIT_FSIZE, `ulimit -f`), nil when unlimited.
    public static var fileSizeLimit: Int? {
        var rl = rlimit()
        guard getrlimit(Int32(RLIMIT_FSIZE.rawValue), &rl) == 0, rl.rlim_cur != rlim_t.max else { return nil }
        return Int(clamping: rl.rlim_cur)
    }

    /// Throws `DiskSpaceError` naming `path` when `largestFile` exceeds the file-size limit or `total`
    /// bytes (still to be written under `path`) exceed the free space. `what` describes the estimate.
    public static func check(path: String, largestFile: Int, total: Int, what: String) throws {
        let f = InputLimits.formatBytes
        if let limit = fileSizeLimit, largestFile > limit {
            throw DiskSpaceError(path: path, "the file will be about \(f(largestFile)) (\(largestFile) bytes; \(what)) but the file-size limit (ulimit -f) allows \(f(limit)) (\(limit) bytes); raise the limit, record fewer prompts, positions or hooks, or use --dtype float16")
        }
        if let (free, folder) = free(at: path), total > free {
            throw DiskSpaceError(path: path, "not enough disk space: about \(f(total)) (\(total) bytes; \(what)) will be written but \(folder) has \(f(free)) (\(free) bytes) free; free space, choose another output folder, or record fewer prompts, positions or hooks, or use --dtype float16")
        }
    }
}
