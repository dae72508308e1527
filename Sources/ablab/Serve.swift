import ArgumentParser
import Foundation
import AblabCore
import ModelRuntime
import Abliteration
import Analysis
import LinearAlgebra
import Serving

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Serve a model (optionally abliterated) over an OpenAI-compatible HTTP API.",
        discussion: """
        Endpoints: GET /v1/models, POST /v1/chat/completions, POST /v1/completions (stream, max_tokens,
        temperature, top_p, seed, stop, logprobs/top_logprobs), GET /health. Concurrent requests are
        decoded together (continuous batching, up to --max-batch); a request joins the running batch at
        the next step. Greedy answers equal `ablab generate` for the same prompt and setting.
        Abliteration: --direction D.npy [--alpha A] as `ablab generate`, or --run RUN --system NAME for
        a system of a study (the direction from RUN/analysis.h5). Listens on 127.0.0.1 unless --host is
        given; with --api-key (or --api-key-env VAR) every request needs 'Authorization: Bearer KEY'.
        Ctrl-C (SIGINT) or SIGTERM stops accepting connections and finishes the requests in flight.
        """)
    @OptionGroup var global: GlobalOptions
    @Option(name: .long, help: "A GGUF file or a Hugging Face folder.") var model: String
    @Option(name: .customLong("system-prompt"), help: "System prompt when a chat has none: the model's default (omit) or this text.")
    var systemPrompt: String?
    @Flag(name: .customLong("no-system"), help: "No default system turn.") var noSystem = false
    @Option(name: .customLong("chat-format"), help: "Use this chat format instead of the model's template (chatml).")
    var chatFormat: String?
    @Option(name: .long, help: "Threads for matrix multiplies (default: all cores).") var threads: Int?
    @OptionGroup var direction: DirectionOptions
    @Option(name: .long, help: "Ablation strength: x ← x − α (x·r̂) r̂.") var alpha: Double = 1
    @Option(name: .long, help: "With --run: serve this system of the study (<checkpoint>+abl-<method>-L<layer>-p<position>-a<alpha>).")
    var system: String?
    @Option(name: .customLong("served-name"), help: "The model id clients send (default: the system's name).") var servedName: String?
    @Option(name: .long, help: "Address to listen on.") var host: String = "127.0.0.1"
    @Option(name: .long, help: "Port (0: any free port; the one taken is logged).") var port: Int = 8000
    @Option(name: .customLong("api-key"), help: "Require 'Authorization: Bearer KEY' on every request.") var apiKey: String?
    @Option(name: .customLong("api-key-env"), help: "Read the API key from this environment variable.") var apiKeyEnv: String?
    @Option(name: .customLong("max-batch"), help: "Requests decoded together at most.") var maxBatch: Int = 16
    @Option(name: .customLong("max-body-bytes"), help: "Larger request bodies get 413.") var maxBodyBytes: Int = 1 << 20
    @Option(name: .customLong("default-max-tokens"), help: "max_tokens when a request gives none.") var defaultMaxTokens: Int = 256
    @Option(name: .long, help: "Context length in tokens (default: the model's, from its metadata).") var context: Int?

    func validate() throws {
        if systemPrompt != nil && noSystem { throw ValidationError("--system-prompt and --no-system exclude each other") }
        if system != nil && direction.run == nil { throw ValidationError("--system needs --run RUN (the study's run folder)") }
        if system != nil && direction.directionFile != nil { throw ValidationError("give --system or --direction, not both") }
        if !(0...65535).contains(port) { throw ValidationError("--port must be in 0…65535") }
        if maxBatch < 1 || maxBodyBytes < 1 || defaultMaxTokens < 1 { throw ValidationError("--max-batch, --max-body-bytes and --default-max-tokens must be ≥ 1") }
        if apiKey != nil && apiKeyEnv != nil { throw ValidationError("give --api-key or --api-key-env, not both") }
    }

    func run() async throws {
        global.bootstrap()
        try await runReportingErrors {
            var key = apiKey
            if let apiKeyEnv {
                guard let v = ProcessInfo.processInfo.environment[apiKeyEnv], !v.isEmpty else {
                    throw InputError(file: "--api-key-env", "the environment variable \(apiKeyEnv) is not set or empty")
                }
                key = v
            }
            if let threads { BLAS.setThreads(threads) }
            let checkpoint = checkpointName(model)
            var vector: [Float]? = nil
            var name = checkpoint
            var strength = alpha
            if let system, let run = direction.run {
                let parsed = try SystemName.parse(system)
                name = system
                if let s = parsed.setting {
                    guard s.method == .meanDiff || s.method == .pc1 else {
                        throw InputError(file: "--system", "\(system) uses the study edit '\(s.method.rawValue)', which --system cannot rebuild from one cached direction; serve the GGUF the study exports for it ([abliteration] export_weights = true)")
                    }
                    vector = try AnalysisFile.direction(run: run, checkpoint: parsed.checkpoint,
                                                        method: Analysis.DirectionMethod(rawValue: s.method.rawValue) ?? .meanDiff,
                                                        layer: s.layer, position: s.position)
                    strength = s.alpha
                }
            } else if let v = try direction.load(modelPath: model) {
                vector = v
                if direction.layer != nil && direction.position != nil {
                    name = try direction.setting(checkpoint: checkpoint, alpha: alpha).systemName
                } else {
                    name = checkpoint + "+abl-direction-a" + SystemName.formatAlpha(alpha)
                }
            }
            let prompt: SystemPrompt = noSystem ? .none : (systemPrompt.map { .custom($0) } ?? .modelDefault)
            let chat = try ChatModel(path: model, systemPrompt: prompt, chatFormat: chatFormat)
            var hooks = HookSet()
            if let vector {
                try UnitDirection(vector).check(dModel: chat.config.dModel, source: model)
                hooks = try Ablation.hooks(direction: vector, alpha: Float(strength), nLayers: chat.config.nLayers)
            }
            let ctx = try context ?? Self.contextLength(model)
            var cfg = ServeConfiguration(modelName: servedName ?? name, contextLength: ctx)
            cfg.host = host; cfg.port = port; cfg.apiKey = key; cfg.maxBodyBytes = maxBodyBytes
            cfg.defaultMaxTokens = defaultMaxTokens
            let engine = Engine(model: chat, hooks: hooks, maxBatch: maxBatch)
            engine.start()
            let server = OpenAIServer(model: chat, engine: engine, configuration: cfg)
            let served = cfg.modelName
            let keyNote = key == nil ? "" : ", API key required"
            do {
                try await server.run { h, p in
                    FileHandle.standardError.write(Data("serve: \(served) on http://\(h):\(p)/v1 (context \(ctx) tokens, batch ≤ \(maxBatch)\(keyNote))\n".utf8))
                }
            } catch {
                engine.shutdown()
                throw IOError(path: "\(host):\(port)", "the server stopped: \(error)")
            }
            engine.shutdown()
            FileHandle.standardError.write(Data("serve: stopped; every request in flight was answered\n".utf8))
        }
    }

    /// The context length named by the model's metadata: GGUF `<arch>.context_length`, Hugging Face
    /// `max_position_embeddings`; 2048 when neither says.
    static func contextLength(_ path: String) throws -> Int {
        if path.lowercased().hasSuffix(".gguf") {
            let f = try GGUFFile(path: path)
            if let arch = f.architecture, let n = f.int(arch + ".context_length"), n > 0 { return n }
            return 2048
        }
        let config = URL(fileURLWithPath: path).appendingPathComponent("config.json")
        if let d = try? Data(contentsOf: config), let o = try? JSONSerialization.jsonObject(with: d) as? [String: Any],
           let n = o["max_position_embeddings"] as? Int, n > 0 { return n }
        return 2048
    }
}
