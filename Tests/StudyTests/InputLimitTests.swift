import Foundation
import Testing
import AblabCore

/// Input sizes: files and lines beyond `InputLimits` are refused with the file and line before parsing.
@Suite("Input limits: file sizes, line lengths, HTTP bodies")
struct InputLimitTests {
    func write(_ data: Data, ext: String) -> String {
        let p = NSTemporaryDirectory() + "ablab-limits-\(UUID().uuidString).\(ext)"
        _ = FileManager.default.createFile(atPath: p, contents: data)
        return p
    }

    @Test("the first line longer than the limit: its number, offset and length")
    func longLine() {
        #expect(BoundedText.longLine(Data("a\nbbbb\ncc\ndddddd".utf8), limit: 3).map { [$0.line, $0.start, $0.bytes] } == [2, 2, 4])
        #expect(BoundedText.longLine(Data("abc\nabc\n".utf8), limit: 3) == nil)
        #expect(BoundedText.longLine(Data("abc\nabcd".utf8), limit: 3).map { [$0.line, $0.start, $0.bytes] } == [2, 4, 4])
        #expect(BoundedText.longLine(Data(), limit: 0) == nil)
    }

    @Test("a file over the size limit, or with a line over the line limit, is refused naming file and line")
    func boundedRead() throws {
        let p = write(Data("short\n\(String(repeating: "x", count: 50))\nshort\n".utf8), ext: "txt")
        defer { unlink(p) }
        #expect(try BoundedText.readString(p, what: "test file").hasPrefix("short"))
        do { _ = try BoundedText.read(p, what: "test file", maxFileBytes: 20); Issue.record("no error") } catch let e as InputError {
            #expect(e.file == p && e.line == nil && e.description.contains("more than the 20 bytes"), "\(e)")
        }
        do { _ = try BoundedText.read(p, what: "test file", maxLineBytes: 49); Issue.record("no error") } catch let e as InputError {
            #expect(e.file == p && e.line == 2 && e.description.contains("(50 bytes)"), "\(e)")
        }
        #expect(throws: IOError.self) { try BoundedText.read(p + ".missing", what: "test file") }
    }

    @Test("the id of a JSON line is found without parsing the rest", arguments: [
        (#"{"id": "p-1", "text": "x"}"#, "p-1"),
        (#"{"text": "a \"quoted\" {x} [y], text", "label": "h", "id": "late"}"#, "late"),
        (#"  {"meta": {"id": "inner"}, "list": [1, {"id": 2}], "id": 17}"#, "17"),
        (#"{"id": "esc\u0041\"q"}"#, "escA\"q"),
    ])
    func peek(line: String, id: String) {
        let got = Data(line.utf8).withUnsafeBytes { JSONPeek.topLevelString("id", in: $0) }
        #expect(got == id)
    }

    @Test("no id: missing, not an object, or cut before its value", arguments: [
        #"{"text": "x"}"#, #"["id", "x"]"#, #"{"text": "unterminated"#, #"{"id": "#, "",
    ])
    func peekNone(line: String) {
        #expect(Data(line.utf8).withUnsafeBytes { JSONPeek.topLevelString("id", in: $0) } == nil)
    }

    @Test("a CSV record (quoted fields may span lines) longer than the limit names the line it starts on")
    func csvRecord() throws {
        let text = "id,text\n1,ok\n2,\"long\nfield that goes\non\"\n3,ok\n"
        #expect(try CSV.parse(text, file: "t.csv", maxRecordBytes: 100).count == 4)
        do { _ = try CSV.parse(text, file: "t.csv", maxRecordBytes: 20); Issue.record("no error") } catch let e as InputError {
            #expect(e.file == "t.csv" && e.line == 3, "\(e)")
        }
    }

    @Test("a prompt line over 16 MiB is refused with file, line, id and both byte counts")
    func promptLine() throws {
        let big = String(repeating: "word ", count: (InputLimits.maxLineBytes / 5) + 10)
        let lines = #"{"id": "ok", "text": "fine", "label": "harmless"}"# + "\n" + #"{"id": "huge-1", "text": ""# + big + #"", "label": "harmful"}"# + "\n"
        let p = write(Data(lines.utf8), ext: "jsonl")
        defer { unlink(p) }
        let bytes = lines.split(separator: "\n")[1].utf8.count
        do { _ = try PromptFile.load(p); Issue.record("no error") } catch let e as InputError {
            #expect(e.line == 2 && e.key == "huge-1")
            #expect(e.description.hasPrefix("\(p):2 [huge-1]: ") && e.description.contains("\(bytes) bytes") && e.description.contains("\(InputLimits.maxLineBytes) bytes"), "\(e)")
            #expect(e.exitCode == ExitCode.badInput)
        }
    }

    @Test("prompts remember the file and line they came from")
    func origin() throws {
        let p = write(Data("\n{\"id\": \"a\", \"text\": \"t\", \"label\": \"l\"}\n\n{\"id\": \"b\", \"text\": \"t\", \"label\": \"l\"}\n".utf8), ext: "jsonl")
        defer { unlink(p) }
        let prompts = try PromptFile.load(p)
        #expect(prompts.map { $0.origin?.line } == [2, 4] && prompts.allSatisfy { $0.origin?.file == p })
        // The origin is not part of a prompt's identity.
        #expect(prompts[0] == Prompt(id: "a", text: "t", label: "l"))
    }

    @Test("HTTP bodies over the limit are refused with both sizes")
    func httpBody() {
        #expect(InputLimits.httpBodyRefusal(bytes: InputLimits.maxHTTPBodyBytes) == nil)
        let r = InputLimits.httpBodyRefusal(bytes: 40 << 20)
        #expect(r == "the request body is 40 MiB, more than the 32 MiB this server accepts; send fewer or shorter prompts per request")
    }

    @Test("byte sizes in messages", arguments: [(512, "512 bytes"), (1536, "1.5 KiB"), (16 << 20, "16 MiB"), (150_000_066, "143 MiB")])
    func formatBytes(n: Int, text: String) { #expect(InputLimits.formatBytes(n) == text) }
}
