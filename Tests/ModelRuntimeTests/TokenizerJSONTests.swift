import Foundation
import Testing
import AblabCore
@testable import ModelRuntime

/// Small BPE tokenizers trained with HF `tokenizers` (Qwen2 split + NFC, Llama 3 split, Digits + ByteLevel, plain
/// ByteLevel); their tokenizer.json is loaded here and every string must give HF's ids.
@Suite("Tokenizer from tokenizer.json (tiny HF-trained BPEs)")
struct TokenizerJSONTests {
    static let fixtures = ["tiny-qwen2", "tiny-llama3", "tiny-digits", "tiny-gpt2"]

    @Test("ids equal HF tokenizers", arguments: fixtures)
    func idsMatch(fixture: String) throws {
        let (doc, cases) = try TokenizerFixtures.tiny(fixture)
        let tok = try BPETokenizer.fromTokenizerJSONObject(doc, source: fixture)
        #expect(cases.count >= 60)
        for c in cases {
            #expect(tok.encode(c.text) == c.ids, "text: \(c.text.debugDescription)")
            #expect(tok.decode(c.ids) == c.decoded, "decode of \(c.text.debugDescription)")
        }
    }

    @Test("loads from a file and from a folder")
    func fromFile() throws {
        let (doc, cases) = try TokenizerFixtures.tiny("tiny-digits")
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("ablab-tok-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let file = dir.appendingPathComponent("tokenizer.json")
        try JSONSerialization.data(withJSONObject: doc).write(to: file)
        for path in [file.path, dir.path] {
            let tok = try BPETokenizer.fromTokenizerJSON(path: path)
            for c in cases.prefix(20) { #expect(tok.encode(c.text) == c.ids) }
        }
    }

    @Test("unsupported pre-tokenizer regex is an error naming the key")
    func unknownRegex() throws {
        var (doc, _) = try TokenizerFixtures.tiny("tiny-qwen2")
        doc["pre_tokenizer"] = ["type": "Split", "pattern": ["Regex": "\\w+"], "behavior": "Isolated", "invert": false]
        #expect(throws: InputError.self) { try BPETokenizer.fromTokenizerJSONObject(doc, source: "x.json") }
        do { _ = try BPETokenizer.fromTokenizerJSONObject(doc, source: "x.json") } catch let e as InputError {
            #expect(e.description.contains("x.json [pre_tokenizer]"))
        }
    }

    @Test("a merge naming a missing token is an error")
    func badMerge() throws {
        var (doc, _) = try TokenizerFixtures.tiny("tiny-gpt2")
        var model = try #require(doc["model"] as? [String: Any])
        model["merges"] = ["zz\u{1234} q"]
        doc["model"] = model
        #expect(throws: InputError.self) { try BPETokenizer.fromTokenizerJSONObject(doc, source: "x.json") }
    }

    @Test("a missing file is an error")
    func missingFile() {
        #expect(throws: InputError.self) { try BPETokenizer.fromTokenizerJSON(path: "/nonexistent/tokenizer.json") }
    }
}
