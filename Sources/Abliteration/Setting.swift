import Foundation
import AblabCore

/// Errors of the abliteration stage: one sentence naming the file (or setting) and what to do.
public struct AbliterationError: AblabError {
    public var file: String
    public var key: String?
    public var message: String
    public init(file: String, key: String? = nil, _ message: String) {
        self.file = file; self.key = key; self.message = message
    }
    public var description: String {
        if let key { return "\(file) [\(key)]: \(message)" }
        return "\(file): \(message)"
    }
    public var exitCode: Int32 { ExitCode.badInput }
}

/// How the refusal direction was obtained from the cached activations.
public enum DirectionMethod: String, Sendable, CaseIterable, Codable {
    /// mean(harmful) − mean(harmless) at one layer and position.
    case meanDiff = "mean-diff"
    /// The first principal component of the pooled activations (sign: towards harmful).
    case pc1
    /// Each layer's own mean-diff direction (at the setting's position), ablated at that layer's writers
    /// (`AblationEdit.perLayer`); the setting's layer only names the system.
    case perLayer = "per-layer"
    /// The mean-diff direction made orthogonal to the harmless fit mean at its layer and position
    /// (`SubspaceBases.projected`, grimjim's projected abliteration).
    case projected
    /// The mean-diff direction removed by the norm-preserving edit (`EditForm.normPreserving`).
    case normPreserving = "norm-preserving"

    /// The cached direction this method starts from (mean-diff for every method but pc1).
    public var cachedDirection: String { self == .pc1 ? "pc1" : "mean-diff" }
}

/// One abliteration of one checkpoint: which direction (method, layer, position) and how strongly it is
/// removed (`alpha`: 0 = unchanged, 1 = full projection, other values scale the removed component).
///
/// System names: the original model is named by its checkpoint, the abliterated one
/// `<checkpoint>+abl-<method>-L<layer>-p<position>-a<alpha>`, e.g.
/// `SmolLM2-135M+abl-mean-diff-L12-p-1-a0.5` (alpha printed as 1, 0.25, 1.5).
public struct AbliterationSetting: Sendable, Hashable, Codable {
    public var checkpoint: String
    public var method: DirectionMethod
    public var layer: Int
    /// Position relative to the end of the prompt (negative) or absolute (non-negative), as recorded.
    public var position: Int
    public var alpha: Double
    /// Which weights the direction is removed from (nil: Arditi et al.'s, `EditScheme.arditi`).
    public var edit: EditScheme?
    /// true: the direction's layer was kept although no candidate passed the model-based selection's
    /// filters (the cache ranking's best); nil otherwise.
    public var fallback: Bool?

    public init(checkpoint: String, method: DirectionMethod = .meanDiff, layer: Int, position: Int, alpha: Double = 1,
                edit: EditScheme? = nil, fallback: Bool = false) {
        self.checkpoint = checkpoint; self.method = method; self.layer = layer; self.position = position; self.alpha = alpha
        self.edit = edit == .arditi ? nil : edit
        self.fallback = fallback ? true : nil
    }

    /// `<checkpoint>+abl-<method>-L<layer>-p<position>-a<alpha>`, then `-study` for the study's edit
    /// scheme and `-fallback` for a direction no candidate filter accepted.
    public var systemName: String {
        "\(checkpoint)\(SystemName.marker)\(method.rawValue)-L\(layer)-p\(position)-a\(SystemName.formatAlpha(alpha))"
            + (edit.map { $0.kind == .study ? "-study" : "" } ?? "") + (fallback == true ? "-fallback" : "")
    }

    /// The edit scheme in effect.
    public var scheme: EditScheme { edit ?? .arditi }

    /// The system name made safe as a file name (`SafeFiles.sanitize`).
    public var fileName: String { SafeFiles.sanitize(systemName) }
}

/// Which weights (or, at inference time, which activations) lose the refusal direction.
public struct EditScheme: Sendable, Hashable, Codable {
    public enum Kind: String, Sendable, Codable, CaseIterable {
        /// Arditi et al. (2024): the token embedding and every layer's attention and MLP outputs.
        case arditi
        /// The study's code (arXiv 2510.02768, after Orion-zhen/abliteration): `o_proj` and `down_proj`
        /// of layers [skipBegin, L − skipEnd), no embedding, W ← W − α r̂ r̂ᵀ W (α = its scale factor).
        case study
    }
    public var kind: Kind
    public var skipBegin: Int
    public var skipEnd: Int
    public init(kind: Kind, skipBegin: Int = 1, skipEnd: Int = 0) { self.kind = kind; self.skipBegin = skipBegin; self.skipEnd = skipEnd }
    public static let arditi = EditScheme(kind: .arditi, skipBegin: 0, skipEnd: 0)

    /// The edited layers of a model with `nLayers` blocks.
    public func layers(_ nLayers: Int) -> Range<Int> {
        kind == .arditi ? 0..<nLayers : min(max(skipBegin, 0), nLayers)..<max(min(max(skipBegin, 0), nLayers), nLayers - max(skipEnd, 0))
    }
    /// Whether the token embedding is edited.
    public var embedding: Bool { kind == .arditi }
}

/// The study's names for evaluated systems: an original checkpoint, or a checkpoint with an abliteration.
public enum SystemName {
    static let marker = "+abl-"

    /// Shortest decimal that reads back as the same Double, without a trailing ".0": 1, 0.25, 1.5, -0.5.
    public static func formatAlpha(_ a: Double) -> String {
        if a == a.rounded(), abs(a) < 1e15 { return String(Int64(a)) }
        return "\(a)"
    }

    /// Name of a system: the checkpoint itself, or its abliterated variant.
    public static func format(checkpoint: String, setting: AbliterationSetting?) -> String {
        setting?.systemName ?? checkpoint
    }

    /// Splits a system name into its checkpoint and (when abliterated) setting.
    /// Throws when the name carries the abliteration marker but the rest does not parse.
    public static func parse(_ name: String) throws -> (checkpoint: String, setting: AbliterationSetting?) {
        guard let m = name.range(of: marker, options: .backwards) else { return (name, nil) }
        let checkpoint = String(name[..<m.lowerBound])
        var rest = Substring(name[m.upperBound...])
        func bad(_ what: String) -> AbliterationError {
            AbliterationError(file: "system name \"\(name)\"", "\(what); expected <checkpoint>+abl-<method>-L<layer>-p<position>-a<alpha>")
        }
        guard !checkpoint.isEmpty else { throw bad("the checkpoint is empty") }
        // From the end: -a<alpha>, -p<position> (may be negative), -L<layer>; what is left is the method.
        guard let a = rest.range(of: "-a", options: .backwards) else { throw bad("no -a<alpha>") }
        var fallback = false, study = false
        var tail = rest[a.upperBound...]
        if tail.hasSuffix("-fallback") { fallback = true; tail = tail.dropLast("-fallback".count) }
        if tail.hasSuffix("-study") { study = true; tail = tail.dropLast("-study".count) }
        guard let alpha = Double(tail), alpha.isFinite else { throw bad("alpha is not a number") }
        rest = rest[..<a.lowerBound]
        guard let p = rest.range(of: "-p", options: .backwards), let position = Int(rest[p.upperBound...]) else {
            throw bad("no -p<position>")
        }
        rest = rest[..<p.lowerBound]
        guard let l = rest.range(of: "-L", options: .backwards), let layer = Int(rest[l.upperBound...]), layer >= 0 else {
            throw bad("no -L<layer>")
        }
        rest = rest[..<l.lowerBound]
        guard let method = DirectionMethod(rawValue: String(rest)) else {
            throw bad("unknown method \"\(rest)\" (\(DirectionMethod.allCases.map(\.rawValue).joined(separator: ", ")))")
        }
        return (checkpoint, AbliterationSetting(checkpoint: checkpoint, method: method, layer: layer, position: position, alpha: alpha,
                                                edit: study ? EditScheme(kind: .study) : nil, fallback: fallback))
    }
}
