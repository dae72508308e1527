import Foundation
import AblabCore
import HDF5

/// Reads what `ablab analyze` wrote: refusal directions from `<run>/analysis.h5` and the ranked
/// candidates from `<run>/analysis/candidates.csv`. Later stages (abliteration) use only these files.
public enum AnalysisFile {
    /// The unit direction of `method` at residual layer `layer` (index into the cache's residual
    /// stream: l ≥ 1 is the output of block l − 1) and relative `position`.
    public static func direction(run: String, checkpoint: String, method: DirectionMethod, layer: Int, position: Int) throws -> [Float] {
        let path = run + "/analysis.h5"
        guard FileManager.default.fileExists(atPath: path) else {
            throw AnalysisError(site: path, "no analysis file; run `ablab analyze \(run)` first")
        }
        let f = try H5File.open(path, requireChecksums: true)
        let g = "checkpoints/" + SafeFiles.sanitize(checkpoint)
        guard try f.exists(g) else { throw AnalysisError(site: path, "no analysis of checkpoint '\(checkpoint)'") }
        let layers = try f.openDataset(g + "/layers").readInt32().map(Int.init)
        let positions = try f.openDataset(g + "/positions").readInt32().map(Int.init)
        guard let li = layers.firstIndex(of: layer) else {
            throw AnalysisError(site: path, "checkpoint '\(checkpoint)' has no analysed layer \(layer) (layers \(layers.first ?? 0)…\(layers.last ?? 0))")
        }
        guard let pi = positions.firstIndex(of: position) else {
            throw AnalysisError(site: path, "checkpoint '\(checkpoint)' has no analysed position \(position) (positions \(positions))")
        }
        let ds = try f.openDataset(g + "/directions/" + method.rawValue)
        let shape = try ds.shape()
        guard shape.count == 3, shape[0] == layers.count, shape[1] == positions.count else {
            throw AnalysisError(site: path, "directions/\(method.rawValue) of '\(checkpoint)' has shape \(shape), not [layers, positions, d]")
        }
        let v = try ds.readFloats(offset: [li, pi, 0], count: [1, 1, shape[2]])
        guard v.allSatisfy({ $0.isFinite }) else {
            throw AnalysisError(site: path, "the \(method.rawValue) direction of '\(checkpoint)' at layer \(layer), position \(position) was not computed")
        }
        return v
    }

    /// The best-ranked candidate (layer, position, method) of a checkpoint, from candidates.csv.
    public static func bestCandidate(run: String, checkpoint: String, position: Int? = nil,
                                     method: DirectionMethod? = nil) throws -> (layer: Int, position: Int, method: DirectionMethod) {
        guard let b = try rankedCandidates(run: run, checkpoint: checkpoint, position: position, method: method).first else {
            throw AnalysisError(site: run + "/analysis/candidates.csv",
                                "no eligible candidate for '\(checkpoint)'\(position.map { " at position \($0)" } ?? ""); fix [abliteration] layer by hand")
        }
        return (b.layer, b.position, b.method)
    }

    /// The eligible (ranked) candidates of a checkpoint from candidates.csv, best first.
    public static func rankedCandidates(run: String, checkpoint: String, position: Int? = nil,
                                        method: DirectionMethod? = nil) throws -> [(rank: Int, layer: Int, position: Int, method: DirectionMethod)] {
        let path = run + "/analysis/candidates.csv"
        guard let data = FileManager.default.contents(atPath: path), let text = String(data: data, encoding: .utf8) else {
            throw AnalysisError(site: path, "no candidate list; run `ablab analyze \(run)` first")
        }
        let rows = try CSV.parse(text, file: path)
        guard let header = rows.first?.fields else { throw AnalysisError(site: path, "empty candidate list") }
        func col(_ n: String) throws -> Int {
            guard let i = header.firstIndex(of: n) else { throw AnalysisError(site: path, "no column '\(n)'") }
            return i
        }
        let cRank = try col("rank"), cCk = try col("checkpoint"), cL = try col("layer"), cP = try col("position"), cM = try col("method")
        var out: [(rank: Int, layer: Int, position: Int, method: DirectionMethod)] = []
        for r in rows.dropFirst() where r.fields.count == header.count {
            guard r.fields[cCk] == checkpoint, let rank = Int(r.fields[cRank]), let l = Int(r.fields[cL]),
                  let p = Int(r.fields[cP]), let m = DirectionMethod(rawValue: r.fields[cM]) else { continue }
            if let position, p != position { continue }
            if let method, m != method { continue }
            out.append((rank, l, p, m))
        }
        return out.sorted { $0.rank < $1.rank }
    }
}
