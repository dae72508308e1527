import Foundation

/// A fresh temporary folder per test, removed by the caller with `cleanup()`.
struct TempDir {
    let path: String
    init() throws {
        path = FileManager.default.temporaryDirectory.appendingPathComponent("ablab-hdf5-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }
    func file(_ name: String) -> String { path + "/" + name }
    func cleanup() { try? FileManager.default.removeItem(atPath: path) }
}

/// The folder named by ABLAB_INTEROP_DIR (set by the Makefile), or nil when unset.
func interopDirectory(_ sub: String) throws -> String? {
    guard let base = ProcessInfo.processInfo.environment["ABLAB_INTEROP_DIR"], !base.isEmpty else { return nil }
    let dir = base + "/" + sub
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    return dir
}
