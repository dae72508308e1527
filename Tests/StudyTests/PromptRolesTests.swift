import Foundation
import Testing
import AblabCore
@testable import Study

@Suite("Prompt roles: fit, validation, test")
struct PromptRolesTests {
    static func prompt(_ id: String, _ label: String, _ split: String, text: String? = nil) -> Prompt {
        Prompt(id: id, text: text ?? "text of \(id)", label: label, split: split)
    }

    static func write(_ prompts: [Prompt]) throws -> String {
        let path = NSTemporaryDirectory() + "ablab-roles-\(UUID().uuidString).jsonl"
        let enc = JSONEncoder()
        let lines = try prompts.map { String(decoding: try enc.encode($0), as: UTF8.self) }
        try (lines.joined(separator: "\n") + "\n").write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    @Test("validation: unused train prompts first, then extra, then the end of the fit prompts")
    func assignment() {
        var ps: [Prompt] = []
        for i in 0..<6 { ps.append(Self.prompt("h-tr\(i)", "harmful", "train")) }
        for i in 0..<2 { ps.append(Self.prompt("h-ex\(i)", "harmful", "extra")) }
        for i in 0..<4 { ps.append(Self.prompt("b-tr\(i)", "harmless", "train")) }
        for i in 0..<3 { ps.append(Self.prompt("h-te\(i)", "harmful", "test")); ps.append(Self.prompt("b-te\(i)", "harmless", "test")) }
        // An extra prompt repeating a test prompt's text is never taken.
        ps.insert(Self.prompt("h-exdup", "harmful", "extra", text: "text of h-te1"), at: 6)
        let r = PromptRoles.assign(ps, trainPerClass: 4, testPerClass: 2, validationPerClass: 3)
        #expect(r.fit.map(\.id) == ["h-tr0", "h-tr1", "h-tr2", "h-tr3", "b-tr0", "b-tr1"])
        // harmless has no unused train or extra prompts: the last fit prompts change role, 2 stay to fit on.
        #expect(r.validation.map(\.id) == ["h-tr4", "h-tr5", "h-ex0", "b-tr3", "b-tr2"])
        #expect(r.test.map(\.id) == ["h-te0", "b-te0", "h-te1", "b-te1"])
        #expect(r.takenFromFit == ["harmless": 2] && r.conflicts.isEmpty)
        #expect(r.all.filter { $0.split == "validation" }.count == 5)
        // 0 = no validation prompts; the fit set is left whole.
        let none = PromptRoles.assign(ps, trainPerClass: nil, testPerClass: nil, validationPerClass: 0)
        #expect(none.validation.isEmpty && none.fit.count == 10)
    }

    @Test("a study whose prompt plays two roles (same text in train and test) is refused")
    func twoRolesRefused() throws {
        let file = try Self.write([Self.prompt("a", "harmful", "train"), Self.prompt("b", "harmful", "train"), Self.prompt("c", "harmful", "train"),
                                   Self.prompt("d", "harmful", "test", text: "text of b"), Self.prompt("e", "harmless", "train"),
                                   Self.prompt("f", "harmless", "train"), Self.prompt("g", "harmless", "test")])
        defer { try? FileManager.default.removeItem(atPath: file) }
        var spec = try StudyFile.parse("[study]\nname = \"r\"\n[prompts]\nfiles = [\"\(file)\"]\nvalidation_per_class = 0\n", file: "r.toml")
        #expect(spec.validationPerClass == 0)
        let e = try #require(throws: StudyError.self) { try Pipeline(studyFile: "r.toml", spec: spec, options: RunOptions()).promptRoles() }
        #expect(e.key == "prompts.files" && e.description.contains("b and d") && e.description.contains("fit, test"))
        // With the text changed the roles are disjoint and the prompts are recorded with their role as split.
        spec.validationPerClass = 1
        let ok = try Self.write([Self.prompt("a", "harmful", "train"), Self.prompt("b", "harmful", "train"), Self.prompt("c", "harmful", "train"),
                                 Self.prompt("d", "harmful", "test"), Self.prompt("e", "harmless", "train"),
                                 Self.prompt("f", "harmless", "train"), Self.prompt("x", "harmless", "extra"), Self.prompt("g", "harmless", "test")])
        defer { try? FileManager.default.removeItem(atPath: ok) }
        spec.promptFiles = [ok]
        let recorded = try Pipeline(studyFile: "r.toml", spec: spec, options: RunOptions()).studyPrompts()
        #expect(recorded.map { "\($0.id):\($0.split!)" } == ["a:train", "b:train", "e:train", "f:train", "c:validation", "x:validation", "d:test", "g:test"])
    }

    @Test("the shipped studies: fit, validation and test prompts per label, disjoint",
          arguments: [("default.toml", 96, 96, 32), ("paper-full.toml", 250, 227, 50)])
    func shipped(file: String, harmfulFit: Int, harmlessFit: Int, test: Int) throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path
        let spec = try StudyFile.load(root + "/notebooks-scripts/studies/" + file)
        let prev = FileManager.default.currentDirectoryPath
        FileManager.default.changeCurrentDirectoryPath(root)
        defer { FileManager.default.changeCurrentDirectoryPath(prev) }
        let r = try Pipeline(studyFile: file, spec: spec, options: RunOptions()).promptRoles()
        #expect(r.fit.filter { $0.label == "harmful" }.count == harmfulFit)
        #expect(r.fit.filter { $0.label == "harmless" }.count == harmlessFit)
        for label in ["harmful", "harmless"] {
            #expect(r.validation.filter { $0.label == label }.count == 32)
            #expect(r.test.filter { $0.label == label }.count == test)
        }
        #expect(r.conflicts.isEmpty)
        #expect(spec.selfJudgmentQuestions == ["served", "refused"])
    }
}
