import Foundation
import AblabCore
import LinearAlgebra

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

/// A LLaMA-like decoder (llama, qwen2) on the CPU in Float32: packed prefill of several sequences in one
/// [tokens, dModel] activation matrix (attention per sequence), KV caches, and hooks.
/// Not thread-safe: one forward call at a time (it reuses preallocated scratch buffers).
public final class Transformer {
    public let config: ModelConfig
    public let weights: ModelWeights
    /// Where the model came from (file or folder), for messages.
    public let source: String

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
    private var scores: UnsafeMutablePointer<Float> // [n, context] per (segment, head)
    private var ropeCap = 0
    private var ropeCos: UnsafeMutablePointer<Float> // [positions, headDim / 2]
    private var ropeSin: UnsafeMutablePointer<Float>
    private let invFreq: [Float]

    public init(config: ModelConfig, weights: ModelWeights, source: String) {
        self.config = config; self.weights = weights; self.source = source
        x = .allocate(capacity: 1); xn = .allocate(capacity: 1); qkv = .allocate(capacity: 1)
        att = .allocate(capacity: 1); tmp = .allocate(capacity: 1); gu = .allocate(capacity: 1)
        act = .allocate(capacity: 1); scores = .allocate(capacity: 1)
        ropeCos = .allocate(capacity: 1); ropeSin = .allocate(capacity: 1)
        // Like transformers: inv_freq = 1 / theta^(2i / headDim) in float32.
        let hd = config.headDim
        invFreq = (0..<(hd / 2)).map { i in
            1 / Float(pow(Double(Float(config.ropeTheta)), Double(Float(2 * i) / Float(hd))))
        }
    }

    deinit {
        for p in [x, xn, qkv, att, tmp, gu, act, scores, ropeCos, ropeSin] { p.deallocate() }
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
        x = .allocate(capacity: cap * c.dModel)
        xn = .allocate(capacity: cap * c.dModel)
        qkv = .allocate(capacity: cap * c.qkvDim)
        att = .allocate(capacity: cap * c.qDim)
        tmp = .allocate(capacity: cap * c.dModel)
        gu = .allocate(capacity: cap * 2 * c.ffnDim)
        act = .allocate(capacity: cap * c.ffnDim)
        rowCap = cap
    }

    private func ensureScores(_ n: Int) {
        guard n > scoreCap else { return }
        scores.deallocate()
        scoreCap = max(n, scoreCap * 2)
        scores = .allocate(capacity: scoreCap)
    }

    private func ensureRope(_ positions: Int) {
        guard positions > ropeCap else { return }
        let half = config.headDim / 2
        let cap = max(positions, ropeCap * 2, 256)
        ropeCos.deallocate(); ropeSin.deallocate()
        ropeCos = .allocate(capacity: cap * half)
        ropeSin = .allocate(capacity: cap * half)
        for p in 0..<cap {
            for i in 0..<half {
                let angle = Float(p) * invFreq[i]   // float32 product, as in transformers
                ropeCos[p * half + i] = Float(cos(Double(angle)))
                ropeSin[p * half + i] = Float(sin(Double(angle)))
            }
        }
        ropeCap = cap
    }

    // MARK: forward

    /// Runs new tokens of several sequences through the model in one packed batch (prefill and decoding
    /// alike: a decoding item has one token). Appends keys/values to each item's cache. Hooks see and may
    /// edit activations. Returns logits as chosen by `logits` (0 × vocab for `.none`).
    public func forward(_ items: [ForwardItem], hooks: HookSet = HookSet(), logits mode: LogitsMode = .last) throws -> Matrix {
        let c = config
        let d = c.dModel
        var segments: [HookSegment] = []
        segments.reserveCapacity(items.count)
        var total = 0
        var maxContext = 0
        var maxScores = 0
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
            let ctx = item.cache.count + item.tokens.count
            maxContext = max(maxContext, ctx)
            maxScores = max(maxScores, item.tokens.count * ctx)
        }
        guard total > 0 else { return Matrix(rows: 0, cols: c.vocab) }
        ensureRows(total)
        ensureScores(maxScores)
        ensureRope(maxContext)
        for item in items { item.cache.reserve(item.cache.count + item.tokens.count) }

        // Embeddings.  x: [total, d]
        var r = 0
        for item in items {
            for t in item.tokens {
                (x + r * d).update(from: weights.embed + t * d, count: d)
                r += 1
            }
        }

        segments.withUnsafeBufferPointer { segs in
            for l in 0..<c.nLayers {
                layer(l, total: total, items: items, segments: segs, hooks: hooks)
            }
        }
        for (i, item) in items.enumerated() { item.cache.count += segments[i].rowCount }

        switch mode {
        case .none:
            return Matrix(rows: 0, cols: c.vocab)
        case .last:
            for (i, s) in segments.enumerated() {
                rmsNorm(x + (s.rowStart + s.rowCount - 1) * d, weights.finalNorm, xn + i * d, d, c.rmsEps)
            }
            return outputHead(rows: segments.count)
        case .all:
            for i in 0..<total { rmsNorm(x + i * d, weights.finalNorm, xn + i * d, d, c.rmsEps) }
            return outputHead(rows: total)
        }
    }

    /// logits [rows, vocab] = xn[rows, d] · outputᵀ.
    private func outputHead(rows: Int) -> Matrix {
        let c = config
        var out = Matrix(rows: rows, cols: c.vocab)
        out.data.withUnsafeMutableBufferPointer { o in
            xwT(rows, c.vocab, c.dModel, xn, weights.output, o.baseAddress!)
        }
        return out
    }

    /// c[m, n] = a[m, k] · w[n, k]ᵀ (+ c): weights are stored [out, in]. Few rows (decoding, batched
    /// generation) go to `SmallGEMM`, which reads the weights in place; more go to OpenBLAS.
    @inline(__always)
    private func xwT(_ m: Int, _ n: Int, _ k: Int, _ a: UnsafePointer<Float>, _ w: UnsafePointer<Float>,
                     _ c: UnsafeMutablePointer<Float>, accumulate: Bool = false) {
        if m <= SmallGEMM.maxRows {
            SmallGEMM.multiplyTransposed(m: m, n: n, k: k, a: a, lda: k, w: w, ldw: k, c: c, ldc: n, accumulate: accumulate)
        } else {
            BLAS.sgemm(transB: true, m: m, n: n, k: k, a: a, lda: k, b: w, ldb: k, beta: accumulate ? 1 : 0, c: c, ldc: n)
        }
    }

    /// New-token segments up to this length use `attendRow` instead of BLAS for attention.
    static let smallSegment = 4

    private func layer(_ l: Int, total T: Int, items: [ForwardItem], segments: UnsafeBufferPointer<HookSegment>,
                       hooks: HookSet) {
        let c = config
        let d = c.dModel, qkvDim = c.qkvDim, qDim = c.qDim, kvDim = c.kvDim, hd = c.headDim
        let w = weights.layers[l]

        hooks.run(l, .residPre, rows: x, rowCount: T, dModel: d, segments: segments)

        // Attention.  xn = norm(x); qkv [T, qkvDim] = xn · wqkvᵀ (+ b)
        for i in 0..<T { rmsNorm(x + i * d, w.attnNorm, xn + i * d, d, c.rmsEps) }
        xwT(T, qkvDim, d, xn, w.wqkv, qkv)
        if let b = w.bqkv {
            for i in 0..<T { let row = qkv + i * qkvDim; for j in 0..<qkvDim { row[j] += b[j] } }
        }
        let half = hd / 2
        let scale = 1 / Float(hd).squareRoot()
        let group = c.nHeads / c.nKVHeads
        for (si, s) in segments.enumerated() {
            let cache = items[si].cache
            let kc = cache.k[l], vc = cache.v[l]
            for i in 0..<s.rowCount {
                let pos = s.positionStart + i
                let row = qkv + (s.rowStart + i) * qkvDim
                let cs = ropeCos + pos * half, sn = ropeSin + pos * half
                for h in 0..<(c.nHeads + c.nKVHeads) {   // Q heads then K heads are contiguous
                    rope(row + h * hd, cs, sn, half, c.ropeStyle)
                }
                (kc + pos * kvDim).update(from: row + qDim, count: kvDim)
                (vc + pos * kvDim).update(from: row + qDim + kvDim, count: kvDim)
            }
            // Per head: S [n, ctx] = scale · Q_h · K_hᵀ; causal softmax; O_h [n, hd] = P · V_h.
            let n = s.rowCount, ctx = s.positionStart + n
            if n <= Self.smallSegment {
                // decoding (and short segments): SIMD dot products beat BLAS calls on tiny matrices
                for h in 0..<c.nHeads {
                    let kvh = h / group
                    for i in 0..<n {
                        attendRow(qkv + (s.rowStart + i) * qkvDim + h * hd, kc + kvh * hd, vc + kvh * hd, stride: kvDim,
                                  visible: s.positionStart + i + 1, hd: hd, scale: scale, scores: scores,
                                  out: att + (s.rowStart + i) * qDim + h * hd)
                    }
                }
                continue
            }
            for h in 0..<c.nHeads {
                let kvh = h / group
                BLAS.sgemm(transB: true, m: n, n: ctx, k: hd, alpha: scale,
                           a: qkv + s.rowStart * qkvDim + h * hd, lda: qkvDim,
                           b: kc + kvh * hd, ldb: kvDim, c: scores, ldc: ctx)
                for i in 0..<n {
                    let visible = s.positionStart + i + 1
                    softmaxInPlace(scores + i * ctx, visible)
                    let row = scores + i * ctx
                    for j in visible..<ctx { row[j] = 0 }
                }
                BLAS.sgemm(m: n, n: hd, k: ctx, a: scores, lda: ctx, b: vc + kvh * hd, ldb: kvDim,
                           c: att + s.rowStart * qDim + h * hd, ldc: qDim)
            }
        }
        // attn_out [T, d] = att · woᵀ, added to x (directly by BLAS when not hooked).
        if hooks.has(l, .attnOut) {
            xwT(T, d, qDim, att, w.wo, tmp)
            hooks.run(l, .attnOut, rows: tmp, rowCount: T, dModel: d, segments: segments)
            addInPlace(x, tmp, T * d)
        } else {
            xwT(T, d, qDim, att, w.wo, x, accumulate: true)
        }
        hooks.run(l, .residMid, rows: x, rowCount: T, dModel: d, segments: segments)

        // MLP (SwiGLU).  gu [T, 2f] = xn · wGateUpᵀ; act = silu(gate) ⊙ up; mlp_out = act · wDownᵀ
        let f = c.ffnDim
        for i in 0..<T { rmsNorm(x + i * d, w.ffnNorm, xn + i * d, d, c.rmsEps) }
        xwT(T, 2 * f, d, xn, w.wGateUp, gu)
        for i in 0..<T { swiglu(gu + i * 2 * f, act + i * f, f) }
        if hooks.has(l, .mlpOut) {
            xwT(T, d, f, act, w.wDown, tmp)
            hooks.run(l, .mlpOut, rows: tmp, rowCount: T, dModel: d, segments: segments)
            addInPlace(x, tmp, T * d)
        } else {
            xwT(T, d, f, act, w.wDown, x, accumulate: true)
        }
        hooks.run(l, .residPost, rows: x, rowCount: T, dModel: d, segments: segments)
    }
}
