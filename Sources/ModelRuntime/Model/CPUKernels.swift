import Foundation
import Dispatch
import KernelABI
import KernelsPortable
#if arch(x86_64)
import KernelsAVX2
import KernelsAVX512
#endif

/// The builds of the compute kernels this binary carries, fastest last.
public enum KernelPath: String, Sendable, CaseIterable, CustomStringConvertible {
    case portable, avx2, avx512
    public var description: String { rawValue }
}

/// Picks the kernels for this CPU once, at first use: AVX-512 (F, CD, BW, DQ, VL) where the CPU and the
/// operating system support it, else AVX2 + FMA + F16C, else the portable build. `ABLAB_KERNELS=portable|avx2|avx512`
/// chooses one explicitly (a path the CPU cannot run is refused, falling back to the best available).
/// All paths give the same bits (see KernelABI); they differ in speed.
public enum CPUKernels {
    /// The kernel builds this CPU can run.
    public static let available: [KernelPath] = {
        var paths: [KernelPath] = [.portable]
        #if arch(x86_64)
        let flags = cpuFlags()
        if ["avx2", "fma", "f16c", "bmi2"].allSatisfy(flags.contains) { paths.append(.avx2) }
        if paths.contains(.avx2), ["avx512f", "avx512cd", "avx512bw", "avx512dq", "avx512vl"].allSatisfy(flags.contains) {
            paths.append(.avx512)
        }
        #endif
        return paths
    }()

    /// The path in use.
    public static let path: KernelPath = {
        if let asked = ProcessInfo.processInfo.environment["ABLAB_KERNELS"], let p = KernelPath(rawValue: asked.lowercased()),
           available.contains(p) {
            return p
        }
        return available.last!
    }()

    /// The kernels of the path in use.
    public static let active: any KernelSet.Type = kernels(for: path)

    /// The kernels of one path (tests compare paths with each other).
    public static func kernels(for p: KernelPath) -> any KernelSet.Type {
        switch p {
        case .portable: return KernelsPortable.Impl.self
        #if arch(x86_64)
        case .avx2: return KernelsAVX2.Impl.self
        case .avx512: return KernelsAVX512.Impl.self
        #else
        case .avx2, .avx512: return KernelsPortable.Impl.self
        #endif
        }
    }

    /// Threads for the forward pass's matrix products (the cores by default; `--threads`).
    nonisolated(unsafe) public static var threads: Int = max(1, ProcessInfo.processInfo.activeProcessorCount)

    /// The CPU's feature flags (Linux: the "flags" line of /proc/cpuinfo, which lists only what the
    /// kernel enabled, e.g. no AVX-512 when the OS does not save its registers).
    public static func cpuFlags() -> Set<String> {
        guard let text = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8) else { return [] }
        for line in text.split(separator: "\n") where line.hasPrefix("flags") {
            guard let colon = line.firstIndex(of: ":") else { continue }
            return Set(line[line.index(after: colon)...].split(separator: " ").map(String.init))
        }
        return []
    }
}
