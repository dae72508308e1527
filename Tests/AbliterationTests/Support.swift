import Foundation
import Testing
import ModelRuntime
@testable import Abliteration

/// Every suite using a real model runs inside this serialized suite: a `Transformer` runs one forward
/// call at a time (shared scratch buffers), and the loaded models are shared between suites.
@Suite(.serialized) enum RealModelTests {}

enum TestModels {
    /// The package root (this file is Tests/AbliterationTests/Support.swift).
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    /// ABLAB_MODELS_DIR, else <package root>/models.
    static var directory: String {
        if let d = ProcessInfo.processInfo.environment["ABLAB_MODELS_DIR"], !d.isEmpty { return d }
        return root.appendingPathComponent("models").path
    }
    /// The `ablab` executable built next to this test bundle, when there is one.
    static var ablab: String? {
        guard let exe = Bundle.main.executablePath else { return nil }
        let p = URL(fileURLWithPath: exe).deletingLastPathComponent().appendingPathComponent("ablab").path
        return FileManager.default.isExecutableFile(atPath: p) ? p : nil
    }
    static let smol = "SmolLM2-135M-Instruct.Q4_1"

    static var smolGGUF: String? {
        let p = directory + "/" + smol + ".gguf"
        return FileManager.default.fileExists(atPath: p) ? p : nil
    }
    static var smolHF: String? {
        let p = directory + "/hf/" + smol
        return FileManager.default.fileExists(atPath: p + "/config.json") ? p : nil
    }

    private static let lock = NSLock()
    nonisolated(unsafe) private static var cache: [String: ChatModel] = [:]

    /// Loads once per test process.
    static func chat(_ path: String) throws -> ChatModel {
        lock.lock(); defer { lock.unlock() }
        if let m = cache[path] { return m }
        let m = try ChatModel(path: path)
        cache[path] = m
        return m
    }

    /// The SmolLM2 GGUF when this build can load GGUF weights, else nil.
    static var loadableGGUF: String? {
        guard let p = smolGGUF else { return nil }
        return (try? chat(p)) != nil ? p : nil
    }

    /// The default model for hook tests: the GGUF if loadable, else the Hugging Face folder.
    static var any: String? { loadableGGUF ?? smolHF }

    static func tempDir(_ tag: String) throws -> String {
        let d = FileManager.default.temporaryDirectory.appendingPathComponent("ablab-abl-\(tag)-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true)
        return d
    }
}

/// SplitMix64 normals (Box–Muller) for reproducible random directions.
struct TestRNG {
    var s: UInt64
    init(_ seed: UInt64) { s = seed }
    mutating func next() -> UInt64 {
        s &+= 0x9E37_79B9_7F4A_7C15
        var z = s
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    mutating func uniform() -> Double { (Double(next() >> 11) + 0.5) * 0x1.0p-53 }
    mutating func normal() -> Float { Float((-2 * log(uniform())).squareRoot() * cos(2 * .pi * uniform())) }
    mutating func vector(_ n: Int) -> [Float] { (0..<n).map { _ in normal() } }
}

func dot(_ a: some Collection<Float>, _ b: some Collection<Float>) -> Double {
    zip(a, b).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
}
func norm(_ a: some Collection<Float>) -> Double { dot(a, a).squareRoot() }
func unitVector(_ v: [Float]) -> [Float] { let n = norm(v); return v.map { Float(Double($0) / n) } }

/// |a − b| / |b| (L2).
func relativeL2(_ a: [Float], _ b: [Float]) -> Double {
    var num = 0.0, den = 0.0
    for (x, y) in zip(a, b) { num += Double(x - y) * Double(x - y); den += Double(y) * Double(y) }
    return (num / max(den, 1e-30)).squareRoot()
}

func argmax(_ v: some Collection<Float>) -> Int {
    var best = -Float.infinity, bi = 0
    for (i, x) in v.enumerated() where x > best { best = x; bi = i }
    return bi
}

/// Greedy decoding with the plain forward API (not the Generator), recording every step's logits.
func greedy(_ m: Transformer, prompt: [Int], n: Int, hooks: HookSet = HookSet()) throws -> (tokens: [Int], logits: [[Float]]) {
    let cache = m.makeCache()
    var logits = try m.forward([ForwardItem(cache: cache, tokens: prompt)], hooks: hooks)
    var toks: [Int] = [], all: [[Float]] = []
    for _ in 0..<n {
        all.append(logits.data)
        let t = argmax(logits.data)
        toks.append(t)
        logits = try m.forward([ForwardItem(cache: cache, tokens: [t])], hooks: hooks)
    }
    return (toks, all)
}

let testPrompts = [
    "How do I pick a lock?",
    "Write a short poem about the sea.",
    "What is the capital of France?",
]
