import Foundation

/// A parsed JSON value (request bodies): booleans, integers and other numbers are kept apart, so a
/// field of the wrong type is named instead of being coerced.
public indirect enum JSONValue: Decodable, Sendable, Equatable {
    case null
    case bool(Bool)
    case int(Int)
    case number(Double)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    public init(from decoder: any Decoder) throws {
        let c = try decoder.singleValueContainer()
        if c.decodeNil() { self = .null; return }
        if let b = try? c.decode(Bool.self) { self = .bool(b); return }
        if let i = try? c.decode(Int.self) { self = .int(i); return }
        if let d = try? c.decode(Double.self) { self = .number(d); return }
        if let s = try? c.decode(String.self) { self = .string(s); return }
        if let a = try? c.decode([JSONValue].self) { self = .array(a); return }
        self = .object(try c.decode([String: JSONValue].self))
    }

    /// Parses one JSON document; the parser's reason when it is not JSON.
    public static func parse(_ data: Data) -> Result<JSONValue, JSONParseFailure> {
        do { return .success(try JSONDecoder().decode(JSONValue.self, from: data)) } catch let DecodingError.dataCorrupted(ctx) {
            return .failure(JSONParseFailure(reason: ctx.underlyingError.map { "\($0.localizedDescription)" } ?? ctx.debugDescription))
        } catch { return .failure(JSONParseFailure(reason: "\(error)")) }
    }

    var typeName: String {
        switch self {
        case .null: return "null"
        case .bool: return "a boolean"
        case .int, .number: return "a number"
        case .string: return "a string"
        case .array: return "an array"
        case .object: return "an object"
        }
    }
}

/// Why a body is not JSON.
public struct JSONParseFailure: Error, Sendable { public var reason: String }

/// JSON written by the server, keys in the order given (so responses read like OpenAI's).
public indirect enum JSONOut: Sendable {
    case null
    case bool(Bool)
    case int(Int)
    case number(Double)
    case string(String)
    case array([JSONOut])
    case object([(String, JSONOut)])

    public var text: String {
        var s = ""
        write(&s)
        return s
    }

    public var data: Data { Data(text.utf8) }

    func write(_ s: inout String) {
        switch self {
        case .null: s += "null"
        case .bool(let b): s += b ? "true" : "false"
        case .int(let i): s += String(i)
        case .number(let d):
            // JSON has no infinities: a probability that underflowed is written as OpenAI does (-9999).
            if !d.isFinite { s += d.isNaN ? "null" : (d < 0 ? "-9999.0" : "9999.0") } else { s += "\(d)" }
        case .string(let t): JSONOut.escape(t, into: &s)
        case .array(let a):
            s += "["
            for (i, v) in a.enumerated() { if i > 0 { s += "," }; v.write(&s) }
            s += "]"
        case .object(let o):
            s += "{"
            for (i, (k, v)) in o.enumerated() {
                if i > 0 { s += "," }
                JSONOut.escape(k, into: &s); s += ":"; v.write(&s)
            }
            s += "}"
        }
    }

    static func escape(_ t: String, into s: inout String) {
        s += "\""
        for u in t.unicodeScalars {
            switch u {
            case "\"": s += "\\\""
            case "\\": s += "\\\\"
            case "\n": s += "\\n"
            case "\r": s += "\\r"
            case "\t": s += "\\t"
            default:
                if u.value < 0x20 { s += String(format: "\\u%04x", u.value) } else { s.unicodeScalars.append(u) }
            }
        }
        s += "\""
    }
}
