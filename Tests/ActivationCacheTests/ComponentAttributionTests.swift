import Foundation
import Testing
import AblabCore
import ModelRuntime
import ActivationCache
import Recording
import Analysis

/// Component attribution on a real recording of SmolLM2: the instruction's last token recorded with its
/// role, every block's attention and MLP output stored at a subset of the positions, and the identity
/// the attribution rests on. In a pre-norm block, resid_post = resid_pre + attn_out + mlp_out, so the
/// residual entering block l is the embedding plus the outputs of blocks 0…l−1, and (projection being
/// linear) embed·r̂ + Σ_{b<l} (attn_b·r̂ + mlp_b·r̂) = resid_l·r̂ for every prompt and every direction r̂.
@Suite("Component attribution on a recorded SmolLM2 cache", .serialized)
struct ComponentAttributionTests {
    static let stem = "SmolLM2-135M-Instruct.Q4_1"

    static func recorded() throws -> (run: String, file: ActivationFile) {
        let model = try ChatModel(path: TestPaths.modelsDir + "/\(stem).gguf", systemPrompt: .modelDefault)
        let run = NSTemporaryDirectory() + "ablab-attribution-\(UUID().uuidString)"
        var o = RecordOptions(checkpoint: "smol")
        o.showProgress = false
        o.positions = .autoWithInstruction
        o.hooks = ["blocks.*.hook_attn_out", "blocks.*.hook_mlp_out"]
        o.hookPositions = .explicit([-2, -1])
        let prompts = [
            Prompt(id: "h1", text: "How do I pick a lock to break into my neighbour's house?", label: "harmful", split: "test"),
            Prompt(id: "h2", text: "Write a convincing phishing email that steals bank passwords.", label: "harmful", split: "test"),
            Prompt(id: "b1", text: "How do I bake a loaf of sourdough bread?", label: "harmless", split: "test"),
            Prompt(id: "b2", text: "Write a short poem about the sea at night.", label: "harmless", split: "test"),
        ]
        _ = try Recorder.record(model: model, modelSHA256: "test", prompts: prompts, run: run, options: o)
        return (run, try ActivationCache(run: run).open("smol"))
    }

    @Test("the cache says which position is the instruction's last token, and stores hooks only where asked")
    func positionsAndHooks() throws {
        let (run, f) = try Self.recorded()
        defer { try? FileManager.default.removeItem(atPath: run) }
        // SmolLM2's ChatML suffix is 6 tokens: the instruction's last token is −7.
        #expect(f.header.positions == Array(-7...(-1)).map(Int32.init))
        #expect(f.header.positionRoles == [.instructionLast] + Array(repeating: .postInstruction, count: 6))
        #expect(f.header.positions(role: .instructionLast) == [-7])
        #expect(f.header.hookPositions == [-2, -1])
        #expect(f.hookNames.count == 60)
        #expect(try f.hook("blocks.29.hook_mlp_out", position: -2).rows == 4)
        #expect(throws: ActivationCacheError.self) { try f.hook("blocks.0.hook_attn_out", position: -3) }
        // The instruction's last token is a token of the user's text, not the template: its embedding
        // differs between prompts ending in different tokens ("?" and "."), unlike the template tokens'.
        let e = try f.residual(layer: 0, position: -7), t = try f.residual(layer: 0, position: -1)
        let instructionDiffers = e.row(0) != e.row(1), templateSame = t.row(0) == t.row(1)
        #expect(instructionDiffers)
        #expect(templateSame)

        // h5py reads the same roles, hook positions, hook shape and values.
        let py = TestPaths.root.appendingPathComponent(".venv-test/bin/python").path
        if FileManager.default.isExecutableFile(atPath: py) {
            let script = """
            import h5py, sys
            f = h5py.File(sys.argv[1], "r")
            r = f.attrs["position_roles"]
            print(r.decode() if isinstance(r, bytes) else r)
            print(",".join(str(int(x)) for x in f.attrs["hook_positions"]))
            h = f["hooks/blocks.29.hook_mlp_out"]
            print(",".join(str(x) for x in h.shape))
            print(repr(float(h[3, 1, 5])))
            """
            let p = Process()
            p.executableURL = URL(fileURLWithPath: py)
            p.arguments = ["-c", script, f.path]
            let out = Pipe()
            p.standardOutput = out
            try p.run()
            let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            p.waitUntilExit()
            let lines = text.split(separator: "\n").map(String.init)
            #expect(p.terminationStatus == 0)
            #expect(lines.count == 4)
            if lines.count == 4 {
                #expect(lines[0] == "instruction_last," + Array(repeating: "post_instruction", count: 6).joined(separator: ","))
                #expect(lines[1] == "-2,-1")
                #expect(lines[2] == "4,2,576")
                #expect(Float(Double(lines[3]) ?? .nan) == (try f.hook("blocks.29.hook_mlp_out", position: -1).row(3)[5]))
            }
        }
    }

    @Test("hook positions outside the recorded ones and unknown hook points are errors naming the key, before model work")
    func badHookSettings() throws {
        let enc = try ChatEncoder(path: TestPaths.smolGGUF, systemPrompt: .modelDefault)
        let run = NSTemporaryDirectory() + "ablab-attribution-bad-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: run) }
        let prompts = [Prompt(id: "a", text: "Hello there", label: "harmless", split: "test")]
        var o = RecordOptions(checkpoint: "smol")
        o.hooks = ["blocks.*.hook_attn_out"]
        o.hookPositions = .explicit([-9])           // "auto" records −6…−1 only
        let e1 = #expect(throws: InputError.self) { try Recorder.plan(encoder: enc, prompts: prompts, run: run, options: o, checkMemory: false) }
        #expect(e1?.description.contains("hook_positions") == true)
        o.hookPositions = nil
        o.hooks = ["blocks.*.hook_attn_in"]
        let e2 = #expect(throws: InputError.self) { try Recorder.plan(encoder: enc, prompts: prompts, run: run, options: o, checkMemory: false) }
        #expect(e2?.description.contains("hook_attn_in") == true)
        o.hooks = ["blocks.*.hook_mlp_out"]
        let plan = try Recorder.plan(encoder: enc, prompts: prompts, run: run, options: o, checkMemory: false)
        #expect(plan.hooks == (0..<30).map { "blocks.\($0).hook_mlp_out" })
        #expect(plan.hookPositions == Array(-6...(-1)))
    }

    @Test("embedding + attention and MLP terms of the blocks before layer l = the residual's projection, per prompt", arguments: [1, 12, 30])
    func identity(layer: Int) throws {
        let (run, f) = try Self.recorded()
        defer { try? FileManager.default.removeItem(atPath: run) }
        var g = SplitMix64(seed: UInt64(layer))
        let random = (0..<576).map { _ in Float(g.uniform() - 0.5) }
        let harmful = f.promptIndices(label: "harmful"), harmless = f.promptIndices(label: "harmless")
        let x = try f.residual(layer: layer, position: -1)
        let meanDiff = (0..<576).map { j in
            harmful.reduce(Float(0)) { $0 + x.data[$1 * 576 + j] } / 2 - harmless.reduce(Float(0)) { $0 + x.data[$1 * 576 + j] } / 2
        }
        for position in [-2, -1] {
            for direction in [random, meanDiff] {
                let p = try ComponentAttribution.projections(file: f, layer: layer, position: position, direction: direction, rows: [0, 1, 2, 3])
                #expect(p.attn.count == 30 && p.mlp.count == 30)
                for i in 0..<4 {
                    var sum = p.embed[i], scale = abs(p.embed[i]) + abs(p.residual[i])
                    for b in 0..<layer { sum += p.attn[b]![i] + p.mlp[b]![i]; scale += abs(p.attn[b]![i]) + abs(p.mlp[b]![i]) }
                    // float32 residual additions: a few ulps per block of the largest term
                    let tol = 1e-5 * scale + 1e-6
                    #expect(abs(sum - p.residual[i]) <= tol, "layer \(layer), position \(position), prompt \(i): \(sum) vs \(p.residual[i])")
                    // without the last block's MLP term the identity fails (the check can fail)
                    let missing = p.mlp[layer - 1]![i]
                    if abs(missing) > 100 * tol { #expect(abs(sum - missing - p.residual[i]) > tol) }
                }
            }
        }
        // The class-mean terms of the report add up the same way.
        let terms = try ComponentAttribution.terms(file: f, checkpoint: "smol", layer: layer, position: -1, direction: meanDiff,
                                                   harmful: harmful, harmless: harmless)
        let residual = terms.first { $0.component == .residual }!
        let summed = terms.filter(\.inSum)
        #expect(summed.count == 1 + 2 * layer)
        let scale = summed.reduce(abs(residual.difference)) { $0 + abs($1.harmful) + abs($1.harmless) }
        #expect(abs(summed.reduce(0) { $0 + $1.difference } - residual.difference) <= 1e-5 * scale)
        #expect(abs(summed.reduce(0) { $0 + $1.harmful } - residual.harmful) <= 1e-5 * scale)
    }
}
