import Foundation
import Testing
@testable import Study

/// ablab's TOML reader against Python's tomllib (fixtures from notebooks-scripts/fixtures_toml.py): the same
/// documents are accepted and rejected, and accepted ones give the same values, key order included.
@Suite("TOML reader against tomllib")
struct TOMLTests {
    struct Case { let name: String; let text: String; let ok: Bool; let value: Any? }

    static func cases() throws -> [Case] {
        let url = try #require(Bundle.module.url(forResource: "toml_cases", withExtension: "json", subdirectory: "Fixtures"),
                               "fixture toml_cases.json is missing; run notebooks-scripts/fixtures_toml.py")
        let list = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as? [[String: Any]])
        return list.map { Case(name: $0["name"] as! String, text: $0["text"] as! String, ok: $0["ok"] as! Bool, value: $0["value"]) }
    }

    /// Whether our value equals tomllib's tagged value; returns a description of the first difference.
    static func difference(_ v: TOMLValue, _ tagged: Any?, path: String) -> String? {
        guard let t = tagged as? [String: Any], t.count == 1, let (tag, x) = t.first else { return "\(path): bad fixture" }
        switch (tag, v) {
        case ("string", .string(let s)): return s == x as? String ? nil : "\(path): \(s.debugDescription) vs \(String(describing: x))"
        case ("integer", .integer(let i)): return (x as? NSNumber)?.int64Value == Int64(i) ? nil : "\(path): \(i) vs \(String(describing: x))"
        case ("bool", .bool(let b)): return (x as? Bool) == b ? nil : "\(path): \(b) vs \(String(describing: x))"
        case ("float", .float(let d)):
            let s = x as? String ?? ""
            if s == "nan" { return d.isNaN ? nil : "\(path): \(d) vs nan" }
            return Double(s) == d ? nil : "\(path): \(d) vs \(s)"
        case ("datetime", .datetime): return nil
        case ("array", .array(let a)):
            guard let xs = x as? [Any], xs.count == a.count else { return "\(path): array length \(a.count) vs \(String(describing: x))" }
            for (k, (e, xe)) in zip(a, xs).enumerated() { if let d = difference(e, xe, path: "\(path)[\(k)]") { return d } }
            return nil
        case ("table", .table(let tab)):
            guard let pairs = x as? [[Any]] else { return "\(path): bad fixture table" }
            let keys = pairs.map { $0[0] as? String ?? "" }
            guard keys == tab.keys else { return "\(path): keys \(tab.keys) vs \(keys)" }
            for p in pairs {
                let k = p[0] as! String
                if let d = difference(tab[k]!, p[1], path: path + "." + k) { return d }
            }
            return nil
        default: return "\(path): \(v) vs \(tag)"
        }
    }

    @Test("every fixture document: accepted or rejected as tomllib does, with the same values")
    func againstTomllib() throws {
        let cases = try Self.cases()
        #expect(cases.count > 400)
        var mismatches: [String] = []
        for c in cases {
            do {
                let t = try TOMLTable(parsing: c.text)
                if !c.ok { mismatches.append("\(c.name): accepted, tomllib rejects"); continue }
                if let d = Self.difference(.table(t), c.value, path: "") { mismatches.append("\(c.name): \(d)") }
            } catch let e as TOMLSyntaxError {
                if c.ok { mismatches.append("\(c.name): rejected (\(e)), tomllib accepts") }
            }
        }
        #expect(mismatches.isEmpty, "\(mismatches.count) of \(cases.count) differ:\n\(mismatches.prefix(30).joined(separator: "\n"))")
    }

    @Test("errors give the line and column of the problem")
    func errorPosition() throws {
        let e = try #require(throws: TOMLSyntaxError.self) { try TOMLTable(parsing: "a = 1\n[b]\nc = \"x\ny = 2\n") }
        #expect(e.line == 3 && e.column == 5, "\(e)")
        let dup = try #require(throws: TOMLSyntaxError.self) { try TOMLTable(parsing: "[t]\nk = 1\n\n[t]\n") }
        #expect(dup.line == 4 && dup.column == 1, "\(dup)")
    }

    @Test("nesting beyond the reader's limit is an error, not a stack overflow", arguments: ["[", "{ a = "])
    func deepNesting(_ open: String) throws {
        let close = open == "[" ? "]" : "}"
        let text = "x = " + String(repeating: open, count: 100_000) + String(repeating: close, count: 100_000) + "\n"
        let e = try #require(throws: TOMLSyntaxError.self) { try TOMLTable(parsing: text) }
        #expect(e.message.contains("nested too deeply"))
    }
}
