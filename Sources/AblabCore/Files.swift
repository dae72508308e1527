import Foundation

/// Safe names and atomic writes for everything ablab puts in a run folder.
public enum SafeFiles {
    /// Turns a checkpoint or system name into a file name: letters, digits, `.`, `-`, `_` only;
    /// no leading dot, no path separators, never empty.
    public static func sanitize(_ name: String) -> String {
        var out = ""
        for s in name.unicodeScalars {
            if (s.properties.isAlphabetic && s.isASCII) || ("0"..."9").contains(s) || s == "-" || s == "_" || s == "." {
                out.unicodeScalars.append(s)
            } else {
                out.append("_")
            }
        }
        while out.hasPrefix(".") { out.removeFirst() }
        if out.isEmpty { out = "unnamed" }
        if out.count > 120 { out = String(out.prefix(120)) }
        return out
    }

    /// Writes data to a temporary file beside `path`, fsyncs, then renames over `path`.
    public static func atomicWrite(_ data: Data, to path: String) throws {
        let url = URL(fileURLWithPath: path)
        let dir = url.deletingLastPathComponent().path
        try createDirectory(dir)
        let tmp = dir + "/.\(url.lastPathComponent).tmp-\(getpid())"
        guard FileManager.default.createFile(atPath: tmp, contents: data) else {
            throw IOError(path: path, "cannot write here (read-only folder or full disk?)")
        }
        let fd = open(tmp, O_RDONLY)
        if fd >= 0 { fsync(fd); close(fd) }
        if rename(tmp, path) != 0 {
            let msg = String(cString: strerror(errno))
            unlink(tmp)
            throw IOError(path: path, "cannot move the finished file into place: \(msg)")
        }
    }

    public static func createDirectory(_ dir: String) throws {
        do { try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true) }
        catch { throw IOError(path: dir, "cannot create the folder: \(error.localizedDescription)") }
    }
}
