import Foundation
import KernelABI

/// The parts of a block the kernel set does not provide, written so their values do not depend on the
/// CPU, threads or batching: products through the kernels' canonical dot, everything else elementwise
/// in a fixed order (no reductions of their own).
enum BlockParts {
    /// v[j] *= s (Gemma's embedding scale), one float32 product per element.
    static func scale(_ v: UnsafeMutablePointer<Float>, by s: Float, n: Int) {
        for j in 0..<n { v[j] *= s }
    }

    /// v[j] = cap · tanh(v[j] / cap) (Gemma 2's soft-capping, as transformers computes it in float32).
    static func softcap(_ v: UnsafeMutablePointer<Float>, cap: Float, n: Int) {
        for j in 0..<n { v[j] = tanhf(v[j] / cap) * cap }
    }

    /// GeGLU: out[r, j] = gelu_tanh(gate[r, j]) · up[r, j] with gu [count, ldgu] = gate | up, PyTorch's
    /// `gelu(approximate="tanh")`: 0.5 · x · (1 + tanh(√(2/π) · (x + 0.044715 x³))).
    static func geglu(_ gu: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>, f: Int, count: Int, ldgu: Int) {
        let beta = Float(2.0.squareRoot() * (2 / Double.pi.squareRoot()) * 0.5)
        let kappa: Float = 0.044715
        for r in 0..<count {
            let g = gu + r * ldgu, o = out + r * f
            for j in 0..<f {
                let x = g[j]
                let inner = beta * (x + kappa * (x * x * x))
                o[j] = 0.5 * x * (1 + tanhf(inner)) * g[f + j]
            }
        }
    }

    /// `KernelSet.attend` with soft-capped scores: s_j = cap · tanh(scale · q·k_j / cap), softmax, then
    /// out = Σ_j p_j v_j accumulated in j order with one fused multiply-add per element (as `attend` does).
    static func attendCapped(_ K: any KernelSet.Type, q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>,
                             stride: Int, visible: Int, hd: Int, scale: Float, cap: Float,
                             scores: UnsafeMutablePointer<Float>, out: UnsafeMutablePointer<Float>) {
        for j in 0..<visible { scores[j] = tanhf(scale * K.dot(q, k + j * stride, n: hd) / cap) * cap }
        K.softmax(scores, n: visible)
        out.update(repeating: 0, count: hd)
        for j in 0..<visible {
            let p = scores[j], vj = v + j * stride
            for e in 0..<hd { out[e] = out[e].addingProduct(p, vj[e]) }
        }
    }
}
