import ArgumentParser
import Foundation
import AblabCore
import ModelRuntime
import ActivationCache
import Recording
import LinearAlgebra

/// Options shared by every command that loads a chat model.
struct ModelOptions: ParsableArguments {
    @Option(name: .long, help: "A GGUF file or a Hugging Face folder (config.json + safetensors + tokenizer.json).")
    var model: String
    @Option(name: .long, help: "System prompt: the model's default (omit), a text, or none with --no-system.")
    var system: String?
    @Flag(name: .customLong("no-system"), help: "No system turn at all.") var noSystem = false
    @Option(name: .customLong("chat-format"), help: "Use this chat format instead of the model's template (chatml, qwen3, llama3, llama3.1, gemma2, gemma3, mistral, phi3, glm4).")
    var chatFormat: String?
    @Flag(name: .long, help: "Qwen3: let the model think first (default: the prompt closes an empty think block, enable_thinking=False).")
    var thinking = false
    @Option(name: .long, help: "Threads for matrix multiplies (default: all cores).") var threads: Int?

    var systemPrompt: SystemPrompt { noSystem ? .none : (system.map { .custom($0) } ?? .modelDefault) }

    func validate() throws {
        if system != nil && noSystem { throw ValidationError("--system and --no-system exclude each other") }
    }

    func load() throws -> ChatModel {
        try ChatModel(encoder: try encoder())
    }

    /// Tokenizer, template and configuration without the weights (checks before loading).
    func encoder() throws -> ChatEncoder {
        if let threads { setThreads(threads) }
        return try ChatEncoder(path: model, systemPrompt: systemPrompt, chatFormat: chatFormat, thinking: thinking)
    }
}

struct Record: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Store the residual stream of every layer for every prompt in HDF5 (resumable).",
        discussion: """
        Writes RUN_DIR/activations/<name>.h5 (schema: README, "Activation cache"). Killed and rerun with the
        same arguments, it continues where it stopped; a different model or prompt set is refused.
        Prompt files: JSONL or CSV with id, text, label and optional split.
        """)
    @OptionGroup var global: GlobalOptions
    @OptionGroup var modelOptions: ModelOptions
    @Option(name: .long, parsing: .singleValue, help: "A prompt file (repeatable).") var prompts: [String]
    @Option(name: .long, help: "Only prompts of these splits, comma-separated (e.g. train,test).") var split: String?
    @Option(name: .long, help: "Positions relative to the end of the prompt: auto (template tokens), auto+instruction (and the instruction's last token), -5:, -1, -8:-2, -5,-1.")
    var positions: String = "auto"
    @Option(name: .long, help: "Extra hook points, comma-separated (e.g. blocks.3.hook_attn_out; blocks.*.hook_mlp_out = every block's).") var hooks: String?
    @Option(name: .customLong("hook-positions"), help: "Where the hooks are stored: a subset of --positions, same syntax (default: every recorded position).")
    var hookPositions: String?
    @Option(name: .long, help: "float32 or float16.") var dtype: String = "float32"
    @Option(name: .long, help: computeHelp) var compute: String = "f32"
    @Flag(name: .long, help: "Shuffle + gzip the datasets.") var compress = false
    @Option(name: .long, help: "Record shard k of n (prompt index % n == k); join with `ablab merge`.") var shard: String?
    @Option(name: .long, help: "The checkpoint's name (default: the model file's name).") var name: String?
    @Option(name: .long, help: "The run folder.") var out: String
    @Option(name: .customLong("batch-tokens"), help: "Tokens per packed prefill batch (more use more memory: the KV cache and row buffers of one batch).") var batchTokens: Int = 1024
    @Option(name: .customLong("prompts-per-shard"), help: "Prompts per crash-safe shard: at most this much work is lost to a crash.")
    var promptsPerShard: Int = 64
    @Flag(name: .long, help: "Re-record even if a finished file or a partial recording exists.") var force = false
    @Flag(name: .customLong("skip-too-long"), help: "Leave out prompts too long for the model's context (listed on stderr) instead of refusing.")
    var skipTooLong = false
    @Flag(name: .customLong("no-disk-check"), help: "Do not refuse when the estimated cache size exceeds the free space or file-size limit.")
    var noDiskCheck = false

    func run() async throws {
        global.bootstrap()
        try await runReportingErrors {
            let keep = split.map { Set($0.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }) }
            let all = try PromptFile.load(prompts, splits: keep)
            guard let dt = ActivationDType(rawValue: dtype) else { throw InputError(file: "--dtype", "use float32 or float16, not \(dtype)") }
            var opts = RecordOptions(checkpoint: name ?? checkpointName(modelOptions.model))
            opts.positions = try PositionSpec.parse(positions)
            opts.hooks = hooks.map { $0.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) } } ?? []
            opts.hookPositions = try hookPositions.map { try PositionSpec.parse($0, file: "--hook-positions") }
            opts.dtype = dt
            opts.compute = try computeMode(compute)
            opts.compress = compress
            if let shard { opts.shard = try ShardSpec(parsing: shard) }
            opts.batchTokens = batchTokens
            opts.force = force
            opts.promptsPerShard = promptsPerShard
            opts.skipTooLong = skipTooLong
            opts.checkDisk = !noDiskCheck
            // Prompt lengths, memory and disk are checked before the weights are loaded.
            let encoder = try modelOptions.encoder()
            let plan = try Recorder.plan(encoder: encoder, prompts: all, run: out, options: opts)
            let model = try ChatModel(encoder: encoder)
            let sha = try modelSHA256(modelOptions.model)
            let path = try Recorder.record(model: model, modelSHA256: sha, plan: plan, run: out, options: opts)
            if !plan.skipped.isEmpty {
                FileHandle.standardError.write(Data("\(path): \(plan.skipped.count) prompt\(plan.skipped.count == 1 ? "" : "s") too long for the context left out: \(plan.skipped.map(\.id).joined(separator: ", "))\n".utf8))
            }
            print(path)
        }
    }
}

struct Merge: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Join `record --shard k/n` outputs into one activation file.",
        discussion: "An existing output that already equals the merge of the shards (every value bit for bit) is kept and the merge skipped, so a resubmitted job succeeds; one that differs is an error.")
    @OptionGroup var global: GlobalOptions
    @Argument(help: "Shard files (.h5) of one checkpoint.") var inputs: [String]
    @Option(name: .long, help: "The merged file.") var out: String

    func run() async throws {
        global.bootstrap()
        try await runReportingErrors {
            let r = try ActivationCacheWriter.mergeReporting(inputs, into: out)
            if r.skipped { AblabLog.logger("merge").info("\(out) already equals the merge of its shards; kept as it is") }
            print(out)
        }
    }
}

/// A checkpoint name from a model path: the file or folder name without extension.
func checkpointName(_ path: String) -> String {
    let url = URL(fileURLWithPath: path)
    let base = url.pathExtension.lowercased() == "gguf" ? url.deletingPathExtension().lastPathComponent : url.lastPathComponent
    return SafeFiles.sanitize(base)
}

/// SHA-256 of a model file, or of a folder's safetensors and config files in name order.
func modelSHA256(_ path: String) throws -> String {
    var isDir: ObjCBool = false
    guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir) else { throw IOError(path: path, "does not exist") }
    if !isDir.boolValue { return try SHA256.hex(file: path) }
    let files = (try? FileManager.default.contentsOfDirectory(atPath: path))?.filter {
        $0.hasSuffix(".safetensors") || $0.hasSuffix(".json")
    }.sorted() ?? []
    var parts = ""
    for f in files { parts += f + ":" + (try SHA256.hex(file: path + "/" + f)) + "\n" }
    return SHA256.hex(Data(parts.utf8))
}
