import AblabCore

extension LoadedTokenizer {
    /// Replaced by the GGUF metadata loader once the GGUF reader is merged.
    static func loadGGUF(path: String) throws -> LoadedTokenizer {
        throw InputError(file: path, "reading tokenizers from GGUF files is not available in this build yet")
    }
}
