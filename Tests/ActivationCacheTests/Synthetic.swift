import AblabCore
import Foundation
import HDF5
import ActivationCache

/// Synthetic activations given by a formula, so every stored value can be checked independently
/// (check_interop.py recomputes the same formula in numpy).
///   residual(l, i, p, k) = ((7l + 3i + 5p + k) mod 101 − 50) / 8 + (l if prompt i is harmful and k mod 4 = 0)
///   hook h (0-based in the hook list) = residual formula with l = 100 + h
/// i is the prompt's index in the full prompt set; p the position column; k the feature.
/// Every value is a multiple of 1/8 below 64 in magnitude: exact in float32 and float16.
struct Synthetic {
    var nLayers = 3
    var dModel = 8
    var positions: [Int32] = [-3, -2, -1]
    var nPrompts = 37
    var hooks: [String] = []

    static func value(_ l: Int, _ i: Int, _ p: Int, _ k: Int) -> Float {
        Float((7 * l + 3 * i + 5 * p + k) % 101 - 50) / 8 + (i % 2 == 0 && k % 4 == 0 ? Float(l) : 0)
    }

    var prompts: [Prompt] {
        (0..<nPrompts).map { i in
            Prompt(id: "p\(i)", text: i % 5 == 0 ? "Prompt \(i): ü ✓ 🚀" : "prompt number \(i)",
                   label: i % 2 == 0 ? "harmful" : "harmless", split: i % 3 == 0 ? "test" : (i % 7 == 0 ? nil : "train"))
        }
    }

    static func nTokens(_ i: Int) -> Int32 { Int32(10 + i % 7) }

    func header(checkpoint: String = "step-1000", sha: String = String(repeating: "ab", count: 32)) -> ActivationHeader {
        ActivationHeader(checkpoint: checkpoint, modelPath: "models/synthetic.gguf", modelSHA256: sha,
                         architecture: "llama", nLayers: nLayers, dModel: dModel, systemPrompt: "You are helpful.",
                         positions: positions)
    }

    /// residual [L+1, B, P, d] and hooks [B, P, d] for prompts `indices`.
    func batch(_ indices: [Int]) -> (residual: [Float], hooks: [String: [Float]]) {
        let pc = positions.count
        var r: [Float] = []
        r.reserveCapacity((nLayers + 1) * indices.count * pc * dModel)
        for l in 0...nLayers { for i in indices { for p in 0..<pc { for k in 0..<dModel { r.append(Self.value(l, i, p, k)) } } } }
        var h: [String: [Float]] = [:]
        for (hi, name) in hooks.enumerated() {
            var v: [Float] = []
            for i in indices { for p in 0..<pc { for k in 0..<dModel { v.append(Self.value(100 + hi, i, p, k)) } } }
            h[name] = v
        }
        return (r, h)
    }

    /// Appends `indices` in batches of `batchSize`.
    func record(_ w: ActivationCacheWriter, _ indices: [Int], batchSize: Int) throws {
        var start = 0
        while start < indices.count {
            let b = Array(indices[start..<min(indices.count, start + batchSize)])
            let (r, h) = batch(b)
            try w.append(indices: b, nTokens: b.map(Self.nTokens), residual: r, hooks: h)
            start += batchSize
        }
    }
}

struct TempRun {
    let path: String
    init() throws {
        path = FileManager.default.temporaryDirectory.appendingPathComponent("ablab-cache-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }
    func cleanup() { try? FileManager.default.removeItem(atPath: path) }
}

/// Every dataset of two cache files, compared bit for bit (floats by bit pattern). Returns differences.
func datasetDifferences(_ a: String, _ b: String) throws -> [String] {
    let fa = try H5File.open(a), fb = try H5File.open(b)
    var diffs: [String] = []
    func names(_ f: H5File) throws -> [String] {
        var out = ["residual"] + (try f.openGroup("prompts").children().map { "prompts/" + $0 })
        if try f.exists("hooks") { out += try f.openGroup("hooks").children().map { "hooks/" + $0 } }
        return out
    }
    let na = try names(fa), nb = try names(fb)
    if na != nb { return ["dataset lists differ: \(na) vs \(nb)"] }
    for n in na {
        let da = try fa.openDataset(n), db = try fb.openDataset(n)
        let sa = try da.shape(), sb = try db.shape()
        if da.elementType != db.elementType || sa != sb { diffs.append("\(n): type or shape"); continue }
        switch da.elementType {
        case .string: if try da.readStrings() != db.readStrings() { diffs.append(n) }
        case .int32, .int64: if try da.readInt32() != db.readInt32() { diffs.append(n) }
        default: if try da.readFloats().map(\.bitPattern) != db.readFloats().map(\.bitPattern) { diffs.append(n) }
        }
    }
    return diffs
}
