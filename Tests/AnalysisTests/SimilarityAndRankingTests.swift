import Foundation
import Testing
import LinearAlgebra
import AblabCore
import Analysis

@Suite("Similarity")
struct SimilarityTests {
    @Test("linear CKA matches numpy (both the feature and the Gram form)", arguments: [false, true])
    func ckaReference(useGram: Bool) throws {
        let f = Fixture.shared.cka
        let cka = try Similarity.linearCKA(matrix(f.x), matrix(f.y), useGram: useGram)
        #expect(close(cka, f.cka), "\(cka) vs \(f.cka)")
        #expect(close(try Similarity.linearCKA(matrix(f.x), matrix(f.y)), f.cka))
    }

    struct DebiasedCase: Decodable, Sendable, CustomTestStringConvertible {
        var name: String; var x: [[Double]]; var y: [[Double]]; var debiased: Double; var linear: Double
        var testDescription: String { name }
    }
    struct DebiasedFixture: Decodable { var cases: [DebiasedCase] }
    static let debiased: [DebiasedCase] = {
        guard let url = Bundle.module.url(forResource: "cka_debiased", withExtension: "json", subdirectory: "Fixtures"),
              let d = try? Data(contentsOf: url) else { return [] }
        return (try? JSONDecoder().decode(DebiasedFixture.self, from: d).cases) ?? []
    }()

    @Test("debiased CKA (unbiased HSIC) matches numpy; linear CKA is biased upward with few prompts", arguments: debiased)
    func debiasedCKA(c: DebiasedCase) throws {
        let x = matrix(c.x), y = matrix(c.y)
        let got = try Similarity.debiasedCKA(x, y)
        #expect(close(got, c.debiased, rel: 1e-4, floor: 1e-3), "\(got) vs \(c.debiased)")
        #expect(close(try Similarity.linearCKA(x, y), c.linear, rel: 1e-4))
        if c.name == "independent_wide" {
            // 12 prompts, 40 and 30 dimensions, no shared signal: linear CKA 0.75, debiased ≈ 0, and the
            // permutation baseline is as large as the estimate itself.
            #expect(c.linear > 0.5 && abs(c.debiased) < 0.15)
            let base = try Similarity.debiasedCKAPermutationBaseline(x, y, permutations: 50, seed: 3)
            #expect(abs(base.mean) < 0.1 && base.p95 > got)
        }
        if c.name == "related" {
            let base = try Similarity.debiasedCKAPermutationBaseline(x, y, permutations: 50, seed: 3)
            #expect(base.p95 < c.debiased - 0.3)
        }
    }

    @Test("the permutation baseline is the debiased CKA of y with its rows shuffled")
    func permutationIsShuffledRows() throws {
        guard let c = Self.debiased.first(where: { $0.name == "related" }) else { Issue.record("fixture missing"); return }
        let x = matrix(c.x), y = matrix(c.y)
        var rng = SplitMix64(seed: 9)
        var perm = Array(0..<y.rows)
        rng.shuffle(&perm)
        let shuffled = Matrix(perm.map { i in (0..<y.cols).map { y[i, $0] } })
        let one = try Similarity.debiasedCKAPermutationBaseline(x, y, permutations: 1, seed: 9)
        let direct = try Similarity.debiasedCKA(x, shuffled)
        #expect(abs(one.mean - direct) < 1e-5 && one.mean == one.p95) // Float Grams, other summation order
        let small = try Similarity.debiasedCKA(matrix(Array(c.x.prefix(3))), matrix(Array(c.y.prefix(3))))
        #expect(small.isNaN) // n < 4
    }

    @Test("CKA is 1 under orthogonal maps and isotropic scaling, and symmetric")
    func ckaInvariance() throws {
        let f = Fixture.shared.cka
        let x = matrix(f.x), y = matrix(f.y)
        // A Householder reflection H = I − 2 v vᵀ / vᵀv is orthogonal.
        let d = x.cols
        let v = (0..<d).map { Float(($0 * 7 % 5) - 2) + 0.5 }
        let vv = Vec.dot(v, v)
        var h = Matrix.identity(d)
        for i in 0..<d { for j in 0..<d { h[i, j] -= 2 * v[i] * v[j] / vv } }
        let xh = try matmul(x, h)
        var x3 = x; x3.data = x3.data.map { 3 * $0 }
        #expect(abs(try Similarity.linearCKA(x, xh) - 1) < 1e-5)
        #expect(abs(try Similarity.linearCKA(x, x3) - 1) < 1e-5)
        #expect(abs(try Similarity.linearCKA(x, y) - (try Similarity.linearCKA(y, x))) < 1e-6)
    }

    @Test("Pearson correlation of projection scores across widths matches scipy")
    func scoreCorrelation() throws {
        let f = Fixture.shared.cka
        let x = matrix(f.x), y = matrix(f.y)
        let na = f.harmful_rows
        let yh = Matrix(rows: na, cols: y.cols, data: Array(y.data[0..<(na * y.cols)]))
        let yb = Matrix(rows: y.rows - na, cols: y.cols, data: Array(y.data[(na * y.cols)...]))
        let dy = Vec.normalized(Vec.sub(yh.columnMeans(), yb.columnMeans()))
        let dx = Fixture.named("moderate").mean_diff.map { Float($0) }
        let r = try Similarity.scoreCorrelation(x: x, dx: dx, y: y, dy: dy)
        #expect(close(r, f.pearson_scores), "\(r) vs \(f.pearson_scores)")
    }

    @Test("cosine matrix is symmetric with a unit diagonal and entries in [-1, 1]")
    func cosineMatrix() {
        let c = Fixture.named("moderate")
        let vs = [c.mean_diff, c.pc1, c.planted, c.components[1]].map { $0.map { Float($0) } }
        let m = Similarity.cosineMatrix(vs)
        for i in 0..<4 {
            #expect(abs(m[i][i] - 1) < 1e-6)
            for j in 0..<4 { #expect(m[i][j] == m[j][i]); #expect(m[i][j] >= -1 && m[i][j] <= 1) }
        }
        #expect(close(m[0][1], c.cos_md_pc1, rel: 1e-5))
        #expect(abs(m[1][3]) < 1e-5) // PCs are orthogonal
    }

    @Test("relative-depth layer mapping", arguments: [
        (0, 30, 24, 0), (29, 30, 24, 23), (15, 30, 24, 12), (14, 30, 24, 11), (12, 24, 30, 15), (5, 24, 24, 5), (0, 1, 5, 0),
    ])
    func depthMapping(l: Int, from: Int, to: Int, expected: Int) {
        // 15 · 23 / 29 = 11.90 → 12; 14 · 23 / 29 = 11.10 → 11; 12 · 29 / 23 = 15.13 → 15.
        #expect(Similarity.mappedLayer(l, from: from, to: to) == expected)
    }

    @Test("cross-checkpoint cosines use the mapped layer and refuse different widths")
    func crossCheckpoint() throws {
        let a: [[Float]] = [[1, 0], [0, 1], [1, 1]]
        let b: [[Float]] = [[1, 0], [0, 1], [1, 0], [0, 1], [-1, -1]]
        let pairs = try Similarity.crossCheckpointCosines(a, b)
        #expect(pairs.map(\.layerB) == [0, 2, 4])
        #expect(abs(pairs[0].cosine - 1) < 1e-6 && abs(pairs[1].cosine) < 1e-6 && abs(pairs[2].cosine + 1) < 1e-6)
        #expect(throws: AnalysisError.self) { try Similarity.crossCheckpointCosines(a, [[1, 0, 0]]) }
    }
}

@Suite("Candidates, leakage and tidy CSV")
struct CandidateTests {
    func cand(_ ckpt: String, _ layer: Int, _ d: Double, stab: Double? = 0.95, layers: Int = 10,
              method: DirectionMethod = .meanDiff) -> Candidate {
        Candidate(key: CandidateKey(checkpoint: ckpt, layer: layer, position: -1, method: method), layerCount: layers,
                  vector: [1, 0], cohenD: d, auroc: 0.9, stabilityLower: stab, splitHalfCosine: 0.9)
    }

    @Test("cache-only ranking: last 20 % of layers and unstable directions are excluded, then by Cohen's d")
    func proxyRanking() {
        let cs = [cand("a", 2, 1.0), cand("a", 5, 3.0), cand("a", 8, 9.0) /* layer 8 ≥ 0.8 · 10 */,
                  cand("a", 7, 5.0, stab: 0.5), cand("a", 7, 2.0, method: .pc1), cand("b", 3, 4.0)]
        let r = CandidateRanking.rank(cs)
        let eligible = r.filter { $0.rank != nil }
        #expect(eligible.map { "\($0.candidate.key.checkpoint)\($0.candidate.key.layer)" } == ["b3", "a5", "a7", "a2"])
        #expect(eligible.map(\.rank) == [1, 2, 3, 4])
        let excluded = r.filter { $0.rank == nil }
        #expect(excluded.count == 2)
        #expect(excluded.contains { $0.candidate.key.layer == 8 && $0.excludedBecause.first!.contains("last 20 %") })
        #expect(excluded.contains { $0.candidate.key.layer == 7 && $0.excludedBecause.first!.contains("bootstrap") })
        let best = CandidateRanking.best(r)
        #expect(best["a"]?.candidate.key.layer == 5 && best["b"]?.candidate.key.layer == 3)
    }

    @Test("model scores: KL and induce filter, bypass orders, unscored candidates follow")
    func modelRanking() {
        let cs = [cand("a", 1, 1.0), cand("a", 2, 2.0), cand("a", 3, 3.0), cand("a", 4, 4.0), cand("a", 5, 5.0)]
        let k = { (l: Int) in CandidateKey(checkpoint: "a", layer: l, position: -1, method: .meanDiff) }
        let scores: [CandidateKey: ModelScores] = [
            k(1): ModelScores(bypass: 0.2, induce: 1, kl: 0.05),
            k(2): ModelScores(bypass: 0.1, induce: 1, kl: 0.5),  // KL too high
            k(3): ModelScores(bypass: 0.3, induce: 1, kl: 0.01),
            k(4): ModelScores(bypass: 0.0, induce: -1, kl: 0.01), // does not induce refusal
        ]
        let r = CandidateRanking.rank(cs, modelScores: scores)
        #expect(r.filter { $0.rank != nil }.map(\.candidate.key.layer) == [1, 3, 5])
        #expect(r.first { $0.candidate.key.layer == 2 }!.excludedBecause.first!.hasPrefix("KL"))
        #expect(r.first { $0.candidate.key.layer == 4 }!.excludedBecause.first!.hasPrefix("induce"))
    }

    @Test("leakage guard reports overlapping ids and stays quiet otherwise")
    func leakage() {
        let bad = LeakageGuard.check(trainIDs: ["h1", "h2", "b1"], testIDs: ["h3", "b1", "h2"], context: "test")
        #expect(bad.leaked && bad.overlapping == ["b1", "h2"])
        let ok = LeakageGuard.check(trainIDs: ["h1"], testIDs: ["h2"], context: "test")
        #expect(!ok.leaked && ok.overlapping.isEmpty)
    }

    @Test("tidy CSV: header, one parsable row per metric, leakage flag, quoting")
    func tidyCSV() throws {
        let c = Fixture.named("moderate")
        var o = c.options; o.bootstrapReplicates = 10
        let a = try analyzeLayer(checkpoint: "ck,pt \"1\"", layer: 3, position: -2, data: c.split, options: o, leakage: true)
        let rows = TidyCSV.rows(a, spectrumComponents: 5)
        let text = TidyCSV.render(rows)
        let parsed = try CSV.parse(text, file: "tidy.csv")
        #expect(parsed.first?.fields == ["checkpoint", "layer", "position", "method", "metric", "value"])
        #expect(parsed.count == rows.count + 1)
        for (p, r) in zip(parsed.dropFirst(), rows) {
            #expect(p.fields.count == 6)
            #expect(p.fields[0] == "ck,pt \"1\"" && p.fields[1] == "3" && p.fields[2] == "-2")
            #expect(p.fields[3] == r.method && p.fields[4] == r.metric)
            let v = try #require(Double(p.fields[5]))
            #expect(v == r.value || (v.isNaN && r.value.isNaN))
        }
        let metrics = Set(rows.map { "\($0.method)/\($0.metric)" })
        for m in ["site/leakage", "pca/explained_variance_ratio_5", "pca/participation_ratio", "mean-diff/auroc", "pc1/cohen_d",
                  "pc1/bootstrap_cosine_lower", "probe/probe_accuracy_16"] { #expect(metrics.contains(m), "\(m)") }
        #expect(!metrics.contains("pca/explained_variance_ratio_6"))
        #expect(rows.first { $0.metric == "leakage" }?.value == 1)
        #expect(rows.filter { $0.metric == "auroc" && $0.method == "mean-diff" }.first?.value == c.separation["mean-diff"]!.auroc)
    }

    @Test("bad input throws a typed error naming the site")
    func badInput() {
        let c = Fixture.named("moderate")
        var s = c.split
        s.testHarmless = Matrix(rows: 3, cols: 5)
        #expect(throws: AnalysisError.self) { try analyzeLayer(checkpoint: "x", layer: 1, position: -1, data: s) }
        var nan = c.split
        nan.trainHarmful[0, 0] = .nan
        do {
            _ = try analyzeLayer(checkpoint: "x", layer: 1, position: -1, data: nan)
            Issue.record("NaN accepted")
        } catch let e as AnalysisError {
            #expect(e.description.contains("x layer 1 position -1") && e.description.contains("NaN"))
        } catch { Issue.record("untyped error \(error)") }
    }
}
