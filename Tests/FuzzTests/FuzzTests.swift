import Foundation
import Testing
import FuzzTargets

/// Mutation fuzzing of every file type ablab reads: each case must parse or throw an `AblabError` naming
/// the file, within a second. Cases are deterministic (`FuzzHarness.caseBytes`), so a failure is
/// reproduced by its target and index. `ABLAB_FUZZ_SCALE` multiplies the case counts.
@Suite("Mutation fuzzing of hostile input files", .serialized)
struct FuzzTests {
    static let cases: [FuzzTarget: Int] = [
        .gguf: 3000, .tokenizerJSON: 2000, .activationCache: 1500, .promptsJSONL: 1000, .promptsCSV: 1000,
        .studyTOML: 1000, .judgmentsCSV: 1000, .safetensors: 1000,
    ]
    /// Targets whose parsing goes through a C library (libhdf5): their cases run in a worker process (this
    /// test binary, running only `worker`), so that a crash would be counted and reported, not end the run.
    static let isolated: Set<FuzzTarget> = [.activationCache]
    static var scale: Double { Double(ProcessInfo.processInfo.environment["ABLAB_FUZZ_SCALE"] ?? "") ?? 1 }
    static let workerVariable = "ABLAB_FUZZ_WORKER"
    static var canSpawnSelf: Bool { Bundle.main.executablePath?.hasSuffix(".xctest") == true }

    /// Worker side; runs only when `fuzz` starts this binary with `ABLAB_FUZZ_WORKER=target|dir|start|end`.
    @Test(.enabled(if: ProcessInfo.processInfo.environment[workerVariable] != nil))
    func worker() throws {
        let parts = ProcessInfo.processInfo.environment[Self.workerVariable]!.split(separator: "|").map(String.init)
        let target = try #require(parts.count == 4 ? FuzzTarget(rawValue: parts[0]) : nil)
        let start = try #require(Int(parts[2])), end = try #require(Int(parts[3]))
        try FuzzHarness.runWorker(target, dir: parts[1], range: start..<end)
    }

    func spawnWorker(_ target: FuzzTarget, dir: String, start: Int, end: Int) throws -> Process {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: Bundle.main.executablePath!)
        p.arguments = ["--testing-library", "swift-testing", "--filter", "FuzzTests/worker"]
        var env = ProcessInfo.processInfo.environment
        env[Self.workerVariable] = "\(target.rawValue)|\(dir)|\(start)|\(end)"
        env["SWIFT_BACKTRACE"] = "enable=no" // a crashing case should end the worker at once, not after a backtrace
        p.environment = env
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        try p.run()
        return p
    }

    @Test("every mutated file parses or throws a typed error naming the file",
          .timeLimit(.minutes(10)), arguments: FuzzTarget.allCases)
    func fuzz(_ target: FuzzTarget) throws {
        let dir = NSTemporaryDirectory() + "ablab-fuzz-\(target.rawValue)-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let seeds = try FuzzSeeds.seeds(for: target)
        for s in seeds {
            let o = FuzzHarness.run(target, bytes: s.bytes, dir: dir)
            #expect(o == .accepted, "seed \(s.name) of \(target.rawValue) must be valid: \(o)")
        }
        let digests = FuzzHarness.seedDigests(target, seeds: seeds, dir: dir)
        if target == .activationCache {
            #expect(digests.allSatisfy { $0 != nil }, "accepted damaged caches are compared with their seeds")
        }
        let n = Int((Double(Self.cases[target] ?? 1000) * Self.scale).rounded())
        var accepted = 0, rejected = 0, failures: [String] = [], crashes: [String] = []
        var slowest = 0.0
        let start = Date()
        func record(_ k: Int, _ o: FuzzOutcome) {
            switch o {
            case .accepted: accepted += 1
            case .rejected: rejected += 1
            case .failure(let m): failures.append("case \(k): \(m)")
            case .crashed(let m): crashes.append("case \(k): \(m)")
            }
            if (o.isFailure && failures.count <= 3) || (o.isCrash && crashes.count <= 3) {
                // keep the input for reproduction
                let bytes = FuzzHarness.caseBytes(target, seeds: seeds, k: k)
                try? Data(bytes).write(to: URL(fileURLWithPath: NSTemporaryDirectory() + "ablab-fuzz-failure-\(target.rawValue)-\(k)"))
            }
        }
        if Self.isolated.contains(target) {
            try #require(Self.canSpawnSelf, "isolated fuzz targets need the test binary to be an executable (Linux)")
            try FuzzHarness.runInWorkers(target, dir: dir, count: n, stall: 5,
                                         spawn: { try spawnWorker(target, dir: dir, start: $0, end: $1) },
                                         record: record)
        } else {
            for k in 0..<n {
                let t0 = Date()
                let c = FuzzHarness.caseInput(target, seeds: seeds, k: k)
                let o = FuzzHarness.run(target, bytes: c.bytes, dir: dir, expect: digests[c.seed])
                let dt = Date().timeIntervalSince(t0)
                slowest = max(slowest, dt)
                record(k, o)
                if dt > 2 { failures.append("case \(k): took \(String(format: "%.1f", dt)) s") }
            }
        }
        let elapsed = Date().timeIntervalSince(start)
        print("fuzz \(target.rawValue): \(n) cases (\(accepted) accepted, \(rejected) rejected, \(failures.count) failures, \(crashes.count) crashes) in \(String(format: "%.1f", elapsed)) s"
              + (Self.isolated.contains(target) ? " in worker processes" : ", slowest \(String(format: "%.3f", slowest)) s"))
        #expect(accepted + rejected + failures.count + crashes.count == n, "every case is accounted for")
        #expect(failures.isEmpty, "\(target.rawValue): \(failures.count) failures:\n\(failures.prefix(20).joined(separator: "\n"))")
        // Activation caches: ablab writes HDF5 files whose metadata and chunks carry checksums and refuses
        // files without them, so libhdf5 never parses unchecked damage (before, it crashed on ~1 % of cases
        // and looped forever on some). Study files: a Swift TOML reader replaced a C++ one that aborted.
        #expect(crashes.isEmpty, "\(crashes.count) crashes:\n\(crashes.prefix(10).joined(separator: "\n"))")
        #expect(rejected > 0 && accepted > 0, "the mutations should produce both valid and invalid files")
    }
}

/// The worker-process bookkeeping, driven by shell scripts that play a worker which crashes or hangs.
@Suite("Fuzz worker processes: crashes and hangs are counted, the run goes on")
struct FuzzWorkerTests {
    func shell(_ script: String) throws -> Process {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/sh")
        p.arguments = ["-c", script]
        try p.run()
        return p
    }

    @Test("a worker killed by a signal: its current case is a crash, the next worker resumes after it")
    func crashThenResume() throws {
        let dir = NSTemporaryDirectory() + "ablab-fuzzw-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var starts: [Int] = [], got: [(Int, FuzzOutcome)] = []
        try FuzzHarness.runInWorkers(.studyTOML, dir: dir, count: 4, stall: 10, spawn: { start, end in
            starts.append(start)
            #expect(end == 4)
            // first worker: case 0 accepted, dies (SIGKILL) inside case 1; second: case 2 rejected with a
            // message holding an escaped newline, case 3 accepted
            let log = dir + "/worker.log"
            return try shell(start == 0
                ? "printf 'B 0\\nE 0 0 \\nB 1\\n' >> \(log); kill -9 $$"
                : "printf 'B 2\\nE 2 1 x.toml: bad\\\\nkey\\nB 3\\nE 3 0 \\n' >> \(log)")
        }, record: { got.append(($0, $1)) })
        #expect(starts == [0, 2])
        #expect(got.map(\.0) == [0, 1, 2, 3])
        #expect(got[0].1 == .accepted)
        #expect(got[1].1 == .crashed("the worker died with signal 9"))
        #expect(got[2].1 == .rejected("x.toml: bad\nkey"))
        #expect(got[3].1 == .accepted)
    }

    @Test("a worker that stops making progress is killed; its case is a crash")
    func stall() throws {
        let dir = NSTemporaryDirectory() + "ablab-fuzzw-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var got: [(Int, FuzzOutcome)] = []
        try FuzzHarness.runInWorkers(.studyTOML, dir: dir, count: 2, stall: 1, spawn: { start, _ in
            let log = dir + "/worker.log"
            return try shell(start == 0 ? "printf 'B 0\\n' >> \(log); exec sleep 60" : "printf 'B 1\\nE 1 0 \\n' >> \(log)")
        }, record: { got.append(($0, $1)) })
        #expect(got.map(\.0) == [0, 1])
        #expect(got[0].1 == .crashed("the worker made no progress for 1 s"))
        #expect(got[1].1 == .accepted)
    }

    @Test("a worker that never starts a case ends the run with an error instead of looping")
    func neverStarts() throws {
        let dir = NSTemporaryDirectory() + "ablab-fuzzw-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var spawns = 0
        #expect(throws: (any Error).self) {
            try FuzzHarness.runInWorkers(.studyTOML, dir: dir, count: 2, stall: 5, spawn: { _, _ in
                spawns += 1
                return try shell("exit 3")
            }, record: { _, _ in Issue.record("no case should be recorded") })
        }
        #expect(spawns == 4)
    }
}
