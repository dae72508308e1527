import Foundation

// A TOML 1.0 reader in Swift, for study files. It replaces a C++ parser that aborted the process on some
// malformed files (found by the fuzz tests): a damaged study file must be an error naming its line, never
// a crash. Acceptance and values are tested against Python's `tomllib` (notebooks-scripts/fixtures_toml.py).
//
// Table-definition rules follow tomllib: a table is declared once by a header; dotted keys may extend
// tables they created within the same section but not tables declared by a header; inline tables and
// arrays are closed once written; `[[a]]` appends to an array of tables and starts a fresh table.

/// A parsed TOML value. Date-times are kept as their source text.
public indirect enum TOMLValue: Equatable, Sendable {
    case string(String)
    case integer(Int)
    case float(Double)
    case bool(Bool)
    case datetime(String)
    case array([TOMLValue])
    case table(TOMLTable)

    public var string: String? { if case .string(let s) = self { return s }; return nil }
    public var int: Int? { if case .integer(let i) = self { return i }; return nil }
    public var double: Double? { if case .float(let d) = self { return d }; return nil }
    public var bool: Bool? { if case .bool(let b) = self { return b }; return nil }
    public var array: [TOMLValue]? { if case .array(let a) = self { return a }; return nil }
    public var table: TOMLTable? { if case .table(let t) = self { return t }; return nil }

    public static func == (a: TOMLValue, b: TOMLValue) -> Bool {
        switch (a, b) {
        case let (.string(x), .string(y)): return x == y
        case let (.integer(x), .integer(y)): return x == y
        case let (.float(x), .float(y)): return x == y || (x.isNaN && y.isNaN)
        case let (.bool(x), .bool(y)): return x == y
        case let (.datetime(x), .datetime(y)): return x == y
        case let (.array(x), .array(y)): return x == y
        case let (.table(x), .table(y)): return x == y
        default: return false
        }
    }
}

/// A TOML table: keys in file order.
public struct TOMLTable: Equatable, Sendable {
    public private(set) var keys: [String] = []
    private var values: [String: TOMLValue] = [:]
    public init() {}
    public subscript(key: String) -> TOMLValue? { values[key] }
    mutating func set(_ key: String, _ v: TOMLValue) {
        if values[key] == nil { keys.append(key) }
        values[key] = v
    }

    /// Parses a TOML document.
    public init(parsing text: String) throws {
        var p = TOMLParser(text)
        self = try p.document()
    }
}

/// A syntax or structure error, with the 1-based line and column where it was found.
public struct TOMLSyntaxError: Error, Equatable, CustomStringConvertible {
    public var line: Int
    public var column: Int
    public var message: String
    public var description: String { "\(message) (line \(line), column \(column))" }
}

/// The table tree while parsing; converted to `TOMLTable` at the end.
private final class Node {
    enum Entry { case value(TOMLValue), table(Node), tables([Node]) }
    var order: [String] = []
    var entries: [String: Entry] = [:]
    /// Declared by a header, or (after its section ended) created by dotted keys: no header may declare it.
    var explicit = false
    /// An inline table: nothing may be added.
    var frozen = false

    func set(_ k: String, _ e: Entry) {
        if entries[k] == nil { order.append(k) }
        entries[k] = e
    }

    func build() -> TOMLTable {
        var t = TOMLTable()
        for k in order {
            switch entries[k]! {
            case .value(let v): t.set(k, v)
            case .table(let n): t.set(k, .table(n.build()))
            case .tables(let ns): t.set(k, .array(ns.map { .table($0.build()) }))
            }
        }
        return t
    }
}

struct TOMLParser {
    private let b: [UInt8]
    private var i = 0
    private let root = Node()
    private var current: Node
    /// Tables created by dotted keys in the current section; they become `explicit` at the next header.
    private var pending: [Node] = []
    private static let maxDepth = 128

    init(_ text: String) {
        b = Array(text.utf8)
        current = root
    }

    // MARK: errors and scanning

    private func error(_ message: String, at pos: Int? = nil) -> TOMLSyntaxError {
        let p = min(pos ?? i, b.count)
        var line = 1, col = 1
        for k in 0..<p { if b[k] == 0x0A { line += 1; col = 1 } else if b[k] & 0xC0 != 0x80 { col += 1 } }
        return TOMLSyntaxError(line: line, column: col, message: message)
    }

    private var atEnd: Bool { i >= b.count }
    private var peek: UInt8? { i < b.count ? b[i] : nil }
    private func peek(_ k: Int) -> UInt8? { i + k < b.count ? b[i + k] : nil }
    private func has(_ s: String) -> Bool {
        let u = Array(s.utf8)
        return i + u.count <= b.count && Array(b[i..<(i + u.count)]) == u
    }

    private mutating func skipSpaces() { while let c = peek, c == 0x20 || c == 0x09 { i += 1 } }

    /// Skips a comment if one starts here (control characters other than tab are not allowed in it).
    private mutating func skipComment() throws {
        guard peek == UInt8(ascii: "#") else { return }
        while let c = peek, c != 0x0A {
            if c == 0x0D && peek(1) == 0x0A { return }
            if (c < 0x20 && c != 0x09) || c == 0x7F { throw error("control character in a comment") }
            i += 1
        }
    }

    /// Expects the end of a line (after optional spaces and a comment).
    private mutating func endOfLine() throws {
        skipSpaces()
        try skipComment()
        if atEnd { return }
        if peek == 0x0A { i += 1; return }
        if peek == 0x0D && peek(1) == 0x0A { i += 2; return }
        throw error("expected the end of the line, found '\(printable(peek!))'")
    }

    private func printable(_ c: UInt8) -> String {
        c >= 0x20 && c < 0x7F ? String(UnicodeScalar(c)) : String(format: "\\x%02X", c)
    }

    // MARK: document

    mutating func document() throws -> TOMLTable {
        while true {
            // blank lines and comments
            skipSpaces()
            try skipComment()
            if atEnd { break }
            if peek == 0x0A { i += 1; continue }
            if peek == 0x0D && peek(1) == 0x0A { i += 2; continue }
            if peek == UInt8(ascii: "[") {
                for n in pending { n.explicit = true }
                pending = []
                if peek(1) == UInt8(ascii: "[") { try arrayTableHeader() } else { try tableHeader() }
            } else {
                try keyValue(into: current, inline: false)
            }
            try endOfLine()
        }
        return root.build()
    }

    /// Reads a header's dotted key between `brackets` opening and closing brackets (1: `[a.b]`, 2:
    /// `[[a.b]]`) and walks to the table that holds its last part, creating missing tables on the way.
    private mutating func header(brackets: Int) throws -> (key: [String], parent: Node, start: Int) {
        let start = i
        i += brackets
        skipSpaces()
        let key = try dottedKey()
        skipSpaces()
        let close = String(repeating: "]", count: brackets)
        guard has(close) else { throw error("expected '\(close)' to close the \(brackets == 1 ? "table" : "array-of-tables") header") }
        i += brackets
        var n = root
        for k in key.dropLast() { n = try descend(n, k, at: start) }
        if n.frozen { throw error("cannot add to an inline table", at: start) }
        return (key, n, start)
    }

    private mutating func tableHeader() throws {
        let (key, n, start) = try header(brackets: 1)
        let last = key.last!
        switch n.entries[last] {
        case nil:
            let t = Node(); t.explicit = true
            n.set(last, .table(t)); current = t
        case .table(let t)?:
            if t.explicit || t.frozen { throw error("table [\(key.joined(separator: "."))] is declared twice", at: start) }
            t.explicit = true; current = t
        case .tables?, .value?:
            throw error("[\(key.joined(separator: "."))] is already a value or an array of tables", at: start)
        }
    }

    private mutating func arrayTableHeader() throws {
        let (key, n, start) = try header(brackets: 2)
        let last = key.last!
        let t = Node(); t.explicit = true
        switch n.entries[last] {
        case nil: n.set(last, .tables([t]))
        case .tables(let ts)?: n.set(last, .tables(ts + [t]))
        case .table?, .value?: throw error("[[\(key.joined(separator: "."))]] names a table or value that is not an array of tables", at: start)
        }
        current = t
    }

    /// The table under `k` in `n` for a header path (creating it; arrays of tables lead to their last table).
    private func descend(_ n: Node, _ k: String, at pos: Int) throws -> Node {
        if n.frozen { throw error("cannot add to an inline table", at: pos) }
        switch n.entries[k] {
        case nil: let t = Node(); n.set(k, .table(t)); return t
        case .table(let t)?: return t
        case .tables(let ts)?: return ts.last!
        case .value?: throw error("'\(k)' is already a value, not a table", at: pos)
        }
    }

    // MARK: keys

    private mutating func dottedKey() throws -> [String] {
        var parts = [try simpleKey()]
        while true {
            let save = i
            skipSpaces()
            guard peek == UInt8(ascii: ".") else { i = save; break }
            i += 1
            skipSpaces()
            parts.append(try simpleKey())
            if parts.count > Self.maxDepth { throw error("the key is nested too deeply") }
        }
        return parts
    }

    private mutating func simpleKey() throws -> String {
        guard let c = peek else { throw error("expected a key") }
        if c == UInt8(ascii: "\"") {
            if has("\"\"\"") { throw error("multi-line strings cannot be keys") }
            return try basicString()
        }
        if c == UInt8(ascii: "'") {
            if has("'''") { throw error("multi-line strings cannot be keys") }
            return try literalString()
        }
        let start = i
        while let c = peek, isBareKeyChar(c) { i += 1 }
        guard i > start else { throw error("expected a key, found '\(printable(c))'") }
        return String(decoding: b[start..<i], as: UTF8.self)
    }

    private func isBareKeyChar(_ c: UInt8) -> Bool {
        (c >= 0x41 && c <= 0x5A) || (c >= 0x61 && c <= 0x7A) || (c >= 0x30 && c <= 0x39) || c == 0x5F || c == 0x2D
    }

    /// `key = value` into `table`; dotted keys create (or extend) tables of this section.
    private mutating func keyValue(into table: Node, inline: Bool, depth: Int = 0) throws {
        let start = i
        let key = try dottedKey()
        skipSpaces()
        guard peek == UInt8(ascii: "=") else { throw error("expected '=' after the key") }
        i += 1
        skipSpaces()
        var n = table
        for k in key.dropLast() {
            if n.frozen { throw error("cannot add to an inline table", at: start) }
            switch n.entries[k] {
            case nil:
                let t = Node(); n.set(k, .table(t))
                if !inline { pending.append(t) }
                n = t
            case .table(let t)?:
                if t.explicit || t.frozen { throw error("'\(k)' is a table declared elsewhere; dotted keys cannot add to it", at: start) }
                n = t
            case .tables?, .value?:
                throw error("'\(k)' is already a value; it cannot hold keys", at: start)
            }
        }
        if n.frozen { throw error("cannot add to an inline table", at: start) }
        let last = key.last!
        if n.entries[last] != nil { throw error("key '\(key.joined(separator: "."))' is defined twice", at: start) }
        let v = try value(depth: depth)
        n.set(last, v)
    }

    // MARK: values

    private mutating func value(depth: Int) throws -> Node.Entry {
        guard depth < Self.maxDepth else { throw error("values are nested too deeply") }
        guard let c = peek else { throw error("expected a value") }
        switch c {
        case UInt8(ascii: "\""):
            return .value(.string(has("\"\"\"") ? try multilineBasicString() : try basicString()))
        case UInt8(ascii: "'"):
            return .value(.string(has("'''") ? try multilineLiteralString() : try literalString()))
        case UInt8(ascii: "["):
            return .value(.array(try array(depth: depth)))
        case UInt8(ascii: "{"):
            let t = try inlineTable(depth: depth)
            return .table(t)
        case UInt8(ascii: "t"):
            if has("true") { i += 4; return .value(.bool(true)) }
        case UInt8(ascii: "f"):
            if has("false") { i += 5; return .value(.bool(false)) }
        default:
            break
        }
        return .value(try scalar())
    }

    private mutating func array(depth: Int) throws -> [TOMLValue] {
        i += 1
        var out: [TOMLValue] = []
        while true {
            try skipArraySpace()
            if peek == UInt8(ascii: "]") { i += 1; return out }
            let e = try value(depth: depth + 1)
            switch e {
            case .value(let v): out.append(v)
            case .table(let n): out.append(.table(n.build()))
            case .tables(let ns): out.append(.array(ns.map { .table($0.build()) }))
            }
            try skipArraySpace()
            if peek == UInt8(ascii: ",") { i += 1; continue }
            if peek == UInt8(ascii: "]") { i += 1; return out }
            throw error(atEnd ? "the array is not closed" : "expected ',' or ']' in the array")
        }
    }

    /// Spaces, newlines and comments, all allowed between array elements.
    private mutating func skipArraySpace() throws {
        while true {
            skipSpaces()
            try skipComment()
            if peek == 0x0A { i += 1; continue }
            if peek == 0x0D && peek(1) == 0x0A { i += 2; continue }
            return
        }
    }

    private mutating func inlineTable(depth: Int) throws -> Node {
        i += 1
        let t = Node()
        skipSpaces()
        if peek == UInt8(ascii: "}") { i += 1; t.frozen = true; return t }
        while true {
            skipSpaces()
            try keyValue(into: t, inline: true, depth: depth + 1)
            skipSpaces()
            if peek == UInt8(ascii: ",") { i += 1; continue }
            if peek == UInt8(ascii: "}") { i += 1; break }
            throw error(atEnd ? "the inline table is not closed" : "expected ',' or '}' in the inline table (inline tables are one line, without a trailing comma)")
        }
        freeze(t)
        return t
    }

    private func freeze(_ n: Node) {
        n.frozen = true
        for case .table(let c) in n.entries.values { freeze(c) }
    }

    // MARK: strings

    private mutating func basicString() throws -> String {
        let start = i
        i += 1
        var out: [UInt8] = []
        while true {
            guard let c = peek, c != 0x0A else { throw error("the string is not closed on its line", at: start) }
            i += 1
            if c == UInt8(ascii: "\"") { break }
            if c == UInt8(ascii: "\\") { try escape(into: &out); continue }
            if (c < 0x20 && c != 0x09) || c == 0x7F { throw error("control character in a string") }
            out.append(c)
        }
        return String(decoding: out, as: UTF8.self)
    }

    private mutating func escape(into out: inout [UInt8]) throws {
        guard let e = peek else { throw error("the string is not closed") }
        i += 1
        switch e {
        case UInt8(ascii: "b"): out.append(0x08)
        case UInt8(ascii: "t"): out.append(0x09)
        case UInt8(ascii: "n"): out.append(0x0A)
        case UInt8(ascii: "f"): out.append(0x0C)
        case UInt8(ascii: "r"): out.append(0x0D)
        case UInt8(ascii: "\""): out.append(0x22)
        case UInt8(ascii: "\\"): out.append(0x5C)
        case UInt8(ascii: "u"), UInt8(ascii: "U"):
            let n = e == UInt8(ascii: "u") ? 4 : 8
            guard i + n <= b.count, let v = UInt32(String(decoding: b[i..<(i + n)], as: UTF8.self), radix: 16),
                  b[i..<(i + n)].allSatisfy({ isHex($0) }), let s = UnicodeScalar(v) else {
                throw error("invalid \\\(e == UInt8(ascii: "u") ? "u" : "U") escape (a Unicode scalar value in \(n) hex digits)")
            }
            i += n
            out.append(contentsOf: Array(String(Character(s)).utf8))
        default:
            throw error("invalid escape '\\\(printable(e))'", at: i - 2)
        }
    }

    private func isHex(_ c: UInt8) -> Bool {
        (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x46) || (c >= 0x61 && c <= 0x66)
    }

    private mutating func literalString() throws -> String {
        let start = i
        i += 1
        let s = i
        while true {
            guard let c = peek, c != 0x0A else { throw error("the string is not closed on its line", at: start) }
            if c == UInt8(ascii: "'") { break }
            if (c < 0x20 && c != 0x09) || c == 0x7F { throw error("control character in a string") }
            i += 1
        }
        defer { i += 1 }
        return String(decoding: b[s..<i], as: UTF8.self)
    }

    /// Skips the newline right after an opening delimiter.
    private mutating func skipFirstNewline() {
        if peek == 0x0A { i += 1 } else if peek == 0x0D && peek(1) == 0x0A { i += 2 }
    }

    private mutating func multilineBasicString() throws -> String { try multilineString(quote: 0x22, escapes: true) }
    private mutating func multilineLiteralString() throws -> String { try multilineString(quote: 0x27, escapes: false) }

    /// A multi-line string between triple `quote`s; basic ones (`escapes`) also handle backslash escapes
    /// and line-ending backslashes.
    private mutating func multilineString(quote: UInt8, escapes: Bool) throws -> String {
        let start = i
        i += 3
        skipFirstNewline()
        var out: [UInt8] = []
        while true {
            guard let c = peek else { throw error("the multi-line string is not closed", at: start) }
            if c == quote && peek(1) == quote && peek(2) == quote {
                // Up to two quotes may end the content right before the closing delimiter.
                var q = 3
                while q < 5, peek(q) == quote { q += 1 }
                out.append(contentsOf: [UInt8](repeating: quote, count: q - 3))
                i += q
                return String(decoding: out, as: UTF8.self)
            }
            i += 1
            if escapes && c == UInt8(ascii: "\\") {
                // A backslash at the end of a line trims the newline and the whitespace that follows.
                var k = i
                while k < b.count, b[k] == 0x20 || b[k] == 0x09 { k += 1 }
                if k < b.count, b[k] == 0x0A || (b[k] == 0x0D && k + 1 < b.count && b[k + 1] == 0x0A) {
                    i = k
                    while let w = peek, w == 0x20 || w == 0x09 || w == 0x0A || (w == 0x0D && peek(1) == 0x0A) { i += 1 }
                    continue
                }
                try escape(into: &out)
                continue
            }
            if c == 0x0D {
                guard peek == 0x0A else { throw error("a carriage return must be followed by a line feed") }
                continue
            }
            if (c < 0x20 && c != 0x09 && c != 0x0A) || c == 0x7F { throw error("control character in a string") }
            out.append(c)
        }
    }

    // MARK: numbers and date-times

    /// A number, inf/nan or a date-time: the token runs to the next delimiter.
    private mutating func scalar() throws -> TOMLValue {
        let start = i
        // Date-times may hold one space between date and time ("1979-05-27 07:32:00").
        while let c = peek, !(c == 0x20 || c == 0x09 || c == 0x0A || c == 0x0D || c == UInt8(ascii: ",")
                              || c == UInt8(ascii: "]") || c == UInt8(ascii: "}") || c == UInt8(ascii: "#")) { i += 1 }
        if peek == 0x20, isDate(b[start..<i]), let d = peek(1), d >= 0x30 && d <= 0x39 {
            i += 1
            while let c = peek, !(c == 0x20 || c == 0x09 || c == 0x0A || c == 0x0D || c == UInt8(ascii: ",")
                                  || c == UInt8(ascii: "]") || c == UInt8(ascii: "}") || c == UInt8(ascii: "#")) { i += 1 }
        }
        let tok = String(decoding: b[start..<i], as: UTF8.self)
        guard !tok.isEmpty else { throw error(atEnd ? "expected a value" : "expected a value, found '\(printable(peek!))'") }
        if let v = Self.integer(tok) { return .integer(v) }
        if let v = Self.float(tok) { return .float(v) }
        if Self.isDateTime(tok) { return .datetime(tok) }
        throw error("'\(tok)' is not a valid value (strings need quotes)", at: start)
    }

    private func isDate(_ s: ArraySlice<UInt8>) -> Bool {
        let a = Array(s)
        return a.count == 10 && a[4] == 0x2D && a[7] == 0x2D && Self.isDateTime(String(decoding: a, as: UTF8.self))
    }

    private static func digits(_ s: Substring, allowed: (Character) -> Bool) -> Bool {
        // digits with single underscores between them
        guard let f = s.first, let l = s.last, allowed(f), allowed(l) else { return false }
        var prevUnderscore = false
        for ch in s {
            if ch == "_" { if prevUnderscore { return false }; prevUnderscore = true; continue }
            guard allowed(ch) else { return false }
            prevUnderscore = false
        }
        return true
    }

    static func integer(_ t: String) -> Int? {
        let isDec: (Character) -> Bool = { $0 >= "0" && $0 <= "9" }
        for (prefix, radix, ok) in [("0x", 16, { (c: Character) in c.isHexDigit }), ("0o", 8, { (c: Character) in c >= "0" && c <= "7" }),
                                    ("0b", 2, { (c: Character) in c == "0" || c == "1" })] as [(String, Int, (Character) -> Bool)] {
            if t.hasPrefix(prefix) {
                let body = t.dropFirst(2)
                guard digits(body, allowed: ok) else { return nil }
                return Int(body.replacingOccurrences(of: "_", with: ""), radix: radix)
            }
        }
        var body = Substring(t)
        var negative = false
        if body.first == "+" || body.first == "-" { negative = body.first == "-"; body = body.dropFirst() }
        guard digits(body, allowed: isDec) else { return nil }
        if body.count > 1 && body.first == "0" { return nil }   // no leading zeros
        let clean = body.replacingOccurrences(of: "_", with: "")
        return Int(negative ? "-" + clean : clean)
    }

    static func float(_ t: String) -> Double? {
        var body = Substring(t)
        var sign = 1.0
        if body.first == "+" || body.first == "-" { sign = body.first == "-" ? -1 : 1; body = body.dropFirst() }
        if body == "inf" { return sign * .infinity }
        if body == "nan" { return .nan }
        let isDec: (Character) -> Bool = { $0 >= "0" && $0 <= "9" }
        var intPart = body, frac: Substring? = nil, exp: Substring? = nil
        if let e = body.firstIndex(where: { $0 == "e" || $0 == "E" }) {
            intPart = body[..<e]; exp = body[body.index(after: e)...]
        }
        if let dot = intPart.firstIndex(of: ".") {
            frac = intPart[intPart.index(after: dot)...]; intPart = intPart[..<dot]
        }
        guard frac != nil || exp != nil else { return nil }
        guard digits(intPart, allowed: isDec), !(intPart.count > 1 && intPart.first == "0") else { return nil }
        if let f = frac, !digits(f, allowed: isDec) { return nil }
        if var e = exp {
            if e.first == "+" || e.first == "-" { e = e.dropFirst() }
            guard digits(e, allowed: isDec) else { return nil }
        }
        guard let v = Double(body.replacingOccurrences(of: "_", with: "")) else { return nil }
        return sign * v
    }

    /// RFC 3339 date-times as TOML allows them: offset or local date-time, local date, local time.
    static func isDateTime(_ t: String) -> Bool {
        let c = Array(t.utf8)
        func num(_ from: Int, _ n: Int) -> Int? {
            guard from + n <= c.count, c[from..<(from + n)].allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else { return nil }
            return Int(String(decoding: c[from..<(from + n)], as: UTF8.self))
        }
        func time(_ at: Int) -> Int? {   // returns index after the time, or nil
            guard let h = num(at, 2), at + 2 < c.count, c[at + 2] == 0x3A, let m = num(at + 3, 2), at + 5 < c.count, c[at + 5] == 0x3A,
                  let s = num(at + 6, 2), h < 24, m < 60, s < 60 else { return nil }
            var k = at + 8
            if k < c.count && c[k] == 0x2E {
                k += 1
                let f = k
                while k < c.count, c[k] >= 0x30 && c[k] <= 0x39 { k += 1 }
                if k == f { return nil }
            }
            return k
        }
        if c.count >= 8 && c[2] == 0x3A { return time(0) == c.count }
        guard let y = num(0, 4), c.count >= 10, c[4] == 0x2D, let mo = num(5, 2), c[7] == 0x2D, let d = num(8, 2),
              (1...12).contains(mo), d >= 1 else { return false }
        let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
        let days = [31, leap ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][mo - 1]
        guard d <= days else { return false }
        if c.count == 10 { return true }
        guard c[10] == 0x54 || c[10] == 0x74 || c[10] == 0x20, var k = time(11) else { return false }
        if k == c.count { return true }
        if c[k] == 0x5A || c[k] == 0x7A { return k + 1 == c.count }
        guard c[k] == 0x2B || c[k] == 0x2D, let oh = num(k + 1, 2), k + 3 < c.count, c[k + 3] == 0x3A, let om = num(k + 4, 2),
              oh < 24, om < 60 else { return false }
        k += 6
        return k == c.count
    }
}
