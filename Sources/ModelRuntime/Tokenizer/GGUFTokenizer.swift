import AblabCore

extension BPETokenizer {
    /// Builds the tokenizer from GGUF metadata: `tokenizer.ggml.model` (must be `gpt2`, byte-level BPE),
    /// `tokens`, `merges`, `token_type` (3 control → special added token, 4 user-defined → non-special
    /// added token), `pre` (the pre-tokenizer split, as llama.cpp applies it) and the bos/eos/padding ids.
    ///
    /// Two details follow the model's original Hugging Face tokenizer rather than the GGUF loader of
    /// transformers: `smollm` isolates every digit before the GPT-2 split (HF `Digits(individual_digits)`,
    /// as llama.cpp does), and `qwen2` normalises text to NFC (HF `Qwen2Tokenizer`).
    public static func fromGGUF(_ f: GGUFFile) throws -> BPETokenizer {
        let model = f.string("tokenizer.ggml.model")
        guard model == "gpt2" else {
            throw InputError(file: f.path, key: "tokenizer.ggml.model",
                             "tokenizer \(AblabText.printable(model ?? "(none)")) is not supported; only byte-level BPE (gpt2) models are")
        }
        let tokens = try f.requireStringArray("tokenizer.ggml.tokens")
        let mergeStrings = try f.requireStringArray("tokenizer.ggml.merges")
        var merges: [(String, String)] = []
        merges.reserveCapacity(mergeStrings.count)
        for (k, m) in mergeStrings.enumerated() {
            guard let sp = m.firstIndex(of: " ") else {
                throw InputError(file: f.path, key: "tokenizer.ggml.merges",
                                 "merge \(k) (\"\(AblabText.printable(m))\") is not two tokens separated by a space; the file is corrupt")
            }
            merges.append((String(m[..<sp]), String(m[m.index(after: sp)...])))
        }
        var added: [AddedToken] = []
        if let types = f.intArray("tokenizer.ggml.token_type") {
            guard types.count == tokens.count else {
                throw InputError(file: f.path, key: "tokenizer.ggml.token_type",
                                 "\(types.count) token types for \(tokens.count) tokens; the file is inconsistent")
            }
            for (i, t) in types.enumerated() where t == 3 || t == 4 {
                // A control token spelled outside the byte alphabet is a converter mislabel (HF skips it too).
                if t == 3 && ByteLevel.decode(tokens[i]) == nil { continue }
                added.append(AddedToken(id: Int32(i), content: tokens[i], special: t == 3))
            }
        }
        let pre = f.string("tokenizer.ggml.pre") ?? "default"
        guard let steps = PreTokenizerStep.steps(forGGUFPre: pre) else {
            throw InputError(file: f.path, key: "tokenizer.ggml.pre",
                             "pre-tokenizer \(AblabText.printable(pre)) is not implemented (supported: gpt2, smollm/starcoder, qwen2, llama3 families)")
        }
        let normalizer: TokenizerNormalizer = (pre == "qwen2" || pre == "deepseek-r1-qwen") ? .nfc : .none
        func id(_ key: String) -> Int32? { f.int("tokenizer.ggml.\(key)").map { Int32(truncatingIfNeeded: $0) } }
        return try BPETokenizer(tokens: tokens, merges: merges, addedTokens: added, preTokenizer: steps,
                                normalizer: normalizer, bosTokenId: id("bos_token_id"), eosTokenId: id("eos_token_id"),
                                padTokenId: id("padding_token_id"), source: f.path)
    }
}

extension LoadedTokenizer {
    static func loadGGUF(path: String) throws -> LoadedTokenizer {
        let f = try GGUFFile(path: path)
        return LoadedTokenizer(tokenizer: try BPETokenizer.fromGGUF(f),
                               chatTemplateSource: f.string("tokenizer.chat_template"),
                               architecture: f.architecture ?? "unknown")
    }
}
