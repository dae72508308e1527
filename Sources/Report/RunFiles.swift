import AblabCore
import Analysis
import Foundation
import Judging

/// Errors of the report stage: a file that is present but unreadable or malformed.
public struct ReportError: AblabError {
    public var file: String
    public var message: String
    public init(file: String, _ message: String) { self.file = file; self.message = message }
    public var description: String { "\(file): \(message)" }
}

/// Where a run folder keeps the files the report reads. Every figure is a function of these files.
public struct RunFolder: Sendable {
    public var path: String
    public init(_ path: String) { self.path = path }
    public var manifest: String { path + "/manifest.json" }
    public var analysisH5: String { path + "/analysis.h5" }
    public var metricsCSV: String { path + "/analysis/metrics.csv" }
    public var similarityCSV: String { path + "/analysis/similarity.csv" }
    public var candidatesCSV: String { path + "/analysis/candidates.csv" }
    public var judgmentsCSV: String { path + "/judgments.csv" }
    /// Written by `ablab agree --paper DIR --out <run>/agreement`.
    public var paperJudgmentsCSV: String { path + "/agreement/judgments_paper.csv" }
    public var selfJudgmentCSV: String { path + "/self_judgment.csv" }
    public var generations: String { path + "/generations" }
    public var activations: String { path + "/activations" }
    public var reportPDF: String { path + "/report.pdf" }
    public var figures: String { path + "/figures" }

    public static func exists(_ p: String) -> Bool { FileManager.default.fileExists(atPath: p) }
}

/// A small CSV table with named columns.
struct NamedTable {
    var file: String
    var columns: [String: Int]
    var rows: [CSV.Row]

    /// Refuses files over `maxBytes` (the tidy files of a large run are a few MB).
    static func read(_ path: String, required: [String], maxBytes: Int = 256 << 20) throws -> NamedTable {
        let text = try BoundedText.readString(path, what: "CSV file", maxFileBytes: maxBytes)
        let all = try CSV.parse(text, file: path)
        guard let header = all.first else { throw InputError(file: path, "the file is empty; it needs the header \(required.joined(separator: ","))") }
        var col: [String: Int] = [:]
        for (i, h) in header.fields.enumerated() { col[h.trimmingCharacters(in: .whitespaces)] = i }
        for r in required where col[r] == nil {
            throw InputError(file: path, line: header.line, key: r, "the header has no '\(r)' column (expected \(required.joined(separator: ",")))")
        }
        var body: [CSV.Row] = []
        for r in all.dropFirst() {
            if r.fields.count == 1 && r.fields[0].isEmpty { continue }
            guard r.fields.count == header.fields.count else {
                throw InputError(file: path, line: r.line, "the row has \(r.fields.count) fields but the header has \(header.fields.count)")
            }
            body.append(r)
        }
        return NamedTable(file: path, columns: col, rows: body)
    }

    func field(_ r: CSV.Row, _ c: String) -> String { columns[c].map { r.fields[$0] } ?? "" }
    func int(_ r: CSV.Row, _ c: String) throws -> Int {
        guard let v = Int(field(r, c).trimmingCharacters(in: .whitespaces)) else {
            throw InputError(file: file, line: r.line, key: c, "'\(field(r, c))' is not an integer")
        }
        return v
    }
    func double(_ r: CSV.Row, _ c: String) throws -> Double {
        let t = field(r, c).trimmingCharacters(in: .whitespaces).lowercased()
        switch t {
        case "nan", "": return .nan
        case "inf": return .infinity
        case "-inf": return -.infinity
        default:
            guard let v = Double(t) else { throw InputError(file: file, line: r.line, key: c, "'\(field(r, c))' is not a number") }
            return v
        }
    }
}

// MARK: - Analysis files

/// `<run>/analysis/metrics.csv` (`TidyCSV`): checkpoint,layer,position,method,metric,value.
public struct AnalysisMetrics: Sendable {
    public var rows: [TidyRow]

    public init(rows: [TidyRow]) { self.rows = rows }

    public static func load(_ path: String) throws -> AnalysisMetrics {
        let t = try NamedTable.read(path, required: ["checkpoint", "layer", "position", "method", "metric", "value"])
        return AnalysisMetrics(rows: try t.rows.map { r in
            TidyRow(checkpoint: t.field(r, "checkpoint"), layer: try t.int(r, "layer"), position: try t.int(r, "position"),
                    method: t.field(r, "method"), metric: t.field(r, "metric"), value: try t.double(r, "value"))
        })
    }

    /// Checkpoints in first-seen order.
    public var checkpoints: [String] { var s = Set<String>(); return rows.map(\.checkpoint).filter { s.insert($0).inserted } }
    /// Positions present, sorted.
    public var positions: [Int] { Array(Set(rows.map(\.position))).sorted() }
    /// The position the figures use: −1 (the last prompt token) when present, else the largest.
    public var defaultPosition: Int? { positions.contains(-1) ? -1 : positions.last }

    /// value[checkpoint][layer] of one (method, metric) at one position.
    public func series(method: String, metric: String, position: Int) -> [String: [(layer: Int, value: Double)]] {
        var out: [String: [(layer: Int, value: Double)]] = [:]
        for r in rows where r.method == method && r.metric == metric && r.position == position {
            out[r.checkpoint, default: []].append((r.layer, r.value))
        }
        for k in out.keys { out[k]!.sort { $0.layer < $1.layer } }
        return out
    }
}

/// `<run>/analysis/similarity.csv`: checkpoint_a,layer_a,checkpoint_b,layer_b,position,method,metric,value.
public struct SimilarityRow: Sendable, Equatable {
    public var checkpointA: String, layerA: Int, checkpointB: String, layerB: Int, position: Int
    public var method: String, metric: String, value: Double
    public init(checkpointA: String, layerA: Int, checkpointB: String, layerB: Int, position: Int, method: String, metric: String, value: Double) {
        self.checkpointA = checkpointA; self.layerA = layerA; self.checkpointB = checkpointB; self.layerB = layerB
        self.position = position; self.method = method; self.metric = metric; self.value = value
    }
}

public enum SimilarityFile {
    public static func load(_ path: String) throws -> [SimilarityRow] {
        let t = try NamedTable.read(path, required: ["checkpoint_a", "layer_a", "checkpoint_b", "layer_b", "position", "method", "metric", "value"])
        return try t.rows.map { r in
            SimilarityRow(checkpointA: t.field(r, "checkpoint_a"), layerA: try t.int(r, "layer_a"),
                          checkpointB: t.field(r, "checkpoint_b"), layerB: try t.int(r, "layer_b"),
                          position: try t.int(r, "position"), method: t.field(r, "method"), metric: t.field(r, "metric"),
                          value: try t.double(r, "value"))
        }
    }
}

// MARK: - Judging files

/// One line of `<run>/self_judgment.csv`: system,item_id,label,self_verdict,reference_verdict.
public struct SelfJudgmentEntry: Sendable, Equatable {
    public var system: String, itemID: String, label: String
    public var selfVerdict: VerdictLabel?, referenceVerdict: VerdictLabel?
    public init(system: String, itemID: String, label: String, selfVerdict: VerdictLabel?, referenceVerdict: VerdictLabel?) {
        self.system = system; self.itemID = itemID; self.label = label; self.selfVerdict = selfVerdict; self.referenceVerdict = referenceVerdict
    }

    public static func load(_ path: String) throws -> [SelfJudgmentEntry] {
        let t = try NamedTable.read(path, required: ["system", "item_id", "label", "self_verdict", "reference_verdict"])
        return try t.rows.map { r in
            func v(_ c: String) throws -> VerdictLabel? {
                let s = t.field(r, c).trimmingCharacters(in: .whitespaces)
                if s.isEmpty { return nil }
                guard let x = VerdictLabel(lenient: s) else {
                    throw InputError(file: path, line: r.line, key: c, "'\(s)' is not a verdict; write REFUSAL, NON-REFUSAL or leave it empty")
                }
                return x
            }
            return SelfJudgmentEntry(system: t.field(r, "system"), itemID: t.field(r, "item_id"), label: t.field(r, "label"),
                                selfVerdict: try v("self_verdict"), referenceVerdict: try v("reference_verdict"))
        }
    }
}

/// One line of `<run>/generations/<system>.jsonl` (fields id, label, system, response, … ; other
/// fields are ignored).
public struct Generation: Sendable, Equatable {
    public var id: String, label: String, system: String, response: String
    public var prompt: String?
    public init(id: String, label: String, system: String, response: String, prompt: String? = nil) {
        self.id = id; self.label = label; self.system = system; self.response = response; self.prompt = prompt
    }

    /// Reads one JSONL file (at most `maxBytes`); blank lines are skipped.
    public static func load(_ path: String, maxBytes: Int = 256 << 20) throws -> [Generation] {
        let text = try BoundedText.readString(path, what: "generations file", maxFileBytes: maxBytes)
        var out: [Generation] = []
        for (i, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let l = line.trimmingCharacters(in: .whitespaces)
            if l.isEmpty { continue }
            guard let obj = try? JSONSerialization.jsonObject(with: Data(l.utf8)) as? [String: Any] else {
                throw InputError(file: path, line: i + 1, "the line is not a JSON object")
            }
            guard let id = obj["id"].map({ "\($0)" }), let response = obj["response"] as? String else {
                throw InputError(file: path, line: i + 1, "the line needs the fields 'id' and 'response'")
            }
            let fileSystem = URL(fileURLWithPath: path).deletingPathExtension().lastPathComponent
            out.append(Generation(id: id, label: obj["label"] as? String ?? "", system: obj["system"] as? String ?? fileSystem,
                                  response: response, prompt: (obj["prompt"] ?? obj["text"]) as? String))
        }
        return out
    }

    /// Every `*.jsonl` in a generations folder, files sorted by name.
    public static func loadFolder(_ dir: String) throws -> [Generation] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []
        return try names.filter { $0.hasSuffix(".jsonl") }.sorted().flatMap { try load(dir + "/" + $0) }
    }
}

// MARK: - Manifest

/// The fields of `<run>/manifest.json` the report shows (the Study module writes the file; unknown
/// fields are ignored, missing ones are empty).
public struct RunManifest: Sendable {
    public var ablabVersion = ""
    public var study = ""
    public var studyFile = ""
    /// checkpoint → sha256
    public var models: [String: String] = [:]
    /// prompt file path → sha256
    public var promptFiles: [String: String] = [:]
    public var settings: [String: String] = [:]
    public var machine = ""
    /// stage → started at
    public var stages: [String: String] = [:]
    /// "record:<checkpoint>" / "generate:<checkpoint>" → prompt ids left out as too long for the context
    public var skippedTooLong: [String: [String]] = [:]
    public init() {}

    public static func load(_ path: String) throws -> RunManifest {
        guard let d = FileManager.default.contents(atPath: path) else { throw IOError(path: path, "cannot read the manifest") }
        guard let o = try? JSONSerialization.jsonObject(with: d) as? [String: Any] else {
            throw InputError(file: path, "the manifest is not a JSON object; re-run `ablab run` to rewrite it")
        }
        var m = RunManifest()
        m.ablabVersion = o["ablabVersion"] as? String ?? ""
        m.study = o["study"] as? String ?? ""
        m.studyFile = o["studyFile"] as? String ?? ""
        m.models = o["models"] as? [String: String] ?? [:]
        m.promptFiles = o["promptFiles"] as? [String: String] ?? [:]
        m.settings = (o["settings"] as? [String: Any] ?? [:]).mapValues { "\($0)" }
        m.machine = o["machine"] as? String ?? ""
        m.skippedTooLong = o["skippedTooLong"] as? [String: [String]] ?? [:]
        if let st = o["stages"] as? [String: Any] {
            for (k, v) in st { m.stages[k] = (v as? [String: Any])?["startedAt"] as? String ?? "" }
        }
        return m
    }
}
