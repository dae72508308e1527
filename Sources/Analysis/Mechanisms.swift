import ActivationCache
import AblabCore
import Foundation
import LinearAlgebra

// Where the refusal signal lives, from the activation cache alone: which blocks write it (component
// attribution), whether harmfulness and refusal are read at different tokens (Zhao et al. 2025), and
// which layer a cosine criterion picks without generations (COSMIC, Siu et al. 2025). Every reduction
// is in Double, in a fixed order (prompt by prompt, coordinate by coordinate).

/// Mean of the rows `rows` of `x` ([n, d]), in Double. [d]
func rowMean(_ x: Matrix, _ rows: [Int]) -> [Double] {
    var m = [Double](repeating: 0, count: x.cols)
    for r in rows { for j in 0..<x.cols { m[j] += Double(x.data[r * x.cols + j]) } }
    let n = Double(max(rows.count, 1))
    return m.map { $0 / n }
}

func dot(_ a: [Double], _ b: [Double]) -> Double { zip(a, b).reduce(0) { $0 + $1.0 * $1.1 } }
func norm(_ a: [Double]) -> Double { dot(a, a).squareRoot() }
func unit(_ a: [Double]) -> [Double] { let n = norm(a); return n > 0 ? a.map { $0 / n } : a }
func cosine(_ a: [Double], _ b: [Double]) -> Double {
    let n = norm(a) * norm(b)
    return n > 0 ? dot(a, b) / n : .nan
}

/// x · direction for each row of `x` ([n, d]), accumulated in Double in coordinate order. [n]
func projectOnto(_ x: Matrix, _ direction: [Double]) -> [Double] {
    (0..<x.rows).map { r in
        var s = 0.0
        for j in 0..<x.cols { s += Double(x.data[r * x.cols + j]) * direction[j] }
        return s
    }
}

// MARK: component attribution

/// One term of the residual's projection on r̂: the embedding, one block's attention or MLP output, or
/// the residual itself (the sum the terms add up to).
public struct ComponentTerm: Sendable, Equatable {
    public enum Component: String, Sendable, CaseIterable { case embed, attn, mlp, residual }
    public var checkpoint: String
    /// Residual layer of the direction and of the projected residual (entering block `layer`).
    public var layer: Int
    public var position: Int
    /// Block of an attn / mlp term (−1 for embed and residual).
    public var block: Int
    public var component: Component
    /// Mean projection on r̂ of the harmful and harmless prompts, and their difference.
    public var harmful: Double
    public var harmless: Double
    public var difference: Double { harmful - harmless }
    /// The term is one of those that add up to the residual's projection (blocks before `layer`).
    public var inSum: Bool
}

public enum ComponentAttribution {
    public static let csvHeader = "checkpoint,layer,position,block,component,harmful_mean,harmless_mean,difference,in_sum"

    /// Per prompt, the projection on `direction` (made unit) of the embedding (residual layer 0), of
    /// each block's `hook_attn_out` and `hook_mlp_out` (every block with both hooks cached), and of the
    /// residual entering block `layer`, at relative `position`, for file rows `rows`. In a pre-norm
    /// transformer the residual entering block l is the embedding plus the attention and MLP outputs of
    /// blocks 0…l−1, so `embed + Σ_{b<layer} (attn[b] + mlp[b]) = residual` for every prompt.
    public static func projections(file: ActivationFile, layer: Int, position: Int, direction: [Float], rows: [Int])
        throws -> (embed: [Double], attn: [Int: [Double]], mlp: [Int: [Double]], residual: [Double]) {
        let h = file.header
        guard (1...h.nLayers).contains(layer) else {
            throw AnalysisError(site: file.path, "component attribution: layer \(layer) is out of range 1…\(h.nLayers)")
        }
        let r = unit(direction.map(Double.init))
        let embed = projectOnto(try file.residual(layer: 0, position: position, prompts: rows), r)
        let residual = projectOnto(try file.residual(layer: layer, position: position, prompts: rows), r)
        var attn: [Int: [Double]] = [:], mlp: [Int: [Double]] = [:]
        for b in 0..<h.nLayers {
            let a = "blocks.\(b).hook_attn_out", m = "blocks.\(b).hook_mlp_out"
            guard file.hookNames.contains(a), file.hookNames.contains(m), h.hookPositions.contains(Int32(position)) else {
                if b < layer {
                    throw AnalysisError(site: file.path, "component attribution at layer \(layer), position \(position) needs \(a) and \(m) at that position (cached hooks: \(file.hookNames.count), hook positions \(h.hookPositions)); record with [record] hooks = [\"blocks.*.hook_attn_out\", \"blocks.*.hook_mlp_out\"]")
                }
                continue
            }
            attn[b] = projectOnto(try file.hook(a, position: position, prompts: rows), r)
            mlp[b] = projectOnto(try file.hook(m, position: position, prompts: rows), r)
        }
        return (embed, attn, mlp, residual)
    }

    /// Class means of every term (harmful rows, harmless rows of the file), for the direction at
    /// (`layer`, `position`).
    public static func terms(file: ActivationFile, checkpoint: String, layer: Int, position: Int, direction: [Float],
                             harmful: [Int], harmless: [Int]) throws -> [ComponentTerm] {
        let ph = try projections(file: file, layer: layer, position: position, direction: direction, rows: harmful)
        let pb = try projections(file: file, layer: layer, position: position, direction: direction, rows: harmless)
        func term(_ block: Int, _ c: ComponentTerm.Component, _ a: [Double], _ b: [Double], _ inSum: Bool) -> ComponentTerm {
            ComponentTerm(checkpoint: checkpoint, layer: layer, position: position, block: block, component: c,
                          harmful: Stats.mean(a), harmless: Stats.mean(b), inSum: inSum)
        }
        var out = [term(-1, .embed, ph.embed, pb.embed, true)]
        for b in ph.attn.keys.sorted() {
            out.append(term(b, .attn, ph.attn[b]!, pb.attn[b]!, b < layer))
            out.append(term(b, .mlp, ph.mlp[b]!, pb.mlp[b]!, b < layer))
        }
        out.append(term(-1, .residual, ph.residual, pb.residual, false))
        return out
    }

    public static func csv(_ terms: [ComponentTerm]) -> String {
        var s = csvHeader + "\n"
        for t in terms {
            s += [CSV.escape(t.checkpoint), String(t.layer), String(t.position), String(t.block), t.component.rawValue,
                  fmt(t.harmful), fmt(t.harmless), fmt(t.difference), t.inSum ? "true" : "false"].joined(separator: ",") + "\n"
        }
        return s
    }
}

func fmt(_ x: Double) -> String { x.isNaN ? "nan" : String(format: "%.9g", x) }

// MARK: harmfulness vs refusal

/// One layer: the mean-difference direction at the instruction's last token (harmfulness, Zhao et al.
/// 2025) and at a post-instruction position (refusal), both fit on the fit prompts; their cosine and how
/// well each separates the test prompts at its own token.
public struct HarmfulnessRefusalRow: Sendable, Equatable {
    public var checkpoint: String
    public var layer: Int
    public var instructionPosition: Int
    public var refusalPosition: Int
    public var cosine: Double
    public var harmfulnessAUROC: Double
    public var refusalAUROC: Double
    public var harmfulnessD: Double
    public var refusalD: Double
}

public enum HarmfulnessRefusal {
    public static let csvHeader = "checkpoint,layer,instruction_position,refusal_position,cosine,harmfulness_auroc,refusal_auroc,harmfulness_cohen_d,refusal_cohen_d"

    /// Every residual layer 1…L. Directions from `fit` rows, separation on `test` rows (never the other way).
    public static func rows(file: ActivationFile, checkpoint: String, refusalPosition: Int,
                            fit: (harmful: [Int], harmless: [Int]), test: (harmful: [Int], harmless: [Int])) throws -> [HarmfulnessRefusalRow] {
        let h = file.header
        guard let inst = h.positions(role: .instructionLast).first else {
            throw AnalysisError(site: file.path, "harmfulness vs refusal needs the instruction's last token in the cache; record with [record] positions = \"auto+instruction\"")
        }
        return try (1...h.nLayers).map { l in
            func direction(_ p: Int) throws -> (dir: [Double], x: Matrix) {
                let x = try file.residual(layer: l, position: p)
                let d = zip(rowMean(x, fit.harmful), rowMean(x, fit.harmless)).map { $0 - $1 }
                return (unit(d), x)
            }
            let hv = try direction(inst), rv = try direction(refusalPosition)
            func sep(_ v: (dir: [Double], x: Matrix)) -> Separation {
                let s = projectOnto(v.x, v.dir)
                return Stats.separation(test.harmful.map { s[$0] }, test.harmless.map { s[$0] })
            }
            let hs = sep(hv), rs = sep(rv)
            return HarmfulnessRefusalRow(checkpoint: checkpoint, layer: l, instructionPosition: inst, refusalPosition: refusalPosition,
                                         cosine: cosine(hv.dir, rv.dir), harmfulnessAUROC: hs.auroc, refusalAUROC: rs.auroc,
                                         harmfulnessD: hs.cohenD, refusalD: rs.cohenD)
        }
    }

    public static func csv(_ rows: [HarmfulnessRefusalRow]) -> String {
        var s = csvHeader + "\n"
        for r in rows {
            s += [CSV.escape(r.checkpoint), String(r.layer), String(r.instructionPosition), String(r.refusalPosition),
                  fmt(r.cosine), fmt(r.harmfulnessAUROC), fmt(r.refusalAUROC), fmt(r.harmfulnessD), fmt(r.refusalD)].joined(separator: ",") + "\n"
        }
        return s
    }
}

// MARK: COSMIC

/// COSMIC's score of one candidate direction (Siu et al. 2025, "COSMIC: Generalized Refusal Direction
/// Identification in LLM Activations"), computed from cached activations.
public struct CosmicScore: Sendable, Equatable {
    public var checkpoint: String
    public var layer: Int
    public var position: Int
    /// cos(mean of the harmful activations with r̂ ablated, mean harmless activation) over the evaluation layers.
    public var ablation: Double
    /// cos(mean of the harmless activations with r added from `layer` on, mean harmful activation).
    public var addition: Double
    public var score: Double { ablation + addition }
    /// Outside the last 20 % of layers (the filter COSMIC shares with Arditi et al.).
    public var eligible: Bool
    public var chosen: Bool
}

/// COSMIC as a cache-only selection criterion.
///
/// For a candidate r = μ⁺ − μ⁻ (mean of the harmful minus the harmless fit activations at residual layer l,
/// position p), let L_low be the ⌈10 %⌉ of residual layers 1…L where the harmful and harmless fit means at
/// the last token are least similar (lowest cosine), and for the scoring prompts let
///   M⁺ = mean over harmful scoring prompts n and j ∈ L_low of h_{j,n},   M⁻ likewise for harmless ones,
///   b⁺ = M⁺ / ‖M⁺‖,  b⁻ = M⁻ / ‖M⁻‖ (the paper's baseline vectors, last token).
/// Then (the paper's S_ablate and S_add, summed to rank):
///   ablation(l, p) = cos(M⁺ − (M⁺ · r̂) r̂, b⁻)          (directional ablation removes r̂ at every layer)
///   addition(l, p) = cos(M⁻ + f_l r, b⁺),  f_l = |{j ∈ L_low : j ≥ l}| / |L_low|  (r is added entering block l)
/// The paper runs the intervened model forward and reads the layers L_low; from the cache the intervention
/// is applied to the recorded activations directly (first order: what later blocks do differently is not
/// seen). The KL filter of the paper needs the model and is left to the model-based selection.
public enum Cosmic {
    public static let csvHeader = "checkpoint,layer,position,ablation,addition,score,eligible,chosen,evaluation_layers"

    /// `residual(l, p)` returns the [N, d] activations of residual layer l at relative position p (rows
    /// are prompt indices into the row lists). `positions` are the candidate positions; −1 must be cached.
    public static func scores(checkpoint: String, nLayers: Int, positions: [Int], residual: (Int, Int) throws -> Matrix,
                              fit: (harmful: [Int], harmless: [Int]), score: (harmful: [Int], harmless: [Int]),
                              lowFraction: Double = 0.1, lastLayerFraction: Double = 0.2) throws -> (lowLayers: [Int], scores: [CosmicScore]) {
        let layers = Array(1...nLayers)
        var last: [Int: Matrix] = [:]
        for l in layers { last[l] = try residual(l, -1) }
        // L_low: lowest cosine between the class means (fit prompts), ties by layer.
        let sims = layers.map { l in (l, cosine(rowMean(last[l]!, fit.harmful), rowMean(last[l]!, fit.harmless))) }
        let k = max(1, Int((lowFraction * Double(nLayers)).rounded(.up)))
        let low = sims.sorted { $0.1 != $1.1 ? $0.1 < $1.1 : $0.0 < $1.0 }.prefix(k).map(\.0).sorted()
        func pooled(_ rows: [Int]) -> [Double] {
            var m = [Double](repeating: 0, count: last[low[0]]!.cols)
            for j in low { let v = rowMean(last[j]!, rows); for i in m.indices { m[i] += v[i] } }
            return m.map { $0 / Double(low.count) }
        }
        let mPlus = pooled(score.harmful), mMinus = pooled(score.harmless)
        let bPlus = unit(mPlus), bMinus = unit(mMinus)
        var out: [CosmicScore] = []
        for l in layers {
            let f = Double(low.filter { $0 >= l }.count) / Double(low.count)
            for p in positions {
                let x = p == -1 ? last[l]! : try residual(l, p)
                let r = zip(rowMean(x, fit.harmful), rowMean(x, fit.harmless)).map { $0 - $1 }
                let rh = unit(r)
                let c = dot(mPlus, rh)
                let ablated = zip(mPlus, rh).map { $0 - c * $1 }
                let added = zip(mMinus, r).map { $0 + f * $1 }
                out.append(CosmicScore(checkpoint: checkpoint, layer: l, position: p, ablation: dot(unit(ablated), bMinus),
                                       addition: dot(unit(added), bPlus),
                                       eligible: Double(l) < (1 - lastLayerFraction) * Double(nLayers), chosen: false))
            }
        }
        if let best = out.indices.filter({ out[$0].eligible && out[$0].score.isFinite }).max(by: { out[$0].score < out[$1].score }) {
            out[best].chosen = true
        }
        return (low, out)
    }

    public static func csv(_ scores: [CosmicScore], lowLayers: [String: [Int]]) -> String {
        var s = csvHeader + "\n"
        for r in scores {
            s += [CSV.escape(r.checkpoint), String(r.layer), String(r.position), fmt(r.ablation), fmt(r.addition), fmt(r.score),
                  r.eligible ? "true" : "false", r.chosen ? "true" : "false",
                  (lowLayers[r.checkpoint] ?? []).map(String.init).joined(separator: " ")].joined(separator: ",") + "\n"
        }
        return s
    }
}
