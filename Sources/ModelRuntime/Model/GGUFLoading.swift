import Foundation

extension Transformer {
    /// A llama.cpp GGUF file (not yet wired to the GGUF reader).
    public static func loadGGUF(path: String) throws -> Transformer {
        throw ModelError(file: path, "GGUF loading is not available in this build; convert the model to a Hugging Face folder")
    }
}
