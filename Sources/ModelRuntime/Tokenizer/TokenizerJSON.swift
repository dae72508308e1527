import AblabCore
import Foundation

extension BPETokenizer {
    /// Loads a Hugging Face `tokenizer.json` (a file, or a folder holding one): BPE `model.vocab`,
    /// `model.merges` (`"a b"` strings or `["a", "b"]` pairs), `added_tokens`, a `pre_tokenizer` made of
    /// `ByteLevel`, `Digits` and `Split` (with the GPT-2, Qwen2 or Llama 3 regex) steps, optionally in a
    /// `Sequence`, and a `normalizer` that is absent or `NFC`. Anything else is an `InputError` naming the key.
    public static func fromTokenizerJSON(path: String) throws -> BPETokenizer {
        var file = path
        var isDir: ObjCBool = false
        if FileManager.default.fileExists(atPath: path, isDirectory: &isDir), isDir.boolValue {
            file = (path as NSString).appendingPathComponent("tokenizer.json")
        }
        guard let data = FileManager.default.contents(atPath: file) else {
            throw InputError(file: file, "cannot read the tokenizer file (does it exist?)")
        }
        let any: Any
        do { any = try JSONSerialization.jsonObject(with: data) } catch {
            throw InputError(file: file, "the tokenizer file is not valid JSON: \(error.localizedDescription)")
        }
        guard let doc = any as? [String: Any] else {
            throw InputError(file: file, "the tokenizer file must hold a JSON object")
        }
        var tok = try fromTokenizerJSONObject(doc, source: file)
        // Special token ids from tokenizer_config.json beside it, when present.
        let configPath = ((file as NSString).deletingLastPathComponent as NSString).appendingPathComponent("tokenizer_config.json")
        if let cdata = FileManager.default.contents(atPath: configPath),
           let config = (try? JSONSerialization.jsonObject(with: cdata)) as? [String: Any] {
            func id(_ key: String) -> Int32? {
                let v = config[key]
                let name = (v as? String) ?? ((v as? [String: Any])?["content"] as? String)
                guard let name else { return nil }
                return tok.addedTokenId(name) ?? tok.tokens.firstIndex(of: name).map(Int32.init)
            }
            tok.bosTokenId = id("bos_token")
            tok.eosTokenId = id("eos_token")
            tok.padTokenId = id("pad_token")
        }
        return tok
    }

    /// Builds from an already parsed `tokenizer.json` object (see `fromTokenizerJSON(path:)`).
    public static func fromTokenizerJSONObject(_ doc: [String: Any], source: String) throws -> BPETokenizer {
        guard let model = doc["model"] as? [String: Any] else {
            throw InputError(file: source, key: "model", "no tokenizer model; expected a BPE model")
        }
        if let type = model["type"] as? String, type != "BPE" {
            throw InputError(file: source, key: "model.type", "tokenizer model \(AblabText.printable(type)) is not supported; only byte-level BPE is")
        }
        for key in ["continuing_subword_prefix", "end_of_word_suffix"] {
            if let v = model[key] as? String, !v.isEmpty {
                throw InputError(file: source, key: "model.\(key)", "a BPE \(key) is not supported (byte-level BPE has none)")
            }
        }
        if let v = model["byte_fallback"] as? Bool, v {
            throw InputError(file: source, key: "model.byte_fallback", "byte_fallback BPE is not supported (byte-level BPE needs none)")
        }
        guard let vocab = model["vocab"] as? [String: Any] else {
            throw InputError(file: source, key: "model.vocab", "missing vocabulary object")
        }
        var addedTokens: [AddedToken] = []
        for (k, item) in ((doc["added_tokens"] as? [[String: Any]]) ?? []).enumerated() {
            guard let n = item["id"] as? NSNumber, let content = item["content"] as? String else {
                throw InputError(file: source, key: "added_tokens[\(k)]", "an added token needs an id and a content")
            }
            guard let id = Int32(exactly: n.doubleValue), id >= 0 else {
                throw InputError(file: source, key: "added_tokens[\(k)]", "added token id \(n) is not a non-negative integer; the tokenizer file is corrupt")
            }
            if (item["lstrip"] as? Bool) == true || (item["rstrip"] as? Bool) == true || (item["single_word"] as? Bool) == true {
                throw InputError(file: source, key: "added_tokens[\(k)]",
                                 "added token \(AblabText.printable(content)) uses lstrip/rstrip/single_word, which is not supported")
            }
            addedTokens.append(AddedToken(id: id, content: content, special: (item["special"] as? Bool) ?? false))
        }
        var maxId = -1
        for (_, v) in vocab {
            guard let n = v as? NSNumber else {
                throw InputError(file: source, key: "model.vocab", "vocabulary ids must be integers")
            }
            maxId = max(maxId, n.intValue)
        }
        for a in addedTokens { maxId = max(maxId, Int(a.id)) }
        // Ids are dense in real vocabularies; a gap larger than the file's own entries cannot be justified
        // (and would allocate without bound).
        let idLimit = min(10_000_000, 2 * (vocab.count + addedTokens.count) + 1024)
        guard maxId < idLimit else {
            throw InputError(file: source, key: "model.vocab",
                             "token id \(maxId) is implausibly large for \(vocab.count) vocabulary entries; the tokenizer file is corrupt")
        }
        var tokens = [String](repeating: "", count: maxId + 1)
        for (t, v) in vocab {
            let id = (v as! NSNumber).intValue
            guard id >= 0 else { throw InputError(file: source, key: "model.vocab", "negative token id for \(AblabText.printable(t))") }
            tokens[id] = t
        }
        for a in addedTokens where tokens[Int(a.id)].isEmpty { tokens[Int(a.id)] = a.content }

        var merges: [(String, String)] = []
        for (k, m) in ((model["merges"] as? [Any]) ?? []).enumerated() {
            if let s = m as? String {
                let parts = s.split(separator: " ", maxSplits: 1, omittingEmptySubsequences: false)
                guard parts.count == 2 else {
                    throw InputError(file: source, key: "model.merges[\(k)]", "a merge must be two tokens separated by one space")
                }
                merges.append((String(parts[0]), String(parts[1])))
            } else if let a = m as? [String], a.count == 2 {
                merges.append((a[0], a[1]))
            } else {
                throw InputError(file: source, key: "model.merges[\(k)]", "a merge must be \"a b\" or [\"a\", \"b\"]")
            }
        }

        let normalizer = try parseNormalizer(doc["normalizer"], source: source)
        let pre = try parsePreTokenizer(doc["pre_tokenizer"], source: source, key: "pre_tokenizer")
        return try BPETokenizer(tokens: tokens, merges: merges, addedTokens: addedTokens, preTokenizer: pre,
                                normalizer: normalizer, source: source)
    }

    static func parseNormalizer(_ v: Any?, source: String) throws -> TokenizerNormalizer {
        guard let v, !(v is NSNull) else { return .none }
        guard let o = v as? [String: Any], let type = o["type"] as? String else {
            throw InputError(file: source, key: "normalizer", "expected an object with a type")
        }
        switch type {
        case "NFC": return .nfc
        case "Sequence":
            let items = (o["normalizers"] as? [Any]) ?? []
            let parsed = try items.map { try parseNormalizer($0, source: source) }.filter { $0 != .none }
            if parsed.isEmpty { return .none }
            if parsed == [.nfc] { return .nfc }
            fallthrough
        default:
            throw InputError(file: source, key: "normalizer", "normalizer \(AblabText.printable(type)) is not supported (only NFC)")
        }
    }

    static func parsePreTokenizer(_ v: Any?, source: String, key: String) throws -> [PreTokenizerStep] {
        guard let v, !(v is NSNull) else { return [] }
        guard let o = v as? [String: Any], let type = o["type"] as? String else {
            throw InputError(file: source, key: key, "expected an object with a type")
        }
        switch type {
        case "Sequence":
            let items = (o["pretokenizers"] as? [Any]) ?? []
            var steps: [PreTokenizerStep] = []
            for (i, item) in items.enumerated() {
                steps += try parsePreTokenizer(item, source: source, key: "\(key).pretokenizers[\(i)]")
            }
            return steps
        case "ByteLevel":
            if (o["add_prefix_space"] as? Bool) == true {
                throw InputError(file: source, key: key, "ByteLevel add_prefix_space is not supported")
            }
            return (o["use_regex"] as? Bool) ?? true ? [.gpt2] : []
        case "Digits":
            return [.digits(individual: (o["individual_digits"] as? Bool) ?? false)]
        case "Split":
            let behavior = (o["behavior"] as? String) ?? "Isolated"
            guard behavior == "Isolated", (o["invert"] as? Bool) != true else {
                throw InputError(file: source, key: key, "Split with behavior \(AblabText.printable(behavior)) / invert is not supported (only Isolated)")
            }
            guard let pattern = o["pattern"] as? [String: Any], let regex = pattern["Regex"] as? String else {
                throw InputError(file: source, key: key, "Split needs a Regex pattern")
            }
            guard let step = PreTokenizerStep.knownSplitRegexes[regex] else {
                throw InputError(file: source, key: key,
                                 "Split regex \(AblabText.printable(regex)) is not one this tokenizer implements (GPT-2, Qwen2, Llama 3)")
            }
            return [step]
        default:
            throw InputError(file: source, key: key, "pre-tokenizer \(AblabText.printable(type)) is not supported")
        }
    }
}
