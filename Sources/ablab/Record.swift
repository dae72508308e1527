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
        if let threads { BLAS.setThreads(threads) }
        return try ChatModel(path: model, systemPrompt: systemPrompt, chatFormat: chatFormat, thinking: thinking)
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
    @Option(name: .long, help: "Positions relative to the end of the prompt: auto (template tokens), -5:, -1, -8:-2, -5,-1.")
    var positions: String = "auto"
    @Option(name: .long, help: "Extra hook points, comma-separated (e.g. blocks.3.hook_attn_out).") var hooks: String?
    @Option(name: .long, help: "float32 or float16.") var dtype: String = "float32"
    @Flag(name: .long, help: "Shuffle + gzip the datasets.") var compress = false
    @Option(name: .long, help: "Record shard k of n (prompt index % n == k); join with `ablab merge`.") var shard: String?
    @Option(name: .long, help: "The checkpoint's name (default: the model file's name).") var name: String?
    @Option(name: .long, help: "The run folder.") var out: String
    @Option(name: .customLong("batch-tokens"), help: "Tokens per packed prefill batch.") var batchTokens: Int = 4096
    @Option(name: .customLong("prompts-per-shard"), help: "Prompts per crash-safe shard: at most this much work is lost to a crash.")
    var promptsPerShard: Int = 64
    @Flag(name: .long, help: "Re-record even if a finished file or a partial recording exists.") var force = false

    func run() async throws {
        global.bootstrap()
        try await runReportingErrors {
            let keep = split.map { Set($0.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }) }
            let all = try PromptFile.load(prompts, splits: keep)
            guard let dt = ActivationDType(rawValue: dtype) else { throw InputError(file: "--dtype", "use float32 or float16, not \(dtype)") }
            var opts = RecordOptions(checkpoint: name ?? checkpointName(modelOptions.model))
            opts.positions = try PositionSpec.parse(positions)
            opts.hooks = hooks.map { $0.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) } } ?? []
            opts.dtype = dt
            opts.compress = compress
            if let shard { opts.shard = try ShardSpec(parsing: shard) }
            opts.batchTokens = batchTokens
            opts.force = force
            opts.promptsPerShard = promptsPerShard
            let model = try modelOptions.load()
            let sha = try modelSHA256(modelOptions.model)
            let path = try Recorder.record(model: model, modelSHA256: sha, prompts: all, run: out, options: opts)
            print(path)
        }
    }
}

struct Merge: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Join `record --shard k/n` outputs into one activation file.")
    @OptionGroup var global: GlobalOptions
    @Argument(help: "Shard files (.h5) of one checkpoint.") var inputs: [String]
    @Option(name: .long, help: "The merged file.") var out: String

    func run() async throws {
        global.bootstrap()
        try await runReportingErrors {
            try ActivationCacheWriter.merge(inputs, into: out)
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
