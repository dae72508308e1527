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
            unlink(tmp)
            throw IOError(path: path, "cannot write the file (read-only folder or full disk); free space or fix the folder's permissions and run again")
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
        catch {
            // Name the folder that stops us: the nearest existing ancestor, when it is not writable.
            var ancestor = URL(fileURLWithPath: dir).standardizedFileURL
            while !FileManager.default.fileExists(atPath: ancestor.path) && ancestor.path != "/" { ancestor.deleteLastPathComponent() }
            if !FileManager.default.isWritableFile(atPath: ancestor.path) {
                throw IOError(path: dir, "cannot create the folder: \(ancestor.path) is not writable (read-only folder or file system); choose another output folder or fix its permissions")
            }
            throw IOError(path: dir, "cannot create the folder (\(error.localizedDescription)); check the path and the free space")
        }
    }

    /// Appends `data` to the open file `fd` with write(2) (retrying short writes and EINTR), then fsync(2)s
    /// it. Returns nil on success, else the system's reason.
    public static func appendSynced(_ fd: Int32, _ data: Data) -> String? {
        var failure: String? = nil
        data.withUnsafeBytes { (buf: UnsafeRawBufferPointer) in
            var done = 0
            while done < buf.count {
                let n = write(fd, buf.baseAddress! + done, buf.count - done)
                if n < 0 && errno == EINTR { continue }
                if n <= 0 { failure = String(cString: strerror(n < 0 ? errno : EIO)); return }
                done += n
            }
        }
        if failure == nil && fsync(fd) != 0 { failure = String(cString: strerror(errno)) }
        return failure
    }
}
