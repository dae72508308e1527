import AblabCore
import Foundation
import HDF5
import LinearAlgebra

/// One prompt as stored in a cache file.
public struct CachedPrompt: Equatable, Sendable {
    /// Index of the prompt in the full prompt set the recording was started with.
    public var index: Int
    public var id: String
    public var text: String
    public var label: String
    /// "" when the prompt file gave no split.
    public var split: String
    /// Tokens of the chat-formatted prompt.
    public var nTokens: Int32
}

/// A run folder's activation caches: `<run>/activations/<checkpoint>.h5`.
public final class ActivationCache {
    public let run: String
    public let directory: String

    /// Opens a run folder (it must contain `activations/`).
    public init(run: String) throws {
        self.run = run
        self.directory = run + "/activations"
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: directory, isDirectory: &isDir), isDir.boolValue else {
            throw ActivationCacheError(.missing, path: directory, "no activations folder in this run; record activations first")
        }
    }

    /// Names (file stems) of finished checkpoint files, sorted; shard outputs (`*.shard-k-of-n.h5`) are excluded.
    public func checkpoints() throws -> [String] {
        try files().filter { !$0.contains(".shard-") }
    }

    /// Names of finished files including per-shard outputs (`<checkpoint>.shard-k-of-n`).
    public func files() throws -> [String] {
        let names: [String]
        do { names = try FileManager.default.contentsOfDirectory(atPath: directory) } catch {
            throw ActivationCacheError(.missing, path: directory, "cannot list the folder: \(error.localizedDescription)")
        }
        return names.filter { $0.hasSuffix(".h5") && !$0.hasPrefix(".") }.map { String($0.dropLast(3)) }.sorted()
    }

    /// Checkpoints whose recording was started but not finalized.
    public func unfinished() -> [String] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        return names.filter { $0.hasPrefix(".") && $0.hasSuffix(".partial") }.map { String($0.dropFirst().dropLast(8)) }.sorted()
    }

    /// Opens one checkpoint's file (the name is sanitized as the writer does).
    public func open(_ checkpoint: String) throws -> ActivationFile {
        let path = directory + "/" + SafeFiles.sanitize(checkpoint) + ".h5"
        guard FileManager.default.fileExists(atPath: path) else {
            let have = (try? checkpoints()) ?? []
            throw ActivationCacheError(.missing, path: path, "no finished cache for checkpoint '\(checkpoint)' (have: \(have.joined(separator: ", ")))")
        }
        return try ActivationFile(path: path)
    }
}

/// One checkpoint's cache file, opened read-only and checked against schema version 1.
public final class ActivationFile {
    public let path: String
    public let header: ActivationHeader
    public let prompts: [CachedPrompt]
    public let dtype: ActivationDType
    /// Names under /hooks, sorted.
    public let hookNames: [String]
    /// Hash of the full prompt set and its size (see `promptSetSHA256`); shard files hold a subset of it.
    public let promptSetSHA256: String
    public let nPromptsTotal: Int
    public let shard: ShardSpec
    let file: H5File
    let residualSet: H5Dataset

    public var nPrompts: Int { prompts.count }
    public var nPositions: Int { header.positions.count }

    public init(path: String) throws {
        self.path = path
        file = try H5File.open(path, requireChecksums: true)
        header = try ActivationHeader.read(from: file)
        try header.validate(path: path)
        promptSetSHA256 = (try? file.stringAttribute("prompt_set_sha256")) ?? ""
        shard = (try? ShardSpec(parsing: file.stringAttribute("shard"))) ?? .whole
        let pg = try file.openGroup("prompts")
        let ids = try pg.openDataset("id").readStrings()
        let n = ids.count
        func strings(_ name: String) throws -> [String] {
            let s = try pg.openDataset(name).readStrings()
            guard s.count == n else { throw ActivationCacheError(.badFile, path: path, "/prompts/\(name) has \(s.count) entries, /prompts/id has \(n)") }
            return s
        }
        let text = try strings("text"), label = try strings("label"), split = try strings("split")
        let nTok = try pg.openDataset("n_tokens").readInt32()
        let index: [Int32] = try pg.exists("index") ? pg.openDataset("index").readInt32() : (0..<n).map { Int32($0) }
        guard nTok.count == n, index.count == n else {
            throw ActivationCacheError(.badFile, path: path, "/prompts/n_tokens or /prompts/index length differs from /prompts/id (\(n))")
        }
        prompts = (0..<n).map { CachedPrompt(index: Int(index[$0]), id: ids[$0], text: text[$0], label: label[$0], split: split[$0], nTokens: nTok[$0]) }
        nPromptsTotal = (try? file.intAttribute("n_prompts_total")) ?? n

        residualSet = try file.openDataset("residual", chunkCacheBytes: 32 << 20)
        let want = [header.nLayers + 1, n, header.positions.count, header.dModel]
        guard try residualSet.shape() == want else {
            throw ActivationCacheError(.badFile, path: path, "/residual has shape \(try residualSet.shape()), expected \(want) from the header")
        }
        switch residualSet.elementType {
        case .float32: dtype = .float32
        case .float16: dtype = .float16
        default: throw ActivationCacheError(.badFile, path: path, "/residual holds \(residualSet.elementType.rawValue), expected float32 or float16")
        }
        if try file.exists("hooks") {
            let hg = try file.openGroup("hooks")
            hookNames = try hg.children()
            let hookShape = [n, header.hookPositions.count, header.dModel]
            for h in hookNames {
                guard try hg.openDataset(h).shape() == hookShape else {
                    throw ActivationCacheError(.badFile, path: path, "/hooks/\(h) has shape \(try hg.openDataset(h).shape()), expected \(hookShape)")
                }
            }
        } else {
            hookNames = []
        }
    }

    /// Indices (rows of this file) of prompts with the given label and/or split, in file order.
    public func promptIndices(label: String? = nil, split: String? = nil) -> [Int] {
        prompts.indices.filter { i in (label == nil || prompts[i].label == label!) && (split == nil || prompts[i].split == split!) }
    }

    /// The column of `positions` holding relative position `position` (e.g. -1 = last token).
    public func positionIndex(_ position: Int) throws -> Int {
        guard let i = header.positions.firstIndex(of: Int32(truncatingIfNeeded: position)) else {
            throw ActivationCacheError(.missing, path: path, "position \(position) was not cached (cached positions: \(header.positions))")
        }
        return i
    }

    /// Residual stream entering block `layer` (0 = embeddings, `layer` = l ≥ 1: output of block l-1)
    /// at relative `position`, for file rows `prompts` (default all): a [prompts, d_model] matrix.
    public func residual(layer: Int, position: Int, prompts rows: [Int]? = nil) throws -> Matrix {
        guard (0...header.nLayers).contains(layer) else {
            throw ActivationCacheError(.missing, path: path, "layer \(layer) is out of range 0...\(header.nLayers)")
        }
        let p = try positionIndex(position)
        let d = header.dModel
        // [N, d]: one position of one layer for every prompt (touches only this layer's chunks).
        let all = try residualSet.readFloats(offset: [layer, 0, p, 0], count: [1, nPrompts, 1, d])
        return try select(all, rows: rows)
    }

    /// The cached hook `name` (e.g. "blocks.3.hook_attn_out") at relative `position`: [prompts, d_model].
    public func hook(_ name: String, position: Int, prompts rows: [Int]? = nil) throws -> Matrix {
        guard hookNames.contains(name) else {
            throw ActivationCacheError(.missing, path: path, "hook '\(name)' was not cached (cached: \(hookNames.joined(separator: ", ")))")
        }
        guard let p = header.hookPositions.firstIndex(of: Int32(truncatingIfNeeded: position)) else {
            throw ActivationCacheError(.missing, path: path, "hook '\(name)' was not cached at position \(position) (hook positions: \(header.hookPositions))")
        }
        let all = try file.openDataset("hooks/" + name).readFloats(offset: [0, p, 0], count: [nPrompts, 1, header.dModel])
        return try select(all, rows: rows)
    }

    private func select(_ all: [Float], rows: [Int]?) throws -> Matrix {
        let d = header.dModel
        guard let rows else { return Matrix(rows: nPrompts, cols: d, data: all) }
        if let bad = rows.first(where: { !(0..<nPrompts).contains($0) }) {
            throw ActivationCacheError(.missing, path: path, "prompt row \(bad) is out of range 0..<\(nPrompts)")
        }
        var out = Matrix(rows: rows.count, cols: d)
        out.data.withUnsafeMutableBufferPointer { dst in
            all.withUnsafeBufferPointer { src in
                for (k, r) in rows.enumerated() {
                    (dst.baseAddress! + k * d).update(from: src.baseAddress! + r * d, count: d)
                }
            }
        }
        return out
    }
}
