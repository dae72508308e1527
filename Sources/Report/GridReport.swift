import Foundation
import AblabCore
import Plotting

/// Arditi et al.'s full grid (`<run>/analysis/grid-<checkpoint>.csv`): bypass, induce and KL of every
/// layer × post-instruction position candidate.
public struct GridData: Sendable, Equatable {
    public struct Cell: Sendable, Equatable { public var layer: Int, position: Int, bypass: Double, induce: Double, kl: Double }
    public var checkpoint: String
    public var cells: [Cell]
    public var layers: [Int] { Array(Set(cells.map(\.layer))).sorted() }
    public var positions: [Int] { Array(Set(cells.map(\.position))).sorted() }

    /// The lowest-bypass cell among those with KL ≤ 0.1 (nil when none).
    public var bestBypass: Cell? { cells.filter { $0.kl <= 0.1 }.min { $0.bypass < $1.bypass } }

    public static func loadAll(run: String) throws -> [GridData] {
        let dir = run + "/analysis"
        let files = ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []).filter { $0.hasPrefix("grid-") && $0.hasSuffix(".csv") }.sorted()
        return try files.map { f in
            let path = dir + "/" + f
            let rows = try CSV.parse(try String(contentsOfFile: path, encoding: .utf8), file: path)
            guard let h = rows.first?.fields, let cc = h.firstIndex(of: "checkpoint"), let cl = h.firstIndex(of: "layer"),
                  let cp = h.firstIndex(of: "position"), let cb = h.firstIndex(of: "bypass"), let ci = h.firstIndex(of: "induce"),
                  let ck = h.firstIndex(of: "kl") else { throw InputError(file: path, line: 1, "not a grid file (checkpoint, layer, position, bypass, induce, kl)") }
            var name = ""
            let cells = try rows.dropFirst().map { r -> Cell in
                guard r.fields.count == h.count, let l = Int(r.fields[cl]), let p = Int(r.fields[cp]) else {
                    throw InputError(file: path, line: r.line, "expected \(h.count) fields with integer layer and position")
                }
                name = r.fields[cc]
                return Cell(layer: l, position: p, bypass: Double(r.fields[cb]) ?? .nan, induce: Double(r.fields[ci]) ?? .nan, kl: Double(r.fields[ck]) ?? .nan)
            }
            return GridData(checkpoint: name, cells: cells)
        }
    }
}

public enum GridFigures {
    /// Three heatmaps (bypass, induce, KL): rows = layers, columns = positions.
    public static func grid(_ d: GridData) -> Figure {
        let ls = d.layers, ps = d.positions
        var fig = Figure(width: reportFigureWidth, height: min(620, 120 + 11 * Double(ls.count)), title: SystemName.shortName(d.checkpoint), rows: 1, columns: 3)
        for (i, (name, key)) in [("bypass (lower: refuses less)", \GridData.Cell.bypass), ("induce (higher: refuses more)", \GridData.Cell.induce),
                                 ("KL on harmless", \GridData.Cell.kl)].enumerated() {
            var ax = Axes(title: name, xLabel: "position", yLabel: i == 0 ? "layer" : nil)
            let values = ls.map { l in ps.map { p in d.cells.first { $0.layer == l && $0.position == p }?[keyPath: key] ?? .nan } }
            ax.heatmap(values, rowLabels: ls.map(String.init), columnLabels: ps.map(String.init), colorMap: i == 2 ? .viridis : .viridis)
            fig.axes[i] = ax
        }
        return fig
    }
}
