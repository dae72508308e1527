import Foundation
import CBLAS

/// Debian's OpenBLAS 0.3.21 does not recognise current CPUs with AVX-512 (and some with AVX2): it falls
/// back to its `Prescott` kernels, 5–7× slower, whose results also depend on the number of rows. OpenBLAS
/// reads `OPENBLAS_CORETYPE` when the library is loaded, before `main`, so the only remedy is to set it and
/// start the program again. A user's own `OPENBLAS_CORETYPE` is always kept.
public enum OpenBLASCore {
    /// Marks the one re-execution (so a core OpenBLAS still ignores cannot loop).
    static let marker = "ABLAB_OPENBLAS_REEXEC"

    /// The OpenBLAS core to ask for on a CPU with these feature flags, or nil when OpenBLAS's own choice
    /// (`current`) is already a real one.
    public static func betterCore(current: String, flags: Set<String>) -> String? {
        guard current.lowercased() == "prescott" else { return nil }
        if ["avx512f", "avx512cd", "avx512bw", "avx512dq", "avx512vl"].allSatisfy(flags.contains) {
            return flags.contains("avx512_bf16") ? "Cooperlake" : "SkylakeX"
        }
        if ["avx2", "fma"].allSatisfy(flags.contains) { return "Haswell" }
        return nil
    }

    /// Re-executes this program once with `OPENBLAS_CORETYPE` set when OpenBLAS picked `Prescott` on a CPU
    /// that has AVX2 or AVX-512 and the user set no core. Returns (without re-executing) otherwise, or
    /// if the re-execution fails.
    public static func reexecIfNeeded(cpuFlags: Set<String>) {
        let env = ProcessInfo.processInfo.environment
        guard env["OPENBLAS_CORETYPE"] == nil, env[marker] == nil else { return }
        guard let core = betterCore(current: BLAS.coreName, flags: cpuFlags) else { return }
        setenv("OPENBLAS_CORETYPE", core, 1)
        setenv(marker, "1", 1)
        let args = CommandLine.arguments
        var cargs: [UnsafeMutablePointer<CChar>?] = args.map { strdup($0) }
        cargs.append(nil)
        execv("/proc/self/exe", &cargs)
        // execv returned: stay in this process with OpenBLAS's own choice.
        unsetenv("OPENBLAS_CORETYPE")
        unsetenv(marker)
    }

    /// Whether this process was started again by `reexecIfNeeded`.
    public static var reexecuted: Bool { ProcessInfo.processInfo.environment[marker] != nil }
}
