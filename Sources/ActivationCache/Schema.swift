import AblabCore
import Foundation
import HDF5

/// Constants of the activation-cache file format (see README, "Activation cache").
public enum ActivationSchema {
    public static let format = "ablab.activations"
    public static let formatVersion = 1
    /// Largest chunk the writer makes, in bytes (a chunk is one layer × up to 256 prompts × P × d_model).
    static let maxChunkBytes = 16 << 20
    static let maxChunkPrompts = 256
}

/// Element type of the stored activations.
public enum ActivationDType: String, Codable, Sendable, CaseIterable {
    case float32, float16
    var h5: H5ElementType { self == .float32 ? .float32 : .float16 }
    public var size: Int { self == .float32 ? 4 : 2 }
}

/// The descriptive root attributes of a cache file.
public struct ActivationHeader: Codable, Equatable, Sendable {
    public var checkpoint: String
    public var modelPath: String
    public var modelSHA256: String
    public var architecture: String
    public var nLayers: Int
    public var dModel: Int
    public var systemPrompt: String
    /// Token positions relative to the end of the chat-formatted prompt, e.g. [-5, -4, -3, -2, -1].
    public var positions: [Int32]
    public var ablabVersion: String
    /// ISO 8601 UTC time the file was finalized (set by the writer).
    public var created: String
    /// What each of `positions` is in the chat-formatted prompt (`PositionRole`; stored as the attribute
    /// `position_roles`, comma-separated). Empty when the recording did not say (files of older ablab).
    public var positionRoles: [PositionRole]
    /// The positions the hooks under /hooks are stored at: a subset of `positions`, in the same order
    /// (attribute `hook_positions`; absent: every position).
    public var hookPositions: [Int32]
    /// How the model's weight products were computed: "f32" or "bf16" (`ComputeMode`; attribute `compute`,
    /// absent in files of older ablab, which computed in f32).
    public var compute: String

    public init(checkpoint: String, modelPath: String, modelSHA256: String, architecture: String, nLayers: Int,
                dModel: Int, systemPrompt: String, positions: [Int32], ablabVersion: String = AblabVersion.string,
                created: String = "", positionRoles: [PositionRole] = [], hookPositions: [Int32]? = nil, compute: String = "f32") {
        self.checkpoint = checkpoint; self.modelPath = modelPath; self.modelSHA256 = modelSHA256
        self.architecture = architecture; self.nLayers = nLayers; self.dModel = dModel
        self.systemPrompt = systemPrompt; self.positions = positions; self.ablabVersion = ablabVersion
        self.created = created; self.positionRoles = positionRoles; self.hookPositions = hookPositions ?? positions
        self.compute = compute
    }

    /// The role of relative position `position` (nil: not recorded or not said).
    public func role(of position: Int) -> PositionRole? {
        guard let i = positions.firstIndex(of: Int32(truncatingIfNeeded: position)), i < positionRoles.count else { return nil }
        return positionRoles[i]
    }

    /// Recorded positions of the given role, in stored order.
    public func positions(role: PositionRole) -> [Int] {
        zip(positions, positionRoles).filter { $0.1 == role }.map { Int($0.0) }
    }

    /// The header with `created` blanked, for comparing two files' provenance.
    public var ignoringCreated: ActivationHeader { var h = self; h.created = ""; return h }

    func write(to f: H5Handle) throws {
        try f.setAttribute("format", ActivationSchema.format)
        try f.setAttribute("format_version", ActivationSchema.formatVersion)
        try f.setAttribute("checkpoint", checkpoint)
        try f.setAttribute("model_path", modelPath)
        try f.setAttribute("model_sha256", modelSHA256)
        try f.setAttribute("architecture", architecture)
        try f.setAttribute("n_layers", nLayers)
        try f.setAttribute("d_model", dModel)
        try f.setAttribute("system_prompt", systemPrompt)
        try f.setAttribute("positions", positions)
        try f.setAttribute("ablab_version", ablabVersion)
        try f.setAttribute("created", created)
        if !positionRoles.isEmpty { try f.setAttribute("position_roles", positionRoles.map(\.rawValue).joined(separator: ",")) }
        if hookPositions != positions { try f.setAttribute("hook_positions", hookPositions) }
        try f.setAttribute("compute", compute)
    }

    static func read(from f: H5File) throws -> ActivationHeader {
        let format = (try? f.stringAttribute("format")) ?? ""
        guard format == ActivationSchema.format else {
            throw ActivationCacheError(.badFile, path: f.filePath,
                                       "not an ablab activation cache (format attribute is '\(format)', expected '\(ActivationSchema.format)')")
        }
        let version = try f.intAttribute("format_version")
        guard version == ActivationSchema.formatVersion else {
            throw ActivationCacheError(.badFile, path: f.filePath,
                                       "activation cache format version \(version); this ablab reads version \(ActivationSchema.formatVersion) (record again or upgrade ablab)")
        }
        var roles: [PositionRole] = []
        if try f.hasAttribute("position_roles") {
            let raw = try f.stringAttribute("position_roles")
            roles = try raw.split(separator: ",").map { r in
                guard let v = PositionRole(rawValue: String(r)) else {
                    throw ActivationCacheError(.badFile, path: f.filePath, "attribute position_roles holds '\(r)'; expected one of \(PositionRole.allCases.map(\.rawValue).joined(separator: ", "))")
                }
                return v
            }
        }
        let hookPositions: [Int32]? = try f.hasAttribute("hook_positions") ? f.int32ArrayAttribute("hook_positions") : nil
        let compute = try f.hasAttribute("compute") ? f.stringAttribute("compute") : "f32"
        return ActivationHeader(
            checkpoint: try f.stringAttribute("checkpoint"), modelPath: try f.stringAttribute("model_path"),
            modelSHA256: try f.stringAttribute("model_sha256"), architecture: try f.stringAttribute("architecture"),
            nLayers: try f.intAttribute("n_layers"), dModel: try f.intAttribute("d_model"),
            systemPrompt: try f.stringAttribute("system_prompt"), positions: try f.int32ArrayAttribute("positions"),
            ablabVersion: try f.stringAttribute("ablab_version"), created: try f.stringAttribute("created"),
            positionRoles: roles, hookPositions: hookPositions, compute: compute)
    }

    func validate(path: String) throws {
        guard nLayers >= 1, dModel >= 1, nLayers <= 100_000, dModel <= 1 << 20 else {
            throw ActivationCacheError(.badInput, path: path, "n_layers (\(nLayers)) and d_model (\(dModel)) must be positive")
        }
        guard !positions.isEmpty, Set(positions).count == positions.count else {
            throw ActivationCacheError(.badInput, path: path, "positions \(positions) must be non-empty and distinct")
        }
        guard positionRoles.isEmpty || positionRoles.count == positions.count else {
            throw ActivationCacheError(.badInput, path: path, "position_roles has \(positionRoles.count) entries for \(positions.count) positions")
        }
        var last = -1
        for p in hookPositions {
            guard let i = positions.firstIndex(of: p), i > last else {
                throw ActivationCacheError(.badInput, path: path, "hook_positions \(hookPositions) must be recorded positions (\(positions)), in their order")
            }
            last = i
        }
    }
}

/// What a recorded position is in the chat-formatted prompt.
public enum PositionRole: String, Codable, Sendable, CaseIterable {
    /// The last token of the user's instruction, just before the template's post-instruction tokens
    /// (Zhao et al. 2025's t_inst: where harmfulness is read).
    case instructionLast = "instruction_last"
    /// One of the template tokens after the instruction (`<|im_end|>\n<|im_start|>assistant\n`; Arditi et
    /// al.'s candidate positions; refusal is read here).
    case postInstruction = "post_instruction"
    /// Any earlier token of the instruction.
    case instruction

    /// The role of relative position `position` (−1 = last token) for a template with `templateTokens`
    /// post-instruction tokens.
    public static func of(_ position: Int, templateTokens: Int) -> PositionRole {
        if position >= -templateTokens { return .postInstruction }
        return position == -templateTokens - 1 ? .instructionLast : .instruction
    }
}

/// A deterministic subset of the prompts for parallel recording: prompt index % count == index.
public struct ShardSpec: Codable, Equatable, Sendable, CustomStringConvertible {
    public var index: Int
    public var count: Int
    public init(index: Int, count: Int) throws {
        guard count >= 1, (0..<count).contains(index) else {
            throw ActivationCacheError(.badInput, path: "--shard", "shard \(index)/\(count) is invalid: need 0 ≤ k < n")
        }
        self.index = index; self.count = count
    }
    private init(unchecked index: Int, _ count: Int) { self.index = index; self.count = count }
    public static let whole = ShardSpec(unchecked: 0, 1)
    /// Parses "k/n".
    public init(parsing s: String) throws {
        let parts = s.split(separator: "/")
        guard parts.count == 2, let k = Int(parts[0]), let n = Int(parts[1]) else {
            throw ActivationCacheError(.badInput, path: "--shard", "'\(s)' is not of the form k/n (e.g. 0/4)")
        }
        try self.init(index: k, count: n)
    }
    public func contains(_ promptIndex: Int) -> Bool { promptIndex % count == index }
    public var description: String { "\(index)/\(count)" }
    public var isWhole: Bool { count == 1 }
}

/// Errors of the activation cache, naming the file or folder and what to do.
public struct ActivationCacheError: AblabError, Equatable {
    public enum Kind: Sendable, Equatable {
        case badInput              // wrong shapes/indices handed to the writer
        case badFile               // a cache file that is not in the expected format
        case alreadyFinished       // the final file exists and overwriting was not asked for
        case fingerprintMismatch   // a partial recording was made with different settings
        case incomplete            // finalize() before every prompt was recorded
        case locked                // another process is recording the same checkpoint
        case mergeMismatch         // merge inputs that do not belong together
        case missing               // no such checkpoint, layer, position or hook
    }
    public var kind: Kind
    public var path: String
    public var message: String
    public init(_ kind: Kind, path: String, _ message: String) { self.kind = kind; self.path = path; self.message = message }
    public var description: String { "\(path): \(message)" }
    public var exitCode: Int32 {
        switch kind {
        case .badInput, .badFile, .fingerprintMismatch, .mergeMismatch, .missing: return ExitCode.badInput
        case .alreadyFinished, .incomplete, .locked: return ExitCode.failure
        }
    }
}

/// What must match for a partial recording to be resumed (stored as fingerprint.json and on every shard).
struct RecordingFingerprint: Codable, Equatable {
    var checkpoint: String
    var modelSHA256: String
    var promptSetSHA256: String
    var nPrompts: Int
    var positions: [Int32]
    var hookPositions: [Int32]?
    var hooks: [String]
    var dtype: ActivationDType
    var nLayers: Int
    var dModel: Int
    var systemPromptSHA256: String
    var shard: String
    var formatVersion: Int
    /// nil: f32 (fingerprints of older ablab have no such field).
    var compute: String? = nil

    /// Names of fields that differ, for the error message.
    func differences(from o: RecordingFingerprint) -> [String] {
        var d: [String] = []
        if checkpoint != o.checkpoint { d.append("checkpoint (\(o.checkpoint) → \(checkpoint))") }
        if modelSHA256 != o.modelSHA256 { d.append("model sha256 (\(o.modelSHA256.prefix(12))… → \(modelSHA256.prefix(12))…)") }
        if promptSetSHA256 != o.promptSetSHA256 || nPrompts != o.nPrompts { d.append("prompt set (\(o.nPrompts) → \(nPrompts) prompts, hash differs)") }
        if positions != o.positions { d.append("positions (\(o.positions) → \(positions))") }
        if hooks != o.hooks { d.append("hooks (\(o.hooks.count) → \(hooks.count) hooks)") }
        if (hookPositions ?? positions) != (o.hookPositions ?? o.positions) { d.append("hook positions (\(o.hookPositions ?? o.positions) → \(hookPositions ?? positions))") }
        if dtype != o.dtype { d.append("dtype (\(o.dtype.rawValue) → \(dtype.rawValue))") }
        if nLayers != o.nLayers || dModel != o.dModel { d.append("model shape (\(o.nLayers)×\(o.dModel) → \(nLayers)×\(dModel))") }
        if systemPromptSHA256 != o.systemPromptSHA256 { d.append("system prompt") }
        if shard != o.shard { d.append("shard (\(o.shard) → \(shard))") }
        if formatVersion != o.formatVersion { d.append("format version") }
        if (compute ?? "f32") != (o.compute ?? "f32") { d.append("compute (\(o.compute ?? "f32") → \(compute ?? "f32"))") }
        return d
    }

    var json: String {
        let enc = JSONEncoder()
        enc.outputFormatting = [.sortedKeys, .prettyPrinted]
        return String(decoding: (try? enc.encode(self)) ?? Data(), as: UTF8.self)
    }
}

/// SHA-256 of a prompt list: for each prompt, id, text, label and split (nil as ""), each as an 8-byte
/// little-endian UTF-8 length followed by the bytes. Order matters.
public func promptSetSHA256(_ prompts: [Prompt]) -> String {
    var h = SHA256()
    func add(_ s: String) {
        var n = UInt64(s.utf8.count).littleEndian
        withUnsafeBytes(of: &n) { h.update($0) }
        h.update(Data(s.utf8))
    }
    for p in prompts { add(p.id); add(p.text); add(p.label); add(p.split ?? "") }
    return h.finalize()
}

func isoNow() -> String {
    let f = ISO8601DateFormatter()
    f.formatOptions = [.withInternetDateTime]
    f.timeZone = TimeZone(identifier: "UTC")
    return f.string(from: Date())
}
