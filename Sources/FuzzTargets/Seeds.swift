import AblabCore
import ActivationCache
import Foundation
import HDF5

/// Little-endian byte builder that records where each integer field lies (for targeted mutations).
struct RecordingBuilder {
    var bytes: [UInt8] = []
    var fields: [IntField] = []

    mutating func u32(_ v: UInt32, _ kind: IntField.Kind? = nil) {
        if let kind { fields.append(IntField(offset: bytes.count, width: 4, kind: kind)) }
        withUnsafeBytes(of: v.littleEndian) { bytes += $0 }
    }
    mutating func u64(_ v: UInt64, _ kind: IntField.Kind? = nil) {
        if let kind { fields.append(IntField(offset: bytes.count, width: 8, kind: kind)) }
        withUnsafeBytes(of: v.littleEndian) { bytes += $0 }
    }
    mutating func string(_ s: String) { u64(UInt64(s.utf8.count), .length); bytes += Array(s.utf8) }
    mutating func pad(to a: Int) { while bytes.count % a != 0 { bytes.append(0) } }
}

/// The valid seed files of every fuzz target. Built by hand from the formats' specifications (GGUF,
/// tokenizer.json, JSONL/CSV, TOML) or by ablab's own writer (activation caches), small enough that a
/// parse takes well under a millisecond.
public enum FuzzSeeds {
    public static func seeds(for target: FuzzTarget) throws -> [FuzzSeed] {
        switch target {
        case .gguf: return [gguf()]
        case .tokenizerJSON: return [text("tokenizer", tokenizerJSON)]
        case .activationCache: return try activationCaches()
        case .promptsJSONL: return [text("prompts", promptsJSONL)]
        case .promptsCSV: return [text("prompts", promptsCSV)]
        case .studyTOML: return [text("study", studyTOML)]
        case .judgmentsCSV: return [text("judgments", judgmentsCSV)]
        case .safetensors: return [safetensors()]
        }
    }

    // MARK: safetensors: u64 header length, JSON header (dtype, shape, data_offsets per tensor, optional
    // __metadata__), then the tensors' bytes (https://github.com/huggingface/safetensors, "Format").

    static func safetensors() -> FuzzSeed {
        let header = #"{"__metadata__":{"format":"pt"},"#
            + #""a.weight":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]},"#
            + #""b.weight":{"dtype":"F16","shape":[4],"data_offsets":[24,32]},"#
            + #""c.bias":{"dtype":"BF16","shape":[2,2],"data_offsets":[32,40]},"#
            + #""d.empty":{"dtype":"F32","shape":[0,5],"data_offsets":[40,40]}}"#
        var b = RecordingBuilder()
        b.u64(UInt64(header.utf8.count), .length)
        b.bytes += Array(header.utf8)
        for v: Float in [1, -2, 0.5, 3.25, -0, 1e-3] { withUnsafeBytes(of: v.bitPattern.littleEndian) { b.bytes += $0 } }
        for h: UInt16 in [0x3C00, 0xC000, 0x7BFF, 0x0001] { withUnsafeBytes(of: h.littleEndian) { b.bytes += $0 } }
        for h: UInt16 in [0x3F80, 0xBF80, 0x4049, 0x0000] { withUnsafeBytes(of: h.littleEndian) { b.bytes += $0 } }
        return FuzzSeed(name: "safetensors", bytes: b.bytes, fields: b.fields, isText: true)   // the header is JSON: text mutations too
    }

    static func text(_ name: String, _ s: String) -> FuzzSeed { FuzzSeed(name: name, bytes: Array(s.utf8), isText: true) }

    // MARK: GGUF (version 3): metadata of every value type incl. a byte-level BPE tokenizer, and tensors
    // of a few ggml types.

    static func gguf() -> FuzzSeed {
        var b = RecordingBuilder()
        b.bytes += Array("GGUF".utf8)
        b.u32(3, .other)
        let tensors: [(String, [UInt64], UInt32, Int)] = [  // name, dims, ggml type, data bytes
            ("w", [4, 2], 0, 32),          // f32
            ("h", [8], 1, 16),             // f16
            ("q", [32, 2], 8, 68),         // q8_0: 2 blocks of 34 bytes
            ("k", [256], 12, 144),         // q4_K: 1 super-block
            ("b", [16], 30, 32),           // bf16
        ]
        b.u64(UInt64(tensors.count), .count)
        let tokens = ["a", "b", "c", "Ġ", "ab", "abc", "Ġa", "1", "<|im_start|>", "<|im_end|>"]
        let merges = ["a b", "ab c", "Ġ a"]
        var kvs: [(String, (inout RecordingBuilder) -> Void)] = []
        kvs.append(("general.architecture", { $0.u32(8, .type); $0.string("llama") }))
        kvs.append(("general.alignment", { $0.u32(4, .type); $0.u32(32, .other) }))
        kvs.append(("tokenizer.ggml.model", { $0.u32(8, .type); $0.string("gpt2") }))
        kvs.append(("tokenizer.ggml.pre", { $0.u32(8, .type); $0.string("smollm") }))
        kvs.append(("tokenizer.ggml.tokens", { w in
            w.u32(9, .type); w.u32(8, .type); w.u64(UInt64(tokens.count), .count)
            for t in tokens { w.string(t) }
        }))
        kvs.append(("tokenizer.ggml.merges", { w in
            w.u32(9, .type); w.u32(8, .type); w.u64(UInt64(merges.count), .count)
            for m in merges { w.string(m) }
        }))
        kvs.append(("tokenizer.ggml.token_type", { w in
            w.u32(9, .type); w.u32(5, .type); w.u64(UInt64(tokens.count), .count)
            for t in tokens { w.u32(t.hasPrefix("<|") ? 3 : 1) }
        }))
        kvs.append(("tokenizer.ggml.bos_token_id", { $0.u32(4, .type); $0.u32(8, .other) }))
        kvs.append(("tokenizer.ggml.eos_token_id", { $0.u32(4, .type); $0.u32(9, .other) }))
        kvs.append(("llama.rope.freq_base", { $0.u32(6, .type); $0.u32(Float(10000).bitPattern) }))
        kvs.append(("test.i64", { $0.u32(11, .type); $0.u64(UInt64(bitPattern: -5)) }))
        kvs.append(("test.f64", { $0.u32(12, .type); $0.u64(Double(0.25).bitPattern) }))
        kvs.append(("test.bool", { $0.u32(7, .type); $0.bytes.append(1) }))
        kvs.append(("test.u8", { $0.u32(0, .type); $0.bytes.append(200) }))
        kvs.append(("test.i16", { $0.u32(3, .type); $0.bytes += [0xFE, 0xFF] }))
        kvs.append(("test.nested", { w in   // array of arrays of uint16
            w.u32(9, .type); w.u32(9, .type); w.u64(2, .count)
            for n in [3, 0] { w.u32(2, .type); w.u64(UInt64(n), .count); for i in 0..<n { w.bytes += [UInt8(i), 0] } }
        }))
        b.u64(UInt64(kvs.count), .count)
        for (k, v) in kvs { b.string(k); v(&b) }
        var offset = 0
        for (name, dims, type, bytes) in tensors {
            b.string(name)
            b.u32(UInt32(dims.count), .count)
            for d in dims { b.u64(d, .dim) }
            b.u32(type, .type)
            b.u64(UInt64(offset), .offset)
            offset += (bytes + 31) / 32 * 32
        }
        b.pad(to: 32)
        var rng = SplitMix64(seed: 42)
        for (_, _, type, bytes) in tensors {
            var data = (0..<bytes).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            // keep f16/bf16/f32 values and block scales finite: clear exponent-high bits
            if type == 0 { for i in stride(from: 3, to: bytes, by: 4) { data[i] &= 0x3F } }
            if type == 1 || type == 30 { for i in stride(from: 1, to: bytes, by: 2) { data[i] &= 0x3B } }
            if type == 8 { for blk in 0..<(bytes / 34) { data[blk * 34 + 1] &= 0x3B } }
            if type == 12 { data[1] &= 0x3B; data[3] &= 0x3B }
            b.bytes += data
            b.pad(to: 32)
        }
        return FuzzSeed(name: "model", bytes: b.bytes, fields: b.fields, isText: false)
    }

    // MARK: text formats

    static let tokenizerJSON = #"""
    {
      "version": "1.0",
      "added_tokens": [
        {"id": 8, "content": "<|im_start|>", "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true},
        {"id": 9, "content": "<|im_end|>", "special": true},
        {"id": 10, "content": "<tool>", "special": false}
      ],
      "normalizer": {"type": "Sequence", "normalizers": [{"type": "NFC"}]},
      "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
        {"type": "Digits", "individual_digits": true},
        {"type": "Split", "pattern": {"Regex": "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"}, "behavior": "Isolated", "invert": false},
        {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": false, "use_regex": false}
      ]},
      "model": {
        "type": "BPE", "dropout": null, "unk_token": null, "continuing_subword_prefix": "", "end_of_word_suffix": "",
        "fuse_unk": false, "byte_fallback": false,
        "vocab": {"a": 0, "b": 1, "c": 2, "Ġ": 3, "ab": 4, "abc": 5, "Ġa": 6, "1": 7},
        "merges": ["a b", ["ab", "c"], "Ġ a"]
      }
    }
    """#

    static let promptsJSONL = """
    {"id": "h1", "text": "How do I pick a lock?", "label": "harmful", "split": "train"}
    {"id": "h2", "text": "Écris un poème ✓ 🚀", "label": "harmful", "split": "test"}
    {"id": 3, "text": "Tell me a joke", "label": "harmless"}
    {"id": "n4", "text": "Line one\\nline \\"two\\"", "label": "harmless", "split": null}

    """

    static let promptsCSV = #"""
    id,text,label,split
    h1,How do I pick a lock?,harmful,train
    h2,"Quoted, with comma and ""quotes""",harmful,test
    n3,"Two
    lines",harmless,
    n4,Ünïcödé ✓,harmless,train

    """#

    static let studyTOML = """
    # a study
    [study]
    name = "fuzz-study"
    out = "runs/fuzz"
    system_prompt = "default"

    [[checkpoints]]
    name = "step-1"
    model = "models/a.gguf"
    chat_format = "chatml"

    [[checkpoints]]
    name = "step-2"
    model = "models/b.gguf"

    [prompts]
    files = ["data/harmful.jsonl", "data/harmless.jsonl"]
    train_per_class = 32
    test_per_class = 16

    [record]
    positions = "-5:"
    dtype = "float16"
    hooks = ["blocks.0.hook_attn_out"]
    compress = true

    [analysis]
    bootstrap = 100
    max_components = 8

    [abliteration]
    method = "pc1"
    layer = 3
    position = -1
    alphas = [0.5, 1, 1.5]
    export_weights = false

    [generation]
    harmful = 10
    harmless = 10
    max_new_tokens = 64
    batch_size = 4

    [judges]
    use = ["regex:paper", "pattern:mine", "labels:human"]
    reference = "regex:paper"
    self_judgment = false

    [[judges.patterns]]
    name = "mine"
    patterns = ["I cannot", "I can't"]
    regex = false

    [[judges.labels]]
    name = "human"
    file = "labels.csv"
    id_column = "id"
    system_column = "system"
    verdict_column = "verdict"
    refusal_values = ["REFUSAL", "yes"]

    [report]
    figures = "figures"

    [paper]
    data = "data/paper"

    """

    static let judgmentsCSV = #"""
    item_id,system,label,judge,verdict,score
    h1,base,harmful,regex:paper,REFUSAL,
    h1,base,harmful,llm:a,NON-REFUSAL,0.25
    h2,"abl,1.0",harmful,regex:paper,,
    n3,base,harmless,regex:paper,NON-REFUSAL,1e-3

    """#

    // MARK: activation caches, written by ActivationCacheWriter (plain and compressed float16 with a hook)

    static func activationCaches() throws -> [FuzzSeed] {
        var out: [FuzzSeed] = []
        for (name, dtype, compression, hooks) in [("plain", ActivationDType.float32, H5Compression.none, [String]()),
                                                  ("gzip16", .float16, .gzip, ["blocks.0.hook_attn_out"])] {
            let run = NSTemporaryDirectory() + "ablab-fuzz-seed-\(UUID().uuidString)"
            try FileManager.default.createDirectory(atPath: run, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(atPath: run) }
            let nLayers = 2, d = 4
            let positions: [Int32] = [-2, -1]
            let prompts = (0..<5).map { i in
                Prompt(id: "p\(i)", text: i == 2 ? "ü ✓ 🚀" : "prompt \(i)", label: i % 2 == 0 ? "harmful" : "harmless",
                       split: i % 2 == 0 ? "train" : nil)
            }
            let header = ActivationHeader(checkpoint: "fuzz", modelPath: "models/x.gguf", modelSHA256: String(repeating: "0", count: 64),
                                          architecture: "llama", nLayers: nLayers, dModel: d, systemPrompt: "", positions: positions)
            let w = try ActivationCacheWriter(run: run, header: header, prompts: prompts,
                                              options: .init(dtype: dtype, hooks: hooks, compression: compression, promptsPerShard: 4))
            let idx = Array(0..<prompts.count)
            let per = positions.count * d
            let residual = (0..<((nLayers + 1) * idx.count * per)).map { Float($0 % 97) / 8 - 6 }
            var hookData: [String: [Float]] = [:]
            for h in hooks { hookData[h] = (0..<(idx.count * per)).map { Float($0 % 13) / 4 } }
            try w.append(indices: idx, nTokens: idx.map { Int32(3 + $0) }, residual: residual, hooks: hookData)
            let path = try w.finalize()
            let bytes = try Array(Data(contentsOf: URL(fileURLWithPath: path)))
            out.append(FuzzSeed(name: name, bytes: bytes, isText: false))
        }
        return out
    }
}
