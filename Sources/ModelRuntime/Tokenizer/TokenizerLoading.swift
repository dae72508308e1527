import AblabCore
import Foundation

/// A model's tokenizer with its chat template source, loaded from a GGUF file or a Hugging Face
/// tokenizer folder (`tokenizer.json`, `tokenizer_config.json`, optional `chat_template.jinja`).
public struct LoadedTokenizer: Sendable {
    public var tokenizer: BPETokenizer
    /// The Jinja source of the model's chat template, if the files carry one.
    public var chatTemplateSource: String?
    /// `general.architecture` for a GGUF file; the HF `model_type` or "unknown" for a folder.
    public var architecture: String

    /// Loads the tokenizer only (no weights) from `path`: a `.gguf` file, a `tokenizer.json`, or a folder.
    public static func load(path: String) throws -> LoadedTokenizer {
        if path.lowercased().hasSuffix(".gguf") {
            return try loadGGUF(path: path)
        }
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir) else {
            throw InputError(file: path, "no such model file or folder")
        }
        let dir = isDir.boolValue ? path : (path as NSString).deletingLastPathComponent
        let tok = try BPETokenizer.fromTokenizerJSON(path: path)
        var template: String?
        var arch = "unknown"
        let jinja = (dir as NSString).appendingPathComponent("chat_template.jinja")
        if let data = FileManager.default.contents(atPath: jinja) { template = String(decoding: data, as: UTF8.self) }
        let configPath = (dir as NSString).appendingPathComponent("tokenizer_config.json")
        if template == nil, let data = FileManager.default.contents(atPath: configPath),
           let config = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] {
            template = config["chat_template"] as? String
        }
        let modelConfig = (dir as NSString).appendingPathComponent("config.json")
        if let data = FileManager.default.contents(atPath: modelConfig),
           let config = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any],
           let t = config["model_type"] as? String {
            arch = t
        }
        return LoadedTokenizer(tokenizer: tok, chatTemplateSource: template, architecture: arch)
    }

    /// The chat template: the named format if given (`chatml`), else the one detected from the model.
    public func chatTemplate(format: String? = nil) throws -> ChatTemplate {
        if let format {
            let detected = try? ChatTemplate.detect(templateSource: chatTemplateSource, architecture: architecture)
            return try ChatTemplate.named(format, defaultSystemPrompt: detected?.defaultSystemPrompt)
        }
        return try ChatTemplate.detect(templateSource: chatTemplateSource, architecture: architecture)
    }
}
