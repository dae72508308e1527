import Foundation
import Testing
import AblabCore
import ActivationCache
import HDF5
import LinearAlgebra
import Analysis

/// End to end over a synthetic run folder: ActivationCacheWriter → RunAnalyzer → analysis.h5 + CSVs.
/// Activations: Gaussian noise plus ±layer along a planted unit direction for harmful / harmless
/// prompts, so the mean-diff direction must converge to the planted one in deep layers.
@Suite("ablab analyze over a synthetic run")
struct RunAnalysisTests {
    struct Model { var name: String; var nLayers: Int; var d: Int; var seed: UInt64 }

    static func prompts(leak: Bool) -> [Prompt] {
        var out: [Prompt] = []
        for label in ["harmful", "harmless"] {
            for i in 0..<30 { out.append(Prompt(id: "\(label)-\(i)", text: "\(label) prompt \(i)", label: label, split: i < 22 ? "train" : "test")) }
        }
        if leak { out[25].id = out[3].id + "-x"; out[25].text = out[3].text } // a test prompt repeating a train text
        return out
    }

    static func planted(_ m: Model) -> [Float] {
        var g = SplitMix64(seed: m.seed &* 31)
        return Vec.normalized((0..<m.d).map { _ in Float(Double(g.next() >> 11) / 9007199254740992.0 - 0.5) })
    }

    static func record(run: String, _ m: Model, prompts: [Prompt]) throws {
        let positions: [Int32] = [-2, -1]
        let header = ActivationHeader(checkpoint: m.name, modelPath: "models/\(m.name).gguf", modelSHA256: String(repeating: "0", count: 64),
                                      architecture: "llama", nLayers: m.nLayers, dModel: m.d, systemPrompt: "", positions: positions)
        let w = try ActivationCacheWriter(run: run, header: header, prompts: prompts)
        let dir = planted(m)
        var g = SplitMix64(seed: m.seed)
        func gauss() -> Float {
            let u1 = (Double(g.next() >> 11) + 0.5) / 9007199254740992.0, u2 = Double(g.next() >> 11) / 9007199254740992.0
            return Float((-2 * log(u1)).squareRoot() * cos(2 * Double.pi * u2))
        }
        let idx = Array(prompts.indices)
        var r = [Float](repeating: 0, count: (m.nLayers + 1) * idx.count * positions.count * m.d) // [L+1, B, P, d]
        for l in 0...m.nLayers { for (b, i) in idx.enumerated() { for p in 0..<positions.count { for k in 0..<m.d {
            let sign: Float = prompts[i].label == "harmful" ? 0.5 : -0.5
            let v = l == 0 ? Float(k) : gauss() + sign * Float(2 * l) * dir[k]
            r[((l * idx.count + b) * positions.count + p) * m.d + k] = v
        } } } }
        try w.append(indices: idx, nTokens: idx.map { _ in 12 }, residual: r)
        _ = try w.finalize()
    }

    static func makeRun(leak: Bool = false) throws -> (String, [Model]) {
        let run = NSTemporaryDirectory() + "ablab-analysis-\(getpid())-\(UInt64.random(in: 0..<UInt64.max))"
        let models = [Model(name: "small", nLayers: 4, d: 24, seed: 5), Model(name: "deep", nLayers: 6, d: 16, seed: 6)]
        for m in models { try record(run: run, m, prompts: prompts(leak: leak)) }
        return (run, models)
    }

    @Test("analyses every site, recovers the planted direction, compares checkpoints by depth, writes h5 + CSVs")
    func endToEnd() throws {
        let (run, models) = try Self.makeRun()
        defer { try? FileManager.default.removeItem(atPath: run) }
        var o = AnalysisOptions(bootstrap: 20, maxComponents: 8)
        o.seed = 1
        let r = try RunAnalyzer.analyze(run: run, options: o, progress: false)
        #expect(!r.leakage)
        #expect(r.checkpoints.map(\.checkpoint) == ["deep", "small"])
        for c in r.checkpoints {
            let m = models.first { $0.name == c.checkpoint }!
            #expect(c.sites.count == m.nLayers * 2 && c.skipped.isEmpty)
            let last = try #require(c.site(layer: m.nLayers, position: -1))
            #expect(cosine(last.direction(.meanDiff)!.vector.map(Double.init), Self.planted(m).map(Double.init)) > 0.95)
            #expect(last.probes.map(\.components) == [1, 2, 4, 8])
        }
        // deep (6 layers) vs small (4 layers): different widths → CKA and score correlation, no cosine.
        #expect(!r.crossCheckpoint.isEmpty && !r.crossCheckpoint.contains { $0.metric == "cosine" })
        for x in r.crossCheckpoint {
            #expect(x.checkpointA == "deep" && x.layerB == Similarity.mappedLayer(x.layerA, from: 7, to: 5))
            if !x.metric.hasPrefix("cka_debiased") { #expect(x.value >= -1 && x.value <= 1) }
        }
        let deepLast = r.crossCheckpoint.first { $0.layerA == 6 && $0.position == -1 && $0.metric == "score_pearson" && $0.method == "mean-diff" }
        #expect((deepLast?.value ?? 0) > 0.8) // both project the same prompts by class
        #expect(r.ranking.contains { $0.rank != nil })
        for best in CandidateRanking.best(r.ranking).values { #expect(Double(best.candidate.key.layer) < 0.8 * Double(best.candidate.layerCount)) }

        try RunAnalyzer.write(r, run: run, options: o)
        let metrics = try CSV.parse(String(contentsOfFile: run + "/analysis/metrics.csv", encoding: .utf8), file: "metrics.csv")
        #expect(metrics.count == 1 + r.checkpoints.flatMap(\.sites).map { TidyCSV.rows($0).count }.reduce(0, +))
        #expect(metrics.dropFirst().allSatisfy { $0.fields.count == 6 })
        let sim = try CSV.parse(String(contentsOfFile: run + "/analysis/similarity.csv", encoding: .utf8), file: "similarity.csv")
        #expect(sim.count == 1 + 2 * 2 * (36 + 16) + r.crossCheckpoint.count) // positions × methods × L² per checkpoint
        let cand = try CSV.parse(String(contentsOfFile: run + "/analysis/candidates.csv", encoding: .utf8), file: "candidates.csv")
        #expect(cand.count == 1 + r.ranking.count && cand[1].fields[0] == "1")

        let f = try H5File.open(run + "/analysis.h5")
        #expect(try f.stringAttribute("format") == "ablab.analysis")
        #expect(try f.intAttribute("leakage") == 0)
        let g = try f.openGroup("checkpoints/small")
        let dirs = try g.openDataset("directions/mean-diff")
        #expect(try dirs.shape() == [4, 2, 24])
        let site = try #require(r.checkpoints[1].site(layer: 3, position: -2)) // layer index 2, position index 0
        #expect(try dirs.readFloats(offset: [2, 0, 0], count: [1, 1, 24]) == site.direction(.meanDiff)!.vector)
        #expect(try g.openDataset("layer_cosine/pc1").shape() == [2, 4, 4])
        #expect(try g.openDataset("probe_components").readInt32() == [1, 2, 4, 8])
        let auroc = try g.openDataset("auroc").readFloats(offset: [2, 0, 0], count: [1, 1, 2])
        #expect(auroc == [Float(site.direction(.meanDiff)!.testSeparation.auroc), Float(site.direction(.pc1)!.testSeparation.auroc)])

        // For notebooks-scripts/check_interop.py (h5py + numpy recompute directions and AUROC).
        if let interop = ProcessInfo.processInfo.environment["ABLAB_INTEROP_DIR"], !interop.isEmpty {
            let dst = interop + "/analysis-run"
            try? FileManager.default.removeItem(atPath: dst)
            try FileManager.default.createDirectory(atPath: interop, withIntermediateDirectories: true)
            try FileManager.default.copyItem(atPath: run, toPath: dst)
        }
    }

    @Test("a test prompt repeating a train prompt is flagged as leakage in the results and files")
    func leakageFlagged() throws {
        let (run, _) = try Self.makeRun(leak: true)
        defer { try? FileManager.default.removeItem(atPath: run) }
        let o = AnalysisOptions(bootstrap: 0, maxComponents: 2)
        let r = try RunAnalyzer.analyze(run: run, options: o, checkpoints: ["small"], progress: false)
        #expect(r.leakage && r.checkpoints[0].sites.allSatisfy(\.leakage))
        try RunAnalyzer.write(r, run: run, options: o)
        let text = try String(contentsOfFile: run + "/analysis/metrics.csv", encoding: .utf8)
        #expect(text.contains("small,1,-2,site,leakage,1.0"))
        #expect(try H5File.open(run + "/analysis.h5").intAttribute("leakage") == 1)
    }
}
