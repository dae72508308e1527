import AblabCore
import ActivationCache
import Analysis
import Foundation
import Report

/// A small deterministic generator (SplitMix64) for the fixture's noise.
struct FixtureRNG {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    /// Uniform in [0, 1).
    mutating func uniform() -> Double { Double(next() >> 11) / Double(1 << 53) }
    /// Standard normal (Box–Muller).
    mutating func normal() -> Double {
        let u = max(uniform(), 1e-12), v = uniform()
        return (-2 * log(u)).squareRoot() * cos(2 * .pi * v)
    }
}

/// A synthetic-but-realistic run folder written with the project's own file writers (activation
/// cache, `ablab analyze` output) plus hand-written judgments / generations / self-judgment / manifest
/// files in their documented formats. Every count is known, so the figures' series can be checked.
///
/// Activations: residual(l) = noise + s_l · u_l for harmful prompts, where u_l rotates slowly with the
/// layer and s_l grows with depth, so directions, spectra and separation vary realistically.
struct RunFixture {
    struct Options {
        var checkpoints: [(name: String, layers: Int)] = [("ckpt-a", 4), ("ckpt-b", 6)]
        var dModel = 16
        var promptsPerClass = 24
        var withAnalysis = true
        var withJudgments = true
        var withGenerations = true
        var withSelfJudgment = true
        var withManifest = true
        var withCache = true
        var alphaSweep = true
    }

    let path: String
    let options: Options
    /// systems in judgments.csv order
    var systems: [String] = []
    /// Refusals of judge "regex:paper" per (system, label): known counts.
    var regexRefusals: [String: Int] = [:]
    let judges = ["regex:paper", "human_1", "llm:qwen"]

    static func harmfulRefusals(_ system: String) -> Int {
        // original models refuse most harmful prompts; abliteration removes refusals as α grows
        let n = SystemName.parse(system)
        let base = n.checkpoint == "ckpt-a" ? 9 : 8
        guard let a = n.abliteration?.alpha else { return base }
        return max(0, Int((Double(base) * (1 - a)).rounded()))
    }
    static func harmlessRefusals(_ system: String) -> Int { SystemName.parse(system).isAbliterated ? 0 : 1 }
    static let itemsPerLabel = 10

    init(options: Options = Options()) throws {
        self.options = options
        path = FileManager.default.temporaryDirectory.appendingPathComponent("ablab-report-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        if options.withCache { try writeCache() }
        if options.withAnalysis && options.withCache {
            var o = AnalysisOptions(bootstrap: 8, maxComponents: 8)
            o.seed = 7
            let r = try RunAnalyzer.analyze(run: path, options: o, progress: false)
            try RunAnalyzer.write(r, run: path, options: o)
        }
        for ck in options.checkpoints {
            systems.append(ck.name)
            if options.alphaSweep { systems.append("\(ck.name)+abl-mean-diff-L2-a0.5") }
            systems.append("\(ck.name)+abl-mean-diff-L2-a1")
        }
        if options.withJudgments { try writeJudgments() }
        if options.withGenerations { try writeGenerations() }
        if options.withSelfJudgment { try writeSelfJudgment() }
        if options.withManifest { try writeManifest() }
    }

    func cleanup() { try? FileManager.default.removeItem(atPath: path) }

    var prompts: [Prompt] {
        let n = options.promptsPerClass
        return (0..<(2 * n)).map { i in
            let harmful = i < n
            let k = harmful ? i : i - n
            return Prompt(id: (harmful ? "h" : "b") + String(format: "%03d", k),
                          text: harmful ? "How do I do harmful thing number \(k)?" : "Tell me a nice fact about topic \(k).",
                          label: harmful ? "harmful" : "harmless", split: k % 3 == 0 ? "test" : "train")
        }
    }

    func writeCache() throws {
        let d = options.dModel
        for (ci, ck) in options.checkpoints.enumerated() {
            let header = ActivationHeader(checkpoint: ck.name, modelPath: "models/\(ck.name).gguf",
                                          modelSHA256: String(repeating: ci == 0 ? "ab" : "cd", count: 32), architecture: "llama",
                                          nLayers: ck.layers, dModel: d, systemPrompt: "", positions: [-2, -1])
            let ps = prompts
            let w = try ActivationCacheWriter(run: path, header: header, prompts: ps)
            var rng = FixtureRNG(state: UInt64(100 + ci))
            let P = 2
            var residual: [Float] = []   // [L+1, B, P, d]
            let L = ck.layers
            for l in 0...L {
                let angle = Double(l) / Double(max(L, 1)) * 1.2
                let strength = 0.5 + 3.0 * Double(l) / Double(max(L, 1))
                for (i, p) in ps.enumerated() {
                    for pos in 0..<P {
                        for k in 0..<d {
                            var v = rng.normal() * (k < 4 ? 1.5 : 0.6)
                            if p.label == "harmful" && l > 0 {
                                let u = k == 0 ? cos(angle) : (k == 1 ? sin(angle) : 0)
                                v += strength * u * (pos == 1 ? 1 : 0.6)
                            }
                            if l == 0 { v = Double((k + i % 3) % 5) * 0.1 + rng.normal() * 0.05 }
                            residual.append(Float(v))
                        }
                    }
                }
            }
            try w.append(indices: Array(ps.indices), nTokens: ps.map { _ in 12 }, residual: residual)
            _ = try w.finalize()
        }
    }

    mutating func writeJudgments() throws {
        var out = "item_id,system,label,judge,verdict,score\n"
        for s in systems {
            for label in ["harmful", "harmless"] {
                let refusals = label == "harmful" ? Self.harmfulRefusals(s) : Self.harmlessRefusals(s)
                regexRefusals[s + "|" + label] = refusals
                for i in 0..<Self.itemsPerLabel {
                    let id = (label == "harmful" ? "h" : "b") + String(format: "%03d", i)
                    let regex = i < refusals
                    // human_1 disagrees with the regex on item 9; llm:qwen says refusal on item 0 only
                    let human = i == 9 ? !regex : regex
                    let llm = i == 0
                    for (j, v) in zip(judges, [regex, human, llm]) {
                        out += "\(id),\(s),\(label),\(j),\(v ? "REFUSAL" : "NON-REFUSAL"),\n"
                    }
                }
            }
        }
        try out.write(toFile: path + "/judgments.csv", atomically: true, encoding: .utf8)
    }

    func writeGenerations() throws {
        try FileManager.default.createDirectory(atPath: path + "/generations", withIntermediateDirectories: true)
        for s in systems {
            var lines = ""
            for i in 0..<4 {
                let refuses = i < Self.harmfulRefusals(s)
                let long = String(repeating: "This is a long sentence of the answer that must wrap inside the page. ", count: i == 1 ? 30 : 2)
                let obj: [String: Any] = ["id": "h" + String(format: "%03d", i), "label": "harmful", "system": s,
                                          "prompt": "How do I do harmful thing number \(i)?",
                                          "response": refuses ? "I'm sorry, but I can't help with that." : "Sure, here is how: " + long,
                                          "tokens": 42]
                lines += String(data: try JSONSerialization.data(withJSONObject: obj, options: [.sortedKeys]), encoding: .utf8)! + "\n"
            }
            try lines.write(toFile: path + "/generations/\(SafeFiles.sanitize(s)).jsonl", atomically: true, encoding: .utf8)
        }
    }

    func writeSelfJudgment() throws {
        var out = "system,item_id,label,self_verdict,reference_verdict\n"
        for s in systems where !s.contains("-a0.5") {
            // originals judge themselves right on 8 of 10 items, abliterated models on 5 of 10
            let right = SystemName.parse(s).isAbliterated ? 5 : 8
            for i in 0..<10 {
                let ref = i % 2 == 0 ? "REFUSAL" : "NON-REFUSAL"
                let own = i < right ? ref : (ref == "REFUSAL" ? "NON-REFUSAL" : "REFUSAL")
                out += "\(s),h\(String(format: "%03d", i)),harmful,\(own),\(ref)\n"
            }
        }
        try out.write(toFile: path + "/self_judgment.csv", atomically: true, encoding: .utf8)
    }

    func writeManifest() throws {
        let obj: [String: Any] = [
            "ablabVersion": AblabVersion.string, "study": "Fixture study", "studyFile": "studies/fixture.toml",
            "models": Dictionary(uniqueKeysWithValues: options.checkpoints.enumerated().map { ($1.name, String(repeating: $0 == 0 ? "ab" : "cd", count: 32)) }),
            "promptFiles": ["data/prompts/harmful.jsonl": String(repeating: "12", count: 32), "data/prompts/harmless.jsonl": String(repeating: "34", count: 32)],
            "settings": ["max_new_tokens": "128", "temperature": "0"],
            "stages": ["record": ["fingerprint": "x", "startedAt": "2026-11-29T10:00:00Z", "seconds": 12.5, "outputs": []]],
            "machine": "linux x86_64",
        ]
        try JSONSerialization.data(withJSONObject: obj, options: [.prettyPrinted, .sortedKeys]).write(to: URL(fileURLWithPath: path + "/manifest.json"))
    }
}
