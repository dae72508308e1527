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
    public static func exercise(_ target: FuzzTarget, path: String) throws {
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
            for layer in 0...min(f.header.nLayers, 3) { _ = try f.residual(layer: layer, position: pos) }
            if f.nPrompts > 0 { _ = try f.residual(layer: 0, position: pos, prompts: [f.nPrompts - 1, 0]) }
            for h in f.hookNames.prefix(2) { _ = try f.hook(h, position: pos) }
        case .promptsJSONL, .promptsCSV:
            _ = try PromptFile.load(path)
        case .studyTOML:
            _ = try StudyFile.load(path)
        case .judgmentsCSV:
            _ = try JudgmentsFile.read(path)
        }
    }

    static func useTokenizer(_ tok: BPETokenizer) {
        let ids = tok.encode("abc 123 <|im_start|>ab\n ü ✓ 🚀 Ġa", parseSpecial: true)
        _ = tok.decode(ids, skipSpecial: true)
        _ = tok.encode("abc ab", parseSpecial: false)
        _ = tok.decode([-1, 0, 1, Int32.max])
    }

    /// Writes `bytes` to `dir/<target file name>` and runs `exercise` on it.
    public static func run(_ target: FuzzTarget, bytes: [UInt8], dir: String) -> FuzzOutcome {
        let path = dir + "/" + target.fileName
        // plain write(2): no fsync, thousands of cases per second
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        guard fd >= 0 else { return .failure("cannot write \(path)") }
        let written = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        close(fd)
        guard written == bytes.count else { return .failure("cannot write \(path)") }
        return classify(target, path: path) { try exercise(target, path: path) }
    }

    /// Like `run`, but in a forked child process, so a crash inside a C library (libhdf5 on some damaged
    /// files) is reported as `.crashed` instead of ending the caller. The child is killed after `timeout` s.
    nonisolated(unsafe) static let forkLock = NSLock()

    public static func runIsolated(_ target: FuzzTarget, bytes: [UInt8], dir: String, timeout: Double = 10) -> FuzzOutcome {
        let report = dir + "/outcome.txt"
        unlink(report)
        // One fork at a time: OpenBLAS's fork handler (blas_thread_shutdown_) deadlocks when two threads
        // fork at once, as parallel test cases did.
        forkLock.lock()
        let pid = fork()
        if pid != 0 { forkLock.unlock() } // the child never uses the lock
        if pid == 0 {
            let o = run(target, bytes: bytes, dir: dir)
            let (code, text): (Int32, String)
            switch o {
            case .accepted: (code, text) = (10, "")
            case .rejected(let m): (code, text) = (11, m)
            case .failure(let m), .crashed(let m): (code, text) = (12, m)
            }
            let fd = open(report, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
            if fd >= 0 { _ = Array(text.utf8).withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }; close(fd) }
            _exit(code)
        }
        guard pid > 0 else { return run(target, bytes: bytes, dir: dir) }
        var status: Int32 = 0
        let start = Date()
        while waitpid(pid, &status, WNOHANG) == 0 {
            if Date().timeIntervalSince(start) > timeout {
                kill(pid, SIGKILL)
                _ = waitpid(pid, &status, 0)
                return .crashed("the case did not finish within \(timeout) s")
            }
            usleep(200)
        }
        let sig = status & 0x7F
        if sig != 0 { return .crashed("the parser process died with signal \(sig)") }
        let code = (status >> 8) & 0xFF
        let text = (try? String(contentsOfFile: report, encoding: .utf8)) ?? ""
        switch code {
        case 10: return .accepted
        case 11: return .rejected(text)
        case 12: return .failure(text)
        default: return .crashed("the parser process exited with status \(code)")
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
