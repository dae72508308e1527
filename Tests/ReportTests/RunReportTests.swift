import Foundation
import Plotting
import Testing
@testable import Report

/// Runs pdftoppm (poppler) on a PDF; returns the number of PNG pages written, or nil when the tool is absent.
func rasterise(_ pdf: String, into dir: String, dpi: Int = 40) throws -> Int? {
    let candidates = ["/usr/bin/pdftoppm", "/usr/local/bin/pdftoppm", "/opt/homebrew/bin/pdftoppm"]
    guard let tool = candidates.first(where: { FileManager.default.isExecutableFile(atPath: $0) }) else { return nil }
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    let p = Process()
    p.executableURL = URL(fileURLWithPath: tool)
    p.arguments = ["-r", String(dpi), "-png", pdf, dir + "/page"]
    let err = Pipe()
    p.standardError = err
    try p.run()
    p.waitUntilExit()
    let msg = String(data: err.fileHandleForReading.readDataToEndOfFile(), encoding: .utf8) ?? ""
    #expect(p.terminationStatus == 0, "pdftoppm failed: \(msg)")
    #expect(!msg.lowercased().contains("error"), "pdftoppm reported: \(msg)")
    return try FileManager.default.contentsOfDirectory(atPath: dir).filter { $0.hasSuffix(".png") }.count
}

@Suite(.serialized) struct RunReportTests {
    @Test func fullFixtureRendersEveryFigureAndAReport() throws {
        let fx = try RunFixture()
        defer { if ProcessInfo.processInfo.environment["ABLAB_KEEP_REPORT"] == nil { fx.cleanup() } else { print("kept \(fx.path)") } }
        var o = ReportOptions()
        o.replicates = 200
        let s = try StudyReport.render(run: fx.path, options: o)
        let expected = ["pca_spectrum", "pca_spectrum_heatmap", "separation", "pc_scatter", "layer_cosine_mean-diff", "layer_cosine_pc1",
                        "cross_checkpoint_cka", "cross_checkpoint_cosine", "refusal_rates", "judge_system_heatmap", "judge_kappa",
                        "judge_correlation", "alpha_sweep", "self_judgment"]
        #expect(Set(s.figures) == Set(expected), "figures: \(s.figures)")
        #expect(s.missing.isEmpty, "missing: \(s.missing)")
        for name in expected {
            for ext in ["png", "pdf"] {
                let p = s.figuresDirectory + "/" + name + "." + ext
                let size = (try? FileManager.default.attributesOfItem(atPath: p)[.size] as? Int) ?? 0
                #expect(size > 1000, "\(p) is missing or tiny")
            }
        }
        // title + methods/tables + ~14 figures (2–3 per page) + appendix
        #expect(s.pages >= 8 && s.pages <= 24, "pages: \(s.pages)")
        if let n = try rasterise(s.pdf, into: fx.path + "/pages") { #expect(n == s.pages) }
    }

    @Test func loadersReadTheFixtureFiles() throws {
        let fx = try RunFixture()
        defer { fx.cleanup() }
        let r = StudyReport.load(run: fx.path, options: { var o = ReportOptions(); o.replicates = 0; return o }())
        let m = try #require(r.metrics)
        #expect(m.checkpoints == ["ckpt-a", "ckpt-b"])
        #expect(m.positions == [-2, -1])
        let spec = SpectrumData.from(m, position: -1)
        #expect(spec.checkpoints.map(\.layers) == [[1, 2, 3, 4], [1, 2, 3, 4, 5, 6]])
        for c in spec.checkpoints { for row in c.ratios {
            // explained-variance ratios are non-negative, descending and sum to at most 1
            #expect(row.allSatisfy { $0 >= 0 })
            #expect(zip(row, row.dropFirst()).allSatisfy { $0 >= $1 - 1e-12 })
            #expect(row.reduce(0, +) <= 1 + 1e-9)
        } }
        let cos = LayerCosineData.from(try #require(r.similarity), method: "mean-diff", position: -1)
        // a unit vector's cosine with itself is 1
        for c in cos.checkpoints { for i in c.layers.indices { #expect(abs(c.cosines[i][i] - 1) < 1e-5) } }
        let c = try #require(r.counts)
        #expect(c.judges == fx.judges)
        #expect(c.systems == fx.systems)
        for s in fx.systems {
            #expect(c.row(system: s, label: "harmful", judge: "regex:paper")?.refused == RunFixture.harmfulRefusals(s))
            #expect(c.row(system: s, label: "harmful", judge: "regex:paper")?.total == RunFixture.itemsPerLabel)
        }
        let sc = try #require(r.scatter)
        // default layers: about 1/3, 2/3 and the last of each checkpoint (4 layers: 1, 2, 4; 6 layers: 2, 4, 6)
        #expect(sc.panels.map(\.layer) == [1, 2, 4, 2, 4, 6])
        // test split: prompts with index % 3 == 0 out of 24 per class → 8 each
        #expect(sc.panels.allSatisfy { $0.harmful.count == 8 && $0.harmless.count == 8 })
        // PC1 is oriented towards the harmful mean; at the last layer the harmful shift dominates
        let last = sc.panels[2]
        let mh = last.harmful.map(\.0).reduce(0, +) / 8, mb = last.harmless.map(\.0).reduce(0, +) / 8
        #expect(mh > mb)
        #expect(r.manifest?.study == "Fixture study")
        #expect(r.caches.map(\.checkpoint) == ["ckpt-a", "ckpt-b"])
        #expect(r.generations?.count == 4 * fx.systems.count)
        #expect(r.selfJudgments?.count == 40)
    }

    @Test func missingInputsStillRender() throws {
        var opt = RunFixture.Options()
        opt.withCache = false; opt.withAnalysis = false; opt.withGenerations = false; opt.withSelfJudgment = false; opt.withManifest = false
        let fx = try RunFixture(options: opt)
        defer { fx.cleanup() }
        var o = ReportOptions(); o.replicates = 50
        let s = try StudyReport.render(run: fx.path, options: o)
        #expect(s.figures.contains("refusal_rates"))
        #expect(!s.figures.contains("pca_spectrum"))
        #expect(s.missing["analysis"] != nil && s.missing["generations"] != nil && s.missing["self"] != nil && s.missing["manifest"] != nil)
        #expect(s.pages >= 3 && s.pages <= 12)
        if let n = try rasterise(s.pdf, into: fx.path + "/pages") { #expect(n == s.pages) }
    }

    @Test func emptyFolderAndMalformedFile() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("ablab-report-empty-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try "system,item_id,label,self_verdict,reference_verdict\nm,q1,harmful,MAYBE,REFUSAL\n".write(toFile: dir + "/self_judgment.csv", atomically: true, encoding: .utf8)
        let s = try StudyReport.render(run: dir)
        #expect(s.figures.isEmpty)
        #expect(s.missing["self"]?.contains("MAYBE") == true)
        #expect(s.missing["self"]?.contains("self_judgment.csv:2") == true)
        #expect(s.pages >= 3 && s.pages <= 5)
    }
}

/// The study's own data (notebooks-scripts/data/paper), found from this file's path.
let paperDirectory: String = {
    var url = URL(fileURLWithPath: #filePath)
    for _ in 0..<3 { url.deleteLastPathComponent() }
    return url.appendingPathComponent("notebooks-scripts/data/paper").path
}()

@Suite struct PaperDataTests {
    /// Values printed in the study's published figure (paper_human_vs_selected_judges_pairwise_corr_heatmap_diagonal.pdf,
    /// two decimals), which our correlation heatmap of its 10-question summary must reproduce.
    @Test func judgeCorrelationsMatchTheStudysFigure() throws {
        var o = ReportOptions(); o.paperDirectory = paperDirectory; o.replicates = 0
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("ablab-report-paper-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let r = StudyReport.load(run: dir, options: o)
        let q = try #require(r.paper10q)
        let m = JudgeMatrix.studyCorrelation(q)
        func r2(_ a: String, _ b: String) -> Double {
            let i = m.judges.firstIndex(of: a)!, j = m.judges.firstIndex(of: b)!
            return (m.values[i][j] * 100).rounded() / 100
        }
        let published: [(String, String, Double)] = [
            ("Human 1", "ChatGPT5", 0.98), ("Human 1", "GLM-4", 0.79), ("Human 1", "regex", 0.75), ("Human 1", "Qwen3", 0.39),
            ("Human 1", "SmolLM2", 0.30), ("Human 1", "GPT-oss", -0.08), ("ChatGPT5", "GLM-4", 0.80), ("GLM-4", "regex", 0.82),
            ("regex", "SmolLM2", 0.56), ("Qwen3", "GPT-oss", -0.51), ("SmolLM2", "GPT-oss", -0.79),
        ]
        for (a, b, v) in published { #expect(r2(a, b) == v, "\(a) vs \(b)") }
        let figs = StudyReport.figures(r, options: o)
        #expect(figs.map(\.name) == ["paper_judge_system_heatmap_harmful", "paper_judge_system_heatmap_harmless", "paper_judge_correlation"])
        // the study's published count: ChatGPT5 judged 35 of SmolLM2's 50 harmful answers refusals
        let heat = figs[0].figure.axes[0].series.compactMap { if case .heatmap(let h) = $0 { return h } else { return nil } }[0]
        let row = heat.rowLabels.firstIndex(of: "SmolLM2")!, col = heat.columnLabels.firstIndex(of: "ChatGPT5")!
        #expect(heat.values[row][col] == 35.0 / 50)
        #expect(heat.rowLabels[row + 1] == "SmolLM2-ALB")   // each model is followed by its abliterated copy
    }

    @Test func studyDisplayNamesLineUp() throws {
        let names = try #require(StudyReport.studyDisplayNames(paperDirectory))
        #expect(names["HuggingFaceTB/SmolLM2-1.7B-Instruct"] == "SmolLM2")
        #expect(names["models/locuslab/mix_ift_v4-smollm2-1.7b-score0_only-600B-abliterated"] == "Score 0 - ALB")
        #expect(names.count == 20)
    }
}

/// Word boxes of every page (pdftotext -bbox); nil when poppler is absent.
func wordBoxes(_ pdf: String) throws -> [(page: Int, width: Double, height: Double, word: String, x0: Double, y0: Double, x1: Double, y1: Double)]? {
    guard let tool = ["/usr/bin/pdftotext", "/usr/local/bin/pdftotext", "/opt/homebrew/bin/pdftotext"].first(where: { FileManager.default.isExecutableFile(atPath: $0) }) else { return nil }
    let p = Process()
    p.executableURL = URL(fileURLWithPath: tool)
    p.arguments = ["-bbox", pdf, "-"]
    let out = Pipe()
    p.standardOutput = out
    try p.run()
    let data = out.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    let text = String(decoding: data, as: UTF8.self)
    func attr(_ line: Substring, _ name: String) -> Double {
        guard let r = line.range(of: name + "=\"") else { return .nan }
        return Double(line[r.upperBound...].prefix { $0 != "\"" }) ?? .nan
    }
    var out2: [(page: Int, width: Double, height: Double, word: String, x0: Double, y0: Double, x1: Double, y1: Double)] = []
    var page = 0, w = 0.0, h = 0.0
    for line in text.split(separator: "\n") {
        if line.contains("<page ") { page += 1; w = attr(line, "width"); h = attr(line, "height") }
        else if line.contains("<word ") {
            let word = line.split(separator: ">").dropFirst().first.map { String($0.prefix { $0 != "<" }) } ?? ""
            out2.append((page, w, h, word, attr(line, "xMin"), attr(line, "yMin"), attr(line, "xMax"), attr(line, "yMax")))
        }
    }
    return out2
}

@Suite struct PageLayoutTests {
    /// Many systems and judges (the tables must continue on new pages) and an answer with a 3000-character
    /// word (it must wrap): no word may leave the page (20 pt of paper kept on every side).
    @Test func longTablesContinueAndNothingRunsOffThePage() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("ablab-report-long-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir + "/generations", withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var csv = "item_id,system,label,judge,verdict,score\n"
        for m in 0..<30 {
            for sys in ["org/model-with-a-rather-long-name-\(m)", "models/org/model-with-a-rather-long-name-\(m)-abliterated"] {
                for label in ["harmful", "harmless"] { for i in 0..<6 { for j in 0..<5 {
                    csv += "\(label)-\(i),\(sys),\(label),judge-\(j),\((i + j + m) % 3 == 0 ? "REFUSAL" : "NON-REFUSAL"),\n"
                } } }
            }
        }
        try csv.write(toFile: dir + "/judgments.csv", atomically: true, encoding: .utf8)
        let long = String(repeating: "x", count: 3000)
        for (sys, resp) in [("org/model-with-a-rather-long-name-0", "I can't help with that."),
                            ("models/org/model-with-a-rather-long-name-0-abliterated", "Sure: " + long)] {
            let obj: [String: Any] = ["id": "harmful-0", "label": "harmful", "system": sys, "response": resp, "prompt": "p"]
            try (String(data: try JSONSerialization.data(withJSONObject: obj), encoding: .utf8)! + "\n")
                .write(toFile: dir + "/generations/\(sys.replacingOccurrences(of: "/", with: "_")).jsonl", atomically: true, encoding: .utf8)
        }
        var o = ReportOptions(); o.replicates = 20
        let s = try StudyReport.render(run: dir, options: o)
        #expect(s.missing["judgments"] == nil, "\(s.missing)")
        // 60 systems: the heatmap is split per label; refusal bars pair each model with its copy
        #expect(s.figures.contains("judge_system_heatmap_harmful") && s.figures.contains("judge_system_heatmap_harmless"))
        guard let words = try wordBoxes(s.pdf) else { return }
        #expect(Set(words.map(\.page)).count == s.pages)
        let continued = words.filter { $0.word == "(continued)" }.map(\.page)
        #expect(continued.count >= 2, "the 120-row refusal table should continue on at least two more pages")
        for w in words {
            #expect(w.x0 >= 20 && w.x1 <= w.width - 20 && w.y0 >= 10 && w.y1 <= w.height - 10,
                    "page \(w.page): '\(w.word.prefix(30))' at x \(w.x0)…\(w.x1), y \(w.y0)…\(w.y1) leaves the page")
        }
        // the abliterated copy pairs with its original although it was saved under models/
        let f = try #require(StudyReport.figures(StudyReport.load(run: dir, options: o), options: o).first { $0.name == "refusal_rates" })
        let b = try #require(bars(f.figure.axes[0]))
        #expect(b.categories.count == 30)
        #expect(b.groups[1].values.allSatisfy { $0.isFinite })
    }
}
