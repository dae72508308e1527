import Foundation
import AblabCore

/// `<run>/manifest.json`: versions, hashes, settings and timings of every stage. A stage whose input
/// fingerprint is unchanged (and whose outputs exist) is skipped on the next run.
public struct Manifest: Codable, Sendable {
    public struct StageRecord: Codable, Sendable {
        public var fingerprint: String
        public var startedAt: String
        public var seconds: Double
        public var outputs: [String]
        /// Settings the stage ran with that do not change its results (so they are not in the
        /// fingerprint), e.g. the generation batch size; absent in manifests of earlier versions.
        public var settings: [String: String]?
    }
    public var ablabVersion: String = AblabVersion.string
    public var study: String = ""
    public var studyFile: String = ""
    public var models: [String: String] = [:]      // checkpoint -> sha256
    public var promptFiles: [String: String] = [:] // path -> sha256
    public var settings: [String: String] = [:]
    public var stages: [String: StageRecord] = [:]
    public var machine: String = ""
    /// Prompt ids left out as too long for a checkpoint's context (`[record] skip_too_long`), by stage and
    /// checkpoint ("record:<checkpoint>", "generate:<checkpoint>"); absent when none were.
    public var skippedTooLong: [String: [String]]?

    public init() {}

    public static func path(run: String) -> String { run + "/manifest.json" }

    public static func load(run: String) -> Manifest? {
        guard let d = FileManager.default.contents(atPath: path(run: run)) else { return nil }
        return try? JSONDecoder().decode(Manifest.self, from: d)
    }

    public func save(run: String) throws {
        let enc = JSONEncoder()
        enc.outputFormatting = [.prettyPrinted, .sortedKeys]
        try SafeFiles.atomicWrite(try enc.encode(self), to: Manifest.path(run: run))
    }

    /// Saves this process's changes without losing another process's: under an exclusive `flock` on
    /// `<run>/.manifest.lock`, reloads the file, overlays the stage records named in `stages` (those
    /// this process ran), the file hashes, models and prompt files it knows, and the study fields, then
    /// writes it. Array tasks of one study (Slurm) share the manifest this way. Returns the merged manifest.
    public func saveMerging(run: String, stages touched: Set<String>) throws -> Manifest {
        let lockPath = run + "/.manifest.lock"
        let fd = open(lockPath, O_CREAT | O_RDWR, 0o644)
        guard fd >= 0 else { throw IOError(path: lockPath, "cannot create the manifest's lock file: \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        while flock(fd, LOCK_EX) != 0 {
            guard errno == EINTR else { throw IOError(path: lockPath, "cannot lock the manifest: \(String(cString: strerror(errno)))") }
        }
        defer { flock(fd, LOCK_UN) }
        var merged = Manifest.load(run: run) ?? Manifest()
        for k in touched { if let r = stages[k] { merged.stages[k] = r } }
        merged.settings.merge(settings) { _, mine in mine }
        merged.models.merge(models) { _, mine in mine }
        merged.promptFiles.merge(promptFiles) { _, mine in mine }
        if let mine = skippedTooLong {
            var all = merged.skippedTooLong ?? [:]
            all.merge(mine) { _, m in m }
            merged.skippedTooLong = all
        }
        for k in touched where skippedTooLong?[k] == nil { merged.skippedTooLong?[k] = nil }
        merged.ablabVersion = ablabVersion; merged.study = study; merged.studyFile = studyFile; merged.machine = machine
        try merged.save(run: run)
        return merged
    }
}

/// A stable fingerprint of a stage's inputs: hash of the sorted key/value pairs.
public func fingerprint(_ parts: [String: String]) -> String {
    var s = ""
    for k in parts.keys.sorted() { s += k + "=" + parts[k]! + "\n" }
    return SHA256.hex(Data(s.utf8))
}
