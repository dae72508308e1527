import Foundation
import Testing
@testable import Abliteration

/// The scores of the model-based candidate selection against their definitions, on hand-made logits.
@Suite("Candidate scoring: refusal log-odds and KL")
struct CandidateScoringTests {
    @Test("refusal score = log(p / (1 − p)) of the refusal tokens' softmax mass")
    func refusalScore() {
        // logits log(1), log(2), log(3), log(4): softmax = 0.1, 0.2, 0.3, 0.4 (shift-invariant: +7)
        let logits: [Float] = [1, 2, 3, 4].map { Float(Foundation.log(Double($0))) + 7 }
        let s = logits.withUnsafeBufferPointer { CandidateScoring.refusalScore($0.baseAddress!, vocab: 4, tokens: [1, 3]) }
        #expect(abs(s - Foundation.log(0.6 / 0.4)) < 1e-6)
        let none = logits.withUnsafeBufferPointer { CandidateScoring.refusalScore($0.baseAddress!, vocab: 4, tokens: []) }
        #expect(none.isFinite && none < -27, "p = 0 is clamped to 1e-12, log-odds ≈ −27.6")
    }

    @Test("KL(P‖Q) = Σ p log(p/q); zero for equal rows; ≥ 0")
    func kl() {
        let p: [Float] = [0.5, 0.25, 0.25].map { Float(Foundation.log(Double($0))) }
        let q: [Float] = [0.25, 0.5, 0.25].map { Float(Foundation.log(Double($0))) - 3 }
        let got = p.withUnsafeBufferPointer { pp in q.withUnsafeBufferPointer { qq in CandidateScoring.kl(pp.baseAddress!, qq.baseAddress!, vocab: 3) } }
        let want = 0.5 * Foundation.log(2.0) + 0.25 * Foundation.log(0.5)
        #expect(abs(got - want) < 1e-6)
        let same = p.withUnsafeBufferPointer { CandidateScoring.kl($0.baseAddress!, $0.baseAddress!, vocab: 3) }
        #expect(abs(same) < 1e-12)
    }
}
