import Foundation
import Testing
import AblabCore
@testable import ModelRuntime

/// Fixtures/limits/models.json, written by notebooks-scripts/fixtures_limits.py (gguf-py's reader and
/// transformers' tokenizer built from the GGUF file).
struct LimitsFixture {
    let models: [String: [String: Any]]
    init() throws {
        let url = try #require(Bundle.module.url(forResource: "models", withExtension: "json", subdirectory: "Fixtures/limits"))
        let json = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as? [String: Any])
        models = try #require(json["models"] as? [String: [String: Any]])
    }
    func model(_ short: String) throws -> [String: Any] { try #require(models[short]) }
}

@Suite("Context length, memory estimate and prompt-length check against gguf-py and transformers")
struct ResourceLimitTests {
    static let ggufCases: [(short: String, stem: String)] = [("smollm2", TestModels.smol), ("qwen2.5-coder-0.5b", TestModels.qwen)]

    @Test("the GGUF header gives gguf-py's context length and the tensors the runtime loads", arguments: ggufCases)
    func ggufHeader(short: String, stem: String) throws {
        guard let path = TestModels.ggufFile(stem) else { return }
        let m = try LimitsFixture().model(short)
        let h = try ModelHeader.read(path: path)
        #expect(h.config.contextLength == m["context_length"] as? Int)
        #expect(h.tensors.count == m["loaded_tensors"] as? Int)
        #expect(h.tensors.reduce(0) { $0 + $1.elements } == m["loaded_elements"] as? Int)
        #expect(h.tensors.reduce(0) { $0 + $1.storedBytes } == m["loaded_stored_bytes"] as? Int)
        #expect(h.mappedBytes == m["file_bytes"] as? Int)
        // The loaded model has the same configuration (the header reads no weights).
        #expect(try ChatEncoder(path: path).config.contextLength == h.config.contextLength)
    }

    @Test("memory estimate: weights as held (matrices as stored in the mapped file, norms as Float32), KV caches 2 × L × kv × 4 per position", arguments: ggufCases)
    func estimate(short: String, stem: String) throws {
        guard let path = TestModels.ggufFile(stem) else { return }
        let m = try LimitsFixture().model(short)
        let held = try #require(m["loaded_held_bytes"] as? Int)
        let (L, kvHeads, hd) = (try #require(m["n_layers"] as? Int), try #require(m["n_kv_heads"] as? Int), try #require(m["head_dim"] as? Int))
        let (d, f, V, nH) = (try #require(m["d_model"] as? Int), try #require(m["ffn_dim"] as? Int), try #require(m["vocab"] as? Int), try #require(m["n_heads"] as? Int))
        let w = MemoryWorkload(forwardRows: 100, kvPositions: 1000, longestSequence: 300, longestSegment: 50, logitsRows: 7, extraBytes: 12345)
        let e = ModelMemory.estimate(header: try ModelHeader.read(path: path), workload: w, threads: 3)
        #expect(e.weights == held)
        #expect(e.kvCache == 2 * L * kvHeads * hd * 4 * 1000)
        // rows: 1.5 × 100 × (3d + (q + 2kv) + q + 3f) floats; scores 2 × 3 threads × 300 (one row per attention
        // worker); panels 3 threads × 8 rows (of W decoded at once) × max(d, f, q); RoPE 2 × max(600, 256) × hd/2; logits 7 × V.
        let q = nH * hd, kv = kvHeads * hd
        let scratch = 150 * (3 * d + (q + 2 * kv) + q + 3 * f) * 4 + 2 * 3 * 300 * 4 + 3 * 8 * max(d, f, q) * 4
            + 2 * 600 * (hd / 2) * 4 + 7 * V * 4
        #expect(e.scratch == scratch)
        #expect(e.total == held + 2 * L * kv * 4 * 1000 + scratch + 12345)
        // the mapping beyond the matrices read in place (header, norms as stored, unused tensors)
        #expect(e.mapped == (m["file_bytes"] as? Int ?? 0) - (m["loaded_matrix_bytes"] as? Int ?? 0))
    }

    @Test("the scratch estimate bounds the buffers a packed prefill and a decoding step allocate, within 2×", arguments: ggufCases)
    func scratchMatchesAllocation(short: String, stem: String) throws {
        guard let path = TestModels.ggufFile(stem) else { return }
        let m = try Transformer.load(path: path)
        let long = (0..<300).map { ($0 * 7919) % 1000 + 10 }, short = Array(long.prefix(50))
        let caches = [m.makeCache(), m.makeCache()]
        _ = try m.forward([ForwardItem(cache: caches[0], tokens: long), ForwardItem(cache: caches[1], tokens: short, sequenceID: 1)], logits: .none)
        _ = try m.forward([ForwardItem(cache: caches[0], tokens: [11])], logits: .none)
        let w = MemoryWorkload(forwardRows: 350, kvPositions: 351, longestSequence: 301, longestSegment: 300, logitsRows: 0)
        let e = ModelMemory.estimate(header: try ModelHeader.read(path: path), workload: w)
        #expect(m.scratchBytes <= e.scratch, "allocated \(m.scratchBytes) > estimated \(e.scratch)")
        #expect(e.scratch <= 2 * m.scratchBytes, "estimated \(e.scratch) > 2 × allocated \(m.scratchBytes)")
    }

    @Test("a Hugging Face folder: context from max_position_embeddings, weights from config.json's shapes")
    func hfHeader() throws {
        let dir = ForwardFixture.directory.appendingPathComponent("tiny-llama").path
        let cfg = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: dir + "/config.json"))) as? [String: Any])
        let h = try ModelHeader.read(path: dir)
        #expect(h.config.contextLength == cfg["max_position_embeddings"] as? Int)
        let (d, f, V, L) = (cfg["hidden_size"] as! Int, cfg["intermediate_size"] as! Int, cfg["vocab_size"] as! Int, cfg["num_hidden_layers"] as! Int)
        let q = (cfg["num_attention_heads"] as! Int) * (cfg["head_dim"] as! Int), kv = (cfg["num_key_value_heads"] as! Int) * (cfg["head_dim"] as! Int)
        // embed + final norm + lm_head (untied) + per layer: 2 norms, q, k, v, o, gate, up, down
        let elements = V * d + d + V * d + L * (2 * d + q * d + 2 * kv * d + d * q + 3 * f * d)
        #expect(h.tensors.reduce(0) { $0 + $1.elements } == elements)
        // safetensors matrices are read in place (their stored bytes); the 2L + 1 norms are Float32 copies
        let matrices = h.tensors.filter { !$0.name.contains("norm") }
        let normElements = (2 * L + 1) * d
        #expect(h.tensors.filter { $0.name.contains("norm") }.reduce(0) { $0 + $1.elements } == normElements)
        #expect(ModelMemory.estimate(header: h, workload: .recording(batchTokens: 1, longestPrompt: 1)).weights
                == matrices.reduce(0) { $0 + $1.storedBytes } + normElements * 4)
    }

    @Test("a prompt one token over SmolLM2's context (count from transformers) is refused with both counts; one less fits")
    func overContext() throws {
        guard let path = TestModels.ggufFile(TestModels.smol) else { return }
        let m = try LimitsFixture().model("smollm2")
        let o = try #require(m["over_context_prompt"] as? [String: Any])
        let n = try #require(o["repeats"] as? Int)
        let context = try #require(m["context_length"] as? Int)
        let enc = try ChatEncoder(path: path)
        func prompt(_ k: Int) -> Prompt {
            Prompt(id: "p\(k)", text: "word" + String(repeating: " word", count: k), label: "harmful", origin: PromptOrigin(file: "f.jsonl", line: 7))
        }
        switch enc.encodeChecked(prompt(n)) {
        case .success(let t): Issue.record("accepted \(t.count) tokens")
        case .failure(let e):
            #expect(e.tokens == o["chat_tokens"] as? Int && !e.atLeast && e.context == context)
            #expect(e.description.hasPrefix("f.jsonl:7 [p\(n)]: ") && e.description.contains("\(context + 1) chat-formatted tokens")
                    && e.description.contains("\(context) tokens"), "\(e.description)")
            #expect(e.exitCode == ExitCode.badInput)
        }
        let fits = try enc.encodeChecked(prompt(n - 1)).get()
        #expect(fits.count == o["chat_tokens_one_repeat_less"] as? Int)
        #expect(fits == enc.encodeChat(user: prompt(n - 1).text))
        // With new tokens to generate the same prompt no longer fits: tokens + new > context.
        switch enc.encodeChecked(prompt(n - 1), newTokens: 1) {
        case .success: Issue.record("prompt + 1 new token accepted")
        case .failure(let e): #expect(e.tokens + e.newTokens == context + 1)
        }
        // Far too long: refused from its length alone, as a lower bound.
        switch enc.encodeChecked(prompt(2 * context * enc.tokenizer.longestTokenBytes)) {
        case .success: Issue.record("huge prompt accepted")
        case .failure(let e): #expect(e.atLeast && e.tokens > context && e.description.contains("at least"), "\(e.description)")
        }
    }

    @Test("the memory check refuses with the numbers: address-space and physical limits")
    func memoryCheck() throws {
        let e = MemoryEstimate(weights: 600 << 20, kvCache: 100 << 20, scratch: 50 << 20, extra: 0, mapped: 90 << 20)
        #expect(throws: Never.self) { try ModelMemory.check(e, available: MemoryAvailability(physical: 1 << 30, physicalSource: "MemAvailable", addressSpace: nil), file: "m.gguf", remedy: "r") }
        do {
            try ModelMemory.check(e, available: MemoryAvailability(physical: 700 << 20, physicalSource: "the cgroup memory limit", addressSpace: nil), file: "m.gguf", remedy: "lower --batch")
            Issue.record("no refusal")
        } catch let err as MemoryError {
            #expect(err.description == "m.gguf: not enough memory: the model and its work need 750 MiB (weights 600 MiB, KV caches 100 MiB, buffers 50 MiB), but 700 MiB is available (the cgroup memory limit); lower --batch, or free memory")
            #expect(err.exitCode == ExitCode.resources)
        }
        // 750 MiB + 90 MiB mapped > 800 MiB of address space, though 750 MiB alone would fit.
        #expect(throws: MemoryError.self) { try ModelMemory.check(e, available: MemoryAvailability(physical: 1 << 30, physicalSource: "x", addressSpace: 800 << 20), file: "m", remedy: "r") }
        #expect(throws: Never.self) { try ModelMemory.check(e, available: MemoryAvailability(physical: 1 << 30, physicalSource: "x", addressSpace: 841 << 20), file: "m", remedy: "r") }
    }

    @Test("available memory is positive and at most MemAvailable")
    func available() throws {
        let a = ModelMemory.available()
        let meminfo = try String(contentsOfFile: "/proc/meminfo", encoding: .utf8)
        let line = try #require(meminfo.split(separator: "\n").first { $0.hasPrefix("MemAvailable:") })
        let kb = try #require(Int(line.split(separator: " ")[1]))
        #expect(a.physical > 0)
        // MemAvailable moves between the two reads; allow 10 %.
        #expect(Double(a.physical) <= Double(kb * 1024) * 1.1)
    }
}
