import Foundation
import AblabCore
import LinearAlgebra
import KernelABI

/// One sequence's part of a forward call: new tokens appended after what `cache` already holds.
public struct ForwardItem {
    public var cache: KVCache
    public var tokens: [Int]
    /// The caller's id for this sequence, passed to hooks (`HookSegment.sequenceID`).
    public var sequenceID: Int
    public init(cache: KVCache, tokens: [Int], sequenceID: Int = 0) {
        self.cache = cache; self.tokens = tokens; self.sequenceID = sequenceID
    }
}

/// Which positions get logits.
public enum LogitsMode: Sendable {
    /// None (e.g. recording activations only): skips the output head.
    case none
    /// The last new position of every item: [items, vocab].
    case last
    /// Every new position: [total new tokens, vocab], items in order.
    case all
}

/// A decoder-only transformer (every `Architecture`; each architecture's file sets the quirks of its block
/// in `ModelConfig`, and `layer` runs them from the shared parts in BlockParts.swift) on the CPU: weights in their stored format, activations in
/// Float32, packed prefill of several sequences in one [tokens, dModel] activation matrix (attention per
/// sequence), KV caches, and hooks. Every product goes through `CPUKernels` in the canonical order, so
/// values do not depend on threads, on how sequences are batched or split, or on the CPU.
/// Not thread-safe: one forward call at a time (it reuses preallocated scratch buffers).
public final class Transformer {
    public let config: ModelConfig
    public let weights: ModelWeights
    /// Where the model came from (file or folder), for messages.
    public let source: String
    /// The kernels this model runs with (`CPUKernels.active` unless a test chose another path).
    public let kernels: any KernelSet.Type
    /// How the weight products are computed (`.f32` unless `setCompute` chose bf16; see `ComputeMode`).
    public private(set) var compute: ComputeMode = .f32

    // Scratch, grown on demand, never shrunk. Shapes for `rowCap` rows.
    private var rowCap = 0
    private var x: UnsafeMutablePointer<Float>      // [rows, dModel] residual stream
    private var xn: UnsafeMutablePointer<Float>     // [rows, dModel] normalised
    private var qkv: UnsafeMutablePointer<Float>    // [rows, qkvDim]
    private var att: UnsafeMutablePointer<Float>    // [rows, qDim] attention mix before o_proj
    private var tmp: UnsafeMutablePointer<Float>    // [rows, dModel] attn_out / mlp_out when hooked
    private var gu: UnsafeMutablePointer<Float>     // [rows, 2 ffnDim] gate | up
    private var act: UnsafeMutablePointer<Float>    // [rows, ffnDim]
    private var scoreCap = 0
    private var scores: UnsafeMutablePointer<Float> // [workers, context]
    /// Rotary tables: [0] global (or only), [1] the sliding layers' own base when it differs (Gemma 3).
    private let ropeTables: [RopeTable]
    /// Index into `ropeTables` per layer.
    private let layerRope: [Int]
    private let scratch = LinearProduct.Scratch()

    public init(config: ModelConfig, weights: ModelWeights, source: String, kernels: (any KernelSet.Type)? = nil) {
        self.config = config; self.weights = weights; self.source = source
        self.kernels = kernels ?? CPUKernels.active
        x = .allocate(capacity: 1); xn = .allocate(capacity: 1); qkv = .allocate(capacity: 1)
        att = .allocate(capacity: 1); tmp = .allocate(capacity: 1); gu = .allocate(capacity: 1)
        act = .allocate(capacity: 1); scores = .allocate(capacity: 1)
        var tables = [RopeTable(theta: config.ropeTheta, scaling: config.ropeScaling, dim: config.ropeDim)]
        if let local = config.localRopeTheta { tables.append(RopeTable(theta: local, scaling: .none, dim: config.ropeDim)) }
        ropeTables = tables
        layerRope = (0..<config.nLayers).map { config.localRopeTheta != nil && config.isSliding($0) ? 1 : 0 }
    }

    deinit {
        for p in [x, xn, qkv, att, tmp, gu, act, scores] { p.deallocate() }
    }

    /// Chooses how the weight products are computed. Throws `ComputeModeError` naming the missing CPU
    /// features when this CPU (`cpuFlags`, injectable for tests) cannot run `mode`.
    public func setCompute(_ mode: ComputeMode, cpuFlags: Set<String> = CPUKernels.cpuFlags()) throws {
        try mode.check(cpuFlags: cpuFlags)
        compute = mode
    }

    /// Bytes of the forward pass's scratch buffers as allocated now (row buffers, attention scores, RoPE
    /// tables, weight panels): what `ModelMemory.estimate`'s scratch term bounds, logits aside.
    var scratchBytes: Int {
        let c = config
        let rows = rowCap * (3 * c.dModel + c.qkvDim + c.qDim + 3 * c.ffnDim)
        let rope = ropeTables.reduce(0) { $0 + 2 * $1.capacity * $1.half }
        return 4 * (rows + scoreCap + rope) + scratch.bytes
    }

    /// A new, empty KV cache for one sequence.
    public func makeCache(capacity: Int = 0) -> KVCache {
        KVCache(nLayers: config.nLayers, kvDim: config.kvDim, capacity: capacity)
    }

    // MARK: scratch

    private func ensureRows(_ n: Int) {
        guard n > rowCap else { return }
        let c = config
        let cap = max(n, rowCap + rowCap / 2)
        for p in [x, xn, qkv, att, tmp, gu, act] { p.deallocate() }
        // Cache-line aligned: the kernels' 64-byte loads of a row then never straddle two lines (rows of
        // widths that are multiples of 16 floats stay aligned).
        x = .allocateAligned(cap * c.dModel)
        xn = .allocateAligned(cap * c.dModel)
        qkv = .allocateAligned(cap * c.qkvDim)
        att = .allocateAligned(cap * c.qDim)
        tmp = .allocateAligned(cap * c.dModel)
        gu = .allocateAligned(cap * 2 * c.ffnDim)
        act = .allocateAligned(cap * c.ffnDim)
        rowCap = cap
    }

    /// Attention workers of the current forward pass (the split of `scores`).
    private var scoreWorkers = 1

    private func ensureScores(_ n: Int) {
        guard n > scoreCap else { return }
        scores.deallocate()
        scoreCap = max(n, scoreCap * 2)
        scores = .allocate(capacity: scoreCap)
    }

    private func ensureRope(_ positions: Int) {
        for t in ropeTables { t.ensure(positions) }
    }

    // MARK: forward

    /// Runs new tokens of several sequences through the model in one packed batch (prefill and decoding
    /// alike: a decoding item has one token). Appends keys/values to each item's cache. Hooks see and may
    /// edit activations. Returns logits as chosen by `logits` (0 × vocab for `.none`).
    ///
    /// `lastRows`: only the last n rows of each item are needed from the final block on (a recorder reading
    /// the last positions, logits of the last row). The final block then writes every row's keys and values
    /// but computes attention, the MLP and everything after for those rows alone, and its hooks from
    /// attn_out on see only them (their segments say which positions; earlier hooks see every row). The
    /// rows computed are the same bits either way: each row's attention, MLP and norms read only itself
    /// and the cache. Ignored for `logits: .all`.
    public func forward(_ items: [ForwardItem], hooks: HookSet = HookSet(), logits mode: LogitsMode = .last,
                        lastRows: Int? = nil) throws -> Matrix {
        let c = config
        let d = c.dModel
        var segments: [HookSegment] = []
        segments.reserveCapacity(items.count)
        var total = 0
        var maxContext = 0
        for (i, item) in items.enumerated() {
            guard !item.tokens.isEmpty else {
                throw ModelError(file: source, "forward item \(i) has no tokens")
            }
            for t in item.tokens where t < 0 || t >= c.vocab {
                throw ModelError(file: source, "token id \(t) of item \(i) is outside the vocabulary (0..<\(c.vocab))")
            }
            if items[..<i].contains(where: { $0.cache === item.cache }) {
                throw ModelError(file: source, "forward items \(i) and an earlier one share a KV cache")
            }
            segments.append(HookSegment(sequenceID: item.sequenceID, rowStart: total, rowCount: item.tokens.count,
                                        positionStart: item.cache.count))
            total += item.tokens.count
            maxContext = max(maxContext, item.cache.count + item.tokens.count)
        }
        guard total > 0 else { return Matrix(rows: 0, cols: c.vocab) }
        ensureRows(total)
        // Read once per forward pass: the score buffer is split among this many workers below, so a thread
        // count changed in between (another caller setting CPUKernels.threads) must not change the split.
        scoreWorkers = Self.attentionWorkers
        ensureScores(scoreWorkers * maxContext)
        ensureRope(maxContext)
        for item in items { item.cache.reserve(item.cache.count + item.tokens.count) }

        // Embeddings.  x: [total, d], each row the token's embedding row as the kernels decode it.
        var r = 0
        for item in items {
            for t in item.tokens {
                kernels.dequantize(weights.embed.weight, rows: t..<(t + 1), into: x + r * d)
                if let e = c.embedScale { BlockParts.scale(x + r * d, by: e, n: d) }
                r += 1
            }
        }

        if let n = lastRows, n < 1 { throw ModelError(file: source, "forward: lastRows must be at least 1 (got \(n))") }
        let keep = mode == .all ? nil : lastRows
        var kept = segments
        segments.withUnsafeBufferPointer { segs in
            for l in 0..<c.nLayers {
                if let out = layer(l, total: total, items: items, segments: segs, hooks: hooks, keepLast: l == c.nLayers - 1 ? keep : nil) {
                    kept = out
                }
            }
        }
        for (i, item) in items.enumerated() { item.cache.count += segments[i].rowCount }

        switch mode {
        case .none:
            return Matrix(rows: 0, cols: c.vocab)
        case .last:
            for (i, s) in kept.enumerated() {
                kernels.rmsNorm(x + (s.rowStart + s.rowCount - 1) * d, weights.finalNorm, offset: c.normOffset, xn + i * d, n: d, eps: c.rmsEps, count: 1)
            }
            return outputHead(rows: segments.count)
        case .all:
            kernels.rmsNorm(x, weights.finalNorm, offset: c.normOffset, xn, n: d, eps: c.rmsEps, count: total)
            return outputHead(rows: total)
        }
    }

    /// logits [rows, vocab] = xn[rows, d] · outputᵀ.
    private func outputHead(rows: Int) -> Matrix {
        let c = config
        var out = Matrix(rows: rows, cols: c.vocab)
        out.data.withUnsafeMutableBufferPointer { o in
            linear([weights.output], x: xn, m: rows, ldx: c.dModel, out: o.baseAddress!, ldo: c.vocab)
            if let cap = c.finalSoftcap { BlockParts.softcap(o.baseAddress!, cap: cap, n: rows * c.vocab) }
        }
        return out
    }

    /// out[:, offsets…] (+)= x · Wᵀ (+ b) for layers written side by side.
    @inline(__always)
    private func linear(_ layers: [Linear], x: UnsafePointer<Float>, m: Int, ldx: Int, out: UnsafeMutablePointer<Float>, ldo: Int,
                        accumulate: Bool = false) {
        var parts: [LinearProduct.Part] = []
        var off = 0
        for l in layers { parts.append(.init(linear: l, outOffset: off)); off += l.outFeatures }
        LinearProduct.run(parts, x: x, m: m, ldx: ldx, out: out, ldo: ldo, accumulate: accumulate, scratch: scratch, kernels: kernels,
                          compute: compute)
    }

    /// Threads over which attention (sequence × head × query row) is split.
    static var attentionWorkers: Int { max(1, CPUKernels.threads) }

    /// One block: x += attnOut(x); x += mlpOut(x), with the architecture's norms, RoPE, attention and MLP.
    /// With `keepLast`, after the keys and values of every row are cached, only the last n rows of each
    /// segment go on (moved to the front of x and qkv); returns their segments then.
    @discardableResult
    private func layer(_ l: Int, total T: Int, items: [ForwardItem], segments: UnsafeBufferPointer<HookSegment>,
                       hooks: HookSet, keepLast: Int? = nil) -> [HookSegment]? {
        let c = config
        let d = c.dModel, qkvDim = c.qkvDim, qDim = c.qDim, kvDim = c.kvDim, hd = c.headDim
        let w = weights.layers[l]
        let K = kernels
        let off = c.normOffset

        hooks.run(l, .residPre, rows: x, rowCount: T, dModel: d, segments: segments)

        // The row-wise steps (norms, q/k norms, RoPE, the KV cache rows, activations) run on row ranges,
        // one per thread: each row is computed alone, so the split changes nothing.
        let threads = scoreWorkers
        let ux = UnsafeSendableMutable(x), uxn = UnsafeSendableMutable(xn), uqkv = UnsafeSendableMutable(qkv)

        // Attention.  xn = norm(x); qkv [T, qkvDim] = xn · [Wq | Wk | Wv]ᵀ (+ b)
        parallelRows(T, threads: threads) { r in
            K.rmsNorm(ux.p + r.lowerBound * d, w.attnNorm, offset: off, uxn.p + r.lowerBound * d, n: d, eps: c.rmsEps, count: r.count)
        }
        linear([w.q, w.k, w.v], x: xn, m: T, ldx: d, out: qkv, ldo: qkvDim)
        let rope = ropeTables[layerRope[l]]
        let half = rope.half
        let adjacent = c.ropeStyle == .adjacentPairs
        let caches = items.map { (UnsafeSendableMutable($0.cache.k[l]), UnsafeSendableMutable($0.cache.v[l])) }
        parallelRows(T, threads: threads) { rows in
            var si = 0
            for r in rows {
                while r >= segments[si].rowStart + segments[si].rowCount { si += 1 }
                let s = segments[si]
                let row = uqkv.p + r * qkvDim
                // q/k norms: RMSNorm over each head's headDim values, in place (Qwen3, Gemma 3).
                if let qn = w.qNorm, let kn = w.kNorm {
                    K.rmsNorm(row, qn, offset: off, row, n: hd, eps: c.rmsEps, count: c.nHeads)
                    K.rmsNorm(row + qDim, kn, offset: off, row + qDim, n: hd, eps: c.rmsEps, count: c.nKVHeads)
                }
                let pos = s.positionStart + r - s.rowStart
                let cs = rope.cos + pos * half, sn = rope.sin + pos * half
                for h in 0..<(c.nHeads + c.nKVHeads) {   // Q heads then K heads are contiguous
                    K.rope(row + h * hd, cos: cs, sin: sn, half: half, adjacentPairs: adjacent)
                }
                let (kc, vc) = caches[si]
                (kc.p + pos * kvDim).update(from: row + qDim, count: kvDim)
                (vc.p + pos * kvDim).update(from: row + qDim + kvDim, count: kvDim)
            }
        }
        guard let n = keepLast, let kept = keepLastRows(n, of: segments) else {
            finishLayer(l, T: T, items: items, segments: segments, hooks: hooks, caches: caches)
            return nil
        }
        kept.withUnsafeBufferPointer {
            finishLayer(l, T: kept.reduce(0) { $0 + $1.rowCount }, items: items, segments: $0, hooks: hooks, caches: caches)
        }
        return kept
    }

    /// Moves the residual and qkv rows of the last n rows of each segment to the front of x and qkv, in
    /// order (a row never moves back, so no copy overwrites a row still to be moved), and returns their
    /// segments; nil when every segment has at most n rows (nothing to drop).
    private func keepLastRows(_ n: Int, of segments: UnsafeBufferPointer<HookSegment>) -> [HookSegment]? {
        guard segments.contains(where: { $0.rowCount > n }) else { return nil }
        let d = config.dModel, qkvDim = config.qkvDim
        var kept: [HookSegment] = []
        var to = 0
        for s in segments {
            let k = min(n, s.rowCount)
            kept.append(HookSegment(sequenceID: s.sequenceID, rowStart: to, rowCount: k, positionStart: s.positionStart + s.rowCount - k))
            for from in (s.rowStart + s.rowCount - k)..<(s.rowStart + s.rowCount) {
                if from != to {
                    (x + to * d).update(from: x + from * d, count: d)
                    (qkv + to * qkvDim).update(from: qkv + from * qkvDim, count: qkvDim)
                }
                to += 1
            }
        }
        return kept
    }

    /// The rest of a block after the keys and values are cached: attention of the T rows, its output, the MLP.
    private func finishLayer(_ l: Int, T: Int, items: [ForwardItem], segments: UnsafeBufferPointer<HookSegment>, hooks: HookSet,
                             caches: [(UnsafeSendableMutable, UnsafeSendableMutable)]) {
        let c = config
        let d = c.dModel, qkvDim = c.qkvDim, qDim = c.qDim, kvDim = c.kvDim, hd = c.headDim
        let w = weights.layers[l]
        let K = kernels
        let off = c.normOffset
        let threads = scoreWorkers
        let ux = UnsafeSendableMutable(x), uxn = UnsafeSendableMutable(xn)
        // Per (query row, head): out = softmax(scale · q·Kᵀ) · V over the visible positions (causal, and
        // the last `window` of them on sliding layers), one row at a time whatever the segment length (so
        // prefill and decoding give the same bits).
        let scale = c.attentionScale ?? 1 / Float(hd).squareRoot()
        let window = c.isSliding(l) ? c.slidingWindow : nil
        let softcap = c.attentionSoftcap
        let group = c.nHeads / c.nKVHeads
        let jobs = T * c.nHeads
        let workers = max(1, min(scoreWorkers, jobs / 8))
        let uq = UnsafeSendable(qkv), ua = UnsafeSendableMutable(att), us = UnsafeSendableMutable(scores)
        let scoreStride = scoreCap / scoreWorkers
        func attendRows(_ wkr: Int) {
            let sc = us.p + wkr * scoreStride
            var job = wkr
            var si = 0
            while job < jobs {
                let row = job / c.nHeads, h = job % c.nHeads
                while row >= segments[si].rowStart + segments[si].rowCount { si += 1 }
                let s = segments[si]
                let pos = s.positionStart + row - s.rowStart
                let first = window.map { max(0, pos + 1 - $0) } ?? 0
                let kvh = h / group
                let (kc, vc) = caches[si]
                let k = UnsafePointer(kc.p) + first * kvDim + kvh * hd, v = UnsafePointer(vc.p) + first * kvDim + kvh * hd
                let q = uq.p + row * qkvDim + h * hd, out = ua.p + row * qDim + h * hd
                if let cap = softcap {
                    BlockParts.attendCapped(K, q: q, k: k, v: v, stride: kvDim, visible: pos + 1 - first, hd: hd, scale: scale,
                                            cap: cap, scores: sc, out: out)
                } else {
                    K.attend(q: q, k: k, v: v, stride: kvDim, visible: pos + 1 - first, hd: hd, scale: scale, scores: sc, out: out)
                }
                job += workers
            }
        }
        parallelFor(workers, attendRows)

        // attn_out [T, d] = (postNorm)(att · woᵀ (+ b)), added to x (directly when neither hooked, biased nor
        // post-normed, which rounds the same: the product is finished before it is added).
        if hooks.has(l, .attnOut) || w.o.bias != nil || w.postAttnNorm != nil {
            linear([w.o], x: att, m: T, ldx: qDim, out: tmp, ldo: d)
            if let pn = w.postAttnNorm { K.rmsNorm(tmp, pn, offset: off, tmp, n: d, eps: c.rmsEps, count: T) }
            hooks.run(l, .attnOut, rows: tmp, rowCount: T, dModel: d, segments: segments)
            K.add(x, tmp, n: T * d)
        } else {
            linear([w.o], x: att, m: T, ldx: qDim, out: x, ldo: d, accumulate: true)
        }
        hooks.run(l, .residMid, rows: x, rowCount: T, dModel: d, segments: segments)

        // Gated MLP.  gu [T, 2f] = norm(x) · [Wgate | Wup]ᵀ; act = silu|gelu(gate) ⊙ up; mlp_out = (postNorm)(act · Wdownᵀ)
        let f = c.ffnDim
        parallelRows(T, threads: threads) { r in
            K.rmsNorm(ux.p + r.lowerBound * d, w.ffnNorm, offset: off, uxn.p + r.lowerBound * d, n: d, eps: c.rmsEps, count: r.count)
        }
        linear([w.gate, w.up], x: xn, m: T, ldx: d, out: gu, ldo: 2 * f)
        let ugu = UnsafeSendable(gu), uact = UnsafeSendableMutable(act)
        let activation = c.mlpActivation
        parallelRows(T, threads: threads, minRows: 16) { r in
            let g = ugu.p + r.lowerBound * 2 * f, a = uact.p + r.lowerBound * f
            switch activation {
            case .silu: K.swiglu(g, a, f: f, count: r.count, ldgu: 2 * f)
            case .geluTanh: BlockParts.geglu(g, a, f: f, count: r.count, ldgu: 2 * f)
            }
        }
        if hooks.has(l, .mlpOut) || w.postFFNNorm != nil {
            linear([w.down], x: act, m: T, ldx: f, out: tmp, ldo: d)
            if let pn = w.postFFNNorm { K.rmsNorm(tmp, pn, offset: off, tmp, n: d, eps: c.rmsEps, count: T) }
            hooks.run(l, .mlpOut, rows: tmp, rowCount: T, dModel: d, segments: segments)
            K.add(x, tmp, n: T * d)
        } else {
            linear([w.down], x: act, m: T, ldx: f, out: x, ldo: d, accumulate: true)
        }
        hooks.run(l, .residPost, rows: x, rowCount: T, dModel: d, segments: segments)
    }
}
