import Foundation
import Testing
import AblabCore

@Suite("Core: hashing, prompt files, safe names")
struct CoreTests {
    // FIPS 180-4 / NIST test vectors.
    @Test("SHA-256 test vectors", arguments: [
        ("", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
        ("abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
        ("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
         "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"),
    ])
    func sha256Vectors(input: String, digest: String) {
        #expect(SHA256.hex(Data(input.utf8)) == digest)
    }

    @Test("SHA-256 of a million 'a' fed in uneven pieces")
    func sha256Streaming() {
        var h = SHA256()
        let chunk = Data(repeating: UInt8(ascii: "a"), count: 999)
        var left = 1_000_000
        while left > 0 { let n = min(left, 999); h.update(chunk.prefix(n)); left -= n }
        #expect(h.finalize() == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
    }

    func write(_ s: String, ext: String) -> String {
        let p = NSTemporaryDirectory() + "ablab-prompts-\(UUID().uuidString).\(ext)"
        FileManager.default.createFile(atPath: p, contents: Data(s.utf8))
        return p
    }

    @Test("JSONL prompt files: errors name file and line")
    func jsonlErrors() throws {
        let good = write(#"{"id":"a","text":"hi","label":"harmless","split":"train"}"# + "\n", ext: "jsonl")
        #expect(try PromptFile.load(good) == [Prompt(id: "a", text: "hi", label: "harmless", split: "train")])
        let cases: [(String, Int, String)] = [
            (#"{"id":"a","text":"x","label":"l"}"# + "\n" + #"{"id":"a","text":"y","label":"l"}"#, 2, "duplicate"),
            (#"{"id":"a","text":"x","label":"l"}"# + "\n\n" + #"{"id":"b","text":"x"}"#, 3, "label"),
            (#"{"id":"a","text":"  ","label":"l"}"#, 1, "empty text"),
            (#"{"id":"a","text":"x","label":"l"}"# + "\n" + #"{"id": "b", "text": "#, 2, "bad JSON"),
        ]
        for (text, line, word) in cases {
            let p = write(text, ext: "jsonl")
            let e = try #require(throws: InputError.self) { try PromptFile.load(p) }
            #expect(e.file == p && e.line == line && e.description.contains(word), "\(e)")
        }
    }

    @Test("CSV prompt files with quotes and embedded newlines")
    func csv() throws {
        let p = write("id,text,label,split\na,\"hello, \"\"world\"\"\nsecond line\",harmful,test\nb,plain,harmless,\n", ext: "csv")
        let prompts = try PromptFile.load(p)
        #expect(prompts.count == 2)
        #expect(prompts[0].text == "hello, \"world\"\nsecond line" && prompts[0].split == "test")
        #expect(prompts[1].split == nil)
        let bad = write("id,text\na,b\n", ext: "csv")
        #expect(throws: InputError.self) { try PromptFile.load(bad) }
    }

    @Test("names become safe file names", arguments: [
        ("../../etc/passwd", "_.._etc_passwd"), ("Qwen2.5-Coder 0.5B", "Qwen2.5-Coder_0.5B"), ("", "unnamed"), ("...", "unnamed"),
    ])
    func sanitize(name: String, expected: String) {
        let s = SafeFiles.sanitize(name)
        #expect(s == expected)
        #expect(!s.contains("/") && !s.hasPrefix("."))
    }
}

@Suite("Prompt files: split filter")
struct PromptSplitTests {
    @Test("rows of other splits are skipped before they are checked")
    func splitFilter() throws {
        let p = NSTemporaryDirectory() + "ablab-split-\(UUID().uuidString).jsonl"
        let text = #"{"id":"a","text":"","label":"harmful","split":"non-english"}"# + "\n" + #"{"id":"b","text":"x","label":"harmful","split":"train"}"#
        FileManager.default.createFile(atPath: p, contents: Data(text.utf8))
        #expect(throws: InputError.self) { try PromptFile.load(p) }
        #expect(try PromptFile.load(p, splits: ["train"]).map(\.id) == ["b"])
    }

    @Test("the shipped prompt sets load for train and test: 250 + 50 per class")
    func shipped() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let files = ["harmful", "harmless"].map { root.appendingPathComponent("notebooks-scripts/data/prompts/\($0).jsonl").path }
        let prompts = try PromptFile.load(files, splits: ["train", "test"])
        for label in ["harmful", "harmless"] {
            #expect(prompts.filter { $0.label == label && $0.split == "train" }.count == 250)
            #expect(prompts.filter { $0.label == label && $0.split == "test" }.count == 50)
        }
    }
}
