import Foundation
import Testing

/// The checkout, the SmolLM2 model, the built `ablab` and the test venv's Python (with `openai`).
enum ServeEnv {
    /// The package root (this file is Tests/ServingTests/Support.swift).
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static var modelsDir: String {
        if let d = ProcessInfo.processInfo.environment["ABLAB_MODELS_DIR"], !d.isEmpty { return d }
        return root.appendingPathComponent("models").path
    }
    static var smol: String { modelsDir + "/SmolLM2-135M-Instruct.Q4_1.gguf" }
    static var ablab: String? {
        guard let exe = Bundle.main.executablePath else { return nil }
        let p = URL(fileURLWithPath: exe).deletingLastPathComponent().appendingPathComponent("ablab").path
        return FileManager.default.isExecutableFile(atPath: p) ? p : nil
    }
    /// `.venv-test/bin/python` (made by `make venv-test`, with the openai client).
    static var python: String { root.appendingPathComponent(".venv-test/bin/python").path }
    static func script(_ name: String) -> String { root.appendingPathComponent("Tests/ServingTests/" + name).path }
    static var ready: Bool {
        ablab != nil && FileManager.default.fileExists(atPath: smol) && FileManager.default.isExecutableFile(atPath: python)
    }

    static func tempDir(_ tag: String) throws -> String {
        let d = NSTemporaryDirectory() + "ablab-\(tag)-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true)
        return d
    }

    /// The first `perClass` test prompts of each class of the shipped prompt sets, as a prompt file.
    static func promptFile(in dir: String, perClass: Int) throws -> String {
        var lines: [String] = []
        for label in ["harmful", "harmless"] {
            let text = try String(contentsOfFile: root.appendingPathComponent("notebooks-scripts/data/prompts/\(label).jsonl").path, encoding: .utf8)
            var n = 0
            for l in text.split(separator: "\n") where n < perClass {
                guard let o = try JSONSerialization.jsonObject(with: Data(l.utf8)) as? [String: Any],
                      o["split"] as? String == "test", let t = o["text"] as? String, !t.isEmpty else { continue }
                let rec: [String: Any] = ["id": o["id"] as? String ?? "", "text": t, "label": label]
                lines.append(String(decoding: try JSONSerialization.data(withJSONObject: rec, options: [.sortedKeys]), as: UTF8.self))
                n += 1
            }
        }
        let path = dir + "/prompts.jsonl"
        try (lines.joined(separator: "\n") + "\n").write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }
}

/// Collects a pipe's output on a background thread (so a chatty child never blocks on a full pipe).
final class PipeCollector: @unchecked Sendable {
    private let lock = NSLock()
    private var data = Data()
    let pipe = Pipe()
    init() {
        let h = pipe.fileHandleForReading
        Thread {
            while true {
                let d = h.availableData
                if d.isEmpty { return }
                self.lock.lock(); self.data.append(d); self.lock.unlock()
            }
        }.start()
    }
    var text: String { lock.lock(); defer { lock.unlock() }; return String(decoding: data, as: UTF8.self) }

    /// Waits until the text matches `pattern` (first capture group returned) or `seconds` pass.
    func wait(for pattern: String, seconds: Double, while alive: () -> Bool) -> String? {
        let re = try! NSRegularExpression(pattern: pattern)
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            let t = text
            if let m = re.firstMatch(in: t, range: NSRange(t.startIndex..., in: t)), let r = Range(m.range(at: 1), in: t) {
                return String(t[r])
            }
            if !alive() { return nil }
            usleep(20_000)
        }
        return nil
    }
}

/// A child process with its output collected.
struct Child {
    let process: Process
    let out: PipeCollector
    let err: PipeCollector

    static func start(_ exe: String, _ args: [String], env: [String: String] = [:]) throws -> Child {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: exe)
        p.arguments = args
        var e = ProcessInfo.processInfo.environment
        for (k, v) in env { e[k] = v }
        p.environment = e
        let out = PipeCollector(), err = PipeCollector()
        p.standardOutput = out.pipe
        p.standardError = err.pipe
        p.standardInput = FileHandle.nullDevice
        try p.run()
        return Child(process: p, out: out, err: err)
    }

    /// Runs to the end: (exit status, stdout, stderr).
    static func run(_ exe: String, _ args: [String], env: [String: String] = [:]) throws -> (Int32, String, String) {
        let c = try start(exe, args, env: env)
        c.process.waitUntilExit()
        usleep(50_000)   // let the collectors read the last bytes
        return (c.process.terminationStatus, c.out.text, c.err.text)
    }

    func stop() {
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
    }
}

/// `ablab serve` on 127.0.0.1 with any free port.
struct Server {
    let child: Child
    let port: Int
    var baseURL: String { "http://127.0.0.1:\(port)/v1" }

    static func start(_ args: [String]) throws -> Server {
        let c = try Child.start(ServeEnv.ablab!, ["serve", "--model", ServeEnv.smol, "--host", "127.0.0.1", "--port", "0", "--threads", "2"] + args)
        guard let p = c.err.wait(for: #"on http://127\.0\.0\.1:(\d+)/v1"#, seconds: 120, while: { c.process.isRunning }), let port = Int(p) else {
            c.stop()
            throw ServeTestError("ablab serve did not start: \(c.err.text)")
        }
        return Server(child: c, port: port)
    }
}

struct ServeTestError: Error, CustomStringConvertible {
    var description: String
    init(_ d: String) { description = d }
}

/// Runs a check script with the test venv's Python; returns its {check: [ok, detail]} object.
func pythonChecks(_ args: [String]) throws -> [String: (Bool, String)] {
    let (status, out, err) = try Child.run(ServeEnv.python, [ServeEnv.script("openai_client_checks.py")] + args)
    guard let o = try? JSONSerialization.jsonObject(with: Data(out.utf8)) as? [String: [Any]] else {
        throw ServeTestError("the client script failed (status \(status)): \(err.suffix(2000)) \(out.suffix(500))")
    }
    var r: [String: (Bool, String)] = [:]
    for (k, v) in o { r[k] = ((v.first as? Bool) ?? false, v.count > 1 ? "\(v[1])" : "") }
    return r
}
