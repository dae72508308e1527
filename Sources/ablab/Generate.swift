import ArgumentParser
import Foundation
import AblabCore
import ModelRuntime
import ActivationCache
import Abliteration
import LinearAlgebra

/// Where an ablation direction comes from on the command line.
struct DirectionOptions: ParsableArguments {
    @Option(name: .customLong("direction"), help: "A direction file: .npy (float32/float64, shape (d,)) or JSON array.")
    var directionFile: String?
    @Option(name: .long, help: "A run folder: the mean-diff direction (harmful − harmless, train split if any) from its activation cache.")
    var run: String?
    @Option(name: .customLong("cache-checkpoint"), help: "The checkpoint name in the run's activation cache (default: the model file's name).")
    var cacheCheckpoint: String?
    @Option(name: .long, help: "The layer the direction was taken at (resid_pre index).") var layer: Int?
    @Option(name: .long, parsing: .unconditional, help: "The position the direction was taken at (e.g. -1).") var position: Int?
    @Option(name: .long, help: "How the direction was found: mean-diff or pc1.") var method: String = "mean-diff"

    var parsedMethod: DirectionMethod {
        get throws {
            guard let m = DirectionMethod(rawValue: method), m == .meanDiff || m == .pc1 else {
                let studyOnly = DirectionMethod(rawValue: method) != nil
                throw InputError(file: "--method", studyOnly
                    ? "\(method) is a study edit ([abliteration] method in a study file), not a way to find one direction; here: mean-diff or pc1"
                    : "unknown method \(method) (mean-diff, pc1)")
            }
            return m
        }
    }

    var given: Bool { directionFile != nil || run != nil }

    /// The direction, or nil when neither --direction nor --run was given.
    func load(modelPath: String) throws -> [Float]? {
        if let directionFile {
            guard run == nil else { throw InputError(file: "--run", "give either --direction or --run, not both") }
            return try DirectionFile.load(directionFile)
        }
        guard let run else { return nil }
        guard try parsedMethod == .meanDiff else {
            throw InputError(file: "--method", "--run computes mean-diff directions only; for pc1 pass the direction file from `ablab analyze`")
        }
        guard let layer, let position else { throw InputError(file: "--run", "--run needs --layer and --position") }
        let file = try ActivationCache(run: run).open(cacheCheckpoint ?? checkpointName(modelPath))
        let split = file.prompts.contains { $0.split == "train" } ? "train" : nil
        let harmful = file.promptIndices(label: "harmful", split: split)
        let harmless = file.promptIndices(label: "harmless", split: split)
        guard !harmful.isEmpty, !harmless.isEmpty else {
            throw InputError(file: file.path, "needs harmful and harmless prompts to compute a mean-diff direction")
        }
        let a = try file.residual(layer: layer, position: position, prompts: harmful)
        let b = try file.residual(layer: layer, position: position, prompts: harmless)
        return meanDifference(a, b)
    }

    /// The setting named by --layer/--position/--method for checkpoint `checkpoint` with strength `alpha`.
    func setting(checkpoint: String, alpha: Double) throws -> AbliterationSetting {
        guard let layer, let position else {
            throw InputError(file: "--layer/--position", "name where the direction was taken: --layer L --position P")
        }
        return AbliterationSetting(checkpoint: checkpoint, method: try parsedMethod, layer: layer, position: position, alpha: alpha)
    }
}

/// Column means of a [n, d] minus those of b [m, d], accumulated in Double.
func meanDifference(_ a: Matrix, _ b: Matrix) -> [Float] {
    func mean(_ m: Matrix) -> [Double] {
        var s = [Double](repeating: 0, count: m.cols)
        for i in 0..<m.rows { for j in 0..<m.cols { s[j] += Double(m.data[i * m.cols + j]) } }
        return s.map { $0 / Double(max(m.rows, 1)) }
    }
    return zip(mean(a), mean(b)).map { Float($0 - $1) }
}

struct Generate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Generate answers, optionally with the refusal direction ablated at inference time.",
        discussion: """
        One prompt:  ablab generate --model M --prompt "text"   (prints the reply)
        A set:       ablab generate --model M --prompts P.jsonl [--split test] [--harmful N --harmless N] \\
                       [--direction D.npy --alpha A --layer L --position P] --out OUT.jsonl
        OUT.jsonl gets one line per prompt {id, label, system, checkpoint, settings, prompt, response,
        tokens, finish_reason, and compute when not f32}; rerun after an interruption, it continues where it
        stopped (in the same --compute mode).
        A model exported by `ablab abliterate` is named by the setting stored in its metadata.
        """)
    @OptionGroup var global: GlobalOptions
    @OptionGroup var modelOptions: ModelOptions
    @Option(name: .long, help: "One user prompt; prints the reply.") var prompt: String?
    @Option(name: .long, parsing: .singleValue, help: "A prompt file (repeatable).") var prompts: [String] = []
    @Option(name: .long, help: "Only prompts of this split (e.g. test).") var split: String?
    @Option(name: .long, help: "The first N harmful prompts (default: all).") var harmful: Int?
    @Option(name: .long, help: "The first N harmless prompts (default: all).") var harmless: Int?
    @Option(name: .customLong("max-new-tokens")) var maxNewTokens: Int = 256
    @Option(name: .long, help: "0 = greedy.") var temperature: Float = 0
    @Option(name: .customLong("top-p")) var topP: Float = 1
    @Option(name: .long) var seed: UInt64 = 0
    @Option(name: .long, help: "Sequences decoded together.") var batch: Int = 8
    @Option(name: .long, help: computeHelp) var compute: String = "f32"
    @OptionGroup var direction: DirectionOptions
    @Option(name: .customLong("ablate-direction"), help: "Same as --direction.") var ablateDirection: String?
    @Option(name: .long, help: "Ablation strength: x ← x − α (x·r̂) r̂.") var alpha: Double = 1
    @Option(name: .long, help: "The checkpoint's name (default: the model file's name).") var name: String?
    @Option(name: .long, help: "The output JSONL (needed with --prompts).") var out: String?

    func validate() throws {
        if (prompt == nil) == prompts.isEmpty { throw ValidationError("give --prompt TEXT or --prompts FILE") }
        if !prompts.isEmpty && out == nil { throw ValidationError("--prompts needs --out OUT.jsonl") }
        if ablateDirection != nil && direction.directionFile != nil { throw ValidationError("--ablate-direction and --direction are the same option") }
        if maxNewTokens < 0 || batch < 1 { throw ValidationError("--max-new-tokens must be ≥ 0 and --batch ≥ 1") }
    }

    func run() async throws {
        global.bootstrap()
        try await runReportingErrors {
            let mode = try computeMode(compute)
            var dirOpts = direction
            if let ablateDirection { dirOpts.directionFile = ablateDirection }
            let vector = try dirOpts.load(modelPath: modelOptions.model)
            // Prompt lengths and memory are checked before the weights are loaded.
            let encoder = try modelOptions.encoder()
            let sampling = SamplingOptions(temperature: temperature, topP: topP, seed: seed)
            func checkFirst(_ list: [Prompt]) throws {
                try GenerationRun.preflight(encoder: encoder, prompts: list,
                                            options: GenerationOptions(maxNewTokens: maxNewTokens, eosIds: [], sampling: sampling, maxBatch: batch),
                                            compute: mode)
            }
            if let prompt {
                try checkFirst([Prompt(id: "--prompt", text: prompt, label: "", origin: PromptOrigin(file: "--prompt", line: nil))])
                let model = try ChatModel(encoder: encoder)
                try model.transformer.setCompute(mode)
                let options = GenerationOptions(maxNewTokens: maxNewTokens, eosIds: model.eosIds, sampling: sampling, maxBatch: batch)
                var hooks = HookSet()
                if let vector {
                    try UnitDirection(vector).check(dModel: model.config.dModel, source: modelOptions.model)
                    hooks = try Ablation.hooks(direction: vector, alpha: Float(alpha), nLayers: model.config.nLayers)
                }
                let r = try Generator(model: model.transformer).generate(prompts: [model.encodeChat(user: prompt)], options: options, hooks: hooks)
                print(model.decode(r[0].tokens))
                return
            }
            var all = try PromptFile.load(prompts)
            if let split {
                all = all.filter { $0.split == split }
                if all.isEmpty { throw InputError(file: prompts.joined(separator: ", "), key: "split", "no prompt has split \(split)") }
            }
            if harmful != nil || harmless != nil {
                var taken: [String: Int] = [:]
                all = all.filter { p in
                    let limit = p.label == "harmful" ? harmful : p.label == "harmless" ? harmless : nil
                    let n = taken[p.label, default: 0]
                    if let limit, n >= limit { return false }
                    taken[p.label] = n + 1
                    return true
                }
            }
            try checkFirst(all)
            let model = try ChatModel(encoder: encoder)
            try model.transformer.setCompute(mode)
            let options = GenerationOptions(maxNewTokens: maxNewTokens, eosIds: model.eosIds, sampling: sampling, maxBatch: batch)
            let checkpoint = name ?? checkpointName(modelOptions.model)
            var setting: AbliterationSetting? = nil
            var system = checkpoint
            if vector != nil {
                setting = try dirOpts.setting(checkpoint: checkpoint, alpha: alpha)
                system = setting!.systemName
            } else if modelOptions.model.lowercased().hasSuffix(".gguf"),
                      let stored = try GGUFFile(path: modelOptions.model).string("ablab.abliteration.system") {
                // A model exported by `ablab abliterate`: named by the edit it carries.
                let parsed = try SystemName.parse(stored)
                setting = parsed.setting; system = stored
            }
            let summary = try GenerationRun.run(model: model, prompts: all, system: system, setting: setting,
                                                direction: vector, options: options, out: out!)
            FileHandle.standardError.write(Data("\(summary.path): \(summary.written) written, \(summary.skipped) already present\n".utf8))
        }
    }
}

struct Abliterate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write a GGUF copy of a model with the refusal direction orthogonalized out of its weights.",
        discussion: """
        Every matrix writing into the residual stream (token embedding rows, attention output and MLP down
        projections) becomes W − α r̂ r̂ᵀ W; other tensors and metadata are copied unchanged. A tied model
        gets an explicit output.weight holding the original embedding. The result equals inference-time
        ablation (`ablab generate --direction … --alpha …`).
        """)
    @OptionGroup var global: GlobalOptions
    @Option(name: .long, help: "A GGUF model file.") var model: String
    @OptionGroup var direction: DirectionOptions
    @Option(name: .long, help: "Ablation strength α.") var alpha: Double = 1
    @Option(name: .long, help: "Type of the edited matrices: original (each keeps its stored type, requantized), F32, F16, or a block type (Q8_0, Q4_0, …, Q6_K).") var type: String = "original"
    @Flag(name: .long, help: "Same as --type F16.") var f16 = false
    @Option(name: .long, help: "The checkpoint's name (default: the model file's name).") var name: String?
    @Option(name: .customLong("save-direction"), help: "Also write the direction used as .npy.") var saveDirection: String?
    @Option(name: .long, help: "The edited GGUF file.") var out: String

    /// nil = each edited matrix keeps its original type.
    var storedType: GGMLType?? {
        if f16 { return .some(.f16) }
        if type.lowercased() == "original" { return .some(nil) }
        guard let g = GGMLType.allCases.first(where: { $0.name.caseInsensitiveCompare(type) == .orderedSame }),
              GGMLQuantizer.canQuantize(g) else { return nil }
        return .some(g)
    }

    func validate() throws {
        if !direction.given { throw ValidationError("give --direction FILE or --run RUN") }
        if storedType == nil {
            throw ValidationError("--type \(type): choose original, \(GGMLQuantizer.supported.map(\.name).joined(separator: ", "))")
        }
    }

    func run() async throws {
        global.bootstrap()
        try await runReportingErrors {
            guard let v = try direction.load(modelPath: model) else { return }
            let setting = try direction.setting(checkpoint: name ?? checkpointName(model), alpha: alpha)
            if let saveDirection { try DirectionFile.writeNPY(v, to: saveDirection) }
            try Orthogonalization.export(source: model, direction: v, alpha: Float(alpha), setting: setting,
                                         type: storedType ?? nil, to: out)
            if let f = try? GGUFFile(path: model), let n = f.int((f.architecture ?? "") + ".block_count"), !Orthogonalization.isExact(f, nLayers: n) {
                AblabLog.logger("export").warning("weight orthogonalization is \(Orthogonalization.inexactNote)")
            }
            print(out)
        }
    }
}
