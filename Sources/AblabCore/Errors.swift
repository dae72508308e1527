import Foundation

/// An error a user can act on: one sentence naming the file (and line, key or tensor) and what to do.
/// Every module throws its own typed errors; they conform to this so the CLI can print them uniformly.
public protocol AblabError: Error, CustomStringConvertible, Sendable {
    /// The process exit code the CLI uses for this error (see README, "Errors and exit codes").
    var exitCode: Int32 { get }
}

extension AblabError {
    public var exitCode: Int32 { 1 }
}

/// Exit codes shared by every subcommand.
public enum ExitCode {
    public static let failure: Int32 = 1      // a stage failed (bad model, numerical problem, …)
    public static let badInput: Int32 = 2     // bad command line, study file, prompt file or model file
    public static let io: Int32 = 3           // a file could not be read or written (permissions, full disk)
    public static let numerical: Int32 = 4    // NaN or infinity in activations or logits; those prompts were stopped
    public static let resources: Int32 = 5    // not enough memory for the model and its work: refused before loading
    public static let interrupted: Int32 = 130 // Ctrl-C; finished work is kept
}

/// NaN or infinity in a model's activations or logits. The prompts concerned were stopped (nothing of them
/// is stored); the others were finished and kept.
public struct NumericalError: AblabError {
    /// The model file.
    public var file: String
    public var checkpoint: String
    /// The system (checkpoint or abliterated system) that ran.
    public var system: String
    /// One entry per stopped prompt: "prompt '<id>': <value> at <hook>, token position <n>".
    public var stopped: [String]
    /// What was finished and kept.
    public var kept: String
    public init(file: String, checkpoint: String, system: String, stopped: [String], kept: String) {
        self.file = file; self.checkpoint = checkpoint; self.system = system; self.stopped = stopped; self.kept = kept
    }
    public var description: String {
        let more = stopped.count > 1 ? " (and \(stopped.count - 1) more, listed in the log)" : ""
        return "\(file): \(system == checkpoint ? "checkpoint \(checkpoint)" : "system \(system)") produced a non-finite value for \(stopped.count) prompt\(stopped.count == 1 ? "" : "s"), first \(stopped.first ?? "")\(more); those prompts were stopped and not stored, \(kept); check the model file (a damaged or badly converted checkpoint) or the abliteration's alpha"
    }
    public var exitCode: Int32 { ExitCode.numerical }
}

/// Errors about input files: named file, optional line / key, message.
public struct InputError: AblabError {
    public var file: String
    public var line: Int?
    public var key: String?
    public var message: String
    public init(file: String, line: Int? = nil, key: String? = nil, _ message: String) {
        self.file = file; self.line = line; self.key = key; self.message = message
    }
    public var description: String {
        var loc = file
        if let line { loc += ":\(line)" }
        if let key { loc += " [\(AblabText.printable(key))]" }
        return "\(loc): \(AblabText.oneLine(message))"
    }
    public var exitCode: Int32 { ExitCode.badInput }
}

/// Errors reading or writing files (permissions, full disk, missing folders).
public struct IOError: AblabError {
    public var path: String
    public var message: String
    public init(path: String, _ message: String) { self.path = path; self.message = message }
    public var description: String { "\(path): \(message)" }
    public var exitCode: Int32 { ExitCode.io }
}

/// Text from a damaged or hostile file made fit for a one-line error message.
public enum AblabText {
    /// `s` with control characters, invalid text and other non-printing scalars escaped (`\n`, `\u{0}`)
    /// and cut to `limit` characters (with "…"), so an error stays one readable line.
    public static func printable(_ s: String, limit: Int = 80) -> String {
        var out = ""
        var n = 0
        for u in s.unicodeScalars {
            if n >= limit { out += "…"; break }
            switch u {
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if u.properties.generalCategory == .control || u.properties.generalCategory == .format
                    || u.properties.generalCategory == .lineSeparator || u.properties.generalCategory == .paragraphSeparator
                    || u.properties.generalCategory == .unassigned || u.properties.generalCategory == .surrogate
                    || u.value == 0xFFFD {
                    out += "\\u{\(String(u.value, radix: 16))}"
                } else {
                    out.unicodeScalars.append(u)
                }
            }
            n += 1
        }
        return out
    }

    /// `s` with control characters escaped but not shortened.
    public static func oneLine(_ s: String) -> String { printable(s, limit: Int.max) }
}
