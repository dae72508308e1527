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
}

/// A stable fingerprint of a stage's inputs: hash of the sorted key/value pairs.
public func fingerprint(_ parts: [String: String]) -> String {
    var s = ""
    for k in parts.keys.sorted() { s += k + "=" + parts[k]! + "\n" }
    return SHA256.hex(Data(s.utf8))
}
