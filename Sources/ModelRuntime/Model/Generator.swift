import Foundation
import AblabCore
import LinearAlgebra

/// How the next token is chosen.
public struct SamplingOptions: Sendable, Equatable {
    /// 0 = greedy (argmax); otherwise logits are divided by it before the softmax.
    public var temperature: Float
    /// Nucleus sampling: keep the most probable tokens whose probabilities sum to at least topP (1 = all).
    public var topP: Float
    /// Seed; each prompt gets its own stream derived from (seed, prompt index), so results do not depend
    /// on batching.
    public var seed: UInt64

    public init(temperature: Float = 0, topP: Float = 1, seed: UInt64 = 0) {
        self.temperature = temperature; self.topP = topP; self.seed = seed
    }
    public static let greedy = SamplingOptions()
}

public struct GenerationOptions: Sendable {
    public var maxNewTokens: Int
    /// Generation stops after producing any of these (the EOS token is included in the result).
    public var eosIds: Set<Int>
    public var sampling: SamplingOptions
    /// Sequences decoded together; a finished sequence's slot is taken by the next prompt.
    public var maxBatch: Int

    public init(maxNewTokens: Int = 256, eosIds: Set<Int>, sampling: SamplingOptions = .greedy, maxBatch: Int = 8) {
        self.maxNewTokens = maxNewTokens; self.eosIds = eosIds; self.sampling = sampling; self.maxBatch = maxBatch
    }
}

public enum FinishReason: String, Sendable, Equatable {
    /// An end-of-sequence token was produced (it is the last token of the result).
    case eos
    /// maxNewTokens were produced.
    case length
    /// A NaN or infinity appeared in the residual stream or the logits; the prompt was stopped there.
    case nonFinite = "non_finite"
}

/// Where a non-finite value first appeared for one prompt.
public struct NonFiniteReport: Sendable, Equatable, CustomStringConvertible {
    /// Hook name (`blocks.3.hook_resid_post`) or "logits".
    public var hook: String
    /// Token position in the sequence (prompt tokens first, 0-based).
    public var position: Int
    /// The first offending value (NaN, +inf or -inf).
    public var value: Float
    public var description: String { "\(value) at \(hook), token position \(position)" }
}

public struct GenerationResult: Sendable, Equatable {
    /// New tokens only (not the prompt).
    public var tokens: [Int]
    public var finishReason: FinishReason
    /// Set when `finishReason` is `.nonFinite`.
    public var nonFinite: NonFiniteReport? = nil
}

/// Records, per sequence, the first non-finite value in the residual stream (checked after every layer).
final class NonFiniteWatch {
    private(set) var first: [Int: NonFiniteReport] = [:]
    private let nLayers: Int
    init(nLayers: Int) { self.nLayers = nLayers }

    /// Hooks that run after all others at each point they watch (so a NaN made by an earlier hook counts).
    func hooks() -> HookSet {
        var h = HookSet()
        h.add(layer: 0, point: .residPre) { [unowned self] a in self.scan(a) }
        for l in 0..<nLayers { h.add(layer: l, point: .residPost) { [unowned self] a in self.scan(a) } }
        return h
    }

    private func scan(_ a: HookActivations) {
        let d = a.dModel
        for seg in a.segments where first[seg.sequenceID] == nil {
            let base = a.rows + seg.rowStart * d
            for r in 0..<seg.rowCount {
                let row = base + r * d
                guard let j = (0..<d).first(where: { !row[$0].isFinite }) else { continue }
                first[seg.sequenceID] = NonFiniteReport(hook: a.point.fullName(layer: a.layer),
                                                        position: seg.positionStart + r, value: row[j])
                break
            }
        }
    }

    func clear(_ sequenceID: Int) { first[sequenceID] = nil }
}

/// Batched generation over token-id prompts: new prompts are prefilled in the same packed forward call
/// as the decoding steps of running ones.
public final class Generator {
    public let model: Transformer
    private var pool: [KVCache] = []

    public init(model: Transformer) { self.model = model }

    private struct Slot {
        var prompt: Int
        var cache: KVCache
        var pending: [Int]
        var out: [Int] = []
        var rng: SamplingRNG
    }

    /// Generates for every prompt; `results[i]` belongs to `prompts[i]`. `hooks` apply during prefill and
    /// decoding (`HookSegment.sequenceID` is the prompt index). `onFinish(i, result)` is called as each
    /// prompt finishes (progress, streaming to disk).
    public func generate(prompts: [[Int]], options: GenerationOptions, hooks: HookSet = HookSet(),
                         onFinish: ((Int, GenerationResult) -> Void)? = nil) throws -> [GenerationResult] {
        let vocab = model.config.vocab
        for (i, p) in prompts.enumerated() {
            guard !p.isEmpty else { throw ModelError(file: model.source, "prompt \(i) has no tokens") }
        }
        guard options.maxBatch >= 1 else { throw ModelError(file: model.source, "maxBatch must be at least 1") }
        let s = options.sampling
        guard s.temperature >= 0, s.topP > 0, s.topP <= 1 else {
            throw ModelError(file: model.source, "sampling needs temperature ≥ 0 and 0 < topP ≤ 1")
        }
        var results = [GenerationResult?](repeating: nil, count: prompts.count)
        var next = 0
        var active: [Slot] = []
        var sampler = Sampler(vocab: vocab)
        // Numerical guard: a prompt whose residual stream or logits hold NaN or infinity stops there
        // (finish reason nonFinite, with the hook and position) instead of producing tokens from garbage.
        let watch = NonFiniteWatch(nLayers: model.config.nLayers)
        var allHooks = hooks
        allHooks.merge(watch.hooks())
        while next < prompts.count || !active.isEmpty {
            while next < prompts.count && active.count < options.maxBatch {
                if options.maxNewTokens <= 0 {
                    let r = GenerationResult(tokens: [], finishReason: .length)
                    results[next] = r; onFinish?(next, r); next += 1; continue
                }
                let cache = pool.popLast() ?? model.makeCache()
                cache.reset()
                active.append(Slot(prompt: next, cache: cache, pending: prompts[next],
                                   rng: s.stream(promptIndex: next)))
                next += 1
            }
            if active.isEmpty { break }
            let logits = try model.forward(active.map { ForwardItem(cache: $0.cache, tokens: $0.pending, sequenceID: $0.prompt) },
                                           hooks: allHooks, logits: .last)
            var keep: [Slot] = []
            keep.reserveCapacity(active.count)
            logits.data.withUnsafeBufferPointer { lp in
                for (i, var slot) in active.enumerated() {
                    let row = lp.baseAddress! + i * vocab
                    var report = watch.first[slot.prompt]
                    if report == nil, let j = (0..<vocab).first(where: { !row[$0].isFinite }) {
                        report = NonFiniteReport(hook: "logits", position: slot.cache.count - 1, value: row[j])
                    }
                    var reason: FinishReason? = nil
                    if report != nil {
                        reason = .nonFinite
                        watch.clear(slot.prompt)
                    } else {
                        let tok = sampler.pick(row, s, &slot.rng)
                        slot.out.append(tok)
                        if options.eosIds.contains(tok) { reason = .eos } else if slot.out.count >= options.maxNewTokens { reason = .length }
                    }
                    if let reason {
                        let r = GenerationResult(tokens: slot.out, finishReason: reason, nonFinite: report)
                        results[slot.prompt] = r
                        onFinish?(slot.prompt, r)
                        pool.append(slot.cache)
                    } else {
                        slot.pending = [slot.out.last!]
                        keep.append(slot)
                    }
                }
            }
            active = keep
        }
        return results.map { $0! }
    }
}

/// Each prompt's sampling stream.
public typealias SamplingRNG = SplitMix64

extension SamplingOptions {
    /// The sampling stream of prompt `index` of a `Generator.generate` call (a single prompt is index 0),
    /// so that other decoders (`ablab serve`) draw exactly the same tokens.
    public func stream(promptIndex index: Int) -> SamplingRNG {
        SamplingRNG(seed: seed ^ (UInt64(index) &* 0x9E37_79B9_7F4A_7C15))
    }
}

/// Token choice from one logits row, with reusable buffers.
public struct Sampler {
    var probs: [Double]
    public init(vocab: Int) { probs = Array(repeating: 0, count: vocab) }

    /// The next token for one row of `vocab` logits: argmax when `s.temperature` is 0, else a draw from
    /// the tempered softmax (nucleus-trimmed when `s.topP` < 1) using `rng`.
    public mutating func pick(_ logits: UnsafePointer<Float>, _ s: SamplingOptions, _ rng: inout SamplingRNG) -> Int {
        let n = probs.count
        if s.temperature == 0 {
            var best = logits[0], bi = 0
            for j in 1..<n where logits[j] > best { best = logits[j]; bi = j }
            return bi
        }
        var m = -Float.infinity
        for j in 0..<n { m = max(m, logits[j]) }
        let invT = 1 / Double(s.temperature)
        var sum = 0.0
        for j in 0..<n { let e = exp((Double(logits[j]) - Double(m)) * invT); probs[j] = e; sum += e }
        let u = rng.uniform()
        if s.topP >= 1 {
            var acc = 0.0
            let target = u * sum
            for j in 0..<n { acc += probs[j]; if acc > target { return j } }
            return n - 1
        }
        // Nucleus: most probable first; candidates below 1e-12 of the total can never be needed for topP < 1.
        var cand: [Int] = []
        let floor = sum * 1e-12
        for j in 0..<n where probs[j] >= floor { cand.append(j) }
        cand.sort { probs[$0] > probs[$1] || (probs[$0] == probs[$1] && $0 < $1) }
        var kept = 0, mass = 0.0
        for j in cand { mass += probs[j]; kept += 1; if mass >= Double(s.topP) * sum { break } }
        let target = u * mass
        var acc = 0.0
        for j in cand.prefix(kept) { acc += probs[j]; if acc > target { return j } }
        return cand[kept - 1]
    }
}
