import AblabCore
import LinearAlgebra

// Stage module Analysis: refusal directions and their statistics, computed from cached activations.
//
// Everything here is a pure function over `Matrix` (row-major Float, one prompt per row). Directions
// and PCA are fit on the `train` prompts only; separation, probes and similarity are evaluated on the
// `test` prompts; candidate directions are ranked on `validation` prompts (or, without them, on the
// fit prompts), never on `test` prompts. Statistics are accumulated in Double; big products go through OpenBLAS sgemm.

/// Errors from the analysis stage. Each names the site (checkpoint, layer, position) and what to do.
public struct AnalysisError: AblabError, Equatable {
    public var site: String
    public var message: String
    public init(site: String, _ message: String) { self.site = site; self.message = message }
    public var description: String { "analysis of \(site): \(message)" }
}

/// The two ways of turning activations into a refusal direction.
public enum DirectionMethod: String, CaseIterable, Sendable, Codable, Comparable {
    /// Unit vector along mean(harmful) − mean(harmless) of the train prompts.
    case meanDiff = "mean-diff"
    /// First principal component of the pooled, mean-centred train activations, oriented so that
    /// harmful prompts project positive (v · Δ > 0).
    case pc1 = "pc1"

    public static func < (a: DirectionMethod, b: DirectionMethod) -> Bool {
        allCases.firstIndex(of: a)! < allCases.firstIndex(of: b)!
    }
}

/// Activations of one (checkpoint, layer, position): one row per prompt, all with the same width.
public struct ActivationSplit: Sendable {
    public var trainHarmful: Matrix   // [nTrainHarmful, d]
    public var trainHarmless: Matrix  // [nTrainHarmless, d]
    public var testHarmful: Matrix    // [nTestHarmful, d]
    public var testHarmless: Matrix   // [nTestHarmless, d]
    /// Validation prompts (split `validation`): the candidate ranking uses their separation. nil: none
    /// recorded, and the ranking uses the fit (train) prompts' separation instead — never the test prompts'.
    public var validationHarmful: Matrix?   // [nValidationHarmful, d]
    public var validationHarmless: Matrix?  // [nValidationHarmless, d]
    public init(trainHarmful: Matrix, trainHarmless: Matrix, testHarmful: Matrix, testHarmless: Matrix,
                validationHarmful: Matrix? = nil, validationHarmless: Matrix? = nil) {
        self.trainHarmful = trainHarmful; self.trainHarmless = trainHarmless
        self.testHarmful = testHarmful; self.testHarmless = testHarmless
        self.validationHarmful = validationHarmful; self.validationHarmless = validationHarmless
    }
    public var width: Int { trainHarmful.cols }
}

/// Knobs of `analyzeLayer`. The defaults are the study's.
public struct AnalysisOptions: Sendable {
    /// Numbers of leading PCs the linear probe uses (clipped to the PCA rank; duplicates dropped).
    public var probeComponents: [Int] = [1, 2, 4, 8, 16, 32]
    /// Inverse L2 strength of the probe (sklearn's `C`).
    public var probeC: Double = 1
    /// Bootstrap replicates for direction stability (0 turns stability off).
    public var bootstrapReplicates: Int = 200
    /// Seed of the SplitMix64 generator used for bootstrap (seed) and split-half (seed + 1).
    public var seed: UInt64 = 20251002
    public init() {}

    /// The study file's `[analysis]` settings: probes on 1, 2, 4, … ≤ `maxComponents` PCs.
    public init(bootstrap: Int, maxComponents: Int, seed: UInt64? = nil) {
        bootstrapReplicates = max(0, bootstrap)
        var ks: [Int] = []
        var k = 1
        while k <= max(1, maxComponents) { ks.append(k); k *= 2 }
        probeComponents = ks
        if let seed { self.seed = seed }
    }
}
