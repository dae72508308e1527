import AblabCore

extension SplitMix64 {
    /// Uniform in 0..<n (n > 0) by remainder — the draw that defines every fuzz case; kept so that case k
    /// of a target stays the same input.
    public mutating func below(_ n: Int) -> Int { Int(next() % UInt64(max(n, 1))) }
    public mutating func chance(_ p: Double) -> Bool { Double(next() >> 11) / Double(1 << 53) < p }
}

/// An integer field of a binary seed whose value a mutation may replace with an extreme one.
public struct IntField: Sendable {
    public enum Kind: Sendable { case count, length, type, dim, offset, other }
    public var offset: Int
    public var width: Int      // 4 or 8 bytes, little-endian
    public var kind: Kind
    public init(offset: Int, width: Int, kind: Kind) { self.offset = offset; self.width = width; self.kind = kind }
}

/// A valid input to mutate, with what is known about its structure.
public struct FuzzSeed: Sendable {
    public var name: String
    public var bytes: [UInt8]
    /// Known integer fields (binary formats).
    public var fields: [IntField]
    /// Text formats get token-level mutations (numbers, value types, lines, nesting).
    public var isText: Bool
    public init(name: String, bytes: [UInt8], fields: [IntField] = [], isText: Bool) {
        self.name = name; self.bytes = bytes; self.fields = fields; self.isText = isText
    }
}

/// Mutations of a seed: truncations, bit flips, byte insertion and deletion, extreme values in integer
/// fields (counts, dimensions, offsets, string lengths, type ids), wrong value types and invalid UTF-8.
public enum Mutator {
    static let invalidUTF8: [[UInt8]] = [
        [0xFF], [0xFE, 0xFF], [0xC3, 0x28], [0xC0, 0xAF], [0xED, 0xA0, 0x80], [0xF4, 0x90, 0x80, 0x80],
        [0xE2, 0x82], [0x80], [0xF0, 0x9F, 0x98], [0x00],
    ]
    static let hugeNumbers = [
        "99999999999999999999999999", "-1", "-9223372036854775809", "9223372036854775807", "4294967296",
        "2147483648", "1e400", "-1e400", "0.5", "NaN", "1e-400", "0", "18446744073709551615", "nan", "inf",
        "-0", "0x7fffffff", "1_000", "1e9999999999",
    ]
    static let wrongValues = [
        "\"x\"", "[]", "{}", "null", "true", "false", "[1, \"a\", {}]", "{\"type\": 1}", "\"\"", "1.5", "[[]]",
        "\"\\ud800\"", "\"\\u0000\"", "-5", "{\"a\": [{}]}",
    ]

    static func interesting(_ kind: IntField.Kind, width: Int, fileSize: Int, _ rng: inout SplitMix64) -> UInt64 {
        let max: UInt64 = width == 4 ? UInt64(UInt32.max) : UInt64.max
        var options: [UInt64] = [0, 1, 2, 3, 7, 255, 256, 0x7FFF_FFFF, 0x8000_0000, 0xFFFF_FFFF, max, max &- 1,
                                 UInt64(fileSize), UInt64(fileSize) &+ 1, UInt64(fileSize) / 2, UInt64(fileSize) &* 8,
                                 1 << 32, 1 << 40, 1 << 62, 1 << 63, (1 << 63) - 1, rng.next()]
        if kind == .type { options += (0...40).map(UInt64.init) + [1000, 0xFFFF] }
        if kind == .dim || kind == .count { options += [16, 32, 64, 1 << 20, 1 << 31, 3 << 30] }
        if kind == .offset { options += [32, 64, 96, UInt64(fileSize) &- 32, UInt64(fileSize) &- 1] }
        let v = options[rng.below(options.count)]
        return width == 4 ? v & 0xFFFF_FFFF : v
    }

    static func put(_ v: UInt64, _ width: Int, at o: Int, in b: inout [UInt8]) {
        for i in 0..<width where o + i < b.count { b[o + i] = UInt8(truncatingIfNeeded: v >> (8 * UInt64(i))) }
    }

    /// One mutated case of `seed` (1–4 mutations; the first case of each seed index is the seed itself).
    public static func mutate(_ seed: FuzzSeed, _ rng: inout SplitMix64) -> [UInt8] {
        var b = seed.bytes
        let n = 1 + rng.below(4)
        for _ in 0..<n { apply(seed, &b, &rng) }
        return b
    }

    static func apply(_ seed: FuzzSeed, _ b: inout [UInt8], _ rng: inout SplitMix64) {
        let choices = seed.isText ? 14 : 10
        switch rng.below(choices) {
        case 0:  // truncate
            b = Array(b.prefix(rng.below(b.count + 1)))
        case 1:  // bit flips
            guard !b.isEmpty else { return }
            for _ in 0..<(1 + rng.below(8)) { b[rng.below(b.count)] ^= UInt8(1 << rng.below(8)) }
        case 2:  // interesting bytes
            guard !b.isEmpty else { return }
            for _ in 0..<(1 + rng.below(4)) { b[rng.below(b.count)] = [0, 0xFF, 0x7F, 0x80, 0x01, 0x20][rng.below(6)] }
        case 3:  // insert random bytes
            let at = rng.below(b.count + 1)
            b.insert(contentsOf: (0..<(1 + rng.below(16))).map { _ in UInt8(truncatingIfNeeded: rng.next()) }, at: at)
        case 4:  // delete a range
            guard !b.isEmpty else { return }
            let at = rng.below(b.count), len = 1 + rng.below(min(64, b.count - at))
            b.removeSubrange(at..<(at + len))
        case 5:  // duplicate a range elsewhere
            guard !b.isEmpty else { return }
            let at = rng.below(b.count), len = 1 + rng.below(min(128, b.count - at))
            b.insert(contentsOf: b[at..<(at + len)], at: rng.below(b.count + 1))
        case 6, 7:  // extreme value in a known integer field (or a random aligned word)
            if !seed.fields.isEmpty && rng.chance(0.8) {
                let f = seed.fields[rng.below(seed.fields.count)]
                put(interesting(f.kind, width: f.width, fileSize: b.count, &rng), f.width, at: f.offset, in: &b)
            } else if b.count >= 8 {
                let width = rng.chance(0.5) ? 4 : 8
                let o = rng.below(b.count / width) * width
                put(interesting(.other, width: width, fileSize: b.count, &rng), width, at: o, in: &b)
            }
        case 8:  // invalid UTF-8
            let s = invalidUTF8[rng.below(invalidUTF8.count)]
            let at = rng.below(b.count + 1)
            if !b.isEmpty && rng.chance(0.5) {
                let end = min(b.count, at + s.count)
                b.replaceSubrange(min(at, b.count)..<end, with: s)
            } else {
                b.insert(contentsOf: s, at: at)
            }
        case 9:  // a type id field gets another type (binary); a random byte run is zeroed (text)
            if let f = seed.fields.filter({ $0.kind == .type }).randomElement(using: &rng) {
                put(UInt64(rng.below(14)), f.width, at: f.offset, in: &b)
            } else if !b.isEmpty {
                let at = rng.below(b.count), len = 1 + rng.below(min(8, b.count - at))
                for i in at..<(at + len) { b[i] = 0 }
            }
        case 10:  // replace a number with an extreme or malformed one
            replaceToken(&b, &rng, isToken: { ($0 >= 0x30 && $0 <= 0x39) || $0 == 0x2D || $0 == 0x2E },
                         with: hugeNumbers[rng.below(hugeNumbers.count)])
        case 11:  // replace a value with one of another type
            replaceValue(&b, &rng)
        case 12:  // line surgery: duplicate, drop or swap lines
            var lines = b.split(separator: 0x0A, omittingEmptySubsequences: false).map(Array.init)
            guard !lines.isEmpty else { return }
            let i = rng.below(lines.count), j = rng.below(lines.count)
            switch rng.below(3) {
            case 0: lines.insert(lines[i], at: j)
            case 1: lines.remove(at: i)
            default: lines.swapAt(i, j)
            }
            b = Array(lines.joined(separator: [0x0A]))
        default:  // deep nesting or a very long token
            let at = rng.below(b.count + 1)
            let depth = [10, 100, 1000, 10_000, 100_000][rng.below(5)]
            let open = [UInt8(ascii: "["), UInt8(ascii: "{"), UInt8(ascii: "\""), UInt8(ascii: "a"), UInt8(ascii: ",")][rng.below(5)]
            b.insert(contentsOf: [UInt8](repeating: open, count: depth), at: at)
        }
    }

    /// Replaces a run of bytes matching `isToken` at a random place with `text`.
    static func replaceToken(_ b: inout [UInt8], _ rng: inout SplitMix64, isToken: (UInt8) -> Bool, with text: String) {
        guard !b.isEmpty else { return }
        let starts = b.indices.filter { isToken(b[$0]) && ($0 == 0 || !isToken(b[$0 - 1])) }
        guard !starts.isEmpty else { return }
        let s = starts[rng.below(starts.count)]
        var e = s
        while e < b.count && isToken(b[e]) { e += 1 }
        b.replaceSubrange(s..<e, with: Array(text.utf8))
    }

    /// Replaces the value after a random `:` or `=` (JSON / TOML) up to the next `,` `}` or newline.
    static func replaceValue(_ b: inout [UInt8], _ rng: inout SplitMix64) {
        let seps = b.indices.filter { b[$0] == UInt8(ascii: ":") || b[$0] == UInt8(ascii: "=") }
        guard !seps.isEmpty else { return }
        let s = seps[rng.below(seps.count)] + 1
        var e = s
        var inString = false
        while e < b.count {
            let c = b[e]
            if c == UInt8(ascii: "\"") { inString.toggle() }
            if !inString && (c == UInt8(ascii: ",") || c == UInt8(ascii: "}") || c == 0x0A) { break }
            e += 1
        }
        let v = wrongValues[rng.below(wrongValues.count)]
        b.replaceSubrange(s..<e, with: Array((" " + v).utf8))
    }
}
