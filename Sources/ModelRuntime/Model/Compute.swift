import Foundation
import AblabCore
import KernelABI
#if arch(x86_64)
import KernelsBF16
#endif

/// How the forward pass's weight products are computed.
///
/// - `f32` (the default): Float32 in the canonical order of KernelABI, the same bits on every CPU path.
/// - `bf16`: both operands rounded to bf16 (weights decoded exactly from their stored format, then rounded
///   to nearest even; the activation rows rounded once per product) and multiplied with AVX512_BF16's
///   vdpbf16ps, accumulating in Float32 (the order is in KernelsBF16.h and the README). Every weight product
///   (any number of rows, the output head included) runs this way, so results still do not depend on
///   `--threads`, `--batch`, `--batch-tokens` or how rows are grouped; they differ from `f32` by bf16's
///   rounding (about 3 significant digits per operand). Attention, norms and activations stay Float32.
///   Needs a CPU with avx512_bf16 (Intel Cooper Lake, Sapphire Rapids and later; AMD Zen 4 and later).
public enum ComputeMode: String, Sendable, CaseIterable, CustomStringConvertible {
    case f32, bf16
    public var description: String { rawValue }

    /// CPU flags (as /proc/cpuinfo names them) the mode's kernels need.
    public var requiredCPUFlags: [String] {
        switch self {
        case .f32: return []
        case .bf16: return ["avx512f", "avx512bw", "avx512dq", "avx512vl", "avx512_bf16"]
        }
    }

    /// The required flags missing from `flags` (none: the mode runs here). On a build without the bf16
    /// kernels (not x86-64) every required flag counts as missing.
    public func missingCPUFlags(in flags: Set<String>) -> [String] {
        #if arch(x86_64)
        return requiredCPUFlags.filter { !flags.contains($0) }
        #else
        return requiredCPUFlags
        #endif
    }

    /// Throws `ComputeModeError.missingCPUFeatures` unless this CPU (`flags`: the CPU's flags, injectable
    /// for tests) can run the mode.
    public func check(cpuFlags flags: Set<String> = CPUKernels.cpuFlags()) throws {
        let missing = missingCPUFlags(in: flags)
        guard missing.isEmpty else { throw ComputeModeError(mode: self, missing: missing) }
    }

    /// Parses `f32` / `bf16` (the CLI's `--compute`).
    public init(parsing s: String, option: String = "--compute") throws {
        guard let m = ComputeMode(rawValue: s.lowercased()) else {
            throw InputError(file: option, "unknown compute mode '\(s)' (f32, bf16)")
        }
        self = m
    }

    /// What runs the weight products in this mode, for `--verbose`.
    public var kernelSummary: String {
        switch self {
        case .f32: return "weight products f32 (\(CPUKernels.path) kernels)"
        case .bf16: return "weight products bf16 (vdpbf16ps, AVX512_BF16; weights decoded by the \(CPUKernels.path) kernels)"
        }
    }
}

/// A compute mode this CPU cannot run.
public struct ComputeModeError: AblabError, Equatable {
    public var mode: ComputeMode
    /// The CPU flags the mode needs that this CPU lacks, e.g. ["avx512_bf16"].
    public var missing: [String]
    public var description: String {
        #if arch(x86_64)
        "--compute \(mode): this CPU lacks \(missing.joined(separator: ", ")) (needed by vdpbf16ps: Intel Cooper Lake, Sapphire Rapids or later, AMD Zen 4 or later); use --compute f32"
        #else
        "--compute \(mode): needs x86-64 with \(missing.joined(separator: ", ")); use --compute f32"
        #endif
    }
    public var exitCode: Int32 { ExitCode.badInput }
}

/// The bf16 weight products (see `ComputeMode.bf16`), over the C kernels of KernelsBF16.
enum BF16Product {
    /// Elements per vdpbf16ps: every bf16 row is padded with zeros to a multiple of this.
    static let chunk = 32

    static func padded(_ k: Int) -> Int { (k + chunk - 1) / chunk * chunk }

    /// dst [rows, kp] = bf16(src [rows, lds]'s first `cols` values), zero padded.
    static func round(_ src: UnsafePointer<Float>, rows: Int, cols: Int, lds: Int, into dst: UnsafeMutablePointer<UInt16>, kp: Int) {
        #if arch(x86_64)
        ablab_bf16_round_rows(src, rows, cols, lds, dst, kp)
        #else
        preconditionFailure("bf16 compute runs on x86-64 only (ComputeMode.check refuses it elsewhere)")
        #endif
    }

    /// out [m, ldo] (+)= x [m, kp] · w [nj, kp]ᵀ, both bf16.
    static func panel(_ w: UnsafePointer<UInt16>, nj: Int, kp: Int, x: UnsafePointer<UInt16>, m: Int,
                      out: UnsafeMutablePointer<Float>, ldo: Int, accumulate: Bool) {
        #if arch(x86_64)
        ablab_bf16_panel_product(w, nj, kp, x, m, out, ldo, accumulate ? 1 : 0)
        #else
        preconditionFailure("bf16 compute runs on x86-64 only (ComputeMode.check refuses it elsewhere)")
        #endif
    }

    /// One vdpbf16ps: acc [16] = dpbf16ps(acc, a [32], b [32]) (tests compare it with its definition).
    static func instruction(acc: inout [Float], a: [UInt16], b: [UInt16]) {
        precondition(acc.count == 16 && a.count == 32 && b.count == 32)
        #if arch(x86_64)
        ablab_bf16_dpbf16ps(&acc, a, b)
        #else
        preconditionFailure("bf16 compute runs on x86-64 only")
        #endif
    }
}
