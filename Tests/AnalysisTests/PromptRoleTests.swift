import Foundation
import Testing
import AblabCore
import ActivationCache
import LinearAlgebra
import Analysis

/// Test prompts only measure: the candidate ranking uses the validation prompts (split `validation`)
/// or, when the cache has none, the fit prompts — never the test prompts.
@Suite("Candidate ranking never looks at test prompts")
struct PromptRoleTests {
    /// Class signal ±strength/2 along a planted unit direction, plus N(0, 1) noise. The fit prompts carry
    /// the same signal at every layer; the validation prompts separate best at layer 2, the test prompts
    /// at layer 3. Layers 4 and 5 are in the last 20 % of 5 layers and cannot be chosen.
    static func strength(layer: Int, split: String) -> Float {
        switch split {
        case "validation": return layer == 2 ? 4 : 1
        case "test": return layer == 3 ? 4 : 1
        default: return 2
        }
    }

    static func makeRun(splits: [String]) throws -> String {
        let run = NSTemporaryDirectory() + "ablab-roles-\(getpid())-\(UInt64.random(in: 0..<UInt64.max))"
        let nLayers = 5, d = 12
        var prompts: [Prompt] = []
        for split in splits { for label in ["harmful", "harmless"] { for i in 0..<24 {
            prompts.append(Prompt(id: "\(split)-\(label)-\(i)", text: "\(split) \(label) \(i)", label: label, split: split))
        } } }
        let header = ActivationHeader(checkpoint: "c", modelPath: "models/c.gguf", modelSHA256: String(repeating: "0", count: 64),
                                      architecture: "llama", nLayers: nLayers, dModel: d, systemPrompt: "", positions: [-1])
        let w = try ActivationCacheWriter(run: run, header: header, prompts: prompts)
        var g = SplitMix64(seed: 77)
        func uniform() -> Double { Double(g.next() >> 11) / 9007199254740992.0 }
        func gauss() -> Float { Float((-2 * log(uniform() + 1e-300)).squareRoot() * cos(2 * Double.pi * uniform())) }
        let dir = Vec.normalized((0..<d).map { _ in Float(uniform() - 0.5) })
        var r = [Float](repeating: 0, count: (nLayers + 1) * prompts.count * d)
        for l in 0...nLayers { for (i, p) in prompts.enumerated() { for k in 0..<d {
            let sign: Float = p.label == "harmful" ? 0.5 : -0.5
            r[(l * prompts.count + i) * d + k] = l == 0 ? Float(k) : gauss() + sign * strength(layer: l, split: p.split!) * dir[k]
        } } }
        try w.append(indices: Array(prompts.indices), nTokens: prompts.map { _ in 9 }, residual: r)
        _ = try w.finalize()
        return run
    }

    @Test("a test prompt that would move the chosen layer does not: the ranking follows the validation prompts")
    func validationChooses() throws {
        let run = try Self.makeRun(splits: ["train", "validation", "test"])
        defer { try? FileManager.default.removeItem(atPath: run) }
        let r = try RunAnalyzer.analyze(run: run, options: AnalysisOptions(bootstrap: 0, maxComponents: 2), progress: false)
        let c = try #require(r.checkpoints.first)
        let test = { (l: Int) in c.site(layer: l, position: -1)!.direction(.meanDiff)!.testSeparation.cohenD }
        // Ranked by test separation, layer 3 would win among the eligible layers 1…3 …
        #expect(test(3) > test(2) && test(3) > test(1))
        // … but the choice is made on the validation prompts, where layer 2 separates best.
        let best = try #require(CandidateRanking.best(r.ranking)["c"])
        #expect(best.candidate.key.layer == 2)
        #expect(best.candidate.rankedOn == .validation)
        #expect(r.ranking.allSatisfy { $0.candidate.rankedOn == .validation })
        // The ranking separation is the validation prompts', not the test prompts'.
        let site2 = c.site(layer: 2, position: -1)!.direction(.meanDiff)!
        #expect(site2.rankingSeparation != site2.testSeparation)
        try RunAnalyzer.write(r, run: run, options: AnalysisOptions(bootstrap: 0, maxComponents: 2))
        let best2 = try AnalysisFile.bestCandidate(run: run, checkpoint: "c")
        #expect(best2.layer == 2)
        let metrics = try String(contentsOfFile: run + "/analysis/metrics.csv", encoding: .utf8)
        #expect(metrics.contains(",validation_cohen_d,") && !metrics.contains(",fit_cohen_d,"))
    }

    @Test("without validation prompts the ranking uses the fit prompts, still not the test prompts")
    func fitWithoutValidation() throws {
        let run = try Self.makeRun(splits: ["train", "test"])
        defer { try? FileManager.default.removeItem(atPath: run) }
        let r = try RunAnalyzer.analyze(run: run, options: AnalysisOptions(bootstrap: 0, maxComponents: 2), progress: false)
        let c = try #require(r.checkpoints.first)
        #expect(r.ranking.allSatisfy { $0.candidate.rankedOn == .train })
        for l in c.layers {
            let dir = c.site(layer: l, position: -1)!.direction(.meanDiff)!
            #expect(dir.rankedOn == .train && dir.rankingSeparation != dir.testSeparation)
        }
        // Fit separation is the same at every layer in expectation; the test favourite (layer 3) is not
        // forced: the best candidate's d is its fit d.
        let best = try #require(CandidateRanking.best(r.ranking)["c"])
        let site = c.site(layer: best.candidate.key.layer, position: -1)!.direction(best.candidate.key.method)!
        #expect(best.candidate.cohenD == site.rankingSeparation.cohenD)
    }
}
