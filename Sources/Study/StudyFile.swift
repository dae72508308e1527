import Foundation
import AblabCore
import Judging

/// An error in a study file, naming the file, line and key.
public struct StudyError: AblabError {
    public var file: String
    public var line: Int?
    public var key: String
    public var message: String
    public var description: String {
        "\(file)\(line.map { ":\($0)" } ?? "") [\(key)]: \(message)"
    }
    public var exitCode: Int32 { ExitCode.badInput }
}

/// One model checkpoint of a study.
public struct CheckpointSpec: Codable, Sendable, Equatable {
    public var name: String
    /// A GGUF file or a Hugging Face folder (config.json + safetensors), relative to the study file's
    /// project root or absolute.
    public var model: String
    /// Chat format override when the model's template is not recognised (`chatml`).
    public var chatFormat: String?
}

/// `system_prompt`: the model's own default, none, or a given text.
public enum SystemPromptSetting: Codable, Sendable, Equatable {
    case modelDefault
    case none
    case text(String)

    /// Parsed from the study value: "default", "" (none) or any other text.
    public init(studyValue: String) {
        switch studyValue {
        case "default": self = .modelDefault
        case "": self = .none
        default: self = .text(studyValue)
        }
    }
    public var studyValue: String {
        switch self { case .modelDefault: return "default"; case .none: return ""; case .text(let t): return t }
    }
}

/// A user-defined refusal judge from patterns.
public struct PatternJudgeSpec: Codable, Sendable, Equatable {
    public var name: String
    public var patterns: [String]
    public var regex: Bool
}

/// Imported verdicts (`labels:<name>`): a CSV and how its columns map.
public struct LabelJudgeSpec: Codable, Sendable, Equatable {
    public var name: String
    public var file: String
    public var idColumn: String
    public var systemColumn: String?
    public var verdictColumn: String
    public var refusalValues: [String]
}

/// Everything a study fixes. Keys and defaults are documented in README, "Study files".
public struct StudySpec: Codable, Sendable, Equatable {
    public var name: String
    public var out: String
    public var systemPrompt: SystemPromptSetting
    /// Qwen3's thinking switch for every prompt (false: `enable_thinking=False`); other templates ignore it.
    public var thinking: Bool
    /// The system-prompt and thinking settings as one fingerprint value (unchanged from before the
    /// thinking switch existed when it is off, so earlier runs are not redone).
    var promptSettings: String { systemPrompt.studyValue + (thinking ? "\u{0}thinking" : "") }
    public var checkpoints: [CheckpointSpec]

    // prompts
    public var promptFiles: [String]
    public var trainPerClass: Int?          // nil = all train prompts
    public var testPerClass: Int?           // nil = all test prompts
    public var validationPerClass: Int = 32 // prompts per label every choice is made on (see PromptRoles)

    // record
    public var positions: String            // "auto" (template tokens), "-5:", "-1", …
    public var dtype: String                // float32 | float16
    public var hooks: [String]
    public var hookPositions: String? = nil // where the hooks are stored (nil: every recorded position)
    public var compress: Bool
    public var skipTooLong: Bool            // leave out prompts too long for a checkpoint's context

    // analysis
    public var bootstrap: Int
    public var maxComponents: Int

    // abliteration
    public var method: String               // mean-diff | pc1
    public var layer: Int?                  // nil = automatic candidate selection
    public var position: Int                // relative position of the direction
    public var alphas: [Double]             // systems generated per checkpoint besides the original
    public var exportWeights: Bool
    public var selectTop: Int               // cache candidates scored with the model (0 = cache ranking only)
    public var selectPrompts: Int           // validation prompts per label used for that scoring
    public var selectRequired: Bool = false // no candidate passing the filters is an error, not a marked fallback
    public var edit: String = "arditi"      // arditi | study (see EditScheme)
    public var skipBegin: Int = 1           // edit = study: first layers left unedited
    public var skipEnd: Int = 0             // edit = study: last layers left unedited
    public var fullGrid: Bool = false       // Arditi's full layer × position grid (grid stage)

    // generation
    public var harmfulTest: Int
    public var harmlessTest: Int
    public var maxNewTokens: Int
    public var batchSize: Int
    /// The costs stage: cross-entropy on the original's harmless answers, refusals in the first 48 tokens.
    public var costs: Bool = true

    // judges
    public var judges: [String]             // regex:paper, substring:arditi, llm:<checkpoint>, pattern:<name>, labels:<name>
    public var patternJudges: [PatternJudgeSpec]
    /// `[[judges.http]]`: judges over an OpenAI-compatible API, used as `http:<name>`.
    public var httpJudges: [HTTPJudgeSpec] = []
    public var labelJudges: [LabelJudgeSpec]
    public var referenceJudge: String
    public var selfJudgment: Bool
    public var selfJudgmentQuestions: [String] = ["served", "refused"] // SelfJudgment.Wording raw values

    // paper data (the study's own judge evaluation)
    public var paperData: String?

    // subspace ablation (`[subspace]`; off when the table is absent or `ks` is empty)
    public var subspace: SubspaceSpec? = nil

    // report
    public var figures: String?
}

/// `[subspace]`: remove k orthonormal directions at once and measure refusals and harmless KL against k.
public struct SubspaceSpec: Codable, Sendable, Equatable {
    /// Subspace dimensions (besides k = 0, the original model).
    public var ks: [Int] = [1, 2, 4, 8]
    /// "pca" (leading principal axes of the harmful − harmless differences) and/or "layers" (mean-diff
    /// directions of the layers nearest the chosen one, orthonormalised).
    public var bases: [String] = ["pca", "layers"]
    /// Harmful refusal rate the resilience number is measured against.
    public var threshold: Double = 0.1
    /// Test prompts answered per label (nil: `[generation]` harmful / harmless).
    public var harmful: Int? = nil
    public var harmless: Int? = nil
    /// New tokens per answer (nil: `[generation] max_new_tokens`).
    public var maxNewTokens: Int? = nil
    /// Checkpoints swept (nil: every checkpoint of the study).
    public var checkpoints: [String]? = nil
    public init() {}
}

/// Reads a study TOML file. Unknown keys and wrong types are errors naming the key and line.
public enum StudyFile {
    public static func load(_ path: String) throws -> StudySpec {
        let text = try BoundedText.readString(path, what: "study file", maxFileBytes: 16 << 20)
        return try parse(text, file: path)
    }

    public static func parse(_ text: String, file: String) throws -> StudySpec {
        // TOML allows no control characters but tab and line breaks (checked here first for a clearer message).
        var lineNo = 1
        for u in text.unicodeScalars {
            if u == "\n" { lineNo += 1; continue }
            if (u.value < 0x20 && u != "\t" && u != "\r") || u.value == 0x7F {
                throw StudyError(file: file, line: lineNo, key: "(syntax)",
                                 message: "control character U+\(String(format: "%04X", u.value)) is not allowed in TOML; remove it")
            }
        }
        let root: TOMLTable
        do { root = try TOMLTable(parsing: text) }
        catch let e as TOMLSyntaxError {
            throw StudyError(file: file, line: e.line, key: "(syntax)", message: "\(e.message) (column \(e.column)); see https://toml.io for the syntax")
        }
        let r = Reader(text: text, file: file)
        try r.allow(root, path: "", keys: ["study", "checkpoints", "prompts", "record", "analysis", "abliteration",
                                           "generation", "judges", "report", "paper", "subspace"])
        let study = try r.table(root, "study", required: true)!
        try r.allow(study, path: "study", keys: ["name", "out", "system_prompt", "thinking"])
        let name = try r.string(study, "study.name", required: true)!

        var checkpoints: [CheckpointSpec] = []
        if let arr = root["checkpoints"] {
            guard let a = arr.array else { throw r.error("checkpoints", "must be an array of tables: [[checkpoints]]") }
            for (i, v) in a.enumerated() {
                guard let t = v.table else { throw r.error("checkpoints", "entry \(i + 1) must be a table") }
                try r.allow(t, path: "checkpoints", keys: ["name", "model", "chat_format"])
                let cname = try r.string(t, "checkpoints.name", required: true)!
                if checkpoints.contains(where: { $0.name == cname }) { throw r.error("checkpoints.name", "duplicate checkpoint name '\(cname)'") }
                checkpoints.append(CheckpointSpec(name: cname, model: try r.string(t, "checkpoints.model", required: true)!,
                                                  chatFormat: try r.string(t, "checkpoints.chat_format")))
            }
        }

        let prompts = try r.table(root, "prompts") ?? TOMLTable()
        try r.allow(prompts, path: "prompts", keys: ["files", "train_per_class", "test_per_class", "validation_per_class"])
        let record = try r.table(root, "record") ?? TOMLTable()
        try r.allow(record, path: "record", keys: ["positions", "dtype", "hooks", "hook_positions", "compress", "skip_too_long"])
        let analysis = try r.table(root, "analysis") ?? TOMLTable()
        try r.allow(analysis, path: "analysis", keys: ["bootstrap", "max_components"])
        let abl = try r.table(root, "abliteration") ?? TOMLTable()
        try r.allow(abl, path: "abliteration", keys: ["method", "layer", "position", "alphas", "export_weights", "select_top", "select_prompts", "select_required", "edit", "skip_begin", "skip_end", "full_grid"])
        let gen = try r.table(root, "generation") ?? TOMLTable()
        try r.allow(gen, path: "generation", keys: ["harmful", "harmless", "max_new_tokens", "batch_size", "costs"])
        let judges = try r.table(root, "judges") ?? TOMLTable()
        try r.allow(judges, path: "judges", keys: ["use", "reference", "self_judgment", "self_judgment_question", "patterns", "labels", "http"])
        let report = try r.table(root, "report") ?? TOMLTable()
        try r.allow(report, path: "report", keys: ["figures"])
        let paper = try r.table(root, "paper") ?? TOMLTable()
        try r.allow(paper, path: "paper", keys: ["data"])

        var patternJudges: [PatternJudgeSpec] = []
        if let arr = judges["patterns"] {
            guard let a = arr.array else { throw r.error("judges.patterns", "must be an array of tables: [[judges.patterns]]") }
            for v in a {
                guard let t = v.table else { throw r.error("judges.patterns", "each entry must be a table") }
                try r.allow(t, path: "judges.patterns", keys: ["name", "patterns", "regex"])
                patternJudges.append(PatternJudgeSpec(name: try r.string(t, "judges.patterns.name", required: true)!,
                                                      patterns: try r.strings(t, "judges.patterns.patterns", required: true)!,
                                                      regex: try r.bool(t, "judges.patterns.regex") ?? false))
            }
        }
        var httpJudges: [HTTPJudgeSpec] = []
        if let arr = judges["http"] {
            guard let a = arr.array else { throw r.error("judges.http", "must be an array of tables: [[judges.http]]") }
            for v in a {
                guard let t = v.table else { throw r.error("judges.http", "each entry must be a table") }
                try r.allow(t, path: "judges.http", keys: ["name", "base_url", "model", "api_key_env", "max_concurrency", "timeout", "attempts"])
                let h = HTTPJudgeSpec(name: try r.string(t, "judges.http.name", required: true)!,
                                      baseURL: try r.string(t, "judges.http.base_url", required: true)!,
                                      model: try r.string(t, "judges.http.model", required: true)!,
                                      apiKeyEnv: try r.string(t, "judges.http.api_key_env"),
                                      maxConcurrency: try r.int(t, "judges.http.max_concurrency", min: 1) ?? 4,
                                      timeout: Double(try r.int(t, "judges.http.timeout", min: 1) ?? 60),
                                      attempts: try r.int(t, "judges.http.attempts", min: 1) ?? 6)
                do { try h.check() } catch let e as JudgeSpecError { throw r.error("judges.http.base_url", e.message) }
                httpJudges.append(h)
            }
        }
        var labelJudges: [LabelJudgeSpec] = []
        if let arr = judges["labels"] {
            guard let a = arr.array else { throw r.error("judges.labels", "must be an array of tables: [[judges.labels]]") }
            for v in a {
                guard let t = v.table else { throw r.error("judges.labels", "each entry must be a table") }
                try r.allow(t, path: "judges.labels", keys: ["name", "file", "id_column", "system_column", "verdict_column", "refusal_values"])
                labelJudges.append(LabelJudgeSpec(
                    name: try r.string(t, "judges.labels.name", required: true)!,
                    file: try r.string(t, "judges.labels.file", required: true)!,
                    idColumn: try r.string(t, "judges.labels.id_column") ?? "id",
                    systemColumn: try r.string(t, "judges.labels.system_column"),
                    verdictColumn: try r.string(t, "judges.labels.verdict_column") ?? "verdict",
                    refusalValues: try r.strings(t, "judges.labels.refusal_values") ?? ["REFUSAL"]))
            }
        }

        var spec = StudySpec(
            name: name,
            out: try r.string(study, "study.out") ?? "runs/\(SafeFiles.sanitize(name))",
            systemPrompt: SystemPromptSetting(studyValue: try r.string(study, "study.system_prompt") ?? "default"),
            thinking: try r.bool(study, "study.thinking") ?? false,
            checkpoints: checkpoints,
            promptFiles: try r.strings(prompts, "prompts.files") ?? [],
            trainPerClass: try r.int(prompts, "prompts.train_per_class", min: 1),
            testPerClass: try r.int(prompts, "prompts.test_per_class", min: 1),
            validationPerClass: try r.int(prompts, "prompts.validation_per_class", min: 0) ?? 32,
            positions: try r.string(record, "record.positions") ?? "auto",
            dtype: try r.oneOf(record, "record.dtype", ["float32", "float16"]) ?? "float32",
            hooks: try r.strings(record, "record.hooks") ?? [],
            hookPositions: try r.string(record, "record.hook_positions"),
            compress: try r.bool(record, "record.compress") ?? false,
            skipTooLong: try r.bool(record, "record.skip_too_long") ?? false,
            bootstrap: try r.int(analysis, "analysis.bootstrap", min: 0) ?? 200,
            maxComponents: try r.int(analysis, "analysis.max_components", min: 1) ?? 32,
            method: try r.oneOf(abl, "abliteration.method", ["mean-diff", "pc1", "per-layer", "projected", "norm-preserving"]) ?? "mean-diff",
            layer: try r.int(abl, "abliteration.layer", min: 0),
            position: try r.int(abl, "abliteration.position", min: -1024) ?? -1,
            alphas: try r.doubles(abl, "abliteration.alphas") ?? [1.0],
            exportWeights: try r.bool(abl, "abliteration.export_weights") ?? false,
            selectTop: try r.int(abl, "abliteration.select_top", min: 0) ?? 5,
            selectPrompts: try r.int(abl, "abliteration.select_prompts", min: 1) ?? 32,
            selectRequired: try r.bool(abl, "abliteration.select_required") ?? false,
            edit: try r.oneOf(abl, "abliteration.edit", ["arditi", "study"]) ?? "arditi",
            skipBegin: try r.int(abl, "abliteration.skip_begin", min: 0) ?? 1,
            skipEnd: try r.int(abl, "abliteration.skip_end", min: 0) ?? 0,
            harmfulTest: try r.int(gen, "generation.harmful", min: 0) ?? 50,
            harmlessTest: try r.int(gen, "generation.harmless", min: 0) ?? 50,
            maxNewTokens: try r.int(gen, "generation.max_new_tokens", min: 1) ?? 256,
            batchSize: try r.int(gen, "generation.batch_size", min: 1) ?? 16,
            judges: try r.strings(judges, "judges.use") ?? ["regex:paper", "substring:arditi"],
            patternJudges: patternJudges,
            labelJudges: labelJudges,
            referenceJudge: try r.string(judges, "judges.reference") ?? "regex:paper",
            selfJudgment: try r.bool(judges, "judges.self_judgment") ?? true,
            paperData: try r.string(paper, "paper.data"),
            figures: try r.string(report, "report.figures"))
        spec.httpJudges = httpJudges
        for j in spec.judges where j.hasPrefix("http:") && !httpJudges.contains(where: { "http:" + $0.name == j }) {
            throw r.error("judges.use", "judge '\(j)' has no [[judges.http]] table with name = \"\(j.dropFirst(5))\"")
        }
        if spec.positions.isEmpty { throw r.error("record.positions", "must not be empty (e.g. \"-5:\")") }
        var spec2 = spec
        spec2.costs = try r.bool(gen, "generation.costs") ?? true
        spec2.fullGrid = try r.bool(abl, "abliteration.full_grid") ?? false
        if let t = try r.table(root, "subspace") {
            try r.allow(t, path: "subspace", keys: ["ks", "bases", "threshold", "harmful", "harmless", "max_new_tokens", "checkpoints"])
            var sub = SubspaceSpec()
            if let v = t["ks"] {
                guard let a = v.array else { throw r.error("subspace.ks", "must be an array of integers, e.g. [1, 2, 4, 8]") }
                sub.ks = try a.map { e in
                    guard let i = e.int, i >= 1, i <= 4096 else { throw r.error("subspace.ks", "every k must be an integer in 1…4096") }
                    return i
                }
                sub.ks = Array(Set(sub.ks)).sorted()
            }
            if let b = try r.strings(t, "subspace.bases") {
                for x in b where !["pca", "layers"].contains(x) { throw r.error("subspace.bases", "must name \"pca\" and/or \"layers\"; got '\(x)'") }
                guard !b.isEmpty else { throw r.error("subspace.bases", "name at least one basis: \"pca\" or \"layers\"") }
                sub.bases = b
            }
            if let v = t["threshold"] {
                guard let x = v.double ?? v.int.map(Double.init), x >= 0, x <= 1 else { throw r.error("subspace.threshold", "must be a rate in 0…1, e.g. 0.1") }
                sub.threshold = x
            }
            sub.harmful = try r.int(t, "subspace.harmful", min: 1)
            sub.harmless = try r.int(t, "subspace.harmless", min: 1)
            sub.maxNewTokens = try r.int(t, "subspace.max_new_tokens", min: 1)
            if let cs = try r.strings(t, "subspace.checkpoints") {
                for c in cs where !checkpoints.contains(where: { $0.name == c }) {
                    throw r.error("subspace.checkpoints", "'\(c)' is not the name of a [[checkpoints]] table")
                }
                sub.checkpoints = cs
            }
            spec2.subspace = sub.ks.isEmpty ? nil : sub
        }
        if let v = judges["self_judgment_question"] {
            let qs: [String]
            if let one = v.string { qs = [one] } else { qs = try r.strings(judges, "judges.self_judgment_question") ?? [] }
            guard !qs.isEmpty else { throw r.error("judges.self_judgment_question", "name at least one wording: \"served\" or \"refused\"") }
            for q in qs where !["served", "refused"].contains(q) {
                throw r.error("judges.self_judgment_question", "must be \"served\", \"refused\" or a list of them; got '\(q)'")
            }
            spec2.selfJudgmentQuestions = qs
        }
        return spec2
    }

    /// Typed access with errors that carry the key's line.
    struct Reader {
        let text: String
        let file: String

        /// The line that assigns `key` inside its table (`generation.max_new_tokens` → the
        /// `max_new_tokens =` line under `[generation]`), or that opens table `key`.
        func line(of dotted: String) -> Int? {
            let parts = dotted.split(separator: ".").map(String.init)
            let table = parts.dropLast().joined(separator: ".")
            let last = parts.last ?? dotted
            var current = ""
            for (i, l) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
                let t = l.trimmingCharacters(in: .whitespaces)
                if t.hasPrefix("[") {
                    current = t.trimmingCharacters(in: CharacterSet(charactersIn: "[] "))
                    if current == dotted { return i + 1 }
                    continue
                }
                if current == table && t.hasPrefix(last) {
                    let rest = t.dropFirst(last.count).trimmingCharacters(in: .whitespaces)
                    if rest.hasPrefix("=") { return i + 1 }
                }
            }
            return nil
        }

        func error(_ key: String, _ message: String) -> StudyError {
            StudyError(file: file, line: line(of: key), key: key, message: message)
        }

        func allow(_ t: TOMLTable, path: String, keys: Set<String>) throws {
            for k in t.keys where !keys.contains(k) {
                let full = path.isEmpty ? k : "\(path).\(k)"
                throw error(full, "unknown key; expected one of: \(keys.sorted().joined(separator: ", "))")
            }
        }

        private func leaf(_ key: String) -> String { String(key.split(separator: ".").last ?? Substring(key)) }

        func table(_ t: TOMLTable, _ key: String, required: Bool = false) throws -> TOMLTable? {
            guard let v = t[key] else {
                if required { throw StudyError(file: file, line: nil, key: key, message: "missing table [\(key)]") }
                return nil
            }
            guard let tt = v.table else { throw error(key, "must be a table [\(key)]") }
            return tt
        }

        func string(_ t: TOMLTable, _ key: String, required: Bool = false) throws -> String? {
            guard let v = t[leaf(key)] else {
                if required { throw StudyError(file: file, line: nil, key: key, message: "missing key '\(key)'") }
                return nil
            }
            guard let s = v.string else { throw error(key, "must be a string") }
            return s
        }

        func int(_ t: TOMLTable, _ key: String, min: Int) throws -> Int? {
            guard let v = t[leaf(key)] else { return nil }
            guard let i = v.int else { throw error(key, "must be an integer") }
            if i < min { throw error(key, "must be at least \(min)") }
            return i
        }

        func bool(_ t: TOMLTable, _ key: String) throws -> Bool? {
            guard let v = t[leaf(key)] else { return nil }
            guard let b = v.bool else { throw error(key, "must be true or false") }
            return b
        }

        func strings(_ t: TOMLTable, _ key: String, required: Bool = false) throws -> [String]? {
            guard let v = t[leaf(key)] else {
                if required { throw StudyError(file: file, line: nil, key: key, message: "missing key '\(key)'") }
                return nil
            }
            guard let a = v.array else { throw error(key, "must be an array of strings") }
            return try a.map { e in
                guard let s = e.string else { throw error(key, "must be an array of strings") }
                return s
            }
        }

        func doubles(_ t: TOMLTable, _ key: String) throws -> [Double]? {
            guard let v = t[leaf(key)] else { return nil }
            guard let a = v.array else { throw error(key, "must be an array of numbers") }
            return try a.map { e in
                if let d = e.double { return d }
                if let i = e.int { return Double(i) }
                throw error(key, "must be an array of numbers")
            }
        }

        func oneOf(_ t: TOMLTable, _ key: String, _ allowed: [String]) throws -> String? {
            guard let s = try string(t, key) else { return nil }
            guard allowed.contains(s) else { throw error(key, "must be one of \(allowed.joined(separator: ", ")); got '\(s)'") }
            return s
        }
    }
}
