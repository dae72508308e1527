import Foundation

/// Identifies one candidate refusal direction.
public struct CandidateKey: Hashable, Sendable, Codable, CustomStringConvertible {
    public var checkpoint: String
    public var layer: Int
    public var position: Int
    public var method: DirectionMethod
    public init(checkpoint: String, layer: Int, position: Int, method: DirectionMethod) {
        self.checkpoint = checkpoint; self.layer = layer; self.position = position; self.method = method
    }
    public var description: String { "\(checkpoint) layer \(layer) position \(position) \(method.rawValue)" }
}

/// A candidate direction with its cache-only metrics.
public struct Candidate: Sendable {
    public var key: CandidateKey
    /// Number of layers of the checkpoint's model (for the last-20 % rule).
    public var layerCount: Int
    /// The direction itself (unit). [d]
    public var vector: [Float]
    /// Separation of the projection score on the ranking prompts (validation, else fit; never test).
    public var cohenD: Double
    public var auroc: Double
    /// Which prompts `cohenD` and `auroc` come from.
    public var rankedOn: RankingSet = .validation
    /// Bootstrap 2.5th percentile of the cosine to the full-data direction (nil: not computed).
    public var stabilityLower: Double?
    public var splitHalfCosine: Double?
    public init(key: CandidateKey, layerCount: Int, vector: [Float], cohenD: Double, auroc: Double,
                stabilityLower: Double?, splitHalfCosine: Double?, rankedOn: RankingSet = .validation) {
        self.key = key; self.layerCount = layerCount; self.vector = vector; self.cohenD = cohenD; self.auroc = auroc
        self.stabilityLower = stabilityLower; self.splitHalfCosine = splitHalfCosine; self.rankedOn = rankedOn
    }
}

/// Scores that need the model (computed later by the abliteration / judging stages).
public struct ModelScores: Sendable, Equatable {
    /// Refusal score on harmful prompts with the direction ablated (lower is better).
    public var bypass: Double?
    /// Refusal score on harmless prompts with the direction added (higher is better).
    public var induce: Double?
    /// KL divergence of next-token distributions on harmless prompts after ablation (lower is better).
    public var kl: Double?
    public init(bypass: Double? = nil, induce: Double? = nil, kl: Double? = nil) {
        self.bypass = bypass; self.induce = induce; self.kl = kl
    }
}

/// Thresholds of the candidate selection.
public struct RankingRule: Sendable {
    /// Layers with l ≥ (1 − fraction) · layerCount are excluded (0.2: the last 20 %; with 30 layers
    /// layers 24…29, with 24 layers 20…23).
    public var lastLayerFraction: Double = 0.2
    /// Minimum bootstrap lower bound of the cosine to the full-data direction.
    public var minStability: Double = 0.9
    /// Maximum KL (model-based; as in Arditi et al. 2024).
    public var maxKL: Double = 0.1
    /// Require induce > 0 when an induce score is present.
    public var requireInduce: Bool = true
    public init() {}
}

/// A candidate after ranking: `rank` is 1-based among the eligible ones, nil when excluded.
public struct RankedCandidate: Sendable {
    public var candidate: Candidate
    public var scores: ModelScores?
    public var rank: Int?
    /// Why the candidate was excluded (empty when eligible).
    public var excludedBecause: [String]
}

public enum CandidateRanking {
    /// Both directions of every analysed site as candidates. `layerCounts[checkpoint]` is the
    /// model's layer count (defaults to 1 + the largest analysed layer).
    public static func candidates(from analyses: [LayerAnalysis], layerCounts: [String: Int] = [:]) -> [Candidate] {
        var maxLayer: [String: Int] = [:]
        for a in analyses { maxLayer[a.checkpoint] = max(maxLayer[a.checkpoint] ?? 0, a.layer) }
        return analyses.flatMap { a in
            a.directions.map { d in
                Candidate(key: CandidateKey(checkpoint: a.checkpoint, layer: a.layer, position: a.position, method: d.method),
                          layerCount: layerCounts[a.checkpoint] ?? (maxLayer[a.checkpoint]! + 1), vector: d.vector,
                          cohenD: d.rankingSeparation.cohenD, auroc: d.rankingSeparation.auroc,
                          stabilityLower: d.stability?.lower, splitHalfCosine: d.stability?.splitHalfCosine,
                          rankedOn: d.rankedOn)
            }
        }
    }

    /// Ranks candidates (all checkpoints together; use `best(_:)` for one per checkpoint).
    ///
    /// Exclusion: a layer in the last `lastLayerFraction` of the model; a bootstrap lower bound below
    /// `minStability`; a NaN separation; and, for candidates with model scores, KL > `maxKL` or
    /// induce ≤ 0. Order: candidates with a bypass score first, by bypass ascending (Arditi et al.
    /// 2024); then the others by the cache-only proxy: Cohen's d on the ranking prompts (validation, else
    /// fit — never test) descending, then AUROC, then
    /// stability, then (checkpoint, layer, position, method) so the order is total and deterministic.
    public static func rank(_ candidates: [Candidate], modelScores: [CandidateKey: ModelScores] = [:],
                            rule: RankingRule = RankingRule()) -> [RankedCandidate] {
        var ranked = candidates.map { c -> RankedCandidate in
            var why: [String] = []
            if Double(c.key.layer) >= (1 - rule.lastLayerFraction) * Double(c.layerCount) {
                why.append("layer \(c.key.layer) is in the last \(Int((rule.lastLayerFraction * 100).rounded())) % of \(c.layerCount) layers")
            }
            if let s = c.stabilityLower, !(s >= rule.minStability) {
                why.append("bootstrap cosine lower bound \(fmt(s)) < \(fmt(rule.minStability))")
            }
            if c.cohenD.isNaN || c.auroc.isNaN { why.append("separation is undefined") }
            let ms = modelScores[c.key]
            if let kl = ms?.kl, !(kl <= rule.maxKL) { why.append("KL \(fmt(kl)) > \(fmt(rule.maxKL))") }
            if rule.requireInduce, let ind = ms?.induce, !(ind > 0) { why.append("induce score \(fmt(ind)) ≤ 0") }
            return RankedCandidate(candidate: c, scores: ms, rank: nil, excludedBecause: why)
        }
        let order = ranked.indices.sorted { before(ranked[$0], ranked[$1]) }
        ranked = order.map { ranked[$0] }
        var r = 0
        for i in ranked.indices where ranked[i].excludedBecause.isEmpty { r += 1; ranked[i].rank = r }
        // Eligible first (in rank order), then the excluded in the same order.
        return ranked.filter { $0.rank != nil } + ranked.filter { $0.rank == nil }
    }

    /// The top-ranked eligible candidate of every checkpoint.
    public static func best(_ ranked: [RankedCandidate]) -> [String: RankedCandidate] {
        var out: [String: RankedCandidate] = [:]
        for r in ranked where r.rank != nil && out[r.candidate.key.checkpoint] == nil { out[r.candidate.key.checkpoint] = r }
        return out
    }

    static func before(_ a: RankedCandidate, _ b: RankedCandidate) -> Bool {
        let ba = a.scores?.bypass, bb = b.scores?.bypass
        switch (ba, bb) {
        case let (x?, y?) where x != y: return x < y
        case (.some, nil): return true
        case (nil, .some): return false
        default: break
        }
        let ca = a.candidate, cb = b.candidate
        if key(ca.cohenD) != key(cb.cohenD) { return key(ca.cohenD) > key(cb.cohenD) }
        if key(ca.auroc) != key(cb.auroc) { return key(ca.auroc) > key(cb.auroc) }
        let sa = key(ca.stabilityLower ?? -2), sb = key(cb.stabilityLower ?? -2)
        if sa != sb { return sa > sb }
        let ka = ca.key, kb = cb.key
        if ka.checkpoint != kb.checkpoint { return ka.checkpoint < kb.checkpoint }
        if ka.layer != kb.layer { return ka.layer < kb.layer }
        if ka.position != kb.position { return ka.position < kb.position }
        return ka.method < kb.method
    }

    /// NaN sorts last.
    static func key(_ x: Double) -> Double { x.isNaN ? -.infinity : x }
    static func fmt(_ x: Double) -> String { String(format: "%.3g", x) }
}
