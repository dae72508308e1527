import AblabCore
import Foundation

/// A token matched whole in the text before BPE (`<|im_start|>`, `<|im_end|>`, …).
public struct AddedToken: Sendable, Equatable {
    public var id: Int32
    public var content: String
    /// Special (control) tokens are matched only when `parseSpecial` is on and dropped by `skipSpecial`.
    public var special: Bool
    public init(id: Int32, content: String, special: Bool) {
        self.id = id; self.content = content; self.special = special
    }
}

/// Text normalisation applied before pre-tokenisation (outside added tokens).
public enum TokenizerNormalizer: Sendable, Equatable {
    case none
    case nfc
}

/// How a vocabulary spells text.
public enum TokenizerModel: Sendable, Equatable {
    /// Byte-level BPE (GPT-2 alphabet, merges by rank).
    case byteLevel
    /// SentencePiece-style BPE as Hugging Face builds it for Gemma from a GGUF vocabulary
    /// (`tokenizer.ggml.model = llama`): spaces become `▁`, the text between added tokens is one word
    /// of Unicode characters, a character missing from the vocabulary falls back to its UTF-8 byte
    /// tokens `<0xXX>`, and two adjacent symbols merge when their concatenation is a token; the merge
    /// whose result comes first in the vocabulary wins (on a tie, the longer left part; then the
    /// leftmost position) — the merge order transformers derives for Gemma files.
    case sentencePiece
}

/// Byte-level BPE (GPT-2 family: SmolLM2, Qwen2.5, Llama 3): added tokens are split out first, the rest
/// is normalised, pre-tokenised by the model's split, spelled as bytes and merged by merge rank. Built
/// from GGUF metadata (`fromGGUF`) or a Hugging Face `tokenizer.json` (`fromTokenizerJSON`).
/// With `model == .sentencePiece` it is Gemma's SentencePiece-style BPE instead (see `TokenizerModel`).
public struct BPETokenizer: Sendable {
    /// Vocabulary strings as the model file spells them (byte-level alphabet), indexed by id.
    public let tokens: [String]
    /// The bytes each token stands for (decoding), indexed by id.
    let tokenBytes: [[UInt8]]
    /// byte → id of its single-byte token (-1 when the vocabulary lacks it; such bytes are dropped, as HF does).
    let byteToId: [Int32]
    /// (left id << 32 | right id) → (rank << 32 | merged id).
    let merges: [UInt64: UInt64]
    public let addedTokens: [AddedToken]
    let addedFirstBytes: [Bool]        // [256] some added token starts with this byte
    let addedUTF8: [[UInt8]]           // added token contents, longest first (parallel to addedOrder)
    let addedOrder: [Int]              // indices into addedTokens, longest content first
    let specialIds: Set<Int32>
    public let preTokenizer: [PreTokenizerStep]
    public let normalizer: TokenizerNormalizer
    public internal(set) var bosTokenId: Int32?
    public internal(set) var eosTokenId: Int32?
    public internal(set) var padTokenId: Int32?
    /// Where the tokenizer came from (file path), for error messages.
    public let source: String
    public let model: TokenizerModel
    /// SentencePiece: token UTF-8 → id (the last id of a spelling that occurs twice, as HF's vocabulary
    /// keeps it). Keyed by bytes: Swift's String equality would merge canonically equivalent tokens
    /// (`;` U+037E and `;`, `不` U+F967 and U+4E0D), which are distinct tokens.
    let spVocab: [[UInt8]: Int32]
    let spUTF8: [[UInt8]]
    /// SentencePiece: length of each token in Unicode scalars (the merge tie-break).
    let scalarLengths: [Int32]
    private let cache = BPECache()

    public var vocabSize: Int { tokens.count }

    /// Ids that end a generation: the declared eos plus `<|im_end|>` / `<|endoftext|>` where present.
    public var eosTokenIds: [Int32] {
        var ids: [Int32] = []
        if let eosTokenId { ids.append(eosTokenId) }
        for name in ["<|im_end|>", "<|endoftext|>"] {
            if let t = addedTokens.first(where: { $0.content == name }), !ids.contains(t.id) { ids.append(t.id) }
        }
        return ids
    }

    /// The id of an added token by its text (`<|im_start|>`), if the vocabulary has it.
    public func addedTokenId(_ content: String) -> Int32? {
        addedTokens.first(where: { $0.content == content })?.id
    }

    /// The token's vocabulary string, or nil for an out-of-range id.
    public func tokenString(_ id: Int32) -> String? {
        guard id >= 0 && Int(id) < tokens.count else { return nil }
        return tokens[Int(id)]
    }

    /// Builds a tokenizer from a vocabulary (ids are indices), merges (`"a b"` in the byte-level
    /// alphabet, best first) and added tokens. Throws `InputError` naming `source` when a merge
    /// refers to a token the vocabulary lacks.
    public init(tokens: [String], merges mergeList: [(String, String)], addedTokens: [AddedToken],
                preTokenizer: [PreTokenizerStep], normalizer: TokenizerNormalizer = .none,
                bosTokenId: Int32? = nil, eosTokenId: Int32? = nil, padTokenId: Int32? = nil,
                model: TokenizerModel = .byteLevel, source: String) throws {
        self.tokens = tokens
        self.source = source
        self.model = model
        self.preTokenizer = preTokenizer
        self.normalizer = normalizer
        self.bosTokenId = bosTokenId
        self.eosTokenId = eosTokenId
        self.padTokenId = padTokenId
        for (name, id) in [("bos", bosTokenId), ("eos", eosTokenId), ("padding", padTokenId)] {
            if let id, id < 0 || Int(id) >= tokens.count {
                throw InputError(file: source, key: "\(name)_token_id",
                                 "token id \(id) is outside the vocabulary of \(tokens.count) tokens; the file is inconsistent")
            }
        }

        var vocab: [String: Int32] = [:]
        vocab.reserveCapacity(tokens.count)
        var bytes: [[UInt8]] = []
        bytes.reserveCapacity(tokens.count)
        var spv: [[UInt8]: Int32] = [:]
        for (i, t) in tokens.enumerated() {
            switch model {
            case .byteLevel:
                if vocab[t] == nil { vocab[t] = Int32(i) }
                bytes.append(ByteLevel.decode(t) ?? Array(t.utf8))
            case .sentencePiece:
                spv[Array(t.utf8)] = Int32(i)
                bytes.append(BPETokenizer.byteFallbackValue(t).map { [$0] } ?? Array(t.replacingOccurrences(of: "\u{2581}", with: " ").utf8))
            }
        }
        self.spVocab = spv
        self.spUTF8 = model == .sentencePiece ? tokens.map { Array($0.utf8) } : []
        self.scalarLengths = model == .sentencePiece ? tokens.map { Int32($0.unicodeScalars.count) } : []
        var added = addedTokens
        for a in added where a.id < 0 || Int(a.id) >= tokens.count {
            throw InputError(file: source, key: "added_tokens",
                             "added token \(AblabText.printable(a.content)) has id \(a.id), outside the vocabulary of \(tokens.count) tokens")
        }
        // Added tokens decode to their own text.
        for a in added { bytes[Int(a.id)] = Array(a.content.utf8) }
        added.removeAll { $0.content.isEmpty }
        self.tokenBytes = bytes
        self.addedTokens = added

        var b2i = [Int32](repeating: -1, count: 256)
        for b in 0..<256 {
            if model == .sentencePiece {
                if let id = spv[Array(BPETokenizer.byteFallbackName(UInt8(b)).utf8)] { b2i[b] = id }
                continue
            }
            let spelled = String(Unicode.Scalar(ByteLevel.byteToScalar[b])!)
            if let id = vocab[spelled] { b2i[b] = id }
        }
        self.byteToId = b2i

        var m: [UInt64: UInt64] = [:]
        m.reserveCapacity(mergeList.count)
        for (rank, (a, b)) in mergeList.enumerated() {
            guard let ia = vocab[a], let ib = vocab[b], let ir = vocab[a + b] else {
                throw InputError(file: source, key: "merges",
                                 "merge \(rank) (\"\(AblabText.printable(a + " " + b))\") uses a token missing from the vocabulary; the tokenizer is corrupt")
            }
            let key = UInt64(UInt32(bitPattern: ia)) << 32 | UInt64(UInt32(bitPattern: ib))
            if m[key] == nil { m[key] = UInt64(rank) << 32 | UInt64(UInt32(bitPattern: ir)) }
        }
        self.merges = m

        let order = added.indices.sorted { added[$0].content.utf8.count > added[$1].content.utf8.count }
        self.addedOrder = order
        self.addedUTF8 = order.map { Array(added[$0].content.utf8) }
        var first = [Bool](repeating: false, count: 256)
        for a in added { first[Int(a.content.utf8.first!)] = true }
        self.addedFirstBytes = first
        self.specialIds = Set(added.filter(\.special).map(\.id))
    }

    // MARK: encoding

    /// Token ids of `text`. With `parseSpecial`, special tokens written in the text (`<|im_start|>`) become
    /// their ids; without it only non-special added tokens do and special ones are tokenised as text.
    public func encode(_ text: String, parseSpecial: Bool = true) -> [Int32] {
        var ids: [Int32] = []
        var state = EncodeState()
        let utf8 = Array(text.utf8)
        var segStart = 0
        var i = 0
        let n = utf8.count
        while i < n {
            if addedFirstBytes[Int(utf8[i])], let (k, len) = matchAdded(utf8, at: i, parseSpecial: parseSpecial) {
                if segStart < i { encodeSegment(utf8[segStart..<i], &ids, &state) }
                ids.append(addedTokens[addedOrder[k]].id)
                i += len
                segStart = i
            } else {
                i += 1
            }
        }
        if segStart < n { encodeSegment(utf8[segStart..<n], &ids, &state) }
        return ids
    }

    /// The longest added token at byte offset i: (index into addedOrder, byte length).
    private func matchAdded(_ utf8: [UInt8], at i: Int, parseSpecial: Bool) -> (Int, Int)? {
        for (k, c) in addedUTF8.enumerated() {
            if !parseSpecial && addedTokens[addedOrder[k]].special { continue }
            if c.count <= utf8.count - i {
                var ok = true
                for j in 0..<c.count where utf8[i + j] != c[j] { ok = false; break }
                if ok { return (k, c.count) }
            }
        }
        return nil
    }

    /// Buffers reused across the segments of one `encode` call.
    struct EncodeState {
        var text = ScalarText()
        var pieces: [Range<Int>] = []
        var scratch: [Range<Int>] = []
        var symbols: [Int32] = []
        var ranks: [UInt64] = []
    }

    private func encodeSegment(_ bytes: ArraySlice<UInt8>, _ ids: inout [Int32], _ st: inout EncodeState) {
        if model == .sentencePiece { return encodeSentencePiece(bytes, &ids, &st) }
        var s = String(decoding: bytes, as: UTF8.self)
        if normalizer == .nfc { s = s.precomposedStringWithCanonicalMapping }
        st.text.load(Substring(s).unicodeScalars)
        PreTokenizerScanner(steps: preTokenizer).split(st.text, into: &st.pieces, scratch: &st.scratch)
        for piece in st.pieces {
            let word = st.text.utf8[st.text.offsets[piece.lowerBound]..<st.text.offsets[piece.upperBound]]
            if let hit = cache.get(word) {
                ids.append(contentsOf: hit)
                continue
            }
            let start = ids.count
            bpe(word, &ids, &st)
            cache.put(word, Array(ids[start...]))
        }
    }

    /// Merges the bytes of one word by rank (lowest first, leftmost on ties) and appends the token ids.
    private func bpe(_ word: ArraySlice<UInt8>, _ ids: inout [Int32], _ st: inout EncodeState) {
        st.symbols.removeAll(keepingCapacity: true)
        for b in word {
            let id = byteToId[Int(b)]
            if id >= 0 { st.symbols.append(id) }
        }
        let none = UInt64.max
        @inline(__always) func pairRank(_ a: Int32, _ b: Int32) -> UInt64 {
            merges[UInt64(UInt32(bitPattern: a)) << 32 | UInt64(UInt32(bitPattern: b))] ?? none
        }
        Self.merge(&st, pairRank)
        ids.append(contentsOf: st.symbols)
    }

    /// Merges `st.symbols` pair by pair, the pair with the smallest `pairRank` first (leftmost on ties),
    /// until no pair merges. A rank is `order << 32 | merged id` (`UInt64.max`: the pair does not merge).
    @inline(__always)
    private static func merge(_ st: inout EncodeState, _ pairRank: (Int32, Int32) -> UInt64) {
        let none = UInt64.max
        st.ranks.removeAll(keepingCapacity: true)   // ranks[i]: merge of symbols i, i+1
        if st.symbols.count > 1 {
            for i in 0..<(st.symbols.count - 1) { st.ranks.append(pairRank(st.symbols[i], st.symbols[i + 1])) }
        }
        while !st.ranks.isEmpty {
            var best = none
            var at = -1
            for i in 0..<st.ranks.count where st.ranks[i] < best { best = st.ranks[i]; at = i }
            if at < 0 { break }
            st.symbols[at] = Int32(bitPattern: UInt32(truncatingIfNeeded: best))
            st.symbols.remove(at: at + 1)
            st.ranks.remove(at: at)
            if at > 0 { st.ranks[at - 1] = pairRank(st.symbols[at - 1], st.symbols[at]) }
            if at < st.ranks.count { st.ranks[at] = pairRank(st.symbols[at], st.symbols[at + 1]) }
        }
    }

    // MARK: SentencePiece (Gemma)

    /// `<0xXX>` → XX.
    static func byteFallbackValue(_ t: String) -> UInt8? {
        let u = Array(t.utf8)
        guard u.count == 6, u[0] == 0x3C, u[1] == 0x30, u[2] == 0x78, u[5] == 0x3E else { return nil }
        return UInt8(String(decoding: u[3..<5], as: UTF8.self), radix: 16)
    }

    static func byteFallbackName(_ b: UInt8) -> String {
        let hex = String(b, radix: 16, uppercase: true)
        return "<0x" + (hex.count == 1 ? "0" + hex : hex) + ">"
    }

    /// One segment (text between added tokens): spaces → `▁`, characters → ids (byte fallback), merges.
    private func encodeSentencePiece(_ bytes: ArraySlice<UInt8>, _ ids: inout [Int32], _ st: inout EncodeState) {
        let cacheable = bytes.count <= 64
        if cacheable, let hit = cache.get(bytes) { ids.append(contentsOf: hit); return }
        let text = String(decoding: bytes, as: UTF8.self).replacingOccurrences(of: " ", with: "\u{2581}")
        st.symbols.removeAll(keepingCapacity: true)
        for u in text.unicodeScalars {
            if let id = spVocab[Array(String(u).utf8)] { st.symbols.append(id); continue }
            for b in String(u).utf8 where byteToId[Int(b)] >= 0 { st.symbols.append(byteToId[Int(b)]) }
        }
        let none = UInt64.max
        // (index of the merged token << 10 | (1023 - left length)) << 32 | merged id: smaller is better.
        func pairRank(_ a: Int32, _ b: Int32) -> UInt64 {
            guard let m = spVocab[spUTF8[Int(a)] + spUTF8[Int(b)]] else { return none }
            let left = UInt64(1023 - min(Int(scalarLengths[Int(a)]), 1023))
            return (UInt64(m) << 10 | left) << 32 | UInt64(UInt32(bitPattern: m))
        }
        Self.merge(&st, pairRank)
        if cacheable { cache.put(bytes, st.symbols) }
        ids.append(contentsOf: st.symbols)
    }

    // MARK: decoding

    /// The text of `ids`: token bytes concatenated and read as UTF-8; invalid sequences (e.g. a cut
    /// multi-byte character) become U+FFFD. Out-of-range ids are skipped.
    public func decode(_ ids: [Int32], skipSpecial: Bool = false) -> String {
        var bytes: [UInt8] = []
        for id in ids {
            guard id >= 0 && Int(id) < tokenBytes.count else { continue }
            if skipSpecial && specialIds.contains(id) { continue }
            bytes.append(contentsOf: tokenBytes[Int(id)])
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Whether `id` is a special token (end of turn, role markers…), which `decode(_:skipSpecial: true)` drops.
    public func isSpecial(_ id: Int32) -> Bool { specialIds.contains(id) }

    /// The raw bytes of one token (a token may hold part of a multi-byte character).
    public func tokenBytes(_ id: Int32) -> [UInt8] {
        guard id >= 0 && Int(id) < tokenBytes.count else { return [] }
        return tokenBytes[Int(id)]
    }
}

/// Word → ids cache shared by copies of a tokenizer (bounded; cleared when full).
final class BPECache: @unchecked Sendable {
    private var map: [ArraySlice<UInt8>: [Int32]] = [:]
    private let lock = NSLock()
    private let capacity = 200_000

    func get(_ word: ArraySlice<UInt8>) -> [Int32]? {
        lock.lock(); defer { lock.unlock() }
        return map[word]
    }

    func put(_ word: ArraySlice<UInt8>, _ ids: [Int32]) {
        lock.lock(); defer { lock.unlock() }
        if map.count >= capacity { map.removeAll(keepingCapacity: true) }
        map[ArraySlice(Array(word))] = ids
    }
}

extension BPETokenizer {
    /// The most bytes any one token stands for (added tokens included): a text of n bytes has at least
    /// n / longestTokenBytes tokens, up to normalisation.
    public var longestTokenBytes: Int { tokenBytes.reduce(1) { max($0, $1.count) } }
}
