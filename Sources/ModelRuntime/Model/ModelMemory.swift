import Foundation
import AblabCore
import KernelABI

/// What a model file or folder holds, read without loading the weights: its configuration and the table
/// of the weight tensors the runtime loads (name, values, bytes as stored).
public struct ModelHeader: Sendable {
    public struct Tensor: Sendable, Equatable {
        public var name: String
        public var elements: Int
        /// Bytes in the file (quantized blocks for GGUF, F32/F16/BF16 for safetensors).
        public var storedBytes: Int
        /// "Q4_1", "F16", "BF16", …
        public var storedType: String
    }
    /// The GGUF file or Hugging Face folder.
    public let path: String
    public let config: ModelConfig
    /// The tensors `Transformer.load` reads (token embedding, final norm, the output head unless tied,
    /// and every block's tensors), in load order.
    public let tensors: [Tensor]
    /// Bytes of the model files mapped into memory while loading (they count against an address-space limit).
    public let mappedBytes: Int

    /// Reads the configuration and tensor table of a GGUF file or Hugging Face folder (headers only).
    public static func read(path: String) throws -> ModelHeader {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir) else {
            throw ModelError(file: path, "does not exist; check the path or ABLAB_MODELS_DIR")
        }
        if isDir.boolValue {
            let ckpt = try HFCheckpoint(directory: path)
            let config = try Transformer.hfConfig(ckpt, directory: path)
            let tensors = Self.roles(config, names: .huggingFace(for: config)).compactMap { name -> Tensor? in
                guard let (elements, bytes, type) = ckpt.storage(of: name) else { return nil }
                return Tensor(name: name, elements: elements, storedBytes: bytes, storedType: type)
            }
            return ModelHeader(path: path, config: config, tensors: tensors, mappedBytes: ckpt.fileBytes)
        }
        let f = try GGUFFile(path: path)
        let config = try ModelConfig.fromGGUF(f)
        let tensors = Self.roles(config, names: .gguf).compactMap { name -> Tensor? in
            guard let t = f.tensorInfo(name) else { return nil }
            return Tensor(name: name, elements: t.elementCount, storedBytes: t.byteCount, storedType: t.type.name)
        }
        return ModelHeader(path: path, config: config, tensors: tensors, mappedBytes: f.fileSize)
    }

    /// Names of the tensors `ModelWeights.load` reads for `config`, in its order.
    static func roles(_ c: ModelConfig, names: WeightNames = .huggingFace) -> [String] {
        var out = [names.name(.embed, 0), names.name(.finalNorm, 0)]
        if !c.tiedEmbeddings { out.append(names.name(.output, 0)) }
        let qkv: [WeightRole] = c.fusedQKV ? [.qkv] : [.q, .k, .v] + (c.qkvBias ? [.qBias, .kBias, .vBias] : [])
        let perLayer: [WeightRole] = [.attnNorm] + qkv + (c.qkNorm ? [.qNorm, .kNorm] : []) + [.o, .ffnNorm]
            + (c.postNorms ? [.postAttnNorm, .postFFNNorm] : []) + (c.fusedGateUp ? [.gateUp] : [.gate, .up]) + [.down]
        for l in 0..<c.nLayers { for r in perLayer { out.append(names.name(r, l)) } }
        return out
    }
}

/// How much work one step of a stage puts in memory at once (see `ModelMemory.estimate`).
public struct MemoryWorkload: Sendable, Equatable {
    /// Tokens of one forward call (rows of the packed activation matrix).
    public var forwardRows: Int
    /// Positions held by all KV caches alive at once, after their growth.
    public var kvPositions: Int
    /// The longest sequence's positions (RoPE tables and attention scores span it).
    public var longestSequence: Int
    /// New tokens of the largest segment of one forward call (sizes no buffer now: attention runs one query
    /// row at a time, its scores one row of `longestSequence` per worker).
    public var longestSegment: Int
    /// Rows of logits one forward call returns.
    public var logitsRows: Int
    /// The stage's own buffers (e.g. the recorded activations of a batch), in bytes.
    public var extraBytes: Int
    /// How the weight products run: bf16 adds its bf16 panels and the activation rows as bf16.
    public var compute: ComputeMode = .f32

    public init(forwardRows: Int, kvPositions: Int, longestSequence: Int, longestSegment: Int, logitsRows: Int, extraBytes: Int = 0) {
        self.forwardRows = forwardRows; self.kvPositions = kvPositions; self.longestSequence = longestSequence
        self.longestSegment = longestSegment; self.logitsRows = logitsRows; self.extraBytes = extraBytes
    }

    /// Recording: prompts packed up to `batchTokens` per forward call (a longer prompt runs alone), each
    /// with a KV cache of exactly its length, no logits.
    public static func recording(batchTokens: Int, longestPrompt: Int, extraBytes: Int = 0) -> MemoryWorkload {
        let rows = max(batchTokens, longestPrompt)
        return MemoryWorkload(forwardRows: rows, kvPositions: rows, longestSequence: longestPrompt,
                              longestSegment: longestPrompt, logitsRows: 0, extraBytes: extraBytes)
    }

    /// Generation: up to `batch` sequences of at most `longestPrompt + maxNewTokens` positions; new prompts
    /// are prefilled together (up to `batch` whole prompts in one call); each reused KV cache grows by
    /// doubling, so it holds at most twice the longest sequence (at least 64 positions).
    public static func generation(batch: Int, longestPrompt: Int, maxNewTokens: Int) -> MemoryWorkload {
        let seq = longestPrompt + maxNewTokens
        return MemoryWorkload(forwardRows: batch * longestPrompt, kvPositions: batch * max(2 * seq, 64), longestSequence: seq,
                              longestSegment: longestPrompt, logitsRows: batch)
    }
}

/// The memory a model and its work need, in bytes, by part.
public struct MemoryEstimate: Sendable, Equatable {
    /// The weights as the runtime holds them (see `ModelMemory.heldBytes`).
    public var weights: Int
    public var kvCache: Int
    /// The forward pass's buffers (activations, attention scores, RoPE tables, logits).
    public var scratch: Int
    /// The stage's own buffers.
    public var extra: Int
    /// The rest of the mapped model files (headers, unused tensors): address space only.
    public var mapped: Int
    /// Memory the stage needs: weights + KV caches + scratch + extra.
    public var total: Int { weights + kvCache + scratch + extra }

    public var summary: String {
        let f = InputLimits.formatBytes
        return "\(f(total)) (weights \(f(weights)), KV caches \(f(kvCache)), buffers \(f(scratch + extra)))"
    }
}

/// Memory the machine can give this process now.
public struct MemoryAvailability: Sendable, Equatable {
    /// Physical memory: the smaller of MemAvailable and the cgroup's limit minus its usage.
    public var physical: Int
    /// What limits `physical` ("MemAvailable", "the cgroup memory limit").
    public var physicalSource: String
    /// Address space left under RLIMIT_AS (`ulimit -v`, `prlimit --as`), nil when unlimited.
    public var addressSpace: Int?
}

/// The refusal when a model and its work do not fit in memory.
public struct MemoryError: AblabError {
    public var file: String
    public var message: String
    public var description: String { "\(file): \(AblabText.oneLine(message))" }
    public var exitCode: Int32 { ExitCode.resources }
}

/// Estimates, before loading, the memory a model and its work need, and compares it with what the
/// machine has. Formula (bytes; L layers, d width, f FFN width, V vocabulary, kv = key/value heads × head size):
///
/// - weights: Σ over the loaded tensors of `heldBytes` (matrices as stored, in the mapped file; norms and
///   biases 4 × values);
/// - KV caches: 2 (keys and values) × L × kv × 4 × positions held;
/// - scratch: 1.5 × rows × (3d + qkv rows + query width + 3f) × 4 (the row buffers grow by half)
///   + 2 × threads × context × 4 (attention scores: one row of `context` per attention worker, since attention
///   runs one query row at a time; grown by doubling) + threads × 16 × max(d, f, query width) × 4 (the matrix
///   kernels' decoded weight panels) + 2 × max(2 × context, 256) × head/2 × 4 (RoPE tables) + logits rows × V × 4.
public enum ModelMemory {
    /// Bytes the runtime holds for one weight tensor. This is the one place that says how weights are held:
    /// matrices stay in their stored format and are read in place from the memory-mapped file (their stored
    /// bytes, resident while used); norms and biases are Float32 copies (4 bytes per value).
    public static func heldBytes(_ t: ModelHeader.Tensor) -> Int {
        isVector(t) ? t.elements * MemoryLayout<Float>.size : t.storedBytes
    }

    /// Norms and biases (copied to Float32), as opposed to matrices (read in place).
    static func isVector(_ t: ModelHeader.Tensor) -> Bool { t.name.contains("norm") || t.name.hasSuffix(".bias") }

    /// The memory `model` (a GGUF file or Hugging Face folder, read without its weights) needs for `workload`.
    public static func estimate(model path: String, workload: MemoryWorkload) throws -> MemoryEstimate {
        estimate(header: try ModelHeader.read(path: path), workload: workload)
    }

    /// The same for a header already read, for `threads` threads of matrix products and attention.
    public static func estimate(header: ModelHeader, workload w: MemoryWorkload, threads: Int = CPUKernels.threads) -> MemoryEstimate {
        let c = header.config
        let f4 = MemoryLayout<Float>.size
        let weights = header.tensors.reduce(0) { $0 + heldBytes($1) }
        let kv = 2 * c.nLayers * c.kvDim * f4 * w.kvPositions
        let rowCap = w.forwardRows + w.forwardRows / 2
        let rows = rowCap * (3 * c.dModel + c.qkvDim + c.qDim + 3 * c.ffnDim) * f4
        let workers = max(1, threads)
        let scores = 2 * workers * w.longestSequence * f4
        let panels = workers * panelRows * max(c.dModel, c.ffnDim, c.qDim) * f4
        let rope = 2 * max(2 * w.longestSequence, 256) * (c.headDim / 2) * f4
        let logits = w.logitsRows * c.vocab * f4
        // bf16 compute: per worker a bf16 panel, and the widest product's input rows as bf16 (the buffer
        // grows by half again, like the row buffers).
        let kp = (max(c.dModel, c.ffnDim, c.qDim) + 31) / 32 * 32
        let bf16 = w.compute == .bf16 ? 2 * (workers * panelRows * kp + rowCap * kp) : 0
        let inMapping = header.tensors.reduce(0) { $0 + (isVector($1) ? 0 : $1.storedBytes) }
        return MemoryEstimate(weights: weights, kvCache: kv, scratch: rows + scores + panels + rope + logits + bf16, extra: w.extraBytes,
                              mapped: max(0, header.mappedBytes - inMapping))
    }

    /// Memory available now: MemAvailable, the cgroup limit (v2 `memory.max`, v1 `memory.limit_in_bytes`)
    /// minus its usage, and the address space left under RLIMIT_AS.
    public static func available() -> MemoryAvailability {
        var physical = Int.max
        var source = "no limit found"
        if let meminfo = try? String(contentsOfFile: "/proc/meminfo", encoding: .utf8),
           let line = meminfo.split(separator: "\n").first(where: { $0.hasPrefix("MemAvailable:") }),
           let kb = Int(line.split(separator: " ").dropFirst().first ?? "") {
            physical = kb * 1024; source = "MemAvailable in /proc/meminfo"
        }
        if let (limit, usage) = cgroupMemory(), limit - usage < physical {
            physical = max(0, limit - usage); source = "the cgroup memory limit"
        }
        var rl = rlimit()
        var addressSpace: Int? = nil
        if getrlimit(Int32(RLIMIT_AS.rawValue), &rl) == 0, rl.rlim_cur != rlim_t.max {
            let used = processVirtualBytes() ?? 0
            addressSpace = max(0, Int(clamping: rl.rlim_cur) - used)
        }
        return MemoryAvailability(physical: physical, physicalSource: source, addressSpace: addressSpace)
    }

    /// Throws `MemoryError` naming `file`, the need by part, what is available and `remedy` when `need`
    /// does not fit in `available`.
    public static func check(_ need: MemoryEstimate, available a: MemoryAvailability = available(), file: String, remedy: String) throws {
        let f = InputLimits.formatBytes
        if let space = a.addressSpace, need.total + need.mapped > space {
            throw MemoryError(file: file, message: "not enough memory: the model and its work need \(need.summary) plus \(f(need.mapped)) of mapped model files, but the address-space limit (ulimit -v) leaves \(f(space)); \(remedy), or raise the limit")
        }
        if need.total > a.physical {
            throw MemoryError(file: file, message: "not enough memory: the model and its work need \(need.summary), but \(f(a.physical)) is available (\(a.physicalSource)); \(remedy), or free memory")
        }
    }

    /// (limit, usage) of this process's memory cgroup, when it has a limit.
    static func cgroupMemory() -> (Int, Int)? {
        func read(_ p: String) -> Int? {
            (try? String(contentsOfFile: p, encoding: .utf8)).flatMap { Int($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
        }
        var relative = ""
        if let cg = try? String(contentsOfFile: "/proc/self/cgroup", encoding: .utf8),
           let line = cg.split(separator: "\n").first(where: { $0.hasPrefix("0::") }) {
            relative = String(line.dropFirst(3))
        }
        for dir in ["/sys/fs/cgroup" + relative, "/sys/fs/cgroup"] {
            if let limit = read(dir + "/memory.max"), let usage = read(dir + "/memory.current") { return (limit, usage) }
        }
        // cgroup v1 ("no limit" is a huge number there).
        if let limit = read("/sys/fs/cgroup/memory/memory.limit_in_bytes"), limit < 1 << 60,
           let usage = read("/sys/fs/cgroup/memory/memory.usage_in_bytes") { return (limit, usage) }
        return nil
    }

    /// VmSize of this process (bytes of address space in use).
    static func processVirtualBytes() -> Int? {
        guard let s = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
              let line = s.split(separator: "\n").first(where: { $0.hasPrefix("VmSize:") }) else { return nil }
        return line.split(separator: " ").dropFirst().first.flatMap { Int($0) }.map { $0 * 1024 }
    }
}
