import ArgumentParser
import Foundation
import AblabCore
import ModelRuntime
import Recording
import LinearAlgebra

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
            let texts = try prompts.flatMap { try Self.benchPrompts($0, n: n) }
            guard texts.count >= 2 else { throw InputError(file: prompts.joined(separator: ","), "fewer than 2 prompts with text") }
            let m = try ChatModel(path: model)
            let encoded = texts.map { m.encodeChat(user: $0) }
            let promptTokens = encoded.reduce(0) { $0 + $1.count }
            var results: [String: Any] = [:]

            if chosen.contains("record") {
                let all = texts.enumerated().map { Prompt(id: "b\($0.offset)", text: $0.element, label: $0.offset % 2 == 0 ? "harmful" : "harmless") }
                let dir = scratch + "/ablab-bench-\(getpid())-\(UUID().uuidString)"
                defer { try? FileManager.default.removeItem(atPath: dir) }
                var opts = RecordOptions(checkpoint: "bench")
                opts.positions = try PositionSpec.parse("-5:")
                opts.showProgress = false
                opts.force = true
                _ = try Recorder.record(model: m, modelSHA256: "0", prompts: Array(all.prefix(2)), run: dir + "/warm", options: opts)
                let t0 = DispatchTime.now()
                _ = try Recorder.record(model: m, modelSHA256: "0", prompts: all, run: dir + "/run", options: opts)
                let s = Self.seconds(since: t0)
                results["record"] = ["tokens": promptTokens, "seconds": s, "tokens_per_s": Double(promptTokens) / s,
                                     "note": "packed prefill, every layer's residual at the last 5 positions written to HDF5"]
            }
            let gen = Generator(model: m.transformer)
            if chosen.contains("generate_batched") {
                let ps = Array(encoded.prefix(batch))
                let opt = GenerationOptions(maxNewTokens: newTokens, eosIds: [], maxBatch: batch)  // no EOS: exactly newTokens each
                _ = try gen.generate(prompts: Array(ps.prefix(2)), options: GenerationOptions(maxNewTokens: 4, eosIds: [], maxBatch: batch))
                let t0 = DispatchTime.now()
                let r = try gen.generate(prompts: ps, options: opt)
                let s = Self.seconds(since: t0)
                let tokens = r.reduce(0) { $0 + $1.tokens.count }
                results["generate_batched"] = ["tokens": tokens, "seconds": s, "tokens_per_s": Double(tokens) / s,
                                               "note": "\(ps.count) prompts × \(newTokens) new tokens, greedy, prefill included"]
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
            ]
            let data = try JSONSerialization.data(withJSONObject: out, options: [.prettyPrinted, .sortedKeys])
            if let json {
                try FileManager.default.createDirectory(atPath: URL(fileURLWithPath: json).deletingLastPathComponent().path,
                                                        withIntermediateDirectories: true)
                try SafeFiles.atomicWrite(data, to: json)
            }
            print(String(decoding: data, as: UTF8.self))
        }
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
