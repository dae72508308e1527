// swift-tools-version: 6.1
import PackageDescription
import Foundation

// Hot numeric modules are compiled with -Ounchecked in release builds. The binary targets the baseline
// CPU of its architecture; the forward pass's kernels are compiled once per CPU path from one source
// (Sources/Kernels/Source, linked into each path's folder) and picked at start-up (ModelRuntime's
// `Kernels`). Every path computes the same bits (see KernelABI).
let fast: [SwiftSetting] = [.unsafeFlags(["-Ounchecked"], .when(configuration: .release))]
func kernels(_ name: String, cpu: String?) -> Target {
    .target(name: name, dependencies: ["KernelABI"], path: "Sources/Kernels/" + name.dropFirst("Kernels".count),
            swiftSettings: [.unsafeFlags(["-Ounchecked"] + (cpu.map { ["-target-cpu", $0] } ?? []), .when(configuration: .release)),
                            .unsafeFlags(cpu.map { ["-target-cpu", $0] } ?? [], .when(configuration: .debug))])
}
#if arch(x86_64)
let kernelPaths = [kernels("KernelsPortable", cpu: nil), kernels("KernelsAVX2", cpu: "haswell"),
                   kernels("KernelsAVX512", cpu: "skylake-avx512")]
// `--compute bf16`'s kernels (vdpbf16ps), in C: Swift cannot name the bfloat vectors its intrinsic takes.
// Built for AVX-512 F/BW/DQ/VL + BF16 only (a subset of every CPU with avx512_bf16: Cooper Lake, Sapphire
// Rapids and later, Zen 4 and later), and called only where the CPU's flags list all of them.
let computePaths: [Target] = [.target(name: "KernelsBF16", path: "Sources/Kernels/BF16", cSettings: [
    .unsafeFlags(["-O2", "-mavx512f", "-mavx512bw", "-mavx512dq", "-mavx512vl", "-mavx512bf16", "-ffp-contract=off"]),
])]
#else
let kernelPaths = [kernels("KernelsPortable", cpu: nil)]
let computePaths: [Target] = []
#endif

let package = Package(
    name: "ablab",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "ablab", targets: ["ablab"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
        // `ablab serve` only (Sources/Serving); no optional traits, to keep builds short.
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1", traits: []),
    ],
    targets: [
        // Thin C shims over system libraries (pkg-config names hdf5, openblas, cairo).
        .systemLibrary(name: "CHDF5", pkgConfig: "hdf5", providers: [.apt(["libhdf5-dev"])]),
        .systemLibrary(name: "CBLAS", pkgConfig: "openblas", providers: [.apt(["libopenblas-dev"])]),
        .systemLibrary(name: "CCairo", pkgConfig: "cairo", providers: [.apt(["libcairo2-dev"])]),

        // Support: errors, logging, progress, prompt sets, safe file names.
        .target(name: "AblabCore", dependencies: [.product(name: "Logging", package: "swift-log")]),
        // Owned wrappers over the C libraries.
        .target(name: "HDF5", dependencies: ["CHDF5", "AblabCore"]),
        .target(name: "LinearAlgebra", dependencies: ["CBLAS", "AblabCore"], swiftSettings: fast),
        .target(name: "Plotting", dependencies: ["CCairo", "AblabCore"]),

        // Pipeline stages, data flowing one way.
        // The compute kernels: the contract, and one build per CPU path.
        .target(name: "KernelABI"),
        .target(name: "ModelRuntime", dependencies: ["LinearAlgebra", "AblabCore", "KernelABI"] + (kernelPaths + computePaths).map { .target(name: $0.name) },
                swiftSettings: fast),
        .target(name: "ActivationCache", dependencies: ["HDF5", "LinearAlgebra", "AblabCore"]),
        .target(name: "Recording", dependencies: ["ModelRuntime", "ActivationCache", "HDF5", "AblabCore"]),
        .target(name: "Analysis", dependencies: ["ActivationCache", "LinearAlgebra", "HDF5", "AblabCore"], swiftSettings: fast),
        .target(name: "Abliteration", dependencies: ["ModelRuntime", "LinearAlgebra", "AblabCore"], swiftSettings: fast),
        .target(name: "Judging", dependencies: ["ModelRuntime", "Abliteration", "AblabCore"]),
        // `ablab serve`: an OpenAI-compatible HTTP server with continuous batching over the runtime.
        .target(name: "Serving", dependencies: [
            "ModelRuntime", "LinearAlgebra", "AblabCore", .product(name: "Hummingbird", package: "hummingbird"),
        ]),
        .target(name: "Report", dependencies: ["Plotting", "Analysis", "ActivationCache", "LinearAlgebra", "Judging", "HDF5", "AblabCore"]),
        .target(name: "Study", dependencies: [
            "Recording", "ActivationCache", "Analysis", "Abliteration", "Judging", "Report", "AblabCore",
        ]),
        // Fuzz targets over every parser (see Tests/FuzzTests and `make fuzz`).
        .target(name: "FuzzTargets", dependencies: ["AblabCore", "ModelRuntime", "HDF5", "ActivationCache", "Judging", "Study"]),
        .executableTarget(name: "ablab", dependencies: [
            "AblabCore", "LinearAlgebra", "ModelRuntime", "ActivationCache", "Recording", "Analysis", "Abliteration",
            "Judging", "Report", "Study", "Serving",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
            .product(name: "Logging", package: "swift-log"),
        ]),

        .testTarget(name: "HDF5Tests", dependencies: ["HDF5"]),
        .testTarget(name: "LinearAlgebraTests", dependencies: ["LinearAlgebra"]),
        .testTarget(name: "PlottingTests", dependencies: ["Plotting"]),
        .testTarget(name: "ModelRuntimeTests", dependencies: ["ModelRuntime", "KernelABI", "AblabCore"], resources: [.copy("Fixtures")]),
        .testTarget(name: "ActivationCacheTests", dependencies: ["ActivationCache", "Recording", "ModelRuntime", "Analysis"]),
        .testTarget(name: "AnalysisTests", dependencies: ["Analysis"], resources: [.copy("Fixtures")]),
        .testTarget(name: "JudgingTests", dependencies: ["Judging"], resources: [.copy("Fixtures")]),
        .testTarget(name: "StudyTests", dependencies: ["Study"], resources: [.copy("Fixtures")]),
        .testTarget(name: "ReportTests", dependencies: ["Report", "ActivationCache", "Analysis"]),
        .testTarget(name: "FuzzTests", dependencies: ["FuzzTargets"]),
        .testTarget(name: "AbliterationTests", dependencies: ["Abliteration"]),
        .testTarget(name: "ServingTests", dependencies: ["Serving", "ModelRuntime", "AblabCore"]),
    ] + kernelPaths + computePaths,
    swiftLanguageModes: [.v6]
)

// `make fuzz` only: the libFuzzer driver (ABLAB_LIBFUZZER=1; sanitizer flags would break ordinary builds).
if ProcessInfo.processInfo.environment["ABLAB_LIBFUZZER"] == "1" {
    package.targets.append(.executableTarget(
        name: "ablab-fuzz", dependencies: ["FuzzTargets", "AblabCore"], path: "Sources/AblabFuzzDriver",
        swiftSettings: [.unsafeFlags(["-parse-as-library"])],
        linkerSettings: [.unsafeFlags(["-sanitize=fuzzer"])]))
}
