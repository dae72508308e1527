import Foundation

/// Where this target's tests find the checkout, the models and the built `ablab` program.
enum TestPaths {
    /// The package root (this file is Tests/ActivationCacheTests/Paths.swift).
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    /// ABLAB_MODELS_DIR, else <root>/models.
    static var modelsDir: String { ProcessInfo.processInfo.environment["ABLAB_MODELS_DIR"] ?? root.appendingPathComponent("models").path }
    static var smolGGUF: String { modelsDir + "/SmolLM2-135M-Instruct.Q4_1.gguf" }
    /// The `ablab` executable built next to this test bundle, when there is one.
    static var ablab: String? {
        guard let exe = Bundle.main.executablePath else { return nil }
        let p = URL(fileURLWithPath: exe).deletingLastPathComponent().appendingPathComponent("ablab").path
        return FileManager.default.isExecutableFile(atPath: p) ? p : nil
    }
    /// Both the program and the SmolLM2 model are there.
    static var canRunAblab: Bool { ablab != nil && FileManager.default.fileExists(atPath: smolGGUF) }
}
