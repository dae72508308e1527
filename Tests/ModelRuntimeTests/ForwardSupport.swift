import Foundation
import Testing
import LinearAlgebra
import ModelRuntime

/// One forward-pass fixture written by notebooks-scripts/fixtures_forward.py (PyTorch/transformers):
/// a JSON header plus float32 little-endian arrays.
struct ForwardFixture {
    let name: String
    let header: [String: Any]
    let arrays: [String: (shape: [Int], values: [Float])]

    init(name: String) throws {
        self.name = name
        let dir = try #require(Bundle.module.url(forResource: "Fixtures", withExtension: nil)).appendingPathComponent("forward")
        let json = try Data(contentsOf: dir.appendingPathComponent(name + ".json"))
        header = try #require(try JSONSerialization.jsonObject(with: json) as? [String: Any])
        let bin = try Data(contentsOf: dir.appendingPathComponent(name + ".bin"))
        var floats = [Float](repeating: 0, count: bin.count / 4)
        _ = floats.withUnsafeMutableBytes { bin.copyBytes(to: $0) }
        var a: [String: (shape: [Int], values: [Float])] = [:]
        for entry in try #require(header["arrays"] as? [[String: Any]]) {
            let shape = try #require(entry["shape"] as? [Int])
            let off = try #require(entry["offset"] as? Int)
            let n = shape.reduce(1, *)
            a[try #require(entry["name"] as? String)] = (shape, Array(floats[off..<(off + n)]))
        }
        arrays = a
    }

    var tokens: [Int] { header["tokens"] as? [Int] ?? [] }
    var positions: [Int] { header["positions"] as? [Int] ?? [] }
    var greedy: [Int] { header["greedy"] as? [Int] ?? [] }
    var eosIds: [Int] { header["eos_ids"] as? [Int] ?? [] }
    var config: [String: Any] { header["config"] as? [String: Any] ?? [:] }

    /// Residual at boundary `b` (0 = embeddings, l+1 = after block l) for stored position index `k`.
    func residual(boundary b: Int, positionIndex k: Int) -> ArraySlice<Float> {
        let r = arrays["residuals"]!
        let (P, d) = (r.shape[1], r.shape[2])
        let start = (b * P + k) * d
        return r.values[start..<(start + d)]
    }

    static var directory: URL {
        Bundle.module.url(forResource: "Fixtures", withExtension: nil)!.appendingPathComponent("forward")
    }

    /// Names of the real-model fixtures of one model stem, in prompt order.
    static func names(model stem: String) -> [String] {
        let files = (try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []
        return files.filter { $0.hasPrefix(stem + "-") && $0.hasSuffix(".json") }
            .map { String($0.dropLast(5)) }.sorted()
    }
}

enum TestModels {
    /// ABLAB_MODELS_DIR, else <package root>/models.
    static var directory: String {
        if let d = ProcessInfo.processInfo.environment["ABLAB_MODELS_DIR"], !d.isEmpty { return d }
        return URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("models").path
    }
    static let smol = "SmolLM2-135M-Instruct.Q4_1"
    static let qwen = "Qwen2.5-Coder-0.5B-Instruct"

    static func hfFolder(_ stem: String) -> String? {
        let p = directory + "/hf/" + stem
        return FileManager.default.fileExists(atPath: p + "/config.json") ? p : nil
    }
    static func ggufFile(_ stem: String) -> String? {
        let p = directory + "/" + stem + ".gguf"
        return FileManager.default.fileExists(atPath: p) ? p : nil
    }

    private static let lock = NSLock()
    nonisolated(unsafe) private static var loaded: (key: String, model: Transformer)?

    /// Keeps the most recently used model loaded (they are big: Float32 weights); callers run serialized suites.
    static func load(_ c: ModelCase) throws -> Transformer {
        lock.lock(); defer { lock.unlock() }
        if let l = loaded, l.key == c.description { return l.model }
        loaded = nil
        let m = c.adjacentRope ? try Transformer.loadGGUF(path: c.path, keepGGUFRopeLayout: true) : try Transformer.load(path: c.path)
        loaded = (c.description, m)
        return m
    }

    /// Every model source present: the GGUF files (what `make test` has), and the HF folders written by
    /// notebooks-scripts/fixtures_forward.py when they exist.
    static var cases: [ModelCase] {
        var out: [ModelCase] = []
        for stem in [smol, qwen] {
            if let g = ggufFile(stem) {
                out.append(ModelCase(stem: stem, path: g, kind: "gguf", adjacentRope: false))
                if stem == smol { out.append(ModelCase(stem: stem, path: g, kind: "gguf-adjacent-rope", adjacentRope: true)) }
            }
            if let h = hfFolder(stem) { out.append(ModelCase(stem: stem, path: h, kind: "hf", adjacentRope: false)) }
        }
        return out
    }
    static var smolGGUF: ModelCase? { cases.first { $0.stem == smol && $0.kind == "gguf" } }
}

struct ModelCase: CustomStringConvertible, Sendable {
    let stem: String
    let path: String
    let kind: String
    let adjacentRope: Bool
    var description: String { "\(stem) (\(kind))" }
}

/// |a − b| / |b| (L2).
func relativeL2<A: Collection, B: Collection>(_ a: A, _ b: B) -> Double where A.Element == Float, B.Element == Float {
    var num = 0.0, den = 0.0
    for (x, y) in zip(a, b) { num += Double(x - y) * Double(x - y); den += Double(y) * Double(y) }
    return (num / max(den, 1e-30)).squareRoot()
}

/// Captures every residual boundary (embeddings = resid_pre of block 0, then resid_post of each block)
/// at every position of one single-sequence forward: result[b] is [T, d].
final class ResidualRecorder {
    var boundaries: [[Float]]
    let d: Int
    init(nLayers: Int, d: Int) { boundaries = Array(repeating: [], count: nLayers + 1); self.d = d }
    func hooks(nLayers: Int) -> HookSet {
        var set = HookSet()
        set.add(layer: 0, point: .residPre) { [unowned self] a in self.boundaries[0] += Array(UnsafeBufferPointer(start: a.rows, count: a.rowCount * a.dModel)) }
        for l in 0..<nLayers {
            set.add(layer: l, point: .residPost) { [unowned self] a in self.boundaries[l + 1] += Array(UnsafeBufferPointer(start: a.rows, count: a.rowCount * a.dModel)) }
        }
        return set
    }
    func row(boundary b: Int, position p: Int) -> ArraySlice<Float> { boundaries[b][(p * d)..<((p + 1) * d)] }
}

/// Greedy decoding with the plain forward API (independent of Generator), `n` new tokens, stopping at EOS.
func greedyDecode(_ m: Transformer, prompt: [Int], n: Int, eos: Set<Int>) throws -> [Int] {
    let cache = m.makeCache()
    var logits = try m.forward([ForwardItem(cache: cache, tokens: prompt)])
    var out: [Int] = []
    for _ in 0..<n {
        let next = argmax(logits.data)
        out.append(next)
        if eos.contains(next) { break }
        logits = try m.forward([ForwardItem(cache: cache, tokens: [next])])
    }
    return out
}

func argmax(_ v: some Collection<Float>) -> Int {
    var best = -Float.infinity, bi = 0
    for (i, x) in v.enumerated() where x > best { best = x; bi = i }
    return bi
}
