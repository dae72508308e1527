import Foundation
import Testing
import AblabCore
@testable import Abliteration

@Suite struct SystemNameTests {
    @Test(arguments: [(1.0, "1"), (0.25, "0.25"), (1.5, "1.5"), (0.0, "0"), (2.0, "2"), (-0.5, "-0.5"), (0.1, "0.1")])
    func alphaFormatting(_ a: Double, _ s: String) {
        #expect(SystemName.formatAlpha(a) == s)
    }

    @Test func exampleName() {
        let s = AbliterationSetting(checkpoint: "SmolLM2-135M", method: .meanDiff, layer: 12, position: -1, alpha: 0.5)
        #expect(s.systemName == "SmolLM2-135M+abl-mean-diff-L12-p-1-a0.5")
        #expect(s.fileName == "SmolLM2-135M_abl-mean-diff-L12-p-1-a0.5")
        #expect(!s.fileName.contains("+") && !s.fileName.contains("/"))
    }

    @Test(arguments: [
        AbliterationSetting(checkpoint: "SmolLM2-135M-Instruct.Q4_1", method: .meanDiff, layer: 12, position: -1, alpha: 1),
        AbliterationSetting(checkpoint: "a-b-L3-p-2-a1", method: .pc1, layer: 0, position: 0, alpha: 0.25),
        AbliterationSetting(checkpoint: "x+abl-y", method: .pc1, layer: 29, position: -5, alpha: 1.5),
        AbliterationSetting(checkpoint: "m", method: .meanDiff, layer: 7, position: 3, alpha: -0.5),
        AbliterationSetting(checkpoint: "m", method: .meanDiff, layer: 7, position: 3, alpha: 0.1 + 0.2),
        AbliterationSetting(checkpoint: "m", method: .meanDiff, layer: 23, position: -1, alpha: 1, fallback: true),
        AbliterationSetting(checkpoint: "m", method: .pc1, layer: 4, position: -1, alpha: 0.5, edit: EditScheme(kind: .study), fallback: true),
        AbliterationSetting(checkpoint: "m", method: .pc1, layer: 4, position: -1, alpha: 1.5, edit: EditScheme(kind: .study)),
    ])
    func roundTrip(_ s: AbliterationSetting) throws {
        let (ck, parsed) = try SystemName.parse(s.systemName)
        #expect(ck == s.checkpoint)
        #expect(parsed == s)
        #expect(SystemName.format(checkpoint: s.checkpoint, setting: parsed) == s.systemName)
    }

    @Test func fallbackAndStudyEditAreInTheName() {
        let s = AbliterationSetting(checkpoint: "m", method: .meanDiff, layer: 23, position: -1, alpha: 1, edit: EditScheme(kind: .study), fallback: true)
        #expect(s.systemName == "m+abl-mean-diff-L23-p-1-a1-study-fallback")
        // Arditi's scheme and no fallback: the plain name, and no extra fields in the JSON of a generation record.
        let plain = AbliterationSetting(checkpoint: "m", method: .meanDiff, layer: 23, position: -1, alpha: 1, edit: .arditi)
        #expect(plain.systemName == "m+abl-mean-diff-L23-p-1-a1" && plain.edit == nil && plain.fallback == nil)
        #expect(EditScheme(kind: .study, skipBegin: 1, skipEnd: 2).layers(10) == 1..<8 && EditScheme.arditi.layers(10) == 0..<10)
        #expect(EditScheme(kind: .study, skipBegin: 12, skipEnd: 0).layers(10).isEmpty)
    }

    @Test func originalHasNoSetting() throws {
        let (ck, s) = try SystemName.parse("Qwen2.5-Coder-0.5B-Instruct")
        #expect(ck == "Qwen2.5-Coder-0.5B-Instruct")
        #expect(s == nil)
        #expect(SystemName.format(checkpoint: ck, setting: nil) == ck)
    }

    @Test(arguments: ["m+abl-", "m+abl-mean-diff-L1-p0", "m+abl-mean-diff-L-1-p0-a1", "m+abl-foo-L1-p0-a1",
                      "m+abl-mean-diff-Lx-p0-a1", "m+abl-mean-diff-L1-p0-anan", "+abl-pc1-L1-p0-a1", "m+abl-pc1-L1-px-a1"])
    func badNamesThrow(_ name: String) {
        #expect(throws: AbliterationError.self) { try SystemName.parse(name) }
    }
}
