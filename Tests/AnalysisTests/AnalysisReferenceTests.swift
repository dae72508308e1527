import Foundation
import Testing
import AblabCore
import LinearAlgebra
import Analysis

/// Expected values: numpy / scikit-learn / scipy via notebooks-scripts/fixtures_analysis.py.
@Suite("Analysis against scikit-learn and numpy")
struct AnalysisReferenceTests {
    static let names = ["moderate", "wide", "strong"]

    @Test("PCA spectrum, participation ratio and Δ share match sklearn PCA", arguments: names)
    func spectrum(name: String) throws {
        let c = Fixture.named(name)
        let a = try analyzeLayer(checkpoint: "synthetic", layer: 0, position: -1, data: c.split, options: c.options)
        #expect(a.spectrum.eigenvalues.count == c.rank)
        let top = c.explained_variance_ratio[0]
        // Relative 1e-4 on every component carrying ≥ 1e-3 of the top share; absolute below that.
        for i in 0..<c.rank {
            let ok = close(a.spectrum.explainedVarianceRatio[i], c.explained_variance_ratio[i], rel: 1e-4, floor: 1e-3 * top)
            #expect(ok, "ratio[\(i)] \(a.spectrum.explainedVarianceRatio[i]) vs \(c.explained_variance_ratio[i])")
            #expect(close(a.spectrum.eigenvalues[i], c.explained_variance[i], rel: 1e-4, floor: 1e-3 * c.explained_variance[0]))
            #expect(close(a.spectrum.cumulativeVariance[i], c.cumulative[i]))
            #expect(close(a.meanDiffShare[i], c.mean_diff_share[i], rel: 1e-4, floor: 1e-3))
        }
        #expect(close(a.spectrum.participationRatio, c.participation_ratio))
    }

    @Test("mean-diff and pc1 directions, their cosine and test separation match numpy / sklearn", arguments: names)
    func directions(name: String) throws {
        let c = Fixture.named(name)
        let a = try analyzeLayer(checkpoint: "synthetic", layer: 0, position: -1, data: c.split, options: c.options)
        let md = try #require(a.direction(.meanDiff)), pc1 = try #require(a.direction(.pc1))
        // Orientation is part of the definition (pc1 · Δ > 0), but compare up to sign as well.
        #expect(abs(cosine(md.vector.map(Double.init), c.mean_diff)) > 1 - 1e-6)
        #expect(cosine(pc1.vector.map(Double.init), c.pc1) > 1 - 1e-6)
        #expect(maxRelErr(pc1.vector.map(Double.init), c.pc1, floor: 1e-2) < 1e-4)
        #expect(close(a.cosineMeanDiffPC1, c.cos_md_pc1))
        for (m, dir) in [("mean-diff", md), ("pc1", pc1)] {
            let ref = try #require(c.separation[m])
            #expect(close(dir.testSeparation.cohenD, ref.cohen_d), "\(m) d \(dir.testSeparation.cohenD) vs \(ref.cohen_d)")
            #expect(close(dir.testSeparation.auroc, ref.auroc), "\(m) auroc \(dir.testSeparation.auroc) vs \(ref.auroc)")
        }
    }

    @Test("logistic probes on standardised PC scores match sklearn LogisticRegression(C=1, lbfgs)", arguments: names)
    func probes(name: String) throws {
        let c = Fixture.named(name)
        let a = try analyzeLayer(checkpoint: "synthetic", layer: 0, position: -1, data: c.split, options: c.options)
        #expect(a.probes.map(\.components) == c.probes.map(\.k))
        for (p, ref) in zip(a.probes, c.probes) {
            #expect(p.converged)
            #expect(p.accuracy == ref.accuracy, "k=\(p.components): accuracy \(p.accuracy) vs \(ref.accuracy)")
            let scale = ref.coef.map(abs).max()!
            #expect(maxRelErr(p.coefficients, ref.coef, floor: 1e-2 * scale) < 1e-4, "k=\(p.components): \(p.coefficients) vs \(ref.coef)")
            #expect(close(p.intercept, ref.intercept, rel: 1e-4, floor: 1e-2 * scale))
        }
    }

    @Test("bootstrap and split-half cosines match a numpy re-fit on the same SplitMix64 resamples", arguments: names)
    func stability(name: String) throws {
        let c = Fixture.named(name)
        let a = try analyzeLayer(checkpoint: "synthetic", layer: 0, position: -1, data: c.split, options: c.options)
        for (m, ref) in [(DirectionMethod.meanDiff, c.stability.mean_diff), (.pc1, c.stability.pc1)] {
            let s = try #require(a.direction(m)?.stability)
            #expect(s.replicates == ref.cosines.count)
            #expect(abs(s.meanCosine - ref.mean) < 1e-4, "\(m) mean \(s.meanCosine) vs \(ref.mean)")
            #expect(abs(s.lower - ref.lower) < 1e-4, "\(m) lower \(s.lower) vs \(ref.lower)")
            #expect(abs(s.upper - ref.upper) < 1e-4, "\(m) upper \(s.upper) vs \(ref.upper)")
            #expect(abs(s.splitHalfCosine - ref.split_half) < 1e-4, "\(m) split half \(s.splitHalfCosine) vs \(ref.split_half)")
        }
    }

    @Test("AUROC with ties, Cohen's d and percentiles match sklearn / numpy")
    func ties() {
        let t = Fixture.shared.ties
        #expect(close(Stats.auroc(t.pos, t.neg), t.auroc, rel: 1e-12))
        #expect(close(Stats.cohenD(t.pos, t.neg), t.cohen_d, rel: 1e-12))
        #expect(close(Stats.percentile(t.neg, 2.5), t.percentile_2_5, rel: 1e-12))
        #expect(close(Stats.percentile(t.neg, 97.5), t.percentile_97_5, rel: 1e-12))
    }

    @Test("SplitMix64 reproduces the reference stream and bounded draws")
    func splitMix() {
        let s = Fixture.shared.splitmix64
        var g = SplitMix64(seed: s.seed)
        #expect((0..<s.outputs.count).map { _ in String(g.next()) } == s.outputs)
        var h = SplitMix64(seed: s.bounded_seed)
        #expect((0..<s.bounded_10.count).map { _ in h.bounded(10) } == s.bounded_10)
    }
}

/// Invariants that follow from the mathematics.
@Suite("Analysis invariants")
struct AnalysisInvariantTests {
    @Test("spectrum sums to 1, shares rise to 1, cosines lie in [-1, 1]", arguments: AnalysisReferenceTests.names)
    func invariants(name: String) throws {
        let c = Fixture.named(name)
        let a = try analyzeLayer(checkpoint: "synthetic", layer: 0, position: -1, data: c.split, options: c.options)
        #expect(abs(a.spectrum.explainedVarianceRatio.reduce(0, +) - 1) < 1e-12)
        #expect(abs(a.spectrum.cumulativeVariance.last! - 1) < 1e-12)
        #expect(zip(a.spectrum.eigenvalues, a.spectrum.eigenvalues.dropFirst()).allSatisfy { $0 >= $1 })
        #expect(a.spectrum.participationRatio >= 1 && a.spectrum.participationRatio <= Double(a.spectrum.eigenvalues.count))
        // Δ lies in the span of the centred train rows, so all axes together hold all of it.
        #expect(zip(a.meanDiffShare, a.meanDiffShare.dropFirst()).allSatisfy { $0 <= $1 + 1e-12 })
        #expect(abs(a.meanDiffShare.last! - 1) < 1e-3)
        #expect(a.cosineMeanDiffPC1 >= 0 && a.cosineMeanDiffPC1 <= 1)
        for dir in a.directions {
            #expect(abs(Vec.norm(dir.vector) - 1) < 1e-5)
            let s = try #require(dir.stability)
            for v in [s.meanCosine, s.lower, s.upper, s.splitHalfCosine] { #expect(v >= -1 && v <= 1) }
            #expect(s.lower <= s.upper)
            #expect(dir.testSeparation.auroc >= 0 && dir.testSeparation.auroc <= 1)
        }
    }

    @Test("a strong planted direction is recovered by both methods and is stable")
    func plantedRecovered() throws {
        let c = Fixture.named("strong")
        let a = try analyzeLayer(checkpoint: "synthetic", layer: 0, position: -1, data: c.split, options: c.options)
        for dir in a.directions {
            #expect(cosine(dir.vector.map(Double.init), c.planted) > 0.99, "\(dir.method)")
            #expect(dir.testSeparation.auroc == 1)
            #expect(try #require(dir.stability).lower > 0.99)
        }
    }
}
