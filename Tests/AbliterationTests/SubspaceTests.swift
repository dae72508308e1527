import Foundation
import Testing
import LinearAlgebra
import ModelRuntime
@testable import Abliteration

/// Independent Double-precision reference: x − α Σ_j (x·u_j) u_j with u from the basis.
private func referenceProject(_ x: [Float], _ u: [[Float]], alpha: Double) -> [Double] {
    var out = x.map(Double.init)
    let c = u.map { dot(x, $0) }
    for (j, v) in u.enumerated() { for i in 0..<x.count { out[i] -= alpha * c[j] * Double(v[i]) } }
    return out
}

private func maxAbs(_ a: [Double]) -> Double { a.map(abs).max() ?? 0 }

@Suite("Subspace ablation: the mathematics of removing k orthonormal directions")
struct SubspaceMathTests {
    @Test("Gram–Schmidt gives an orthonormal basis spanning the given directions", arguments: [1, 2, 4, 8])
    func orthonormalBasis(_ k: Int) throws {
        var rng = TestRNG(UInt64(100 + k))
        let d = 64
        let dirs = (0..<k).map { _ in rng.vector(d) }
        let b = try OrthonormalBasis(dirs)
        #expect(b.rank == k)
        for i in 0..<k { for j in 0..<k { #expect(abs(dot(b.vector(i), b.vector(j)) - (i == j ? 1 : 0)) < 1e-5) } }
        // Each direction lies in the span: removing the span leaves (relatively) nothing.
        for v in dirs { #expect(maxAbs(referenceProject(v, b.vectors, alpha: 1)) / norm(v) < 1e-5) }
        // u_1 is the first direction normalised.
        #expect(relativeL2(b.vector(0), unitVector(dirs[0])) < 1e-6)
    }

    @Test("a direction in the span of the earlier ones is an error naming it")
    func dependentDirectionThrows() throws {
        var rng = TestRNG(5)
        let a = rng.vector(16), b = rng.vector(16)
        let c = zip(a, b).map { 2 * $0 - 0.5 * $1 }
        #expect(throws: AbliterationError.self) { try OrthonormalBasis([a, b, c]) }
        #expect(throws: AbliterationError.self) { try OrthonormalBasis([a, [Float](repeating: 0, count: 16)]) }
        #expect(throws: AbliterationError.self) { try OrthonormalBasis([a, Array(b.prefix(8))]) }
    }

    @Test("rows lose exactly the k components: x·u_j = 0 after, the orthogonal part unchanged, α scales", arguments: [1, 2, 4, 8])
    func rowsLoseExactlyKComponents(_ k: Int) throws {
        var rng = TestRNG(UInt64(200 + k))
        let d = 96, n = 5
        let b = try OrthonormalBasis((0..<k).map { _ in rng.vector(d) })
        let rows = (0..<n).map { _ in rng.vector(d) }
        for alpha in [1.0, 0.5] {
            var flat = rows.flatMap { $0 }
            flat.withUnsafeMutableBufferPointer { b.projectRows($0.baseAddress!, count: n, alpha: Float(alpha)) }
            for i in 0..<n {
                let got = Array(flat[(i * d)..<((i + 1) * d)])
                let want = referenceProject(rows[i], b.vectors, alpha: alpha)
                #expect(maxAbs(zip(got, want).map { Double($0) - $1 }) < 1e-5 * norm(rows[i]))
                for j in 0..<k {
                    // the component along u_j is (1 − α) times the original's
                    #expect(abs(dot(got, b.vector(j)) - (1 - alpha) * dot(rows[i], b.vector(j))) < 1e-5 * norm(rows[i]))
                }
            }
            if alpha == 1 {
                // P² = P: projecting again changes nothing (beyond rounding).
                var again = flat
                again.withUnsafeMutableBufferPointer { b.projectRows($0.baseAddress!, count: n, alpha: 1) }
                #expect(relativeL2(again, flat) < 1e-6)
            }
        }
    }

    @Test("W [d, n] becomes (I − α U Uᵀ) W, so Uᵀ W' = (1 − α) Uᵀ W", arguments: [1, 4])
    func outputIndexProjection(_ k: Int) throws {
        var rng = TestRNG(UInt64(300 + k))
        let d = 40, cols = 24
        let b = try OrthonormalBasis((0..<k).map { _ in rng.vector(d) })
        let w = rng.vector(d * cols)
        for alpha in [1.0, 0.25] {
            var e = w
            e.withUnsafeMutableBufferPointer { b.projectOutputIndex($0.baseAddress!, cols: cols, alpha: Float(alpha)) }
            // column j of W is the write of input j: it must equal the reference projection of that column
            for j in 0..<cols {
                let col = (0..<d).map { w[$0 * cols + j] }, got = (0..<d).map { e[$0 * cols + j] }
                let want = referenceProject(col, b.vectors, alpha: alpha)
                #expect(maxAbs(zip(got, want).map { Double($0) - $1 }) < 1e-5 * norm(col))
            }
        }
    }

    @Test("norm-preserving edit: every row keeps its norm and W' = diag(s/t) P diag(1/s) W, bias mapped alike")
    func normPreservingRows() throws {
        var rng = TestRNG(77)
        let d = 32, cols = 20
        let b = try OrthonormalBasis([rng.vector(d), rng.vector(d)])
        var w = rng.vector(d * cols)
        for j in 0..<cols { w[3 * cols + j] = 0 }   // a zero row stays zero
        let bias0 = rng.vector(d)
        // reference in Double
        let s = (0..<d).map { i in (0..<cols).reduce(0.0) { $0 + Double(w[i * cols + $1]) * Double(w[i * cols + $1]) }.squareRoot() }
        var dirW = [Double](repeating: 0, count: d * cols)
        for i in 0..<d where s[i] > 0 { for j in 0..<cols { dirW[i * cols + j] = Double(w[i * cols + j]) / s[i] } }
        for j in 0..<cols {
            let col = (0..<d).map { Float(dirW[$0 * cols + j]) }
            let p = referenceProject(col, b.vectors, alpha: 1)
            for i in 0..<d { dirW[i * cols + j] = p[i] }
        }
        let t = (0..<d).map { i in (0..<cols).reduce(0.0) { $0 + dirW[i * cols + $1] * dirW[i * cols + $1] }.squareRoot() }
        let edit = AblationEdit(embedding: nil, blocks: [:], alpha: 1, form: .normPreserving)
        var e = w, bias = bias0
        e.withUnsafeMutableBufferPointer { wp in bias.withUnsafeMutableBufferPointer { edit.editMatrix(wp.baseAddress!, cols: cols, basis: b, bias: $0.baseAddress!) } }
        for i in 0..<d {
            let row = Array(e[(i * cols)..<((i + 1) * cols)])
            #expect(abs(norm(row) - s[i]) < 1e-5 * max(s[i], 1), "row \(i)")
            for j in 0..<cols {
                let want = s[i] > 0 && t[i] > 0 ? dirW[i * cols + j] * s[i] / t[i] : 0
                #expect(abs(Double(row[j]) - want) < 1e-5 * max(s[i], 1))
            }
        }
        // the bias b' = diag(s/t) P diag(1/s) b
        let scaled = (0..<d).map { s[$0] > 0 ? Float(Double(bias0[$0]) / s[$0]) : 0 }
        let pb = referenceProject(scaled, b.vectors, alpha: 1)
        for i in 0..<d {
            let want = s[i] > 0 && t[i] > 0 ? pb[i] * s[i] / t[i] : 0
            #expect(abs(Double(bias[i]) - want) < 1e-5 * max(abs(want), 1))
        }
        // embedding rows: |e'| = |e| and e' ⟂ U
        var rows = rng.vector(3 * d)
        let before = (0..<3).map { norm(Array(rows[($0 * d)..<(($0 + 1) * d)])) }
        rows.withUnsafeMutableBufferPointer { edit.editEmbeddingRows($0.baseAddress!, count: 3, basis: b) }
        for i in 0..<3 {
            let r = Array(rows[(i * d)..<((i + 1) * d)])
            #expect(abs(norm(r) - before[i]) < 1e-5 * before[i])
            for j in 0..<2 { #expect(abs(dot(r, b.vector(j))) < 1e-5 * before[i]) }
        }
    }

    @Test("projected direction: orthogonal to the harmless mean, and r minus it is parallel to the mean")
    func projectedDirection() throws {
        var rng = TestRNG(9)
        let r = rng.vector(50), m = rng.vector(50)
        let p = try SubspaceBases.projected(r, harmlessMean: m)
        #expect(abs(dot(p, m)) < 1e-5 * norm(r) * norm(m))
        let diff = zip(r, p).map { $0 - $1 }
        // |cos(diff, m)| = 1
        #expect(abs(abs(dot(diff, m)) / (norm(diff) * norm(m)) - 1) < 1e-5)
        #expect(throws: AbliterationError.self) { try SubspaceBases.projected(r, harmlessMean: [Float](repeating: 0, count: 50)) }
    }

    @Test("principal axes of planted harmful − harmless differences D = Σ σ_j a_j v_jᵀ are ±v_j in order of σ, signed towards the mean difference")
    func principalAxesOfPlantedData() throws {
        var rng = TestRNG(31)
        let n = 8, d = 12
        let a = try OrthonormalBasis((0..<3).map { _ in rng.vector(n) }).vectors   // left singular vectors [n]
        let v = try OrthonormalBasis((0..<3).map { _ in rng.vector(d) }).vectors   // right singular vectors [d]
        let sigma: [Float] = [9, 4, 1.5]
        let mu = rng.vector(d)
        var h = Matrix(rows: n, cols: d)
        for i in 0..<n { for j in 0..<d {
            var x = mu[j]
            for c in 0..<3 { x += sigma[c] * a[c][i] * v[c][j] }
            h.data[i * d + j] = x
        } }
        let b = try SubspaceBases.principalAxes(harmful: h, harmlessMean: mu, k: 3)
        var meanDiff = [Float](repeating: 0, count: d)
        for i in 0..<n { for j in 0..<d { meanDiff[j] += (h.data[i * d + j] - mu[j]) / Float(n) } }
        for c in 0..<3 {
            #expect(abs(abs(dot(b.vector(c), v[c])) - 1) < 1e-4, "axis \(c)")
            #expect(dot(b.vector(c), meanDiff) >= -1e-6)
        }
        #expect(throws: AbliterationError.self) { try SubspaceBases.principalAxes(harmful: h, harmlessMean: mu, k: n + 1) }
    }

    @Test("layers around the chosen one: chosen, −1, +1, −2, … within range")
    func layersAround() {
        #expect(SubspaceBases.layersAround(5, count: 30, k: 4) == [5, 4, 6, 3])
        #expect(SubspaceBases.layersAround(0, count: 30, k: 3) == [0, 1, 2])
        #expect(SubspaceBases.layersAround(29, count: 30, k: 3) == [29, 28, 27])
        #expect(SubspaceBases.layersAround(1, count: 3, k: 8) == [1, 0, 2])
    }

    @Test("new method names round-trip through system names")
    func methodNames() throws {
        for m in [DirectionMethod.perLayer, .projected, .normPreserving] {
            let s = AbliterationSetting(checkpoint: "SmolLM2-135M", method: m, layer: 12, position: -1, alpha: 1)
            let back = try SystemName.parse(s.systemName)
            #expect(back.setting == s)
        }
    }
}

extension RealModelTests {
/// Inference-time hooks against exported weights on the real SmolLM2 model, for the new edits.
@Suite(.enabled(if: TestModels.loadableGGUF != nil, "needs GGUF weight loading and the SmolLM2 GGUF"))
struct SubspaceExportTests {
    func compare(_ edit: AblationEdit, hooks: HookSet, tag: String, n: Int = 12) throws -> ChatModel {
        let src = try #require(TestModels.loadableGGUF)
        let m = try TestModels.chat(src)
        let dir = try TestModels.tempDir(tag)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try Orthogonalization.export(source: src, edit: edit, type: .f32, to: dir + "/e.gguf")
        let e = try ChatModel(path: dir + "/e.gguf")
        for p in testPrompts.prefix(2) {
            let ids = m.encodeChat(user: p)
            let a = try greedy(m.transformer, prompt: ids, n: n, hooks: hooks)
            let b = try greedy(e.transformer, prompt: ids, n: n)
            #expect(a.tokens == b.tokens, "\(tag): \(p)")
            for (x, y) in zip(a.logits, b.logits) { #expect(relativeL2(y, x) < 1e-3, "\(tag)") }
            // and the edit changes the model
            let o = try greedy(m.transformer, prompt: ids, n: 1)
            #expect(relativeL2(o.logits[0], a.logits[0]) > 1e-4, "\(tag) is not a no-op")
        }
        return e
    }

    @Test("k = 4 subspace: exported weights equal the hooks, and every residual hook is orthogonal to all 4 directions")
    func subspaceExportMatchesHooks() throws {
        let src = try #require(TestModels.loadableGGUF)
        let m = try TestModels.chat(src)
        let c = m.config
        var rng = TestRNG(404)
        let b = try OrthonormalBasis((0..<4).map { _ in rng.vector(c.dModel) })
        let edit = AblationEdit.uniform(b, nLayers: c.nLayers)
        let hooks = try edit.hooks(nLayers: c.nLayers)
        _ = try compare(edit, hooks: hooks, tag: "subspace")
        for j in 0..<4 {
            let probe = RealModelTests.ModelAblationTests.ProjectionProbe(b.vector(j))
            var h = hooks
            h.merge(probe.hooks(nLayers: c.nLayers))
            _ = try greedy(m.transformer, prompt: m.encodeChat(user: testPrompts[0]), n: 3, hooks: h)
            #expect(probe.worst < 1e-3, "direction \(j): \(probe.worst)")
        }
    }

    @Test("per-layer directions: exported weights equal the hooks")
    func perLayerExportMatchesHooks() throws {
        let src = try #require(TestModels.loadableGGUF)
        let c = try TestModels.chat(src).config
        var rng = TestRNG(505)
        let edit = try AblationEdit.perLayer((0..<c.nLayers).map { _ in rng.vector(c.dModel) }, nLayers: c.nLayers)
        #expect(edit.blocks.count == c.nLayers && edit.embedding != nil)
        _ = try compare(edit, hooks: try edit.hooks(nLayers: c.nLayers), tag: "per-layer")
    }

    @Test("norm-preserving: exported weights equal the hooks (row norms from the GGUF), and edited rows keep their norms")
    func normPreservingExportMatchesHooks() throws {
        let src = try #require(TestModels.loadableGGUF)
        let c = try TestModels.chat(src).config
        var rng = TestRNG(606)
        let edit = AblationEdit.uniform(try OrthonormalBasis([rng.vector(c.dModel)]), nLayers: c.nLayers, form: .normPreserving)
        #expect(throws: AbliterationError.self) { try edit.hooks(nLayers: c.nLayers) }
        let hooks = try edit.hooks(nLayers: c.nLayers, matrix: try GGUFWriters.reader(src))
        let src0 = try GGUFWriters.reader(src)
        let dir = try TestModels.tempDir("np-rows")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try Orthogonalization.export(source: src, edit: edit, type: .f32, to: dir + "/np.gguf")
        let edited = try GGUFWriters.reader(dir + "/np.gguf")
        for (l, mlp) in [(0, false), (c.nLayers / 2, true)] {
            let (w0, cols) = try src0(l, mlp), (w1, _) = try edited(l, mlp)
            var worst = 0.0, moved = 0.0
            for i in 0..<c.dModel {
                let a = norm(w0[(i * cols)..<((i + 1) * cols)]), b = norm(w1[(i * cols)..<((i + 1) * cols)])
                worst = max(worst, abs(a - b) / max(a, 1e-12))
                moved = max(moved, relativeL2(Array(w1[(i * cols)..<((i + 1) * cols)]), Array(w0[(i * cols)..<((i + 1) * cols)])))
            }
            #expect(worst < 1e-5, "layer \(l): row norms change by \(worst)")
            #expect(moved > 1e-4, "layer \(l): the rows were edited")
        }
        _ = try compare(edit, hooks: hooks, tag: "norm-preserving")
    }

    @Test("the single-direction export is the k = 1 edit")
    func singleDirectionIsRankOne() throws {
        let src = try #require(TestModels.loadableGGUF)
        let c = try TestModels.chat(src).config
        var rng = TestRNG(707)
        let r = rng.vector(c.dModel)
        let dir = try TestModels.tempDir("rank1")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try Orthogonalization.export(source: src, direction: r, alpha: 1, type: .f32, to: dir + "/a.gguf")
        try Orthogonalization.export(source: src, edit: AblationEdit.uniform(try OrthonormalBasis([r]), nLayers: c.nLayers), type: .f32, to: dir + "/b.gguf")
        let a = try GGUFFile(path: dir + "/a.gguf"), b = try GGUFFile(path: dir + "/b.gguf")
        for name in ["token_embd.weight", "blk.3.attn_output.weight", "blk.7.ffn_down.weight"] {
            #expect(Array(try a.rawData(a.tensorInfo(name)!)) == Array(try b.rawData(b.tensorInfo(name)!)), "\(name)")
        }
    }
}
}

extension RealModelTests {
@Suite(.enabled(if: TestModels.any != nil, "needs the SmolLM2 model"))
struct AnswerCrossEntropyTests {
    /// The teacher-forced cross-entropy of one pass over prompt + answer equals the sum of −log p(answer_j)
    /// read from incremental decoding (KV cache, one token per step): two different code paths.
    @Test("teacher-forced cross-entropy equals the incremental −log p sum, with and without an ablation")
    func teacherForcedEqualsIncremental() throws {
        let m = try TestModels.chat(try #require(TestModels.any))
        let c = m.config
        let prompt = m.encodeChat(user: testPrompts[1])
        let answer = m.tokenizer.encode("The sea is wide and blue, it sings to me.", parseSpecial: false).map(Int.init)
        var rng = TestRNG(808)
        let ablate = try AblationEdit.uniform(try OrthonormalBasis([rng.vector(c.dModel), rng.vector(c.dModel)]), nLayers: c.nLayers).hooks(nLayers: c.nLayers)
        for hooks in [HookSet(), ablate] {
            let got = try SweepMeasure.answerNLL(model: m, prompt: prompt, answer: answer, hooks: hooks)
            #expect(got.tokens == answer.count)
            let cache = m.transformer.makeCache()
            var logits = try m.transformer.forward([ForwardItem(cache: cache, tokens: prompt)], hooks: hooks)
            var want = 0.0
            for t in answer {
                let mx = logits.data.max()!
                let z = logits.data.reduce(0.0) { $0 + exp(Double($1 - mx)) }
                want += log(z) - Double(logits.data[t] - mx)
                logits = try m.transformer.forward([ForwardItem(cache: cache, tokens: [t])], hooks: hooks)
            }
            #expect(abs(got.sum - want) < 1e-3 * max(want, 1), "\(got.sum) vs \(want)")
        }
    }
}
}
