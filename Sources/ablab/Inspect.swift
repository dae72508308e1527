import ArgumentParser
import Foundation
import AblabCore
import ModelRuntime

struct Inspect: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print a GGUF model's metadata and tensor table.",
        discussion: "Shapes are printed in PyTorch order (outermost first); GGUF stores them reversed.")
    @OptionGroup var global: GlobalOptions
    @Argument(help: "A GGUF file.") var model: String
    @Flag(name: .long, help: "Print long strings and arrays in full.") var full = false
    @Flag(name: .long, help: "Machine-readable JSON on stdout.") var json = false

    func run() async throws {
        global.bootstrap()
        try await runReportingErrors {
            let g = try GGUFFile(path: model)
            let out = json ? try InspectFormat.json(g, full: full) : InspectFormat.text(g, full: full)
            FileHandle.standardOutput.write(Data(out.utf8))
        }
    }
}

enum InspectFormat {
    static let arrayPreview = 5
    static let stringPreview = 96

    // MARK: text

    static func text(_ g: GGUFFile, full: Bool) -> String {
        var s = "\(g.path)\n"
        s += "GGUF v\(g.version), alignment \(g.alignment), data at byte \(g.dataOffset), file \(bytes(g.fileSize))\n\n"
        s += "metadata (\(g.metadataKeys.count) keys)\n"
        let kw = min(48, g.metadataKeys.map(\.count).max() ?? 0)
        let types = g.metadataKeys.map { g.metadata[$0]!.typeName }
        let tw = types.map(\.count).max() ?? 0
        for (k, t) in zip(g.metadataKeys, types) {
            s += "  \(pad(k, kw))  \(pad(t, tw))  \(describe(g.metadata[k]!, full: full))\n"
        }
        s += "\ntensors (\(g.tensors.count))\n"
        let nw = min(48, g.tensors.map(\.name.count).max() ?? 4)
        let shapes = g.tensors.map { "[" + $0.shape.map(String.init).joined(separator: ", ") + "]" }
        let sw = max(5, shapes.map(\.count).max() ?? 0)
        s += "  \(pad("name", nw))  \(pad("type", 7))  \(pad("shape", sw))  \(lpad("bytes", 10))\n"
        for (t, sh) in zip(g.tensors, shapes) {
            s += "  \(pad(t.name, nw))  \(pad(t.type.name, 7))  \(pad(sh, sw))  \(lpad(bytes(t.byteCount), 10))\n"
        }
        let (params, total, byType) = totals(g)
        s += "\ntotal: \(g.tensors.count) tensors, \(params) parameters (\(millions(params))), \(bytes(total)) of tensor data\n"
        for (type, v) in byType {
            s += "  \(pad(type, 7))  \(lpad(String(v.count), 4)) tensors  \(lpad(millions(v.params), 9))  \(lpad(bytes(v.bytes), 10))\n"
        }
        return s
    }

    static func totals(_ g: GGUFFile) -> (Int, Int, [(String, (count: Int, params: Int, bytes: Int))]) {
        var byType: [String: (count: Int, params: Int, bytes: Int)] = [:]
        for t in g.tensors {
            var v = byType[t.type.name] ?? (0, 0, 0)
            v.count += 1; v.params += t.elementCount; v.bytes += t.byteCount
            byType[t.type.name] = v
        }
        let params = g.tensors.reduce(0) { $0 + $1.elementCount }
        let total = g.tensors.reduce(0) { $0 + $1.byteCount }
        return (params, total, byType.sorted { $0.value.bytes > $1.value.bytes }.map { ($0.key, $0.value) })
    }

    static func describe(_ v: GGUFValue, full: Bool) -> String {
        switch v {
        case let .string(s): return quote(s, full: full)
        case let .array(_, a):
            if full || a.count <= arrayPreview + 2 {
                return "[" + a.map { describe($0, full: full) }.joined(separator: ", ") + "]"
            }
            return "[" + a.prefix(arrayPreview).map { describe($0, full: false) }.joined(separator: ", ")
                + ", …] (\(a.count) values)"
        case let .bool(b): return String(b)
        case let .float32(f): return "\(f)"
        case let .float64(f): return "\(f)"
        default: return v.intValue.map(String.init) ?? "\(v)"
        }
    }

    static func quote(_ s: String, full: Bool) -> String {
        var e = ""
        for c in s.unicodeScalars {
            switch c {
            case "\n": e += "\\n"
            case "\t": e += "\\t"
            case "\r": e += "\\r"
            case "\"": e += "\\\""
            case "\\": e += "\\\\"
            default:
                if c.value < 0x20 || c.value == 0x7F { e += String(format: "\\u{%02x}", c.value) } else { e.unicodeScalars.append(c) }
            }
        }
        if !full && e.count > stringPreview {
            return "\"" + e.prefix(stringPreview) + "…\" (\(s.utf8.count) bytes; --full prints all)"
        }
        return "\"" + e + "\""
    }

    static func pad(_ s: String, _ w: Int) -> String { s.count >= w ? s : s + String(repeating: " ", count: w - s.count) }
    static func lpad(_ s: String, _ w: Int) -> String { s.count >= w ? s : String(repeating: " ", count: w - s.count) + s }
    static func millions(_ n: Int) -> String { String(format: "%.1fM", Double(n) / 1e6) }
    static func bytes(_ n: Int) -> String {
        if n < 1024 { return "\(n) B" }
        if n < 1 << 20 { return String(format: "%.1f KiB", Double(n) / 1024) }
        if n < 1 << 30 { return String(format: "%.1f MiB", Double(n) / 1048576) }
        return String(format: "%.2f GiB", Double(n) / 1073741824)
    }

    // MARK: json

    static func json(_ g: GGUFFile, full: Bool) throws -> String {
        let (params, total, byType) = totals(g)
        let obj: [String: Any] = [
            "path": g.path, "version": Int(g.version), "alignment": g.alignment,
            "data_offset": g.dataOffset, "file_size": g.fileSize,
            "metadata": g.metadataKeys.map { k -> [String: Any] in
                let v = g.metadata[k]!
                return ["key": k, "type": v.typeName, "value": jsonValue(v, full: full, top: true)]
            },
            "tensors": g.tensors.map { t -> [String: Any] in
                ["name": t.name, "type": t.type.name, "shape": t.shape, "gguf_dims": t.dims,
                 "offset": t.offset, "elements": t.elementCount, "bytes": t.byteCount]
            },
            "totals": ["tensors": g.tensors.count, "parameters": params, "bytes": total,
                       "by_type": Dictionary(uniqueKeysWithValues: byType.map {
                           ($0.0, ["tensors": $0.1.count, "parameters": $0.1.params, "bytes": $0.1.bytes])
                       })] as [String: Any],
        ]
        let data = try JSONSerialization.data(withJSONObject: obj, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])
        return String(decoding: data, as: UTF8.self) + "\n"
    }

    /// Plain JSON value; unless `full`, long arrays become {count, first, truncated} and long strings
    /// {length, prefix, truncated}.
    static func jsonValue(_ v: GGUFValue, full: Bool, top: Bool) -> Any {
        switch v {
        case let .string(s):
            if full || s.count <= stringPreview * 4 { return s }
            return ["truncated": true, "utf8_length": s.utf8.count, "prefix": String(s.prefix(stringPreview * 4))]
        case let .array(_, a):
            if full || a.count <= arrayPreview + 2 { return a.map { jsonValue($0, full: full, top: false) } }
            return ["truncated": true, "count": a.count,
                    "first": a.prefix(arrayPreview).map { jsonValue($0, full: false, top: false) }]
        case let .bool(b): return b
        case let .float32(f): return f.isFinite ? Double(f) as Any : String(f)
        case let .float64(f): return f.isFinite ? f as Any : String(f)
        case let .uint64(u): return u <= UInt64(Int.max) ? Int(u) : NSNumber(value: u)
        default: return v.intValue ?? 0
        }
    }
}
