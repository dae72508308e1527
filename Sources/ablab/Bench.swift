import ArgumentParser
import Foundation
import AblabCore
import ModelRuntime
import Recording
import LinearAlgebra
import ActivationCache

/// `ablab bench`: the workloads of `make bench` (notebooks-scripts/bench/), timed the way the PyTorch and
/// llama.cpp peers time theirs, written as JSON with the peers' schema.
struct Bench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Time record, batched generation and single-stream decoding on a model (for `make bench`).",
        discussion: """
        Prompts: the first N lines with a non-empty `text` of each prompt file, in file order, wrapped in the
        model's chat template (default system prompt) — the same selection as the peers in
        notebooks-scripts/bench/. Workloads: `record` (the real recorder: every layer's residual stream at
        the last 5 positions, written to a temporary run folder), `generate_batched` (BATCH prompts, exactly
        NEW_TOKENS greedy tokens each), `decode_single` (the first prompt, NEW_TOKENS tokens). Each is run once
        on 2 prompts to warm up, then timed.
        With --compute bf16, record and generate_batched run again in bf16 after the f32 runs (workloads
        record_bf16, generate_batched_bf16), and `bf16_deviation` compares them with f32: the relative L2
        distance ‖r_bf16 − r_f32‖ / ‖r_f32‖ of each prompt's recorded residual stream per layer (the 5
        positions × d_model values of blocks.l.hook_resid_post; the embeddings are not computed in bf16 and
        left out), median and max over prompts × layers, and the greedy answers: the fraction of answers
        token-identical and the mean fraction of identical leading tokens.
        """)
    @OptionGroup var global: GlobalOptions
    @Option(name: .long, help: "A GGUF file or a Hugging Face folder.") var model: String
    @Option(name: .long, parsing: .singleValue, help: "A JSONL prompt file (repeatable).") var prompts: [String]
    @Option(name: .long, help: "Prompts per file (0 = all).") var n: Int = 64
    @Option(name: .long, help: "Threads for matrix multiplies.") var threads: Int = ProcessInfo.processInfo.activeProcessorCount
    @Option(name: .customLong("new-tokens"), help: "New tokens per generated answer.") var newTokens: Int = 64
    @Option(name: .long, help: "Prompts per generation batch.") var batch: Int = 16
    @Option(name: .long, help: "Comma-separated workloads: record, generate_batched, decode_single.")
    var workloads: String = "record,generate_batched,decode_single"
    @Option(name: .long, help: "Write the results here as JSON (also printed to stdout).") var json: String?
    @Option(name: .long, help: "Scratch folder for the recording (removed afterwards).") var scratch: String = NSTemporaryDirectory()
    @Option(name: .long, help: "f32, or bf16: also time record and generate_batched in bf16 and measure their deviation from f32.")
    var compute: String = "f32"

    func run() async throws {
        global.bootstrap()
        try await runReportingErrors {
            let chosen = workloads.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
            let known: Set<String> = ["record", "generate_batched", "decode_single"]
            for w in chosen where !known.contains(w) {
                throw InputError(file: "--workloads", key: w, "unknown workload (record, generate_batched, decode_single)")
            }
            guard batch >= 1, newTokens >= 1, threads >= 1 else {
                throw InputError(file: "--batch/--new-tokens/--threads", "must be at least 1")
            }
            setThreads(threads)
            let mode = try computeMode(compute)
            let texts = try prompts.flatMap { try Self.benchPrompts($0, n: n) }
            guard texts.count >= 2 else { throw InputError(file: prompts.joined(separator: ","), "fewer than 2 prompts with text") }
            let m = try ChatModel(path: model)
            let encoded = texts.map { m.encodeChat(user: $0) }
            let promptTokens = encoded.reduce(0) { $0 + $1.count }
            var results: [String: Any] = [:]
            var deviation: [String: Any] = [:]
            let dir = scratch + "/ablab-bench-\(getpid())-\(UUID().uuidString)"
            defer { try? FileManager.default.removeItem(atPath: dir) }
            let all = texts.enumerated().map { Prompt(id: "b\($0.offset)", text: $0.element, label: $0.offset % 2 == 0 ? "harmful" : "harmless") }
            /// The timed recording in `mode` (after a warm-up on 2 prompts): its file and rate.
            func record(_ mode: ComputeMode) throws -> (String, [String: Any]) {
                defer { try? m.transformer.setCompute(.f32) }   // the recorder sets the model's mode
                var opts = RecordOptions(checkpoint: "bench")
                opts.positions = try PositionSpec.parse("-5:")
                opts.showProgress = false
                opts.force = true
                opts.compute = mode
                _ = try Recorder.record(model: m, modelSHA256: "0", prompts: Array(all.prefix(2)), run: dir + "/warm-\(mode)", options: opts)
                let t0 = DispatchTime.now()
                let path = try Recorder.record(model: m, modelSHA256: "0", prompts: all, run: dir + "/run-\(mode)", options: opts)
                let s = Self.seconds(since: t0)
                return (path, ["tokens": promptTokens, "seconds": s, "tokens_per_s": Double(promptTokens) / s, "compute": mode.rawValue,
                               "note": "packed prefill, every layer's residual at the last 5 positions written to HDF5" + (mode == .f32 ? "" : "; weight products in \(mode)")])
            }
            let gen = Generator(model: m.transformer)
            /// The timed batched generation in `mode` (after a warm-up): the answers and the rate.
            func generateBatched(_ mode: ComputeMode) throws -> ([[Int]], [String: Any]) {
                try m.transformer.setCompute(mode)
                defer { try? m.transformer.setCompute(.f32) }
                let ps = Array(encoded.prefix(batch))
                let opt = GenerationOptions(maxNewTokens: newTokens, eosIds: [], maxBatch: batch)  // no EOS: exactly newTokens each
                _ = try gen.generate(prompts: Array(ps.prefix(2)), options: GenerationOptions(maxNewTokens: 4, eosIds: [], maxBatch: batch))
                let t0 = DispatchTime.now()
                let r = try gen.generate(prompts: ps, options: opt)
                let s = Self.seconds(since: t0)
                let tokens = r.reduce(0) { $0 + $1.tokens.count }
                return (r.map(\.tokens), ["tokens": tokens, "seconds": s, "tokens_per_s": Double(tokens) / s, "compute": mode.rawValue,
                                          "note": "\(ps.count) prompts × \(newTokens) new tokens, greedy, prefill included" + (mode == .f32 ? "" : "; weight products in \(mode)")])
            }

            if chosen.contains("record") {
                let (f32Path, rate) = try record(.f32)
                results["record"] = rate
                if mode != .f32 {
                    let (path, rate) = try record(mode)
                    results["record_\(mode)"] = rate
                    deviation["residual_rel_l2"] = try Self.residualDeviation(f32: f32Path, other: path)
                }
            }
            if chosen.contains("generate_batched") {
                let (f32Answers, rate) = try generateBatched(.f32)
                results["generate_batched"] = rate
                if mode != .f32 {
                    let (answers, rate) = try generateBatched(mode)
                    results["generate_batched_\(mode)"] = rate
                    deviation["greedy_agreement"] = Self.agreement(f32Answers, answers)
                }
            }
            if chosen.contains("decode_single") {
                let p = encoded[0]
                _ = try gen.generate(prompts: [p], options: GenerationOptions(maxNewTokens: 4, eosIds: [], maxBatch: 1))
                // prefill alone, then prefill + decoding: the difference is the decoding time
                let t0 = DispatchTime.now()
                _ = try gen.generate(prompts: [p], options: GenerationOptions(maxNewTokens: 1, eosIds: [], maxBatch: 1))
                let prefill = Self.seconds(since: t0)
                let t1 = DispatchTime.now()
                let r = try gen.generate(prompts: [p], options: GenerationOptions(maxNewTokens: newTokens, eosIds: [], maxBatch: 1))
                let total = Self.seconds(since: t1)
                let decoded = r[0].tokens.count - 1
                let s = max(total - prefill, 1e-9)
                results["decode_single"] = ["tokens": decoded, "seconds": s, "tokens_per_s": Double(decoded) / s,
                                            "seconds_with_prefill": total, "prompt_tokens": p.count,
                                            "note": "1 prompt, \(newTokens) greedy tokens; rate over the tokens after the first"]
            }
            var out: [String: Any] = [
                "peer": "ablab", "version": AblabVersion.string, "model": URL(fileURLWithPath: model).lastPathComponent,
                "threads": threads, "prompt_tokens": promptTokens, "prompts": texts.count, "workloads": results,
                "peak_rss_mb": Self.peakRSSMB(), "blas_core": BLAS.coreName,
                "kernel_path": CPUKernels.path.rawValue, "kernel_paths_available": CPUKernels.available.map(\.rawValue),
                "openblas_coretype_set_by_ablab": OpenBLASCore.reexecuted,
                "weight_formats": m.transformer.weights.formatSummary.map { "\($0.0) \(String(format: "%.1f", Double($0.1) / 1_048_576)) MiB" }
                    .joined(separator: ", "),
                "weights_held_mb": Double(m.transformer.weights.heldBytes) / 1_048_576,
                "compute": mode.rawValue,
            ]
            if mode != .f32 { out["\(mode)_deviation"] = deviation }
            let data = try JSONSerialization.data(withJSONObject: out, options: [.prettyPrinted, .sortedKeys])
            if let json {
                try FileManager.default.createDirectory(atPath: URL(fileURLWithPath: json).deletingLastPathComponent().path,
                                                        withIntermediateDirectories: true)
                try SafeFiles.atomicWrite(data, to: json)
            }
            print(String(decoding: data, as: UTF8.self))
        }
    }

    /// ‖r − r_f32‖ / ‖r_f32‖ per prompt and layer over blocks.l.hook_resid_post (l = 0 ..< L; /residual[l + 1]),
    /// all recorded positions together, in double precision: median, max and the number of values.
    static func residualDeviation(f32: String, other: String) throws -> [String: Any] {
        let a = try ActivationFile(path: f32), b = try ActivationFile(path: other)
        let n = a.nPrompts, d = a.header.dModel
        var rel: [Double] = []
        for layer in 1...a.header.nLayers {
            var diff = [Double](repeating: 0, count: n), ref = [Double](repeating: 0, count: n)
            for p in a.header.positions {
                let x = try a.residual(layer: layer, position: Int(p)), y = try b.residual(layer: layer, position: Int(p))
                for i in 0..<n {
                    for j in 0..<d {
                        let r = Double(x.data[i * d + j]), e = Double(y.data[i * d + j]) - r
                        diff[i] += e * e; ref[i] += r * r
                    }
                }
            }
            for i in 0..<n { rel.append((diff[i] / max(ref[i], .leastNormalMagnitude)).squareRoot()) }
        }
        rel.sort()
        let median = rel.count % 2 == 1 ? rel[rel.count / 2] : (rel[rel.count / 2 - 1] + rel[rel.count / 2]) / 2
        return ["median": median, "max": rel.last ?? 0, "values": rel.count,
                "over": "\(n) prompts × \(a.header.nLayers) layers (blocks.l.hook_resid_post, \(a.header.positions.count) positions × \(d) values each)"]
    }

    /// Greedy answers against the f32 ones: the fraction token-identical and the mean fraction of leading
    /// tokens identical (the common prefix over the f32 answer's length).
    static func agreement(_ f32: [[Int]], _ other: [[Int]]) -> [String: Any] {
        let pairs = zip(f32, other).map { ($0, $1) }
        let identical = pairs.filter { $0.0 == $0.1 }.count
        let leading = pairs.map { a, b -> Double in
            let same = zip(a, b).prefix { $0 == $1 }.count
            return Double(same) / Double(max(a.count, 1))
        }
        return ["answers": pairs.count, "identical_fraction": Double(identical) / Double(max(pairs.count, 1)),
                "mean_leading_identical_fraction": leading.reduce(0, +) / Double(max(leading.count, 1))]
    }

    static func seconds(since t: DispatchTime) -> Double {
        Double(DispatchTime.now().uptimeNanoseconds - t.uptimeNanoseconds) / 1e9
    }

    /// Peak resident set size of this process (getrusage: kilobytes on Linux).
    static func peakRSSMB() -> Double {
        var u = rusage()
        getrusage(RUSAGE_SELF.rawValue, &u)
        return Double(u.ru_maxrss) / 1024
    }

    /// The first `n` (0 = all) lines of a JSONL file whose `text` is non-empty, in file order.
    static func benchPrompts(_ path: String, n: Int) throws -> [String] {
        guard let data = FileManager.default.contents(atPath: path) else { throw IOError(path: path, "cannot read") }
        var out: [String] = []
        for (i, line) in String(decoding: data, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            if n > 0 && out.count >= n { break }
            let t = line.trimmingCharacters(in: .whitespaces)
            if t.isEmpty { continue }
            guard let obj = try? JSONSerialization.jsonObject(with: Data(t.utf8)) as? [String: Any] else {
                throw InputError(file: path, line: i + 1, "not a JSON object")
            }
            if let text = obj["text"] as? String, !text.isEmpty { out.append(text) }
        }
        return out
    }
}
