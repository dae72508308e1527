import Foundation
import ModelRuntime

/// Inference-time directional ablation with strength α, as hooks on the runtime's forward pass.
///
/// Every row x of the hooked activations becomes x − α (x·r̂) r̂ (r̂ = r / |r|). Applied where something
/// *writes* into the residual stream — the embeddings (`blocks.0.hook_resid_pre`) and every block's
/// attention output (`hook_attn_out`) and MLP output (`hook_mlp_out`) — during prefill and decoding alike.
///
/// Why this equals weight orthogonalization for any α: the residual stream before block l is
/// x_l = e + Σ_{k<l} (a_k + m_k), a sum of what the embedding and the blocks wrote. Each writer is linear
/// in its last matrix: a_k = W_O h_k, m_k = W_down g_k, e = E[token]. With P = I − α r̂ r̂ᵀ,
/// P a_k = (P W_O) h_k, P m_k = (P W_down) g_k and P e = (P-applied embedding row), so replacing each
/// writer's output by its projection (these hooks) and replacing each writing matrix W by P W (the
/// `Orthogonalization` edit) produce the same residual stream at every layer, whatever α is (neither
/// needs P² = P). Everything that *reads* the stream (norms, Q/K/V, gate/up, the output head) is left
/// unchanged in both; in particular the output head must stay the original embedding for tied models.
/// The projection does not commute with the RMS norms, so it must sit on the writers, not on the reads.
///
/// Additionally projecting at every `resid_pre` (`everyResidPre`) is only meaningful for α = 1: there the
/// stream is already orthogonal to r̂ and the extra projection only removes rounding residue; for α ≠ 1
/// it would shrink the component again at every block and no longer match the weight edit.
public enum Ablation {
    /// The hook set for directional ablation with strength `alpha` over a model of `nLayers` blocks.
    /// Throws when the direction is empty, not finite or zero, or when `everyResidPre` is used with α ≠ 1.
    public static func hooks(direction: [Float], alpha: Float = 1, nLayers: Int,
                             everyResidPre: Bool = false, scheme: EditScheme = .arditi) throws -> HookSet {
        let unit = try UnitDirection(direction)
        if everyResidPre && alpha != 1 {
            throw AbliterationError(file: "ablation", key: "alpha",
                                    "projecting at every resid_pre only matches weight orthogonalization for alpha = 1, not \(alpha)")
        }
        if everyResidPre && scheme.kind != .arditi {
            throw AbliterationError(file: "ablation", key: "edit", "projecting at every resid_pre is Arditi et al.'s scheme only")
        }
        var set = HookSet()
        guard alpha != 0 else { return set }
        let hook = unit.hook(alpha: alpha)
        if scheme.kind == .study {
            // The study's edit: attention and MLP outputs of layers [skipBegin, L − skipEnd), no embedding
            // (= W ← W − α r̂ r̂ᵀ W on their o_proj and down_proj).
            for l in scheme.layers(nLayers) {
                set.add(layer: l, point: .attnOut, hook)
                set.add(layer: l, point: .mlpOut, hook)
            }
            return set
        }
        set.add(layer: 0, point: .residPre, hook)
        for l in 0..<nLayers {
            set.add(layer: l, point: .attnOut, hook)
            set.add(layer: l, point: .mlpOut, hook)
            if everyResidPre && l > 0 { set.add(layer: l, point: .residPre, hook) }
        }
        return set
    }

    /// Activation addition: every row of `blocks.<layer>.hook_resid_pre` becomes x + β r (r as given, not
    /// normalised), during prefill and decoding; used to induce refusal on harmless prompts.
    public static func addition(direction: [Float], beta: Float, layer: Int) throws -> HookSet {
        guard !direction.isEmpty, direction.allSatisfy({ $0.isFinite }) else {
            throw AbliterationError(file: "activation addition", key: "direction", "the direction is empty or holds non-finite values")
        }
        guard layer >= 0 else { throw AbliterationError(file: "activation addition", key: "layer", "layer \(layer) is negative") }
        let v = FloatBuffer(direction)
        let n = direction.count
        var set = HookSet()
        set.add(layer: layer, point: .residPre) { a in
            guard a.dModel == n else { return }   // checked by `UnitDirection.check` callers; never edit a mismatched model
            let r = UnsafePointer(v.p)
            for i in 0..<a.rowCount { Kernels.axpy(beta, r, a.rows + i * n, n) }
        }
        return set
    }
}

/// A unit vector r̂ kept in one allocation shared by the hook closures.
public struct UnitDirection: @unchecked Sendable {
    let buffer: FloatBuffer
    public let count: Int
    /// The original norm |r|.
    public let norm: Float

    public init(_ direction: [Float]) throws {
        guard !direction.isEmpty else { throw AbliterationError(file: "direction", "the direction is empty") }
        guard direction.allSatisfy({ $0.isFinite }) else {
            throw AbliterationError(file: "direction", "the direction holds NaN or infinite values")
        }
        var s = 0.0
        for v in direction { s += Double(v) * Double(v) }
        guard s > 0 else { throw AbliterationError(file: "direction", "the direction is zero, so it has no orientation to remove") }
        let inv = 1 / s.squareRoot()
        buffer = FloatBuffer(direction.map { Float(Double($0) * inv) })
        count = direction.count
        norm = Float(s.squareRoot())
    }

    public var values: [Float] { Array(UnsafeBufferPointer(start: buffer.p, count: count)) }

    /// Throws when the model's width differs from the direction's.
    public func check(dModel: Int, source: String) throws {
        guard dModel == count else {
            throw AbliterationError(file: source, key: "direction",
                                    "the direction has \(count) values but the model's residual stream has \(dModel); use a direction from this model")
        }
    }

    /// x ← x − α (x·r̂) r̂ on every row. A hook on a model of another width leaves rows unchanged
    /// (callers check with `check(dModel:source:)` first).
    func hook(alpha: Float) -> Hook {
        let b = buffer, n = count
        return { a in
            guard a.dModel == n else { return }
            let u = UnsafePointer(b.p)
            for i in 0..<a.rowCount { Kernels.projectOut(a.rows + i * n, u, n, alpha) }
        }
    }
}

/// An owned Float buffer freed with its last reference (captured by hook closures).
final class FloatBuffer: @unchecked Sendable {
    let p: UnsafeMutablePointer<Float>
    let count: Int
    init(_ values: [Float]) {
        count = values.count
        p = .allocate(capacity: max(values.count, 1))
        values.withUnsafeBufferPointer { p.initialize(from: $0.baseAddress!, count: values.count) }
    }
    deinit { p.deallocate() }
}

/// Vectorised loops (8 lanes, 4 accumulators), no allocation.
enum Kernels {
    /// x·y over n values.
    @inline(__always)
    static func dot(_ x: UnsafePointer<Float>, _ y: UnsafePointer<Float>, _ n: Int) -> Float {
        typealias V = SIMD8<Float>
        var a0 = V(), a1 = V(), a2 = V(), a3 = V()
        var j = 0
        let rx = UnsafeRawPointer(x), ry = UnsafeRawPointer(y)
        while j + 32 <= n {
            a0 += rx.loadUnaligned(fromByteOffset: 4 * j, as: V.self) * ry.loadUnaligned(fromByteOffset: 4 * j, as: V.self)
            a1 += rx.loadUnaligned(fromByteOffset: 4 * (j + 8), as: V.self) * ry.loadUnaligned(fromByteOffset: 4 * (j + 8), as: V.self)
            a2 += rx.loadUnaligned(fromByteOffset: 4 * (j + 16), as: V.self) * ry.loadUnaligned(fromByteOffset: 4 * (j + 16), as: V.self)
            a3 += rx.loadUnaligned(fromByteOffset: 4 * (j + 24), as: V.self) * ry.loadUnaligned(fromByteOffset: 4 * (j + 24), as: V.self)
            j += 32
        }
        while j + 8 <= n {
            a0 += rx.loadUnaligned(fromByteOffset: 4 * j, as: V.self) * ry.loadUnaligned(fromByteOffset: 4 * j, as: V.self)
            j += 8
        }
        var s = ((a0 + a1) + (a2 + a3)).sum()
        while j < n { s += x[j] * y[j]; j += 1 }
        return s
    }

    /// y ← y + a x over n values.
    @inline(__always)
    static func axpy(_ a: Float, _ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ n: Int) {
        typealias V = SIMD8<Float>
        let av = V(repeating: a)
        var j = 0
        let rx = UnsafeRawPointer(x), ry = UnsafeMutableRawPointer(y)
        while j + 8 <= n {
            let v = ry.loadUnaligned(fromByteOffset: 4 * j, as: V.self) + av * rx.loadUnaligned(fromByteOffset: 4 * j, as: V.self)
            ry.storeBytes(of: v, toByteOffset: 4 * j, as: V.self)
            j += 8
        }
        while j < n { y[j] += a * x[j]; j += 1 }
    }

    /// x ← x − α (x·u) u for a unit vector u.
    @inline(__always)
    static func projectOut(_ x: UnsafeMutablePointer<Float>, _ u: UnsafePointer<Float>, _ n: Int, _ alpha: Float) {
        let c = alpha * dot(UnsafePointer(x), u, n)
        axpy(-c, u, x, n)
    }
}
