import ActivationCache
import AblabCore
import Analysis
import Foundation
import LinearAlgebra

extension PCScatterData {
    /// Reads the activation cache of `<run>` (analysis.h5 keeps no per-prompt scores): for each
    /// checkpoint and layer, fits PCA (2 axes) on the pooled train prompts, oriented so harmful
    /// prompts score positive on PC1, and projects the test prompts (all prompts when a class has
    /// no test prompts). `layers` nil: about 1/3, 2/3 and the last layer of each checkpoint.
    public static func load(run: String, position: Int? = nil, layers: [Int]? = nil,
                            checkpoints only: [String]? = nil) throws -> PCScatterData {
        let cache = try ActivationCache(run: run)
        var names = try cache.checkpoints()
        if let only { names = names.filter { only.contains($0) } }
        var panels: [Panel] = []
        var usedPosition = position ?? -1
        for name in names {
            let file = try cache.open(name)
            let h = file.header
            let positions = h.positions.map(Int.init)
            let p = position.flatMap { positions.contains($0) ? $0 : nil } ?? (positions.contains(-1) ? -1 : positions.last ?? -1)
            usedPosition = p
            let L = h.nLayers
            let chosen = (layers ?? Array(Set([max(1, L / 3), max(1, 2 * L / 3), L])).sorted()).filter { $0 >= 1 && $0 <= L }
            let th = file.promptIndices(label: "harmful", split: "train"), tb = file.promptIndices(label: "harmless", split: "train")
            var eh = file.promptIndices(label: "harmful", split: "test"), eb = file.promptIndices(label: "harmless", split: "test")
            if eh.isEmpty || eb.isEmpty { eh = file.promptIndices(label: "harmful"); eb = file.promptIndices(label: "harmless") }
            let fitRows = th.count >= 2 && tb.count >= 2 ? th + tb : eh + eb
            guard fitRows.count >= 3, !eh.isEmpty, !eb.isEmpty else {
                throw ReportError(file: file.path, "too few harmful/harmless prompts for a PCA scatter (need at least 2 of each)")
            }
            let nh = fitRows.filter { file.prompts[$0].label == "harmful" }
            let nb = fitRows.filter { file.prompts[$0].label == "harmless" }
            for l in chosen {
                let x = try file.residual(layer: l, position: p, prompts: fitRows) // [nFit, d]
                let xh = try file.residual(layer: l, position: p, prompts: nh), xb = try file.residual(layer: l, position: p, prompts: nb)
                let d = x.cols
                var delta = [Float](repeating: 0, count: d)
                for i in 0..<xh.rows { for j in 0..<d { delta[j] += xh.data[i * d + j] / Float(xh.rows) } }
                for i in 0..<xb.rows { for j in 0..<d { delta[j] -= xb.data[i * d + j] / Float(xb.rows) } }
                let pca = try PCA.fit(x, keep: 2, orientation: delta, site: "\(name) layer \(l) position \(p)")
                guard pca.components.rows >= 2 else { continue }
                let sh = try PCA.scores(try file.residual(layer: l, position: p, prompts: eh), pca, components: 2) // [nh, 2]
                let sb = try PCA.scores(try file.residual(layer: l, position: p, prompts: eb), pca, components: 2)
                func pts(_ m: Matrix) -> [(Double, Double)] { (0..<m.rows).map { (Double(m.data[$0 * 2]), Double(m.data[$0 * 2 + 1])) } }
                let evr = pca.explainedVarianceRatio
                panels.append(Panel(checkpoint: name, layer: l, explained: (evr.count > 0 ? evr[0] : .nan, evr.count > 1 ? evr[1] : .nan),
                                    harmful: pts(sh), harmless: pts(sb)))
            }
        }
        return PCScatterData(position: usedPosition, panels: panels)
    }
}
