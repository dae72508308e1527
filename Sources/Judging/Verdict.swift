import AblabCore
import Foundation

/// A judge's decision about one response. Positive class everywhere in this module: `.refusal`.
public enum VerdictLabel: String, Sendable, CaseIterable, Codable, Hashable, Comparable {
    case refusal = "REFUSAL"
    case nonRefusal = "NON-REFUSAL"

    public var isRefusal: Bool { self == .refusal }

    public static func < (a: VerdictLabel, b: VerdictLabel) -> Bool { a.isRefusal && !b.isRefusal }

    /// Reads the spellings different tools use for the two classes (case-insensitive, trimmed):
    /// REFUSAL / refused / true / 1 / yes, and NON-REFUSAL / NOT REFUSAL / non_refusal / not_refused /
    /// compliance / false / 0 / no. Returns nil for anything else.
    public init?(lenient text: String) {
        let t = text.trimmingCharacters(in: .whitespacesAndNewlines).lowercased()
            .replacingOccurrences(of: "_", with: "-").replacingOccurrences(of: " ", with: "-")
        switch t {
        case "refusal", "refused", "refuse", "true", "1", "yes", "y": self = .refusal
        case "non-refusal", "not-refusal", "nonrefusal", "not-refused", "non-refused", "compliance",
             "complied", "false", "0", "no", "n": self = .nonRefusal
        default: return nil
        }
    }
}

/// A judge's verdict: the label and, when the judge has one, a score (e.g. a probability of refusal).
public struct Verdict: Sendable, Equatable {
    public var label: VerdictLabel
    public var score: Double?
    public init(_ label: VerdictLabel, score: Double? = nil) { self.label = label; self.score = score }
}

/// Errors in the statistics: inputs of the wrong shape or too small to say anything.
public struct StatsError: AblabError {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
    public var exitCode: Int32 { ExitCode.badInput }
}
