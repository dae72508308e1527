/// Hand-written scanners for the pre-tokenizer splits of byte-level BPE models (no regex engine):
/// each reproduces one regular expression of Hugging Face `tokenizers` / llama.cpp exactly, with the
/// regex's leftmost-first alternation and greedy repetition, over Unicode scalar classes
/// (`\p{L}` letters, `\p{N}` numbers, `\s` White_Space).
public enum PreTokenizerStep: Sendable, Equatable {
    /// `Digits`: numbers (`\p{N}`) isolated, one per piece (`individual`) or as runs.
    case digits(individual: Bool)
    /// GPT-2 (`ByteLevel` with `use_regex`):
    /// `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`
    case gpt2
    /// Qwen2 (maxDigits 1) and Llama 3 (maxDigits 3):
    /// `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,maxDigits}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
    case cl100k(maxDigits: Int)

    static let qwen2 = PreTokenizerStep.cl100k(maxDigits: 1)
    static let llama3 = PreTokenizerStep.cl100k(maxDigits: 3)

    /// The exact regex strings of `Split` pre-tokenizers this module implements.
    static let knownSplitRegexes: [String: PreTokenizerStep] = [
        #"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"#: .gpt2,
        #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#: .qwen2,
        #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#: .llama3,
    ]

    /// The steps for a GGUF `tokenizer.ggml.pre` value (as llama.cpp applies them), nil if unknown.
    static func steps(forGGUFPre pre: String) -> [PreTokenizerStep]? {
        switch pre {
        case "default", "gpt2", "gpt-2", "mpt", "olmo", "jais":
            return [.gpt2]
        case "smollm", "starcoder", "refact", "codeshell", "command-r", "exaone":
            return [.digits(individual: true), .gpt2]
        case "qwen2", "stablelm2", "deepseek-r1-qwen":
            return [.qwen2]
        case "llama3", "llama-v3", "llama-bpe", "falcon3", "smaug-bpe", "dbrx":
            return [.llama3]
        default:
            return nil
        }
    }
}

/// Character classes of the scanners.
enum CharClass: UInt8 {
    case letter = 1, number = 2, space = 3, newline = 4, other = 5  // newline = \r or \n (also whitespace)
}

/// One text segment prepared for scanning: scalar values, their classes, and UTF-8 byte offsets.
struct ScalarText {
    var scalars: [UInt32] = []
    var classes: [CharClass] = []
    var utf8: [UInt8] = []
    var offsets: [Int] = []   // [scalars.count + 1] byte offset of each scalar in utf8

    mutating func load(_ text: Substring.UnicodeScalarView) {
        scalars.removeAll(keepingCapacity: true)
        classes.removeAll(keepingCapacity: true)
        utf8.removeAll(keepingCapacity: true)
        offsets.removeAll(keepingCapacity: true)
        for s in text {
            scalars.append(s.value)
            classes.append(Self.classify(s))
            offsets.append(utf8.count)
            utf8.append(contentsOf: UTF8.encode(s)!)
        }
        offsets.append(utf8.count)
    }

    static let asciiClasses: [CharClass] = (0..<128).map { v -> CharClass in
        let s = Unicode.Scalar(UInt8(v))
        if v == 10 || v == 13 { return .newline }
        if (9...12).contains(v) || v == 32 { return .space }
        if s.properties.isAlphabetic { return .letter }
        if (48...57).contains(v) { return .number }
        return .other
    }

    static func classify(_ s: Unicode.Scalar) -> CharClass {
        if s.value < 128 { return asciiClasses[Int(s.value)] }
        switch s.properties.generalCategory {
        case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter:
            return .letter
        case .decimalNumber, .letterNumber, .otherNumber:
            return .number
        default:
            return s.properties.isWhitespace ? .space : .other
        }
    }
}

/// Applies pre-tokenizer steps to a segment: a list of [start, end) scalar ranges.
struct PreTokenizerScanner {
    let steps: [PreTokenizerStep]

    func split(_ t: ScalarText, into out: inout [Range<Int>], scratch: inout [Range<Int>]) {
        out.removeAll(keepingCapacity: true)
        if t.scalars.isEmpty { return }
        out.append(0..<t.scalars.count)
        for step in steps {
            scratch.removeAll(keepingCapacity: true)
            for piece in out {
                switch step {
                case .digits(let individual): Self.digits(t, piece, individual, &scratch)
                case .gpt2: Self.gpt2(t, piece, &scratch)
                case .cl100k(let maxDigits): Self.cl100k(t, piece, maxDigits, &scratch)
                }
            }
            swap(&out, &scratch)
        }
    }

    static func digits(_ t: ScalarText, _ r: Range<Int>, _ individual: Bool, _ out: inout [Range<Int>]) {
        var i = r.lowerBound
        var start = i
        while i < r.upperBound {
            if t.classes[i] == .number {
                if start < i { out.append(start..<i) }
                var j = i + 1
                if !individual { while j < r.upperBound && t.classes[j] == .number { j += 1 } }
                out.append(i..<j)
                i = j
                start = j
            } else {
                i += 1
            }
        }
        if start < r.upperBound { out.append(start..<r.upperBound) }
    }

    /// Length of a contraction (`'s 't 're 've 'm 'll 'd`) starting at the apostrophe at i, or 0.
    @inline(__always)
    static func contraction(_ t: ScalarText, _ i: Int, _ end: Int, caseInsensitive: Bool) -> Int {
        guard i + 1 < end else { return 0 }
        @inline(__always) func lower(_ v: UInt32) -> UInt32 {
            guard caseInsensitive else { return v }
            if v >= 65 && v <= 90 { return v + 32 }
            if v == 0x17F { return 115 }  // ſ case-folds to s
            return v
        }
        let a = lower(t.scalars[i + 1])
        switch a {
        case 115, 116, 109, 100: return 2  // s t m d
        case 114, 118:                     // r v → 're 've
            return i + 2 < end && lower(t.scalars[i + 2]) == 101 ? 3 : 0
        case 108:                          // l → 'll
            return i + 2 < end && lower(t.scalars[i + 2]) == 108 ? 3 : 0
        default: return 0
        }
    }

    @inline(__always)
    static func run(_ t: ScalarText, from i: Int, _ end: Int, _ c: CharClass) -> Int {
        var j = i
        while j < end && t.classes[j] == c { j += 1 }
        return j
    }

    @inline(__always)
    static func isSpace(_ c: CharClass) -> Bool { c == .space || c == .newline }

    /// `\s+(?!\S)|\s+` at i (a whitespace scalar): the run, minus its last scalar when a non-space follows.
    @inline(__always)
    static func whitespaceTail(_ t: ScalarText, _ i: Int, _ end: Int) -> Int {
        var j = i
        while j < end && isSpace(t.classes[j]) { j += 1 }
        if j < end && j - i >= 2 { return j - 1 }
        return j
    }

    static func gpt2(_ t: ScalarText, _ r: Range<Int>, _ out: inout [Range<Int>]) {
        let end = r.upperBound
        var i = r.lowerBound
        while i < end {
            let c = t.classes[i]
            if t.scalars[i] == 39 {  // '
                let n = contraction(t, i, end, caseInsensitive: false)
                if n > 0 { out.append(i..<(i + n)); i += n; continue }
            }
            // ` ?X+` for X in letters, numbers, other
            let p = (t.scalars[i] == 32 && i + 1 < end) ? i + 1 : i
            let pc = t.classes[p]
            if pc == .letter || pc == .number || pc == .other {
                let j = run(t, from: p, end, pc)
                out.append(i..<j); i = j; continue
            }
            if isSpace(c) {
                let j = whitespaceTail(t, i, end)
                out.append(i..<j); i = j; continue
            }
            // unreachable: every class is handled above; keep progress guaranteed
            out.append(i..<(i + 1)); i += 1
        }
    }

    static func cl100k(_ t: ScalarText, _ r: Range<Int>, _ maxDigits: Int, _ out: inout [Range<Int>]) {
        let end = r.upperBound
        var i = r.lowerBound
        while i < end {
            let c = t.classes[i]
            if t.scalars[i] == 39 {
                let n = contraction(t, i, end, caseInsensitive: true)
                if n > 0 { out.append(i..<(i + n)); i += n; continue }
            }
            // [^\r\n\p{L}\p{N}]?\p{L}+
            if c == .letter {
                let j = run(t, from: i, end, .letter)
                out.append(i..<j); i = j; continue
            }
            if c != .newline && c != .number && i + 1 < end && t.classes[i + 1] == .letter {
                let j = run(t, from: i + 1, end, .letter)
                out.append(i..<j); i = j; continue
            }
            // \p{N}{1,maxDigits}
            if c == .number {
                var j = i + 1
                while j < end && j - i < maxDigits && t.classes[j] == .number { j += 1 }
                out.append(i..<j); i = j; continue
            }
            // ' ?[^\s\p{L}\p{N}]+[\r\n]*'
            let p = (t.scalars[i] == 32 && i + 1 < end) ? i + 1 : i
            if t.classes[p] == .other {
                var j = run(t, from: p, end, .other)
                j = run(t, from: j, end, .newline)
                out.append(i..<j); i = j; continue
            }
            if isSpace(c) {
                // \s*[\r\n]+ : up to and including the last newline of the whitespace run
                var j = i
                var lastNewline = -1
                while j < end && isSpace(t.classes[j]) {
                    if t.classes[j] == .newline { lastNewline = j }
                    j += 1
                }
                if lastNewline >= 0 { out.append(i..<(lastNewline + 1)); i = lastNewline + 1; continue }
                let k = whitespaceTail(t, i, end)
                out.append(i..<k); i = k; continue
            }
            out.append(i..<(i + 1)); i += 1
        }
    }
}
