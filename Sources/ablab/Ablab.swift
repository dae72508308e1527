import ArgumentParser
import Foundation
import Logging
import AblabCore
import LinearAlgebra
import ModelRuntime

@main
struct Ablab: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ablab",
        abstract: "AbliterationLab: where safety behaviour lives inside language models, and how easily it is removed.",
        discussion: """
        Pipeline (data flows one way):
          record    run chat models on harmful/harmless prompts; store every layer's residual stream (HDF5)
          analyze   from the cache alone: PCA spectra, refusal directions, similarity, stability
          abliterate / generate   remove the refusal direction (projection or weight edit) and generate answers
          quantize  requantize a GGUF model (llama.cpp's rules and reference quantizers)
          judge / agree           judge every answer, measure judge agreement and self-judgment
          report    render figures and a multi-page PDF
          run       all of the above from a study file (TOML)
        """,
        version: AblabVersion.string,
        subcommands: [Run.self, Inspect.self, Tokenize.self, Record.self, Merge.self, Analyze.self, Abliterate.self, Quantize.self, Generate.self, JudgeCommand.self, Probe.self, Agree.self, ReportCommand.self, Slurm.self, Serve.self, Bench.self]
    )

    /// Before anything else: OpenBLAS (used by the analysis) gets a core that matches the CPU (see
    /// `OpenBLASCore`); this may start the program again once.
    static func main() async {
        OpenBLASCore.reexecIfNeeded(cpuFlags: CPUKernels.cpuFlags())
        do {
            var command = try parseAsRoot()
            if var asyncCommand = command as? AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
        } catch {
            exit(withError: error)
        }
    }
}

/// Threads for the forward pass's kernels and for OpenBLAS (analysis).
func setThreads(_ n: Int) {
    BLAS.setThreads(n)
    CPUKernels.threads = max(1, n)
}

/// Options every subcommand shares.
struct GlobalOptions: ParsableArguments {
    @Flag(name: .long, help: "Log more detail (debug level) to stderr.")
    var verbose = false

    func bootstrap() {
        CLILogging.bootstrap(verbose: verbose)
        if verbose {
            let core = BLAS.coreName + (OpenBLASCore.reexecuted ? " (OPENBLAS_CORETYPE set by ablab)" : "")
            FileHandle.standardError.write(Data("debug: kernels \(CPUKernels.path) (this CPU runs: \(CPUKernels.available.map(\.rawValue).joined(separator: ", "))), \(CPUKernels.threads) threads; OpenBLAS core \(core)\n".utf8))
        }
    }
}

/// `--compute` of record, generate and bench.
let computeHelp: ArgumentHelp = """
    How the weight products run: f32 (default; the same bits on every CPU) or bf16 (weights and activation \
    rows rounded to bf16, multiplied with AVX512_BF16's vdpbf16ps, accumulated in Float32; needs a CPU with \
    avx512_bf16). bf16 covers every weight product, one-row decoding steps included, so results still do not \
    depend on --threads or batching; single-stream decoding gets no faster (it is bound by reading the \
    weights). Attention, norms and activations stay Float32. Results differ from f32 (measured by `make bench`).
    """

/// The parsed `--compute`, checked against this CPU (a typed error naming the missing CPU features), and
/// said on stderr with `--verbose`.
func computeMode(_ s: String) throws -> ComputeMode {
    let mode = try ComputeMode(parsing: s)
    try mode.check()
    if CLILogging.verbose { FileHandle.standardError.write(Data("debug: compute \(mode): \(mode.kernelSummary)\n".utf8)) }
    return mode
}

enum CLILogging {
    nonisolated(unsafe) static var done = false
    nonisolated(unsafe) static var verbose = false
    static func bootstrap(verbose: Bool) {
        guard !done else { return }
        done = true
        Self.verbose = verbose
        LoggingSystem.bootstrap { label in
            var h = StreamLogHandler.standardError(label: label)
            h.logLevel = verbose ? .debug : .info
            return h
        }
    }
}

/// Runs a subcommand body; typed errors become one line on stderr and a documented exit code.
func runReportingErrors(_ body: () async throws -> Void) async throws {
    do {
        try await body()
    } catch let e as AblabError {
        FileHandle.standardError.write(Data("error: \(e.description)\n".utf8))
        if CLILogging.verbose {
            // The error's fields (kind, file, line, key, tensor, underlying library message) and exit code.
            let fields = Mirror(reflecting: e).children.map { "\($0.label ?? "?")=\(String(describing: $0.value))" }
            FileHandle.standardError.write(Data("detail: \(type(of: e)) \(fields.joined(separator: ", ")); exit code \(e.exitCode)\n".utf8))
        }
        throw ExitCode(e.exitCode)
    }
}
