import Foundation
import Testing
@testable import ModelRuntime

/// Fixtures written by notebooks-scripts/fixtures_tokenizer.py from Hugging Face transformers/tokenizers.
enum TokenizerFixtures {
    struct Case: Decodable, Sendable {
        var text: String
        var ids: [Int32]
        var decoded: String
        var decoded_skip_special: String?
    }
    struct Prompt: Decodable, Sendable {
        var id: String
        var text: String
        var ids: [Int32]
    }
    struct Message: Decodable, Sendable {
        var role: String
        var content: String
    }
    struct Chat: Decodable, Sendable {
        var name: String
        var messages: [Message]
        var system: String   // "template": HF template as is; "none": no system turn
        var text: String
        var ids: [Int32]
    }
    struct Tail: Decodable, Sendable {
        var text: String
        var ids: [Int32]
    }
    struct Model: Decodable, Sendable {
        var model: String
        var vocab_size: Int
        var bos_token: String?
        var eos_token: String?
        var special_ids: [String: Int32]
        var chat_template: String
        var generation_tail: Tail
        var cases: [Case]
        var prompts: [Prompt]
        var chats: [Chat]
    }

    static func url(_ name: String) throws -> URL {
        try #require(Bundle.module.url(forResource: name, withExtension: "json", subdirectory: "Fixtures/tokenizer"),
                     "fixture \(name).json missing; run notebooks-scripts/fixtures_tokenizer.py")
    }

    static func model(_ name: String) throws -> Model {
        try JSONDecoder().decode(Model.self, from: Data(contentsOf: url(name)))
    }

    /// A tiny tokenizer fixture: the tokenizer.json object and HF's ids.
    static func tiny(_ name: String) throws -> (doc: [String: Any], cases: [Case]) {
        let data = try Data(contentsOf: url(name))
        let obj = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        let doc = try #require(obj["tokenizer"] as? [String: Any])
        let casesData = try JSONSerialization.data(withJSONObject: try #require(obj["cases"]))
        return (doc, try JSONDecoder().decode([Case].self, from: casesData))
    }

    /// Folder holding the GGUF models: $ABLAB_MODELS_DIR, else <package root>/models.
    static var modelsDir: String {
        if let d = ProcessInfo.processInfo.environment["ABLAB_MODELS_DIR"], !d.isEmpty { return d }
        return URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("models").path
    }
}
