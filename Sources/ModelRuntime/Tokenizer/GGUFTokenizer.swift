import AblabCore

extension BPETokenizer {
    /// Builds the tokenizer from GGUF metadata: `tokenizer.ggml.model` (must be `gpt2`, byte-level BPE),
    /// `tokens`, `merges`, `token_type` (3 control → special added token, 4 user-defined → non-special
    /// added token), `pre` (the pre-tokenizer split, as llama.cpp applies it) and the bos/eos/padding ids.
    ///
    /// Two details follow the model's original Hugging Face tokenizer rather than the GGUF loader of
    /// transformers: `smollm` isolates every digit before the GPT-2 split (HF `Digits(individual_digits)`,
    /// as llama.cpp does), and `qwen2` normalises text to NFC (HF `Qwen2Tokenizer`).
    ///
    /// A SentencePiece vocabulary (`llama`) is read for the Gemma architectures (`gemma`, `gemma2`,
    /// `gemma3`) as transformers builds it from the file: see `fromGGUFGemma`.
    public static func fromGGUF(_ f: GGUFFile) throws -> BPETokenizer {
        let model = f.string("tokenizer.ggml.model")
        if model == "llama" {
            let arch = f.architecture ?? "(none)"
            guard ["gemma", "gemma2", "gemma3"].contains(arch) else {
                throw InputError(file: f.path, key: "tokenizer.ggml.model",
                                 "a SentencePiece (llama) vocabulary is implemented for the Gemma architectures only, not \(AblabText.printable(arch))")
            }
            return try fromGGUFGemma(f)
        }
        guard model == "gpt2" else {
            throw InputError(file: f.path, key: "tokenizer.ggml.model",
                             "tokenizer \(AblabText.printable(model ?? "(none)")) is not supported; byte-level BPE (gpt2) and Gemma's SentencePiece (llama) vocabularies are")
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

extension BPETokenizer {
    /// Gemma's SentencePiece vocabulary as transformers' GGUF loader builds it (`GemmaTokenizer`: BPE
    /// with byte fallback, spaces as `▁`): a token made of whitespace that contains a space is spelled
    /// as that many `▁` (the file stores real spaces); merges follow the vocabulary order, not the
    /// file's scores (see `TokenizerModel.sentencePiece`); control tokens (type 3) are special added
    /// tokens, user-defined ones (type 4, e.g. `\n`, `\n\n`) plain added tokens.
    static func fromGGUFGemma(_ f: GGUFFile) throws -> BPETokenizer {
        let raw = try f.requireStringArray("tokenizer.ggml.tokens")
        let tokens = raw.map { t -> String in
            guard t.unicodeScalars.contains(" "), t.unicodeScalars.allSatisfy(PyString.isSpace) else { return t }
            return String(repeating: "\u{2581}", count: t.unicodeScalars.count)
        }
        guard let types = f.intArray("tokenizer.ggml.token_type"), types.count == tokens.count else {
            throw InputError(file: f.path, key: "tokenizer.ggml.token_type",
                             "a token type per token is required for a SentencePiece vocabulary (\(tokens.count) tokens)")
        }
        let known = Set(tokens.map { Array($0.utf8) })   // bytes: String equality merges canonical equivalents
        var added: [AddedToken] = []
        for (i, t) in types.enumerated() {
            if t == 3 { added.append(AddedToken(id: Int32(i), content: raw[i], special: true)) }
            // As transformers: only a user-defined token whose own spelling is in the vocabulary.
            if t == 4 && known.contains(Array(raw[i].utf8)) { added.append(AddedToken(id: Int32(i), content: raw[i], special: false)) }
        }
        func id(_ key: String) -> Int32? { f.int("tokenizer.ggml.\(key)").map { Int32(truncatingIfNeeded: $0) } }
        return try BPETokenizer(tokens: tokens, merges: [], addedTokens: added, preTokenizer: [],
                                bosTokenId: id("bos_token_id"), eosTokenId: id("eos_token_id"),
                                padTokenId: id("padding_token_id"), model: .sentencePiece, source: f.path)
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
