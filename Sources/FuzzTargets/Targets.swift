import AblabCore
import ActivationCache
import Foundation
import Judging
import ModelRuntime
import Study

/// The file types ablab reads from users, each a fuzz target.
public enum FuzzTarget: String, CaseIterable, Sendable {
    case gguf, tokenizerJSON = "tokenizer-json", activationCache = "activation-cache"
    case promptsJSONL = "prompts-jsonl", promptsCSV = "prompts-csv", studyTOML = "study-toml"
    case judgmentsCSV = "judgments-csv"
    case safetensors

    /// File name the case is written under (the parsers look at the extension).
    public var fileName: String {
        switch self {
        case .gguf: return "case.gguf"
        case .tokenizerJSON: return "tokenizer.json"
        case .activationCache: return "case.h5"
        case .promptsJSONL: return "case.jsonl"
        case .promptsCSV: return "case.csv"
        case .studyTOML: return "case.toml"
        case .judgmentsCSV: return "judgments.csv"
        case .safetensors: return "model.safetensors"
        }
    }
}

/// What became of one fuzz case.
public enum FuzzOutcome: Sendable, Equatable {
    /// The file was accepted (and its contents could be used).
    case accepted
    /// A typed error naming the file.
    case rejected(String)
    /// A bug: an error that is not an `AblabError`, or one whose message does not name the file.
    case failure(String)
    /// The process running the case died (signal) or hung (`runIsolated` only).
    case crashed(String)

    public var isFailure: Bool { if case .failure = self { return true }; return false }
    public var isCrash: Bool { if case .crashed = self { return true }; return false }
}

public enum FuzzHarness {
    /// Parses the file at `path` as `target` and uses what was parsed the way ablab does (dequantize every
    /// tensor, tokenize, read activations), so a file that parses but lies fails here rather than later.
    ///
    /// Returns a digest of what was read where the format promises to detect damage (activation caches:
    /// checksummed metadata and chunks), so an accepted mutated file can be compared with its seed; nil
    /// for formats without checksums, where a mutated file may legitimately hold other values.
    @discardableResult
    public static func exercise(_ target: FuzzTarget, path: String) throws -> String? {
        switch target {
        case .gguf:
            let f = try GGUFFile(path: path)
            for t in f.tensors where t.type.canDequantize { _ = try f.dequantize(t) }
            let tok = try BPETokenizer.fromGGUF(f)
            useTokenizer(tok)
        case .tokenizerJSON:
            useTokenizer(try BPETokenizer.fromTokenizerJSON(path: path))
        case .activationCache:
            let f = try ActivationFile(path: path)
            let pos = Int(f.header.positions[0])
            var h = SHA256()
            func add(_ m: [Float]) { m.withUnsafeBytes { h.update($0) } }
            h.update(Data("\(f.header)|\(f.prompts)|\(f.hookNames)".utf8))
            for layer in 0...min(f.header.nLayers, 3) { add(try f.residual(layer: layer, position: pos).data) }
            if f.nPrompts > 0 { add(try f.residual(layer: 0, position: pos, prompts: [f.nPrompts - 1, 0]).data) }
            for name in f.hookNames.prefix(2) { add(try f.hook(name, position: pos).data) }
            return h.finalize()
        case .promptsJSONL, .promptsCSV:
            _ = try PromptFile.load(path)
        case .studyTOML:
            _ = try StudyFile.load(path)
        case .judgmentsCSV:
            _ = try JudgmentsFile.read(path)
        case .safetensors:
            let f = try SafetensorsFile(path: path)
            for t in f.tensors.values.sorted(by: { $0.name < $1.name }) {
                var buf = [Float](repeating: 0, count: t.elementCount)
                buf.withUnsafeMutableBufferPointer { f.read(t, into: $0.baseAddress!) }
            }
        }
        return nil
    }

    static func useTokenizer(_ tok: BPETokenizer) {
        let ids = tok.encode("abc 123 <|im_start|>ab\n ü ✓ 🚀 Ġa", parseSpecial: true)
        _ = tok.decode(ids, skipSpecial: true)
        _ = tok.encode("abc ab", parseSpecial: false)
        _ = tok.decode([-1, 0, 1, Int32.max])
    }

    /// Writes `bytes` to `dir/<target file name>` and runs `exercise` on it. With `expect` (the digest of the
    /// seed the case was mutated from), an accepted file that reads differently is a failure: a damaged
    /// file must never give silently wrong numbers.
    public static func run(_ target: FuzzTarget, bytes: [UInt8], dir: String, expect: String? = nil) -> FuzzOutcome {
        let path = dir + "/" + target.fileName
        // plain write(2): no fsync, thousands of cases per second
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        guard fd >= 0 else { return .failure("cannot write \(path)") }
        let written = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        close(fd)
        guard written == bytes.count else { return .failure("cannot write \(path)") }
        var digest: String? = nil
        let o = classify(target, path: path) { digest = try exercise(target, path: path) }
        if o == .accepted, let expect, let digest, digest != expect {
            return .failure("a damaged file was accepted and reads other values than its seed")
        }
        return o
    }

    /// Digests of the seeds (see `exercise`), index-aligned with `seeds`; nil entries where not compared.
    public static func seedDigests(_ target: FuzzTarget, seeds: [FuzzSeed], dir: String) -> [String?] {
        seeds.map { s in
            let path = dir + "/seed-" + target.fileName
            guard (try? Data(s.bytes).write(to: URL(fileURLWithPath: path))) != nil else { return nil }
            defer { try? FileManager.default.removeItem(atPath: path) }
            return (try? exercise(target, path: path)) ?? nil
        }
    }


    /// FNV-1a of the target name: the base of the case seeds, so case k of a target is the same everywhere.
    public static func baseSeed(_ t: FuzzTarget) -> UInt64 {
        var h: UInt64 = 0xCBF2_9CE4_8422_2325
        for b in t.rawValue.utf8 { h = (h ^ UInt64(b)) &* 0x100_0000_01B3 }
        return h
    }

    /// Case `k` of `target`: its bytes and the index of the seed they were mutated from. Deterministic, so a
    /// failure is reproduced by target and index.
    public static func caseInput(_ target: FuzzTarget, seeds: [FuzzSeed], k: Int) -> (bytes: [UInt8], seed: Int) {
        var rng = SplitMix64(seed: baseSeed(target) &+ UInt64(k))
        let s = rng.below(seeds.count)
        return (Mutator.mutate(seeds[s], &rng), s)
    }

    /// The bytes of case `k` of `target` (see `caseInput`).
    public static func caseBytes(_ target: FuzzTarget, seeds: [FuzzSeed], k: Int) -> [UInt8] {
        caseInput(target, seeds: seeds, k: k).bytes
    }

    // MARK: isolation in a worker process
    //
    // Parsers built on C libraries (libhdf5) can crash on damaged files, which no Swift code
    // can catch. Such cases run in a worker process that the caller starts (`spawn`): the worker runs
    // cases `start..<end` one after another and appends to a log file, unbuffered, a line `B k` before
    // case k and `E k code message` after it. When the worker dies or stops making progress, the case it
    // began last is a crash and a new worker continues after it. (Forking the caller instead is unsafe in
    // a multithreaded process: a lock held by another thread at the fork stays held in the child, and
    // OpenBLAS's fork handler blocked the caller itself.)

    /// Worker side: runs cases `range` of `target` in `dir`, logging to `dir/worker.log`.
    public static func runWorker(_ target: FuzzTarget, dir: String, range: Range<Int>) throws {
        let seeds = try FuzzSeeds.seeds(for: target)
        let digests = seedDigests(target, seeds: seeds, dir: dir)
        let log = dir + "/worker.log"
        let fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0o644)
        guard fd >= 0 else { throw IOError(path: log, "cannot write: " + String(cString: strerror(errno))) }
        defer { close(fd) }
        func line(_ s: String) { _ = Array((s + "\n").utf8).withUnsafeBytes { write(fd, $0.baseAddress, $0.count) } }
        for k in range {
            line("B \(k)")
            let c = caseInput(target, seeds: seeds, k: k)
            let o = run(target, bytes: c.bytes, dir: dir, expect: digests[c.seed])
            let (code, text): (Int, String)
            switch o {
            case .accepted: (code, text) = (0, "")
            case .rejected(let m): (code, text) = (1, m)
            case .failure(let m), .crashed(let m): (code, text) = (2, m)
            }
            line("E \(k) \(code) " + text.replacingOccurrences(of: "\n", with: "\\n"))
        }
    }

    /// Caller side: runs cases `0..<count` of `target` in worker processes started by `spawn(start, end)`
    /// (which must run `runWorker(target, dir: dir, range: start..<end)` in a new process and return it,
    /// started). A worker silent for `stall` seconds is killed and its current case counted as a crash.
    /// Calls `record(k, outcome)` once for every case, in order.
    public static func runInWorkers(_ target: FuzzTarget, dir: String, count: Int, stall: Double = 20,
                                    spawn: (Int, Int) throws -> Process,
                                    record: (Int, FuzzOutcome) -> Void) throws {
        let log = dir + "/worker.log"
        var next = 0
        var respawns = 0
        while next < count {
            unlink(log)
            let p = try spawn(next, count)
            var lastSize = -1, lastChange = Date()
            var timedOut = false
            while p.isRunning {
                usleep(20_000)
                let size = (try? FileManager.default.attributesOfItem(atPath: log)[.size] as? Int) ?? 0
                if size != lastSize { lastSize = size; lastChange = Date() }
                else if Date().timeIntervalSince(lastChange) > stall {
                    timedOut = true
                    kill(p.processIdentifier, SIGKILL)
                    p.waitUntilExit()
                }
            }
            let text = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
            var begun: Int? = nil
            for l in text.split(separator: "\n", omittingEmptySubsequences: true) {
                let parts = l.split(separator: " ", maxSplits: 3, omittingEmptySubsequences: false)
                guard parts.count >= 2, let k = Int(parts[1]), k == next else { continue }
                if parts[0] == "B" { begun = k; continue }
                guard parts[0] == "E", parts.count >= 3, let code = Int(parts[2]) else { continue }
                let m = parts.count > 3 ? parts[3].replacingOccurrences(of: "\\n", with: "\n") : ""
                record(k, code == 0 ? .accepted : code == 1 ? .rejected(m) : .failure(m))
                begun = nil
                next += 1
            }
            if next >= count { break }
            // the worker ended early: the case it had begun (or, if it died before beginning one, the next) is a crash
            let why: String
            if timedOut { why = "the worker made no progress for \(Int(stall)) s" }
            else if p.terminationReason == .uncaughtSignal { why = "the worker died with signal \(p.terminationStatus)" }
            else { why = "the worker exited with status \(p.terminationStatus)" }
            guard begun != nil else {
                // died between cases or before its first: try again, but a worker that never starts a case stops the run
                respawns += 1
                if respawns > 3 { throw IOError(path: log, "the fuzz worker for \(target.rawValue) fails to start: \(why)") }
                continue
            }
            respawns = 0
            record(next, .crashed(why))
            next += 1
        }
    }

    /// `.failure` unless `body` returns or throws an `AblabError` whose message names `path`.
    public static func classify(_ target: FuzzTarget, path: String, _ body: () throws -> Void) -> FuzzOutcome {
        do {
            try body()
            return .accepted
        } catch let e as AblabError {
            let text = e.description
            guard text.contains(path) else { return .failure("error does not name the file: \(text)") }
            guard !text.contains("\n") else { return .failure("multi-line error: \(text)") }
            return .rejected(text)
        } catch {
            return .failure("untyped error \(type(of: error)): \(error)")
        }
    }
}
