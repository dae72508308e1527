// libFuzzer entry points over ablab's file parsers; built only by `make fuzz` (see Package.swift and
// notebooks-scripts/fuzz.sh). The target is chosen by the environment variable ABLAB_FUZZ_TARGET
// (gguf, tokenizer-json, activation-cache, prompts-jsonl, prompts-csv, study-toml, judgments-csv, safetensors).
// With ABLAB_FUZZ_WRITE_CORPUS=<dir> the driver writes the target's seed files there and exits.
import Foundation
import AblabCore
import FuzzTargets

nonisolated(unsafe) var fuzzTarget: FuzzTarget = .gguf
nonisolated(unsafe) var caseDir = ""

@_cdecl("LLVMFuzzerInitialize")
public func fuzzerInitialize(_ argc: UnsafeMutablePointer<Int32>?, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>?) -> Int32 {
    let env = ProcessInfo.processInfo.environment
    guard let name = env["ABLAB_FUZZ_TARGET"], let t = FuzzTarget(rawValue: name) else {
        FileHandle.standardError.write(Data("set ABLAB_FUZZ_TARGET to one of: \(FuzzTarget.allCases.map(\.rawValue).joined(separator: ", "))\n".utf8))
        exit(2)
    }
    fuzzTarget = t
    if let out = env["ABLAB_FUZZ_WRITE_CORPUS"] {
        do {
            try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
            let seeds = try FuzzSeeds.seeds(for: t)
            for s in seeds { try Data(s.bytes).write(to: URL(fileURLWithPath: out + "/seed-" + s.name)) }
            // a few mutations of each seed widen the starting corpus
            var rng = SplitMix64(seed: 7)
            for k in 0..<32 {
                let s = seeds[k % seeds.count]
                try Data(Mutator.mutate(s, &rng)).write(to: URL(fileURLWithPath: out + "/mutant-\(k)"))
            }
            print("wrote \(seeds.count) seeds and 32 mutants for \(t.rawValue) to \(out)")
            exit(0)
        } catch {
            FileHandle.standardError.write(Data("cannot write the corpus: \(error)\n".utf8))
            exit(1)
        }
    }
    let base = FileManager.default.fileExists(atPath: "/dev/shm") ? "/dev/shm" : NSTemporaryDirectory()
    caseDir = base + "/ablab-fuzz-\(getpid())"
    try? FileManager.default.createDirectory(atPath: caseDir, withIntermediateDirectories: true)
    return 0
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzerTestOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    let bytes = data.map { Array(UnsafeBufferPointer(start: $0, count: size)) } ?? []
    if case let .failure(message) = FuzzHarness.run(fuzzTarget, bytes: bytes, dir: caseDir) {
        FileHandle.standardError.write(Data("ablab-fuzz \(fuzzTarget.rawValue): \(message)\n".utf8))
        abort()
    }
    return 0
}

// SwiftPM links executables with `main` renamed to `<product>_main` (here `ablab_fuzz_main`); the driver
// has no Swift entry point of its own, so this one hands control to libFuzzer's driver.
@_silgen_name("LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(_ argc: UnsafeMutablePointer<Int32>,
                         _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
                         _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> Int32) -> Int32

@_cdecl("ablab_fuzz_main")
public func ablabFuzzMain(_ argc: Int32, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> Int32 {
    var c = argc
    var v = argv
    return LLVMFuzzerRunDriver(&c, &v) { fuzzerTestOneInput($0, $1) }
}
