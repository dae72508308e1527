import Foundation
import Testing
import Plotting
@testable import Report

@Suite("Subspace sweep and costs in the report")
struct SubspaceReportTests {
    func tempRun() throws -> String {
        let d = FileManager.default.temporaryDirectory.appendingPathComponent("ablab-subspace-report-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: d + "/analysis", withIntermediateDirectories: true)
        return d
    }

    @Test("the sweep's tidy CSV is read into curves per checkpoint and basis; the figure validates and renders")
    func sweepLoadsAndRenders() throws {
        let run = try tempRun()
        defer { try? FileManager.default.removeItem(atPath: run) }
        var csv = "checkpoint,basis,k,label,refused,total,rate,lower,upper,harmless_kl_mean,layer,position,judge,max_new_tokens,edit\n"
        csv += "m,original,0,harmful,5,10,0.5,0.2,0.8,,7,-1,regex:paper,24,arditi\nm,original,0,harmless,1,10,0.1,0.01,0.4,0.0,7,-1,regex:paper,24,arditi\n"
        for (k, r) in [(1, 3), (2, 1), (4, 0)] {
            csv += "m,pca,\(k),harmful,\(r),10,\(Double(r) / 10),0,1,,7,-1,regex:paper,24,arditi\n"
            csv += "m,pca,\(k),harmless,0,10,0.0,0,0.3,\(0.5 * Double(k)),7,-1,regex:paper,24,arditi\n"
        }
        try csv.write(toFile: run + "/analysis/subspace.csv", atomically: true, encoding: .utf8)
        try "checkpoint,basis,threshold,smallest_k,harmful_rate_at_k,largest_k_tried\nm,pca,0.1,2,0.1,4\n"
            .write(toFile: run + "/analysis/subspace_resilience.csv", atomically: true, encoding: .utf8)
        let d = try SubspaceSweepData.load(run: run)
        #expect(d.checkpoints == ["m"] && d.bases == ["pca"] && d.judge == "regex:paper" && d.layers["m"] == 7)
        let curve = d.curve("m", basis: "pca", label: "harmful")
        #expect(curve.map(\.k) == [0, 1, 2, 4] && curve.map(\.refused) == [5, 3, 1, 0])
        #expect(d.curve("m", basis: "pca", label: "harmless").map(\.harmlessKL).suffix(3) == [0.5, 1.0, 2.0])
        #expect(d.resilience == [SubspaceSweepData.Resilience(checkpoint: "m", basis: "pca", threshold: 0.1, smallestK: 2, largestK: 4)])
        let fig = SubspaceFigures.refusalVsK(d)
        try fig.validate(file: "subspace")
        try fig.write(to: run + "/f.png", scale: 1)
        #expect((try FileManager.default.attributesOfItem(atPath: run + "/f.png")[.size] as? Int ?? 0) > 1000)
        // a short row is an error naming the file and line
        try (csv + "m,pca,8\n").write(toFile: run + "/analysis/subspace.csv", atomically: true, encoding: .utf8)
        #expect(throws: (any Error).self) { try SubspaceSweepData.load(run: run) }
    }

    @Test("costs.csv is read; labels name the checkpoint and the abliteration")
    func costsLoad() throws {
        let run = try tempRun()
        defer { try? FileManager.default.removeItem(atPath: run) }
        let h = "checkpoint,system,harmless_answers,answer_tokens,ce_original,ce_system,ce_increase,harmful_refusal_first48,harmful_refusal_full,harmful_n,harmless_refusal_first48,harmless_refusal_full,harmless_n,max_new_tokens,judge\n"
        let csv = h + "Q-Instruct,Q-Instruct,8,100,0.6,0.6,0,0.5,0.5,8,0,0,8,256,regex:paper\nQ-Instruct,Q-Instruct+abl-mean-diff-L19-p-1-a0.5,8,100,0.6,0.7,0.1,0.1,0.2,8,0,0,8,256,regex:paper\n"
        try csv.write(toFile: run + "/analysis/costs.csv", atomically: true, encoding: .utf8)
        let d = try CostsData.load(run + "/analysis/costs.csv")
        #expect(d.rows.count == 2 && d.rows[1].ceIncrease == 0.1 && d.rows[1].harmfulFull == 0.2)
        #expect(CostsFigures.label(d.rows[0]) == "Q original")
        #expect(CostsFigures.label(d.rows[1]) == "Q abl. mean-diff L19 α 0.5")
        try CostsFigures.costs(d).validate(file: "costs")
    }
}

@Suite("Arditi grid in the report")
struct GridReportTests {
    @Test("grid files are read per checkpoint; the best bypass respects KL ≤ 0.1; the heatmaps validate")
    func gridLoads() throws {
        let run = FileManager.default.temporaryDirectory.appendingPathComponent("ablab-grid-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: run + "/analysis", withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: run) }
        var csv = "checkpoint,layer,position,bypass,induce,kl,addition_norm,baseline_harmful_refusal,baseline_harmless_refusal,prompts_per_label\n"
        // layer 2 position -1 has the lowest bypass but KL 0.5; layer 1 position -2 is the best with KL ≤ 0.1
        for (l, p, b, k) in [(1, -2, -1.0, 0.05), (1, -1, 0.5, 0.01), (2, -2, 0.0, 0.02), (2, -1, -3.0, 0.5)] {
            csv += "m,\(l),\(p),\(b),1.0,\(k),2.0,1.0,-2.0,8\n"
        }
        try csv.write(toFile: run + "/analysis/grid-m.csv", atomically: true, encoding: .utf8)
        let g = try #require(try GridData.loadAll(run: run).first)
        #expect(g.checkpoint == "m" && g.layers == [1, 2] && g.positions == [-2, -1])
        #expect(g.bestBypass?.layer == 1 && g.bestBypass?.position == -2)
        try GridFigures.grid(g).validate(file: "grid")
    }
}
