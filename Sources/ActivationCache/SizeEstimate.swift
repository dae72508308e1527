import Foundation
import AblabCore

/// What recording a checkpoint will write, estimated before any model work (compression off; with
/// compression the files are smaller).
public struct CacheSizeEstimate: Sendable, Equatable {
    /// The activations: prompts × (layers + 1) × positions × width × dtype bytes, plus hooks × prompts ×
    /// positions × width × dtype bytes.
    public var activations: Int
    /// The final file: the activations plus the prompt table (fixed-length strings, as long as the longest
    /// value, and two int32 per prompt) and 1 MiB for HDF5 metadata and chunk checksums.
    public var finalFile: Int
    /// Shards still to be written while recording (those of every prompt, less the bytes of shards already
    /// sealed by an interrupted run); they exist until the final file is complete.
    public var shards: Int
    /// Peak disk use still to come: shards plus the final file.
    public var total: Int { finalFile + shards }
    /// The formula with its numbers, for messages.
    public var formula: String

    /// The estimate for `prompts` (all of the recording), `sealedBytes` of shards already on disk.
    public static func recording(prompts: [Prompt], sealedBytes: Int, nLayers: Int, dModel: Int, positions: Int, hooks: Int,
                                 hookPositions: Int? = nil, dtype: ActivationDType, promptsPerShard: Int) -> CacheSizeEstimate {
        let n = prompts.count
        let row = positions * dModel * dtype.size
        let hookRow = (hookPositions ?? positions) * dModel * dtype.size
        let activations = n * (nLayers + 1) * row + hooks * n * hookRow
        func longest(_ f: (Prompt) -> String) -> Int { prompts.reduce(1) { max($0, f($1).utf8.count) } }
        let table = n * (longest(\.id) + longest(\.text) + longest(\.label) + longest { $0.split ?? "" } + 8)
        let metadata = 1 << 20
        let shardCount = (n + max(promptsPerShard, 1) - 1) / max(promptsPerShard, 1)
        let shards = max(0, n * ((nLayers + 1) * row + hooks * hookRow + 8) + shardCount * (64 << 10) - sealedBytes)
        let formula = "\(n) prompts × \(nLayers + 1) layers × \(positions) positions × \(dModel) values × \(dtype.size) bytes"
            + (hooks > 0 ? " + \(hooks) hooks × \(hookPositions ?? positions) positions" : "") + ", written once as shards and once as the final file"
        return CacheSizeEstimate(activations: activations, finalFile: activations + table + metadata, shards: shards, formula: formula)
    }
}
