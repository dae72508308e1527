import AblabCore
import Foundation
import HDF5

/// Where one output row comes from.
struct RowOrigin {
    var source: Int
    var row: Int
}

/// Everything needed to write one schema file from row sources (sealed shards or per-shard outputs).
struct AssemblyPlan {
    var header: ActivationHeader
    var promptSetSHA256: String
    var nPromptsTotal: Int
    var shard: ShardSpec
    var prompts: [Prompt]        // [N] output order
    var index: [Int32]           // [N] index in the full prompt set
    var nTokens: [Int32]         // [N]
    var hooks: [String]
    var dtype: ActivationDType
    var compression: H5Compression
    /// Source files; each has /residual [L+1, rows, P, d] and /hooks/<name> [rows, P, d].
    var sources: [String]
    var origins: [RowOrigin]     // [N]
}

enum Assembler {
    /// Chunk rows: up to 256 prompts, at most `maxChunkBytes` per chunk.
    /// Prompts per chunk: at most 256 (and 16 MiB), spread evenly over the chunks the file needs, so
    /// the last chunk is not mostly empty (320 prompts: 2 chunks of 160, not 256 + 64 in two 256-row
    /// chunks, which stored 60 % more bytes).
    static func chunkRows(n: Int, rowBytes: Int) -> Int {
        let cap = max(1, min(ActivationSchema.maxChunkPrompts, ActivationSchema.maxChunkBytes / max(rowBytes, 1)))
        let n = max(n, 1)
        let chunks = (n + cap - 1) / cap
        return (n + chunks - 1) / chunks
    }

    /// Writes `plan` to a temporary file beside `path`, syncs it, then renames it over `path`.
    static func write(_ plan: AssemblyPlan, to path: String) throws {
        let url = URL(fileURLWithPath: path)
        let tmp = url.deletingLastPathComponent().path + "/.\(url.lastPathComponent).tmp-\(getpid())"
        try? FileManager.default.removeItem(atPath: tmp)
        do {
            try writeFile(plan, to: tmp)
            try Durable.sync(file: tmp)
            try Durable.rename(tmp, to: path)
        } catch var e as HDF5Error where e.file == tmp {
            // The temporary file is gone after this; name the file the user asked for.
            try? FileManager.default.removeItem(atPath: tmp)
            e.file = path
            e.message = "writing it (as the temporary \(url.deletingLastPathComponent().lastPathComponent)/\(URL(fileURLWithPath: tmp).lastPathComponent), now removed): " + e.message
            throw e
        } catch {
            try? FileManager.default.removeItem(atPath: tmp)
            throw error
        }
    }

    private static func writeFile(_ plan: AssemblyPlan, to tmp: String) throws {
        let n = plan.prompts.count
        let h = plan.header
        let pCount = h.positions.count, d = h.dModel
        let rowElems = pCount * d
        let cr = chunkRows(n: n, rowBytes: rowElems * plan.dtype.size)

        let out = try H5File.create(tmp, overwrite: true)
        try h.write(to: out)
        try out.setAttribute("prompt_set_sha256", plan.promptSetSHA256)
        try out.setAttribute("n_prompts_total", plan.nPromptsTotal)
        try out.setAttribute("shard", plan.shard.description)

        let pg = try out.createGroup("prompts")
        try pg.createDataset("id", strings: plan.prompts.map(\.id))
        try pg.createDataset("text", strings: plan.prompts.map(\.text))
        try pg.createDataset("label", strings: plan.prompts.map(\.label))
        try pg.createDataset("split", strings: plan.prompts.map { $0.split ?? "" })
        try pg.createDataset("n_tokens", type: .int32, shape: [n]).write(plan.nTokens)
        try pg.createDataset("index", type: .int32, shape: [n]).write(plan.index)

        let sources = try plan.sources.map { try H5File.open($0, requireChecksums: true) }
        // With no prompts (an empty shard) the row dimension is left extendible: HDF5 needs chunk ≤ maximum.
        let rowMax: Int? = n == 0 ? nil : n
        let residualOut = try out.createDataset("residual", type: plan.dtype.h5, shape: [h.nLayers + 1, n, pCount, d],
                                                maxShape: [h.nLayers + 1, rowMax, pCount, d],
                                                chunk: [1, cr, pCount, d], compression: plan.compression)
        // Every source chunk is read once (twice where it straddles two output chunks), so the sources keep
        // HDF5's default 1 MiB chunk cache: a large cache per shard file held every chunk read until the end
        // (1777 prompts in 28 shards of SmolLM2-135M: 600 MiB more peak RSS than the recording itself).
        let residualIn = try sources.map { try $0.openDataset("residual") }
        try copyRows(plan.origins, from: residualIn, to: residualOut, layers: h.nLayers + 1, rowElems: rowElems, chunkRows: cr)
        let hCount = h.hookPositions.count, hookElems = hCount * d
        let hcr = chunkRows(n: n, rowBytes: hookElems * plan.dtype.size)
        for hook in plan.hooks {
            let hookOut = try out.createDataset("hooks/" + hook, type: plan.dtype.h5, shape: [n, hCount, d],
                                                maxShape: [rowMax, hCount, d], chunk: [hcr, hCount, d], compression: plan.compression)
            let hookIn = try sources.map { try $0.openDataset("hooks/" + hook) }
            try copyRows(plan.origins, from: hookIn, to: hookOut, layers: nil, rowElems: hookElems, chunkRows: hcr)
        }
        try out.flush()
    }

    /// Copies rows into `out` one output chunk at a time (per layer when `layers` is set), in the stored
    /// representation (bit-exact, no float16 round trips): for each chunk, each source's needed rows are
    /// read as one contiguous hyperslab when that is not wasteful. Memory: one output chunk plus one source range.
    static func copyRows(_ origins: [RowOrigin], from inputs: [H5Dataset], to out: H5Dataset,
                         layers: Int?, rowElems: Int, chunkRows: Int) throws {
        let n = origins.count
        if n == 0 { return }
        let tailShape = Array(try out.shape().suffix(2)) // [P, d]
        let esize = out.storedElementSize
        for input in inputs where input.elementType != out.elementType || input.storedElementSize != esize {
            throw HDF5Error(.typeMismatch, file: input.filePath, object: input.objectPath,
                            "element type \(input.elementType.rawValue) differs from the output's \(out.elementType.rawValue)")
        }
        func span(_ lead: Int, _ row: Int, _ count: Int) -> (offset: [Int], count: [Int]) {
            if layers != nil { return ([lead, row, 0, 0], [1, count] + tailShape) }
            return ([row, 0, 0], [count] + tailShape)
        }
        let rowBytes = rowElems * esize
        let block = UnsafeMutableRawBufferPointer.allocate(byteCount: chunkRows * rowBytes, alignment: 16)
        defer { block.deallocate() }
        var range = UnsafeMutableRawBufferPointer.allocate(byteCount: rowBytes, alignment: 16)
        defer { range.deallocate() }
        for lead in 0..<(layers ?? 1) {
            var b0 = 0
            while b0 < n {
                let b1 = min(n, b0 + chunkRows)
                // Rows of this output chunk grouped by source: (output row - b0, source row).
                var bySource: [Int: [(Int, Int)]] = [:]
                for r in b0..<b1 { bySource[origins[r].source, default: []].append((r - b0, origins[r].row)) }
                for (s, pairs) in bySource.sorted(by: { $0.key < $1.key }) {
                    let lo = pairs.map(\.1).min()!, hi = pairs.map(\.1).max()!
                    let width = hi - lo + 1
                    if width <= 4 * pairs.count {
                        if range.count < width * rowBytes {
                            range.deallocate()
                            range = UnsafeMutableRawBufferPointer.allocate(byteCount: width * rowBytes, alignment: 16)
                        }
                        let (o, c) = span(lead, lo, width)
                        try inputs[s].readRaw(into: UnsafeMutableRawBufferPointer(rebasing: range[0..<(width * rowBytes)]), offset: o, count: c)
                        for (outRow, srcRow) in pairs {
                            (block.baseAddress! + outRow * rowBytes).copyMemory(from: range.baseAddress! + (srcRow - lo) * rowBytes, byteCount: rowBytes)
                        }
                    } else {
                        for (outRow, srcRow) in pairs {
                            let (o, c) = span(lead, srcRow, 1)
                            try inputs[s].readRaw(into: UnsafeMutableRawBufferPointer(rebasing: block[(outRow * rowBytes)..<((outRow + 1) * rowBytes)]), offset: o, count: c)
                        }
                    }
                }
                let (o, c) = span(lead, b0, b1 - b0)
                try out.writeRaw(UnsafeRawBufferPointer(rebasing: block[0..<((b1 - b0) * rowBytes)]), offset: o, count: c)
                b0 = b1
            }
        }
    }
}

/// fsync and atomic rename helpers.
enum Durable {
    static func sync(file path: String) throws {
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else { throw IOError(path: path, "cannot reopen the file to sync it: \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        guard fsync(fd) == 0 else { throw IOError(path: path, "cannot sync the file to disk: \(String(cString: strerror(errno)))") }
    }

    static func rename(_ from: String, to: String) throws {
        guard Foundation.rename(from, to) == 0 else {
            throw IOError(path: to, "cannot move the finished file into place: \(String(cString: strerror(errno)))")
        }
        let dir = URL(fileURLWithPath: to).deletingLastPathComponent().path
        let fd = open(dir, O_RDONLY)
        if fd >= 0 { fsync(fd); close(fd) }
    }
}
