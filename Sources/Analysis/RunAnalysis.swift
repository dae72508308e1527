import ActivationCache
import AblabCore
import Foundation
import HDF5
import LinearAlgebra
import Logging

/// All sites of one checkpoint.
public struct CheckpointAnalysis: Sendable {
    public var checkpoint: String
    /// Transformer blocks of the model; residual layer l (1…nLayers) is the output of block l − 1.
    public var nLayers: Int
    public var dModel: Int
    public var positions: [Int]
    /// Analysed residual layers (1…nLayers; layer 0, the embeddings, is identical for every prompt at
    /// template positions and is skipped).
    public var layers: [Int]
    /// One per analysed (layer, position), layer-major.
    public var sites: [LayerAnalysis]
    public var leakage: LeakageReport
    /// Sites that could not be analysed, with the reason.
    public var skipped: [String]

    public func site(layer: Int, position: Int) -> LayerAnalysis? {
        sites.first { $0.layer == layer && $0.position == position }
    }
}

/// Checkpoint A's layer l against checkpoint B's depth-mapped layer, on the test prompts both hold.
public struct CrossCheckpointRow: Sendable {
    public var checkpointA: String
    public var layerA: Int
    public var checkpointB: String
    public var layerB: Int
    public var position: Int
    /// "cka", "cka_debiased", "cka_debiased_permuted_mean", "cka_debiased_permuted_p95" (method "-"), or per method "cosine" (equal widths only) and "score_pearson".
    public var method: String
    public var metric: String
    public var value: Double
}

public struct RunAnalysis: Sendable {
    public var checkpoints: [CheckpointAnalysis]
    public var crossCheckpoint: [CrossCheckpointRow]
    public var ranking: [RankedCandidate]
    public var leakage: Bool { checkpoints.contains { $0.leakage.leaked } }
}

/// Results written by concurrent workers, one slot each.
final class ResultBox: @unchecked Sendable {
    private let lock = NSLock()
    private(set) var results: [Result<LayerAnalysis, any Error>?]
    init(count: Int) { results = Array(repeating: nil, count: count) }
    func set(_ i: Int, _ r: Result<LayerAnalysis, any Error>) { lock.lock(); results[i] = r; lock.unlock() }
}

/// `ablab analyze`: reads `<run>/activations/*.h5`, analyses every (checkpoint, layer, position) and
/// writes `<run>/analysis.h5` plus tidy CSVs under `<run>/analysis/`.
///
/// Prompts: label "harmful" / "harmless", split "train" (fit) / "test" (evaluate). Cross-checkpoint
/// comparisons use the test prompts present in both files (matched by id); layers are matched by
/// relative depth over the residual layers 0…L (`Similarity.mappedLayer`).
public enum RunAnalyzer {
    static let log = AblabLog.logger("analysis")

    public static func analyze(run: String, options: AnalysisOptions = AnalysisOptions(),
                               checkpoints only: [String]? = nil, progress: Bool = true) throws -> RunAnalysis {
        let cache = try ActivationCache(run: run)
        var names = try cache.checkpoints()
        if let only { names = names.filter { only.contains($0) || only.map(SafeFiles.sanitize).contains($0) } }
        guard !names.isEmpty else {
            throw AnalysisError(site: cache.directory, "no finished activation caches to analyse; run `ablab record` first")
        }
        var files: [ActivationFile] = []
        var results: [CheckpointAnalysis] = []
        for name in names {
            let f = try cache.open(name)
            files.append(f)
            results.append(try analyze(file: f, options: options, progress: progress))
        }
        var cross: [CrossCheckpointRow] = []
        for i in 0..<files.count { for j in (i + 1)..<files.count {
            cross += try compare(files[i], results[i], files[j], results[j])
        } }
        var layerCounts: [String: Int] = [:]
        for r in results { layerCounts[r.checkpoint] = r.nLayers }
        // Candidates are read at the post-instruction tokens (Arditi et al.); the instruction's own tokens,
        // when recorded (for harmfulness vs refusal), are analysed but not candidates.
        let candidateSites = zip(files, results).flatMap { f, r in
            r.sites.filter { f.header.role(of: $0.position).map { $0 == .postInstruction } ?? true }
        }
        let ranking = CandidateRanking.rank(CandidateRanking.candidates(from: candidateSites, layerCounts: layerCounts))
        return RunAnalysis(checkpoints: results, crossCheckpoint: cross, ranking: ranking)
    }

    /// Rows of `file` for a label and split; throws when a class is missing.
    static func rows(_ file: ActivationFile, _ label: String, _ split: String) throws -> [Int] {
        let r = file.promptIndices(label: label, split: split)
        guard r.count >= 2 else {
            throw AnalysisError(site: file.path, "only \(r.count) '\(label)' prompts with split '\(split)'; the prompt files need at least 2 per class in train and test")
        }
        return r
    }

    public static func analyze(file: ActivationFile, options: AnalysisOptions, progress: Bool = true) throws -> CheckpointAnalysis {
        let h = file.header
        let th = try rows(file, "harmful", "train"), tb = try rows(file, "harmless", "train")
        let eh = try rows(file, "harmful", "test"), eb = try rows(file, "harmless", "test")
        // Validation prompts (split "validation", written by `ablab run`): the ranking's prompts when both
        // classes have at least 2; otherwise the ranking falls back to the fit prompts.
        var vh = file.promptIndices(label: "harmful", split: "validation"), vb = file.promptIndices(label: "harmless", split: "validation")
        if vh.count < 2 || vb.count < 2 {
            log.info("\(h.checkpoint): no validation prompts in the cache; candidates are ranked on the fit (train) prompts, never on test prompts")
            vh = []; vb = []
        }
        let trainIDs = (th + tb).map { file.prompts[$0].id }, testIDs = (eh + eb).map { file.prompts[$0].id }
        let validationIDs = (vh + vb).map { file.prompts[$0].id }
        var leak = LeakageGuard.check(trainIDs: trainIDs + validationIDs, testIDs: testIDs, context: "\(h.checkpoint) (\(file.path))", logger: log)
        let fitValidation = LeakageGuard.check(trainIDs: trainIDs, testIDs: validationIDs, context: "\(h.checkpoint) fit/validation (\(file.path))", logger: log)
        leak.overlapping = Array(Set(leak.overlapping + fitValidation.overlapping)).sorted()
        // The same text under two ids is leakage too.
        let trainTexts = Set((th + tb).map { file.prompts[$0].text })
        let validationTexts = Set((vh + vb).map { file.prompts[$0].text })
        let dupText = (eh + eb).filter { trainTexts.contains(file.prompts[$0].text) || validationTexts.contains(file.prompts[$0].text) }.map { file.prompts[$0].id }
            + (vh + vb).filter { trainTexts.contains(file.prompts[$0].text) }.map { file.prompts[$0].id }
        if !dupText.isEmpty {
            log.warning("!!! DATA LEAKAGE in \(h.checkpoint): \(dupText.count) prompt(s) have the same text as a prompt of another role (\(dupText.prefix(5).joined(separator: ", "))); test metrics are optimistic")
            leak.overlapping = Array(Set(leak.overlapping + dupText)).sorted()
        }
        let positions = h.positions.map(Int.init)
        let layers = Array(1...h.nLayers)
        let bar = Progress("analyze \(h.checkpoint)", total: layers.count * positions.count, unit: "sites", enabled: progress)
        var sites: [LayerAnalysis] = []
        var skipped: [String] = []
        // HDF5 reads stay on this thread; the positions of one layer are analysed in parallel with one
        // BLAS thread each.
        let savedThreads = BLAS.threads
        let workers = max(1, min(ProcessInfo.processInfo.activeProcessorCount, positions.count))
        if workers > 1 { BLAS.setThreads(1) }
        defer { if workers > 1 { BLAS.setThreads(savedThreads) } }
        for l in layers {
            var splits: [ActivationSplit] = []
            for p in positions {
                let all = try file.residual(layer: l, position: p) // [N, d]
                splits.append(ActivationSplit(trainHarmful: all.rows(th), trainHarmless: all.rows(tb),
                                              testHarmful: all.rows(eh), testHarmless: all.rows(eb),
                                              validationHarmful: vh.isEmpty ? nil : all.rows(vh),
                                              validationHarmless: vb.isEmpty ? nil : all.rows(vb)))
            }
            let box = ResultBox(count: positions.count)
            let leaked = leak.leaked, ckpt = h.checkpoint, data = splits
            let work: @Sendable (Int) -> Void = { i in
                let r = Result { try analyzeLayer(checkpoint: ckpt, layer: l, position: positions[i], data: data[i],
                                                  options: options, leakage: leaked) }
                box.set(i, r)
                bar.advance()
            }
            if workers > 1 { DispatchQueue.concurrentPerform(iterations: positions.count, execute: work) }
            else { for i in positions.indices { work(i) } }
            for r in box.results {
                switch r {
                case .success(let a): sites.append(a)
                case .failure(let e as AnalysisError):
                    log.warning("skipping: \(e.description)")
                    skipped.append(e.description)
                case .failure(let e): throw e
                case nil: break
                }
            }
        }
        bar.finish()
        return CheckpointAnalysis(checkpoint: h.checkpoint, nLayers: h.nLayers, dModel: h.dModel, positions: positions,
                                  layers: layers, sites: sites, leakage: leak, skipped: skipped)
    }

    /// Cross-checkpoint rows for A's analysed layers against B's depth-mapped layers.
    static func compare(_ fa: ActivationFile, _ a: CheckpointAnalysis, _ fb: ActivationFile, _ b: CheckpointAnalysis) throws -> [CrossCheckpointRow] {
        // Test prompts both files hold, matched by id, in A's order.
        var rowB: [String: Int] = [:]
        for i in fb.promptIndices(split: "test") { rowB[fb.prompts[i].id] = i }
        let ra = fa.promptIndices(split: "test").filter { rowB[fa.prompts[$0].id] != nil }
        let rb = ra.map { rowB[fa.prompts[$0].id]! }
        guard ra.count >= 3 else {
            log.warning("\(a.checkpoint) and \(b.checkpoint) share \(ra.count) test prompts; skipping their comparison")
            return []
        }
        var out: [CrossCheckpointRow] = []
        for p in a.positions where b.positions.contains(p) {
            for l in a.layers {
                let m = Similarity.mappedLayer(l, from: a.nLayers + 1, to: b.nLayers + 1)
                guard let sa = a.site(layer: l, position: p), let sb = b.site(layer: m, position: p) else { continue }
                let xa = try fa.residual(layer: l, position: p, prompts: ra), xb = try fb.residual(layer: m, position: p, prompts: rb)
                func row(_ method: String, _ metric: String, _ v: Double) {
                    out.append(CrossCheckpointRow(checkpointA: a.checkpoint, layerA: l, checkpointB: b.checkpoint, layerB: m,
                                                  position: p, method: method, metric: metric, value: v))
                }
                row("-", "cka", try Similarity.linearCKA(xa, xb))
                // Linear CKA is biased upward with fewer prompts than dimensions: the debiased estimate
                // and what it gives with the prompts' pairing shuffled (20 permutations).
                row("-", "cka_debiased", try Similarity.debiasedCKA(xa, xb))
                let base = try Similarity.debiasedCKAPermutationBaseline(xa, xb)
                row("-", "cka_debiased_permuted_mean", base.mean)
                row("-", "cka_debiased_permuted_p95", base.p95)
                for method in DirectionMethod.allCases {
                    guard let da = sa.direction(method)?.vector, let db = sb.direction(method)?.vector else { continue }
                    if da.count == db.count { row(method.rawValue, "cosine", Double(Vec.cosine(da, db))) }
                    row(method.rawValue, "score_pearson", try Similarity.scoreCorrelation(x: xa, dx: da, y: xb, dy: db))
                }
            }
        }
        return out
    }

    // MARK: Output

    /// Writes `<run>/analysis.h5` and `<run>/analysis/{metrics,similarity,candidates}.csv`.
    public static func write(_ r: RunAnalysis, run: String, options: AnalysisOptions) throws {
        try SafeFiles.createDirectory(run + "/analysis")
        try TidyCSV.write(r.checkpoints.flatMap { $0.sites.flatMap { TidyCSV.rows($0) } }, to: run + "/analysis/metrics.csv")
        try SafeFiles.atomicWrite(Data(similarityCSV(r).utf8), to: run + "/analysis/similarity.csv")
        try SafeFiles.atomicWrite(Data(candidatesCSV(r.ranking).utf8), to: run + "/analysis/candidates.csv")
        try writeH5(r, path: run + "/analysis.h5", options: options)
    }

    /// Layer × layer cosines within each checkpoint and the cross-checkpoint rows, one value per row:
    /// checkpoint_a,layer_a,checkpoint_b,layer_b,position,method,metric,value.
    public static func similarityCSV(_ r: RunAnalysis) -> String {
        var s = "checkpoint_a,layer_a,checkpoint_b,layer_b,position,method,metric,value\n"
        for c in r.checkpoints {
            for p in c.positions {
                for m in DirectionMethod.allCases {
                    let sites = c.layers.compactMap { c.site(layer: $0, position: p) }
                    let cos = Similarity.cosineMatrix(sites.map { $0.direction(m)?.vector ?? [] })
                    for i in sites.indices { for j in sites.indices {
                        s += "\(CSV.escape(c.checkpoint)),\(sites[i].layer),\(CSV.escape(c.checkpoint)),\(sites[j].layer),\(p),\(m.rawValue),cosine,\(TidyCSV.format(cos[i][j]))\n"
                    } }
                }
            }
        }
        for x in r.crossCheckpoint {
            s += "\(CSV.escape(x.checkpointA)),\(x.layerA),\(CSV.escape(x.checkpointB)),\(x.layerB),\(x.position),\(x.method),\(x.metric),\(TidyCSV.format(x.value))\n"
        }
        return s
    }

    public static func candidatesCSV(_ ranked: [RankedCandidate]) -> String {
        var s = "rank,checkpoint,layer,position,method,ranked_on,cohen_d,auroc,stability_lower,split_half_cosine,excluded_because\n"
        for c in ranked {
            let k = c.candidate.key
            s += "\(c.rank.map(String.init) ?? ""),\(CSV.escape(k.checkpoint)),\(k.layer),\(k.position),\(k.method.rawValue),\(c.candidate.rankedOn.rawValue),"
            s += "\(TidyCSV.format(c.candidate.cohenD)),\(TidyCSV.format(c.candidate.auroc)),"
            s += "\(c.candidate.stabilityLower.map(TidyCSV.format) ?? ""),\(c.candidate.splitHalfCosine.map(TidyCSV.format) ?? ""),"
            s += CSV.escape(c.excludedBecause.joined(separator: "; ")) + "\n"
        }
        return s
    }

    /// analysis.h5 (format "ablab.analysis" version 1): per checkpoint group `/checkpoints/<name>` with
    /// `layers` [L], `positions` [P], `directions/<method>` [L, P, d], `spectrum/*` [L, P, R] (R = largest
    /// rank, NaN-padded), per-method metrics [L, P, 2] (methods in the order of the `methods`
    /// attribute), `probe_accuracy` [L, P, K] with `probe_components` [K]; `layer_cosine/<method>`
    /// [P, L, L]. Written to a temporary file and renamed into place.
    static func writeH5(_ r: RunAnalysis, path: String, options: AnalysisOptions) throws {
        let tmp = path + ".tmp-\(getpid())"
        do {
            let f = try H5File.create(tmp, overwrite: true)
            try f.setAttribute("format", "ablab.analysis")
            try f.setAttribute("format_version", 1)
            try f.setAttribute("ablab_version", AblabVersion.string)
            try f.setAttribute("bootstrap", options.bootstrapReplicates)
            try f.setAttribute("seed", String(options.seed))
            try f.setAttribute("leakage", r.leakage ? 1 : 0)
            try f.setAttribute("methods", DirectionMethod.allCases.map(\.rawValue).joined(separator: ","))
            for c in r.checkpoints {
                let g = try f.createGroup("checkpoints/" + SafeFiles.sanitize(c.checkpoint))
                try g.setAttribute("checkpoint", c.checkpoint)
                try g.setAttribute("n_layers", c.nLayers)
                try g.setAttribute("d_model", c.dModel)
                try g.setAttribute("leakage", c.leakage.leaked ? 1 : 0)
                let L = c.layers.count, P = c.positions.count, d = c.dModel
                try g.createDataset("layers", type: .int32, shape: [L]).write(c.layers.map { Int32($0) })
                try g.createDataset("positions", type: .int32, shape: [P]).write(c.positions.map { Int32($0) })
                let R = c.sites.map { $0.spectrum.eigenvalues.count }.max() ?? 0
                let K = c.sites.map { $0.probes.count }.max() ?? 0
                var dirs = DirectionMethod.allCases.map { _ in [Float](repeating: .nan, count: L * P * d) }
                var evr = [Float](repeating: .nan, count: L * P * R), eig = evr, share = evr
                var pr = [Float](repeating: .nan, count: L * P), cmp = pr
                var perMethod: [String: [Float]] = [:]
                for name in ["cohen_d", "auroc", "bootstrap_cosine_mean", "bootstrap_cosine_lower", "bootstrap_cosine_upper", "split_half_cosine"] {
                    perMethod[name] = [Float](repeating: .nan, count: L * P * 2)
                }
                var probe = [Float](repeating: .nan, count: L * P * K)
                var probeK: [Int32] = []
                for (li, l) in c.layers.enumerated() {
                    for (pi, p) in c.positions.enumerated() {
                        guard let s = c.site(layer: l, position: p) else { continue }
                        let sp = li * P + pi
                        for (mi, m) in DirectionMethod.allCases.enumerated() {
                            guard let dir = s.direction(m) else { continue }
                            dirs[mi].replaceSubrange((sp * d)..<((sp + 1) * d), with: dir.vector)
                            perMethod["cohen_d"]![sp * 2 + mi] = Float(dir.testSeparation.cohenD)
                            perMethod["auroc"]![sp * 2 + mi] = Float(dir.testSeparation.auroc)
                            if let st = dir.stability {
                                perMethod["bootstrap_cosine_mean"]![sp * 2 + mi] = Float(st.meanCosine)
                                perMethod["bootstrap_cosine_lower"]![sp * 2 + mi] = Float(st.lower)
                                perMethod["bootstrap_cosine_upper"]![sp * 2 + mi] = Float(st.upper)
                                perMethod["split_half_cosine"]![sp * 2 + mi] = Float(st.splitHalfCosine)
                            }
                        }
                        for (i, v) in s.spectrum.explainedVarianceRatio.enumerated() { evr[sp * R + i] = Float(v) }
                        for (i, v) in s.spectrum.eigenvalues.enumerated() { eig[sp * R + i] = Float(v) }
                        for (i, v) in s.meanDiffShare.enumerated() { share[sp * R + i] = Float(v) }
                        pr[sp] = Float(s.spectrum.participationRatio)
                        cmp[sp] = Float(s.cosineMeanDiffPC1)
                        for (i, pb) in s.probes.enumerated() { probe[sp * K + i] = Float(pb.accuracy) }
                        if s.probes.count == K { probeK = s.probes.map { Int32($0.components) } }
                    }
                }
                for (mi, m) in DirectionMethod.allCases.enumerated() {
                    try g.createDataset("directions/" + m.rawValue, type: .float32, shape: [L, P, d]).write(dirs[mi])
                }
                try g.createDataset("spectrum/explained_variance_ratio", type: .float32, shape: [L, P, R]).write(evr)
                try g.createDataset("spectrum/eigenvalues", type: .float32, shape: [L, P, R]).write(eig)
                try g.createDataset("spectrum/mean_diff_share", type: .float32, shape: [L, P, R]).write(share)
                try g.createDataset("participation_ratio", type: .float32, shape: [L, P]).write(pr)
                try g.createDataset("cosine_mean_diff_pc1", type: .float32, shape: [L, P]).write(cmp)
                for (name, v) in perMethod.sorted(by: { $0.key < $1.key }) {
                    try g.createDataset(name, type: .float32, shape: [L, P, 2]).write(v)
                }
                try g.createDataset("probe_accuracy", type: .float32, shape: [L, P, K]).write(probe)
                try g.createDataset("probe_components", type: .int32, shape: [probeK.count]).write(probeK)
                for m in DirectionMethod.allCases {
                    var cosines = [Float](repeating: .nan, count: P * L * L)
                    for (pi, p) in c.positions.enumerated() {
                        let vs = c.layers.map { c.site(layer: $0, position: p)?.direction(m)?.vector ?? [] }
                        let cm = Similarity.cosineMatrix(vs)
                        for i in 0..<L { for j in 0..<L { cosines[(pi * L + i) * L + j] = Float(cm[i][j]) } }
                    }
                    try g.createDataset("layer_cosine/" + m.rawValue, type: .float32, shape: [P, L, L]).write(cosines)
                }
            }
            try f.flush()
            f.close()
        } catch {
            unlink(tmp)
            throw error
        }
        if rename(tmp, path) != 0 {
            let msg = String(cString: strerror(errno))
            unlink(tmp)
            throw IOError(path: path, "cannot move the finished analysis file into place: \(msg)")
        }
    }
}
