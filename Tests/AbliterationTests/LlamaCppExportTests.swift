import Foundation
import Testing
import ModelRuntime
@testable import Abliteration

/// The bench venv's Python (llama-cpp-python, built by notebooks-scripts/bench/run.sh): ABLAB_BENCH_PYTHON,
/// else <package root>/.venv-bench/bin/python when the venv is complete (.ok). nil: the test is skipped.
private var benchPython: String? {
    if let p = ProcessInfo.processInfo.environment["ABLAB_BENCH_PYTHON"], !p.isEmpty { return FileManager.default.isExecutableFile(atPath: p) ? p : nil }
    let venv = TestModels.root.appendingPathComponent(".venv-bench").path
    guard FileManager.default.fileExists(atPath: venv + "/.ok") else { return nil }
    return venv + "/bin/python"
}

/// llama.cpp's own loader and kernels (llama-cpp-python) on the GGUF that `export_weights` writes:
/// the file loads and its greedy continuation of the chat-formatted prompt is the one ablab computes
/// with the same edit as inference-time hooks on the original model.
extension RealModelTests {
@Suite(.enabled(if: benchPython != nil && TestModels.loadableGGUF != nil, "needs the bench venv (make bench) and the SmolLM2 GGUF"))
struct LlamaCppExportTests {
    static let script = """
    import json, sys
    from llama_cpp import Llama
    path, ids, n = sys.argv[1], json.loads(sys.argv[2]), int(sys.argv[3])
    llm = Llama(model_path=path, n_ctx=512, n_threads=2, verbose=False, logits_all=False)
    out = []
    for t in llm.generate(ids, temp=0.0, top_k=1, top_p=1.0, repeat_penalty=1.0):
        out.append(int(t))
        if len(out) == n:
            break
    print(json.dumps(out))
    """

    @Test func exportedGGUFGeneratesInLlamaCpp() throws {
        let py = try #require(benchPython), src = try #require(TestModels.loadableGGUF)
        let m = try TestModels.chat(src)
        var rng = TestRNG(11)
        let r = rng.vector(m.config.dModel)
        let dir = try TestModels.tempDir("llamacpp")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let setting = AbliterationSetting(checkpoint: TestModels.smol, method: .meanDiff, layer: 10, position: -1, alpha: 1)
        let out = dir + "/" + setting.fileName + ".gguf"
        try Orthogonalization.export(source: src, direction: r, alpha: 1, setting: setting, to: out)
        let ids = m.encodeChat(user: "Name three colours of the rainbow.")
        let n = 8
        let ours = try greedy(m.transformer, prompt: ids, n: n, hooks: Ablation.hooks(direction: r, alpha: 1, nLayers: m.config.nLayers))

        let p = Process()
        p.executableURL = URL(fileURLWithPath: py)
        p.arguments = ["-c", Self.script, out, "[" + ids.map(String.init).joined(separator: ",") + "]", String(n)]
        let pipe = Pipe(), err = Pipe()
        p.standardOutput = pipe; p.standardError = err
        try p.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        let errText = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        try #require(p.terminationStatus == 0, "llama-cpp-python failed: \(errText.suffix(2000))")
        let theirs = try JSONDecoder().decode([Int].self, from: data)
        #expect(theirs.count == n)
        // llama.cpp's kernels round differently (Q4_1 dot products); the first tokens must agree.
        #expect(Array(theirs.prefix(3)) == Array(ours.tokens.prefix(3)), "llama.cpp \(theirs) vs ablab \(ours.tokens)")
    }
}
}
