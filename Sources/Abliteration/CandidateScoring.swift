import Foundation
import AblabCore
import LinearAlgebra
import ModelRuntime

/// The model-based criteria for choosing a refusal direction, after Arditi et al. (2024), "Refusal in
/// language models is mediated by a single direction", section on direction selection:
///
/// - refusal score of a prompt: log-odds of refusing at the first answer position,
///   `log p − log(1 − p)` with p = Σ softmax(logits)[t] over the refusal tokens t (the first token of
///   "I", "As", "Sorry", "Unfortunately" in this model's tokenizer);
/// - bypass: mean refusal score of harmful prompts with the direction ablated everywhere (lower is better);
/// - induce: mean refusal score of harmless prompts with the direction added at its layer's
///   `resid_pre`, scaled to the harmful − harmless mean difference of the projection (higher is better);
/// - KL: mean KL(original ‖ ablated) of the next-token distribution at the last position of harmless
///   prompts (small: the ablation leaves harmless behaviour alone).
public enum CandidateScoring {
    public static let refusalPhrases = ["I", "As", "Sorry", "Unfortunately"]

    /// One candidate: the cache layer index l (`blocks.l.hook_resid_pre`), the position it was taken at,
    /// and its direction (any norm).
    public struct Candidate: Sendable {
        public var layer: Int
        public var position: Int
        public var direction: [Float]
        public init(layer: Int, position: Int, direction: [Float]) {
            self.layer = layer; self.position = position; self.direction = direction
        }
    }

    public struct Scores: Sendable, Equatable {
        public var bypass: Double
        public var induce: Double
        public var kl: Double
        /// Harmful − harmless mean projection at the candidate's site: the length of the added vector.
        public var additionNorm: Double
    }

    /// Baseline numbers the candidates are compared with.
    public struct Baseline: Sendable, Equatable {
        public var harmfulRefusal: Double
        public var harmlessRefusal: Double
    }

    /// The distinct first tokens of `refusalPhrases`.
    public static func refusalTokens(_ model: ChatModel) -> Set<Int> {
        Set(refusalPhrases.compactMap { model.tokenizer.encode($0).first.map(Int.init) })
    }

    /// log(p / (1 − p)) of the refusal tokens' total probability in one logits row (computed in Double;
    /// p is kept inside [1e-12, 1 − 1e-12] so the score is finite).
    public static func refusalScore(_ logits: UnsafePointer<Float>, vocab: Int, tokens: Set<Int>) -> Double {
        var m = -Float.infinity
        for j in 0..<vocab { m = max(m, logits[j]) }
        var z = 0.0, r = 0.0
        for j in 0..<vocab {
            let e = Foundation.exp(Double(logits[j] - m))
            z += e
            if tokens.contains(j) { r += e }
        }
        let p = min(max(r / z, 1e-12), 1 - 1e-12)
        return Foundation.log(p) - Foundation.log(1 - p)
    }

    /// KL(P ‖ Q) of the softmax distributions of two logits rows, in nats.
    public static func kl(_ p: UnsafePointer<Float>, _ q: UnsafePointer<Float>, vocab: Int) -> Double {
        var mp = -Float.infinity, mq = -Float.infinity
        for j in 0..<vocab { mp = max(mp, p[j]); mq = max(mq, q[j]) }
        var zp = 0.0, zq = 0.0
        for j in 0..<vocab { zp += Foundation.exp(Double(p[j] - mp)); zq += Foundation.exp(Double(q[j] - mq)) }
        let lzp = Foundation.log(zp), lzq = Foundation.log(zq)
        var out = 0.0
        for j in 0..<vocab {
            let lp = Double(p[j] - mp) - lzp, lq = Double(q[j] - mq) - lzq
            out += Foundation.exp(lp) * (lp - lq)
        }
        return max(out, 0)
    }

    /// Last-position logits [prompts, vocab] of chat-formatted prompts under `hooks`, packed `batch` at a time.
    static func lastLogits(_ model: ChatModel, _ prompts: [[Int]], hooks: HookSet, batch: Int = 16,
                           observe: ((Int, HookSet) -> HookSet)? = nil) throws -> Matrix {
        let t = model.transformer
        let vocab = t.config.vocab
        var out = Matrix(rows: prompts.count, cols: vocab)
        var start = 0
        while start < prompts.count {
            let end = min(prompts.count, start + batch)
            let items = (start..<end).map { ForwardItem(cache: t.makeCache(), tokens: prompts[$0], sequenceID: $0) }
            let logits = try t.forward(items, hooks: observe?(start, hooks) ?? hooks, logits: .last)
            for i in 0..<(end - start) {
                for j in 0..<vocab { out.data[(start + i) * vocab + j] = logits.data[i * vocab + j] }
            }
            start = end
        }
        return out
    }

    /// Scores every candidate on the given prompts (user texts, chat-formatted with the model's setting).
    /// Cost: two baseline passes plus three passes per candidate over the prompts.
    public static func score(model: ChatModel, candidates: [Candidate], harmful: [String], harmless: [String],
                             progress: ((Int, Int) -> Void)? = nil) throws -> (Baseline, [Scores]) {
        let cfg = model.config
        let d = cfg.dModel, vocab = cfg.vocab
        guard !harmful.isEmpty, !harmless.isEmpty else {
            throw AbliterationError(file: model.path, key: "candidates", "candidate scoring needs harmful and harmless prompts")
        }
        for c in candidates {
            guard c.direction.count == d else {
                throw AbliterationError(file: model.path, key: "candidates", "a direction of length \(c.direction.count) does not fit d_model \(d)")
            }
            guard c.layer >= 0 && c.layer < cfg.nLayers else {
                throw AbliterationError(file: model.path, key: "candidates", "layer \(c.layer) has no resid_pre to add to (0..<\(cfg.nLayers))")
            }
        }
        let refusal = refusalTokens(model)
        let hTok = harmful.map { model.encodeChat(user: $0) }, lTok = harmless.map { model.encodeChat(user: $0) }

        // Baseline passes; they also measure each candidate's projection at its site, for the addition norm.
        let units = try candidates.map { try UnitDirection($0.direction) }
        var projSum = [[Double]](repeating: [0, 0], count: candidates.count)   // [harmful, harmless]
        func observing(_ cls: Int) -> (Int, HookSet) -> HookSet {
            { _, base in
                var h = base
                for (ci, c) in candidates.enumerated() {
                    let u = units[ci]
                    h.add(layer: c.layer, point: .residPre) { a in
                        for s in a.segments {
                            guard let row = a.row(segment: s, position: s.positionStart + s.rowCount + c.position) else { continue }
                            projSum[ci][cls] += Double(Kernels.dot(UnsafePointer(row), UnsafePointer(u.buffer.p), d))
                        }
                    }
                }
                return h
            }
        }
        let baseH = try lastLogits(model, hTok, hooks: HookSet(), observe: observing(0))
        let baseL = try lastLogits(model, lTok, hooks: HookSet(), observe: observing(1))
        func meanRefusal(_ m: Matrix) -> Double {
            m.data.withUnsafeBufferPointer { p in
                (0..<m.rows).reduce(0.0) { $0 + refusalScore(p.baseAddress! + $1 * vocab, vocab: vocab, tokens: refusal) } / Double(m.rows)
            }
        }
        let baseline = Baseline(harmfulRefusal: meanRefusal(baseH), harmlessRefusal: meanRefusal(baseL))

        var out: [Scores] = []
        for (ci, c) in candidates.enumerated() {
            progress?(ci, candidates.count)
            let ablate = try Ablation.hooks(direction: c.direction, nLayers: cfg.nLayers)
            let bypass = meanRefusal(try lastLogits(model, hTok, hooks: ablate))
            let ablL = try lastLogits(model, lTok, hooks: ablate)
            let klMean = baseL.data.withUnsafeBufferPointer { b in
                ablL.data.withUnsafeBufferPointer { a in
                    (0..<ablL.rows).reduce(0.0) { $0 + kl(b.baseAddress! + $1 * vocab, a.baseAddress! + $1 * vocab, vocab: vocab) } / Double(ablL.rows)
                }
            }
            let norm = projSum[ci][0] / Double(harmful.count) - projSum[ci][1] / Double(harmless.count)
            let unit = units[ci].values
            let add = try Ablation.addition(direction: unit, beta: Float(norm), layer: c.layer)
            let induce = meanRefusal(try lastLogits(model, lTok, hooks: add))
            out.append(Scores(bypass: bypass, induce: induce, kl: klMean, additionNorm: norm))
        }
        progress?(candidates.count, candidates.count)
        return (baseline, out)
    }
}
