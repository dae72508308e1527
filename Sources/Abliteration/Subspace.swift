import Foundation
import AblabCore
import LinearAlgebra
import ModelRuntime

/// An orthonormal basis u₁ … u_k of a subspace of the residual stream, built from k directions by
/// modified Gram–Schmidt in Double (two passes, in the given order, so the result does not depend on
/// threads or CPU). The first vector is the first direction normalised; each later one is the part of
/// its direction orthogonal to the earlier ones, normalised.
public struct OrthonormalBasis: @unchecked Sendable {
    let buffer: FloatBuffer          // [k, d] row-major
    public let rank: Int
    public let dModel: Int

    /// Throws when there is no direction, when lengths differ, a value is not finite, or a direction
    /// lies (to `tolerance` of its own norm) in the span of the earlier ones.
    public init(_ directions: [[Float]], tolerance: Double = 1e-6, source: String = "basis") throws {
        guard let first = directions.first, !first.isEmpty else {
            throw AbliterationError(file: source, "a subspace needs at least one non-empty direction")
        }
        let d = first.count
        var rows: [[Double]] = []
        for (i, v) in directions.enumerated() {
            guard v.count == d else {
                throw AbliterationError(file: source, key: "direction \(i + 1)", "has \(v.count) values, the first has \(d)")
            }
            guard v.allSatisfy({ $0.isFinite }) else {
                throw AbliterationError(file: source, key: "direction \(i + 1)", "holds NaN or infinite values")
            }
            var x = v.map(Double.init)
            let n0 = x.reduce(0) { $0 + $1 * $1 }.squareRoot()
            guard n0 > 0 else { throw AbliterationError(file: source, key: "direction \(i + 1)", "is zero") }
            for _ in 0..<2 {
                for u in rows {
                    var c = 0.0
                    for j in 0..<d { c += x[j] * u[j] }
                    for j in 0..<d { x[j] -= c * u[j] }
                }
            }
            let n = x.reduce(0) { $0 + $1 * $1 }.squareRoot()
            guard n > tolerance * n0 else {
                throw AbliterationError(file: source, key: "direction \(i + 1)",
                                        "lies in the span of the \(i) direction(s) before it, so the subspace has rank \(i), not \(directions.count)")
            }
            rows.append(x.map { $0 / n })
        }
        buffer = FloatBuffer(rows.flatMap { $0.map(Float.init) })
        rank = rows.count
        dModel = d
    }

    /// The basis of one direction (r̂).
    public init(_ unit: UnitDirection) { buffer = unit.buffer; rank = 1; dModel = unit.count }

    /// u_j as an array.
    public func vector(_ j: Int) -> [Float] { Array(UnsafeBufferPointer(start: buffer.p + j * dModel, count: dModel)) }
    public var vectors: [[Float]] { (0..<rank).map(vector) }

    /// The basis of the first `k` vectors.
    public func prefix(_ k: Int) throws -> OrthonormalBasis {
        guard k >= 1, k <= rank else { throw AbliterationError(file: "basis", key: "k", "k = \(k) is outside 1…\(rank)") }
        return try OrthonormalBasis((0..<k).map(vector))
    }

    /// x ← x − α Σ_j (x·u_j) u_j for one row x [d]; the coefficients are taken from x before any is removed.
    @inline(__always)
    func project(_ x: UnsafeMutablePointer<Float>, alpha: Float, scratch c: UnsafeMutablePointer<Float>) {
        let u = UnsafePointer(buffer.p), d = dModel
        for j in 0..<rank { c[j] = alpha * Kernels.dot(UnsafePointer(x), u + j * d, d) }
        for j in 0..<rank { Kernels.axpy(-c[j], u + j * d, x, d) }
    }

    /// Every row of `rows` [n, d] becomes x − α U Uᵀ x.
    public func projectRows(_ rows: UnsafeMutablePointer<Float>, count n: Int, alpha: Float) {
        let c = UnsafeMutablePointer<Float>.allocate(capacity: rank)
        defer { c.deallocate() }
        for i in 0..<n { project(rows + i * dModel, alpha: alpha, scratch: c) }
    }

    /// W [d, cols] (d = the residual width, the output index) becomes W − α U (Uᵀ W).
    public func projectOutputIndex(_ w: UnsafeMutablePointer<Float>, cols: Int, alpha: Float) {
        let d = dModel, u = buffer.p
        let v = UnsafeMutablePointer<Float>.allocate(capacity: max(rank * cols, 1))   // Uᵀ W, [k, cols]
        defer { v.deallocate() }
        v.initialize(repeating: 0, count: rank * cols)
        for j in 0..<rank {
            for i in 0..<d { Kernels.axpy(u[j * d + i], UnsafePointer(w + i * cols), v + j * cols, cols) }
        }
        for i in 0..<d {
            for j in 0..<rank { Kernels.axpy(-alpha * u[j * d + i], UnsafePointer(v + j * cols), w + i * cols, cols) }
        }
    }
}

/// How the writers' outputs lose the subspace.
public enum EditForm: String, Sendable, Codable, CaseIterable {
    /// W ← (I − α U Uᵀ) W (Arditi et al.).
    case project
    /// Norm-preserving (after grimjim's norm-preserving abliteration): each edited row of the PyTorch-layout
    /// matrix keeps its norm. For a writing matrix W [d, n] with row norms s_i: W ← diag(s / t) · P · diag(1/s) · W,
    /// P = I − α U Uᵀ, t_i the row norms of P · diag(1/s) · W (a zero row stays zero). For the embedding
    /// [vocab, d] each token's row e ← |e| · P e / |P e|.
    case normPreserving = "norm-preserving"
}

/// Which directions each residual writer loses: the token embedding and each block's attention and MLP
/// outputs, each with its own orthonormal basis (nil: left unchanged), strength α and form.
///
/// The inference-time hooks (`hooks`) and the weight edit (`export`, `editMatrix`) are the same linear map
/// on each writer's output, so they give the same residual stream (see `Ablation` for the argument; for
/// the norm-preserving form the map diag(s/t)·P·diag(1/s) is still linear in the written vector, with
/// s and t from the writer's weights, and a bias b becomes the same map of b).
public struct AblationEdit: Sendable {
    public var embedding: OrthonormalBasis?
    /// Block l's attention and MLP outputs lose `blocks[l]` (missing or nil: unchanged).
    public var blocks: [Int: OrthonormalBasis]
    public var alpha: Float
    public var form: EditForm

    public init(embedding: OrthonormalBasis?, blocks: [Int: OrthonormalBasis], alpha: Float = 1, form: EditForm = .project) {
        self.embedding = embedding; self.blocks = blocks; self.alpha = alpha; self.form = form
    }

    /// One basis for every writer of the scheme (Arditi: embedding and every block; the study's: the
    /// scheme's blocks only).
    public static func uniform(_ basis: OrthonormalBasis, nLayers: Int, scheme: EditScheme = .arditi,
                               alpha: Float = 1, form: EditForm = .project) -> AblationEdit {
        var b: [Int: OrthonormalBasis] = [:]
        for l in scheme.layers(nLayers) { b[l] = basis }
        return AblationEdit(embedding: scheme.embedding ? basis : nil, blocks: b, alpha: alpha, form: form)
    }

    /// Per-layer directions: `directions[l]` is the direction measured in the residual stream block l
    /// writes into (its output, the cache's layer l + 1); block l's attention and MLP outputs lose
    /// direction l, and the embedding (Arditi's scheme) loses direction 0. One entry per block.
    public static func perLayer(_ directions: [[Float]], nLayers: Int, scheme: EditScheme = .arditi,
                                alpha: Float = 1, form: EditForm = .project) throws -> AblationEdit {
        guard directions.count >= nLayers else {
            throw AbliterationError(file: "per-layer directions", "\(directions.count) directions for \(nLayers) blocks; one per block is needed")
        }
        var b: [Int: OrthonormalBasis] = [:]
        for l in scheme.layers(nLayers) { b[l] = try OrthonormalBasis([directions[l]], source: "per-layer direction \(l)") }
        return AblationEdit(embedding: scheme.embedding ? try OrthonormalBasis([directions[0]], source: "per-layer direction 0") : nil,
                            blocks: b, alpha: alpha, form: form)
    }

    var widths: Set<Int> { Set(([embedding].compactMap { $0 } + Array(blocks.values)).map(\.dModel)) }

    /// The row scales of a norm-preserving edit of one writing matrix W [d, cols]: s (row norms of W) and
    /// s / t (see `EditForm.normPreserving`), both [d].
    public static func rowScales(_ w: UnsafePointer<Float>, rows d: Int, cols: Int, basis: OrthonormalBasis, alpha: Float) -> (inverse: [Float], out: [Float]) {
        var s = [Float](repeating: 0, count: d)
        var tmp = [Float](repeating: 0, count: d * cols)
        for i in 0..<d {
            var acc = 0.0
            for j in 0..<cols { acc += Double(w[i * cols + j]) * Double(w[i * cols + j]) }
            s[i] = Float(acc.squareRoot())
            let inv: Float = s[i] > 0 ? 1 / s[i] : 0
            for j in 0..<cols { tmp[i * cols + j] = w[i * cols + j] * inv }
        }
        tmp.withUnsafeMutableBufferPointer { basis.projectOutputIndex($0.baseAddress!, cols: cols, alpha: alpha) }
        var inverse = [Float](repeating: 0, count: d), out = [Float](repeating: 0, count: d)
        for i in 0..<d {
            var acc = 0.0
            for j in 0..<cols { acc += Double(tmp[i * cols + j]) * Double(tmp[i * cols + j]) }
            let t = Float(acc.squareRoot())
            inverse[i] = s[i] > 0 ? 1 / s[i] : 0
            out[i] = (s[i] > 0 && t > 0) ? s[i] / t : 0
        }
        return (inverse, out)
    }

    /// Edits one writing matrix W [d, cols] in place (and its bias [d], when given).
    public func editMatrix(_ w: UnsafeMutablePointer<Float>, cols: Int, basis: OrthonormalBasis, bias: UnsafeMutablePointer<Float>? = nil) {
        let d = basis.dModel
        switch form {
        case .project:
            basis.projectOutputIndex(w, cols: cols, alpha: alpha)
            if let bias { basis.projectRows(bias, count: 1, alpha: alpha) }
        case .normPreserving:
            let (inv, out) = Self.rowScales(UnsafePointer(w), rows: d, cols: cols, basis: basis, alpha: alpha)
            for i in 0..<d { for j in 0..<cols { w[i * cols + j] *= inv[i] } }
            basis.projectOutputIndex(w, cols: cols, alpha: alpha)
            for i in 0..<d { for j in 0..<cols { w[i * cols + j] *= out[i] } }
            if let bias { Self.scaledProject(bias, inv, out, basis, alpha) }
        }
    }

    /// Edits embedding rows [n, d] in place.
    public func editEmbeddingRows(_ rows: UnsafeMutablePointer<Float>, count n: Int, basis: OrthonormalBasis) {
        switch form {
        case .project: basis.projectRows(rows, count: n, alpha: alpha)
        case .normPreserving: for i in 0..<n { Self.keepNorm(rows + i * basis.dModel, basis, alpha) }
        }
    }

    /// x ← |x| · P x / |P x| (a zero result stays zero).
    static func keepNorm(_ x: UnsafeMutablePointer<Float>, _ b: OrthonormalBasis, _ alpha: Float) {
        let d = b.dModel
        let n0 = Kernels.dot(UnsafePointer(x), UnsafePointer(x), d).squareRoot()
        b.projectRows(x, count: 1, alpha: alpha)
        let n1 = Kernels.dot(UnsafePointer(x), UnsafePointer(x), d).squareRoot()
        let f: Float = n1 > 0 ? n0 / n1 : 0
        for j in 0..<d { x[j] *= f }
    }

    /// x ← out ⊙ P (inv ⊙ x).
    static func scaledProject(_ x: UnsafeMutablePointer<Float>, _ inv: [Float], _ out: [Float], _ b: OrthonormalBasis, _ alpha: Float) {
        let d = b.dModel
        for j in 0..<d { x[j] *= inv[j] }
        b.projectRows(x, count: 1, alpha: alpha)
        for j in 0..<d { x[j] *= out[j] }
    }

    /// The inference-time hooks. The norm-preserving form needs each edited block's row scales, read
    /// from the model's writing matrices by `matrix(layer, mlp)` ([d, cols] values and cols; see
    /// `GGUFWriters`); the projection form needs none.
    public func hooks(nLayers: Int, matrix: ((Int, Bool) throws -> (values: [Float], cols: Int))? = nil) throws -> HookSet {
        var set = HookSet()
        guard alpha != 0 else { return set }
        if let e = embedding {
            let a = alpha, f = form, n = e.dModel
            set.add(layer: 0, point: .residPre) { act in
                guard act.dModel == n else { return }
                if f == .project { e.projectRows(act.rows, count: act.rowCount, alpha: a) } else {
                    for i in 0..<act.rowCount { Self.keepNorm(act.rows + i * n, e, a) }
                }
            }
        }
        for l in blocks.keys.sorted() where l < nLayers {
            let b = blocks[l]!, a = alpha, n = b.dModel
            for (point, mlp) in [(HookPoint.attnOut, false), (.mlpOut, true)] {
                if form == .project {
                    set.add(layer: l, point: point) { act in
                        guard act.dModel == n else { return }
                        b.projectRows(act.rows, count: act.rowCount, alpha: a)
                    }
                } else {
                    guard let matrix else {
                        throw AbliterationError(file: "norm-preserving ablation", "the hooks need the model's writing matrices for their row norms")
                    }
                    let (w, cols) = try matrix(l, mlp)
                    guard w.count == n * cols else {
                        throw AbliterationError(file: "norm-preserving ablation", key: "blk.\(l).\(mlp ? "ffn_down" : "attn_output").weight",
                                                "has \(w.count) values, not \(n) × \(cols)")
                    }
                    let (inv, out) = w.withUnsafeBufferPointer { Self.rowScales($0.baseAddress!, rows: n, cols: cols, basis: b, alpha: a) }
                    set.add(layer: l, point: point) { act in
                        guard act.dModel == n else { return }
                        for i in 0..<act.rowCount { Self.scaledProject(act.rows + i * n, inv, out, b, a) }
                    }
                }
            }
        }
        return set
    }
}

/// The residual-writing matrices of a llama.cpp GGUF, dequantized to Float32 (PyTorch layout [d, cols]).
public enum GGUFWriters {
    /// A reader for `AblationEdit.hooks(matrix:)`: block l's `attn_output` (mlp false) or `ffn_down` (true).
    public static func reader(_ path: String) throws -> (Int, Bool) throws -> (values: [Float], cols: Int) {
        let f = try GGUFFile(path: path)
        return { l, mlp in
            let name = "blk.\(l).\(mlp ? "ffn_down" : "attn_output").weight"
            guard let t = f.tensorInfo(name), t.shape.count == 2 else {
                throw AbliterationError(file: path, key: name, "tensor missing or not a matrix; is this a llama / qwen2 model?")
            }
            return (try f.dequantize(t), t.shape[1])
        }
    }
}

/// Directions for subspace ablation, from fit activations at one site.
public enum SubspaceBases {
    /// The leading `k` principal axes (right singular vectors, uncentered) of the harmful − harmless
    /// differences D = H − 1 μ_Aᵀ (each harmful fit activation minus the harmless fit mean), each signed
    /// towards the mean difference μ_H − μ_A, orthonormal. `harmful` [n, d], `harmlessMean` [d].
    public static func principalAxes(harmful: Matrix, harmlessMean: [Float], k: Int) throws -> OrthonormalBasis {
        let n = harmful.rows, d = harmful.cols
        guard harmlessMean.count == d, n >= 1 else {
            throw AbliterationError(file: "subspace basis", "harmful activations [\(n), \(d)] and a harmless mean of \(harmlessMean.count) values do not fit")
        }
        guard k >= 1, k <= min(n, d) else {
            throw AbliterationError(file: "subspace basis", key: "k", "k = \(k) needs at least k harmful fit prompts (there are \(n)) and k ≤ d_model \(d)")
        }
        var diff = Matrix(rows: n, cols: d)
        var meanDiff = [Double](repeating: 0, count: d)
        for i in 0..<n {
            for j in 0..<d {
                let v = harmful.data[i * d + j] - harmlessMean[j]
                diff.data[i * d + j] = v
                meanDiff[j] += Double(v)
            }
        }
        let s = try svd(diff)
        var axes: [[Float]] = []
        for a in 0..<k {
            var v = s.vt.row(a)
            var c = 0.0
            for j in 0..<d { c += Double(v[j]) * meanDiff[j] }
            if c < 0 { v = v.map { -$0 } }
            axes.append(v)
        }
        return try OrthonormalBasis(axes, source: "principal axes of the harmful − harmless differences")
    }

    /// The part of r orthogonal to the harmless mean: r − (r·μ̂_A) μ̂_A (grimjim's projected abliteration).
    public static func projected(_ r: [Float], harmlessMean m: [Float]) throws -> [Float] {
        guard r.count == m.count else {
            throw AbliterationError(file: "projected direction", "the direction has \(r.count) values, the harmless mean \(m.count)")
        }
        let mm = m.reduce(0.0) { $0 + Double($1) * Double($1) }
        guard mm > 0 else { throw AbliterationError(file: "projected direction", "the harmless mean is zero") }
        var c = 0.0
        for j in 0..<r.count { c += Double(r[j]) * Double(m[j]) }
        c /= mm
        return (0..<r.count).map { Float(Double(r[$0]) - c * Double(m[$0])) }
    }

    /// Cache layers ordered by distance from `center` (ties: the earlier layer first), within 0..<count.
    public static func layersAround(_ center: Int, count: Int, k: Int) -> [Int] {
        var out = [center]
        var step = 1
        while out.count < min(k, count) {
            if center - step >= 0 { out.append(center - step) }
            if out.count < k, center + step < count { out.append(center + step) }
            step += 1
            if step > count { break }
        }
        return Array(out.prefix(k))
    }
}

/// Measurements of one ablated system against the original, for sweeps (subspace ablation).
public enum SweepMeasure {
    /// KL(original ‖ ablated) of the next-token distribution at the last position of each prompt
    /// (chat-formatted token ids), in nats, in prompt order.
    public static func lastPositionKL(model: ChatModel, prompts: [[Int]], hooks: HookSet, batch: Int = 16) throws -> [Double] {
        let vocab = model.config.vocab
        let base = try CandidateScoring.lastLogits(model, prompts, hooks: HookSet(), batch: batch)
        let abl = try CandidateScoring.lastLogits(model, prompts, hooks: hooks, batch: batch)
        return base.data.withUnsafeBufferPointer { b in
            abl.data.withUnsafeBufferPointer { a in
                (0..<prompts.count).map { CandidateScoring.kl(b.baseAddress! + $0 * vocab, a.baseAddress! + $0 * vocab, vocab: vocab) }
            }
        }
    }

    /// Greedy answers (decoded; a thinking model's answer after its think block) to chat-formatted prompts.
    /// A non-finite value stops with an error naming the prompt.
    public static func answers(model: ChatModel, prompts: [[Int]], ids: [String], hooks: HookSet, maxNewTokens: Int, batch: Int) throws -> [String] {
        let gen = Generator(model: model.transformer)
        let results = try gen.generate(prompts: prompts, options: GenerationOptions(maxNewTokens: maxNewTokens, eosIds: model.eosIds,
                                                                                    sampling: .greedy, maxBatch: batch), hooks: hooks)
        return try results.enumerated().map { i, r in
            if let bad = r.nonFinite {
                throw AbliterationError(file: model.path, key: ids[i], "non-finite value while answering: \(bad)")
            }
            return model.splitThinking(model.decode(r.tokens)).1
        }
    }
}

extension SweepMeasure {
    /// Teacher-forced cross-entropy of `answer` after `prompt` (token ids) under `hooks`: the sum over
    /// answer tokens of −log p(token | everything before), in nats (Double, in token order), and the
    /// number of tokens. One sequence per forward pass.
    public static func answerNLL(model: ChatModel, prompt: [Int], answer: [Int], hooks: HookSet) throws -> (sum: Double, tokens: Int) {
        guard !prompt.isEmpty, !answer.isEmpty else { return (0, 0) }
        let t = model.transformer
        let vocab = t.config.vocab
        let logits = try t.forward([ForwardItem(cache: t.makeCache(), tokens: prompt + answer)], hooks: hooks, logits: .all)
        var sum = 0.0
        logits.data.withUnsafeBufferPointer { p in
            for j in 0..<answer.count {
                let row = p.baseAddress! + (prompt.count - 1 + j) * vocab
                var m = -Float.infinity
                for v in 0..<vocab { m = max(m, row[v]) }
                var z = 0.0
                for v in 0..<vocab { z += Foundation.exp(Double(row[v] - m)) }
                sum += Foundation.log(z) - Double(row[answer[j]] - m)
            }
        }
        return (sum, answer.count)
    }
}
