import Foundation
import KernelABI

/// How a rotary table's frequencies are scaled, as transformers' `ROPE_INIT_FUNCTIONS` compute them
/// (`rope_type` default, linear, llama3, yarn) and as llama.cpp stores them (`rope.scaling.*`,
/// `rope_freqs.weight`).
public enum RopeScaling: Sendable, Equatable {
    case none
    /// Positions divided by `factor` (inv_freq / factor).
    case linear(factor: Double)
    /// Llama 3.1: wavelengths longer than originalContext / lowFreqFactor divided by `factor`, shorter
    /// than originalContext / highFreqFactor kept, smoothed in between.
    case llama3(factor: Double, lowFreqFactor: Double, highFreqFactor: Double, originalContext: Double)
    /// YaRN: interpolated and extrapolated frequencies blended by a linear ramp over the correction range
    /// of betaFast…betaSlow rotations; cos and sin multiplied by `attentionFactor`.
    case yarn(factor: Double, betaFast: Double, betaSlow: Double, originalContext: Double, attentionFactor: Double, truncate: Bool)
    /// llama.cpp's per-frequency divisors (`rope_freqs.weight`, how GGUF carries llama3 scaling).
    case frequencyFactors([Float])

    func validate(_ bad: (String) -> ModelError) throws {
        switch self {
        case .none: return
        case .linear(let f): guard f > 0 else { throw bad("RoPE linear factor \(f) is not positive") }
        case .llama3(let f, let lo, let hi, let ctx):
            guard f > 0, lo > 0, hi > lo, ctx > 0 else { throw bad("RoPE llama3 parameters (factor \(f), low \(lo), high \(hi), original context \(ctx)) are not usable") }
        case .yarn(let f, let bf, let bs, let ctx, let a, _):
            guard f > 0, bf > 0, bs > 0, ctx > 0, a > 0 else { throw bad("RoPE yarn parameters (factor \(f), beta \(bf)/\(bs), original context \(ctx)) are not usable") }
        case .frequencyFactors(let v):
            guard v.allSatisfy({ $0 > 0 && $0.isFinite }) else { throw bad("rope_freqs.weight has a factor that is not positive") }
        }
    }

    /// Parses a transformers `rope_parameters` / `rope_scaling` object; `key` names it in errors.
    static func fromHF(_ p: [String: Any], key: String, file: String, maxPositions: Int?) throws -> RopeScaling {
        let type = (p["rope_type"] as? String) ?? (p["type"] as? String) ?? "default"
        func num(_ k: String) -> Double? { (p[k] as? NSNumber)?.doubleValue }
        func need(_ k: String) throws -> Double {
            guard let v = num(k) else { throw ModelError(file: file, "\(key).\(k) is missing or not a number (rope_type \"\(type)\")") }
            return v
        }
        switch type {
        case "default": return .none
        case "linear": return .linear(factor: try need("factor"))
        case "llama3":
            return .llama3(factor: try need("factor"), lowFreqFactor: try need("low_freq_factor"),
                           highFreqFactor: try need("high_freq_factor"), originalContext: try need("original_max_position_embeddings"))
        case "yarn":
            let ctx = try need("original_max_position_embeddings")
            var factor = num("factor")
            if factor == nil, let m = maxPositions { factor = Double(m) / ctx }
            guard let f = factor else { throw ModelError(file: file, "\(key).factor is missing (rope_type \"yarn\")") }
            func mscale(_ s: Double, _ m: Double = 1) -> Double { s <= 1 ? 1 : 0.1 * m * log(s) + 1 }
            var att = num("attention_factor")
            if att == nil {
                if let m = num("mscale"), let ma = num("mscale_all_dim"), m != 0, ma != 0 { att = mscale(f, m) / mscale(f, ma) }
                else { att = mscale(f) }
            }
            return .yarn(factor: f, betaFast: num("beta_fast") ?? 32, betaSlow: num("beta_slow") ?? 1, originalContext: ctx,
                         attentionFactor: att!, truncate: (p["truncate"] as? NSNumber)?.boolValue ?? true)
        default:
            throw ModelError(file: file, "\(key).rope_type \"\(type)\" is not supported (default, linear, llama3, yarn)")
        }
    }

    /// transformers' inverse frequencies for `dim` rotating dimensions, float32 as torch computes them,
    /// and the factor cos and sin are multiplied by.
    func inverseFrequencies(theta: Double, dim: Int) -> (invFreq: [Float], attentionFactor: Float) {
        let half = dim / 2
        // pos_freqs = base ** (arange(0, dim, 2) / dim) in float32.
        let posFreq: [Float] = (0..<half).map { i in Float(pow(Double(Float(theta)), Double(Float(2 * i) / Float(dim)))) }
        let base = posFreq.map { 1 / $0 }
        switch self {
        case .none:
            return (base, 1)
        case .linear(let f):
            return (base.map { $0 / Float(f) }, 1)
        case .frequencyFactors(let ff):
            return ((0..<half).map { i in base[i] / (i < ff.count ? ff[i] : 1) }, 1)
        case .llama3(let factor, let lo, let hi, let ctx):
            let f = Float(factor)
            let lowWave = Float(ctx / lo), highWave = Float(ctx / hi)
            let out: [Float] = base.map { inv in
                let wavelen = 2 * Float.pi / inv
                let scaled = wavelen > lowWave ? inv / f : inv
                let smooth = (Float(ctx) / wavelen - Float(lo)) / Float(hi - lo)
                let smoothed = (1 - smooth) * scaled / f + smooth * scaled
                let medium = !(wavelen < highWave) && !(wavelen > lowWave)
                return medium ? smoothed : scaled
            }
            return (out, 1)
        case .yarn(let factor, let betaFast, let betaSlow, let ctx, let att, let truncate):
            func correctionDim(_ rotations: Double) -> Double {
                Double(dim) * log(ctx / (rotations * 2 * Double.pi)) / (2 * log(theta))
            }
            var low = correctionDim(betaFast), high = correctionDim(betaSlow)
            if truncate { low = low.rounded(.down); high = high.rounded(.up) }
            low = max(low, 0); high = min(high, Double(dim - 1))
            if low == high { high += 0.001 }
            let out: [Float] = (0..<half).map { i in
                let ramp = min(max((Float(i) - Float(low)) / Float(high - low), 0), 1)
                let extrapolationFactor = 1 - ramp
                let interp = 1 / (Float(factor) * posFreq[i])
                return interp * (1 - extrapolationFactor) + base[i] * extrapolationFactor
            }
            return (out, Float(att))
        }
    }
}

/// cos and sin of position · inv_freq for every position up to a capacity (grown on demand), one row of
/// rotaryDim / 2 values per position: float32 angles as transformers multiplies them, cos/sin in double
/// rounded to float, times the attention factor (YaRN).
final class RopeTable {
    let half: Int
    private let invFreq: [Float]
    private let attentionFactor: Float
    private(set) var capacity = 0
    private(set) var cos: UnsafeMutablePointer<Float> = .allocate(capacity: 1)  // [capacity, half]
    private(set) var sin: UnsafeMutablePointer<Float> = .allocate(capacity: 1)

    init(theta: Double, scaling: RopeScaling, dim: Int) {
        half = dim / 2
        (invFreq, attentionFactor) = scaling.inverseFrequencies(theta: theta, dim: dim)
    }
    deinit { cos.deallocate(); sin.deallocate() }

    func ensure(_ positions: Int) {
        guard positions > capacity else { return }
        let cap = max(positions, capacity * 2, 256)
        cos.deallocate(); sin.deallocate()
        cos = .allocate(capacity: cap * half)
        sin = .allocate(capacity: cap * half)
        for p in 0..<cap {
            for i in 0..<half {
                let angle = Float(p) * invFreq[i]   // float32 product, as in transformers
                var c = Float(Foundation.cos(Double(angle))), s = Float(Foundation.sin(Double(angle)))
                if attentionFactor != 1 { c *= attentionFactor; s *= attentionFactor }
                cos[p * half + i] = c
                sin[p * half + i] = s
            }
        }
        capacity = cap
    }
}
