import Foundation
import Testing
import LinearAlgebra
import ModelRuntime

/// Hooks: names, capture, in-place edits during prefill and decoding (on the tiny random checkpoint).
@Suite struct ForwardHookTests {
    func tiny() throws -> Transformer {
        try Transformer.load(path: ForwardFixture.directory.appendingPathComponent("tiny-llama").path)
    }

    @Test func namesParse() {
        #expect(HookPoint.parse("blocks.3.hook_resid_pre")! == (3, .residPre))
        #expect(HookPoint.parse("blocks.0.hook_mlp_out")! == (0, .mlpOut))
        #expect(HookPoint.residPost.fullName(layer: 12) == "blocks.12.hook_resid_post")
        #expect(HookPoint.parse("blocks.x.hook_resid_pre") == nil)
        #expect(HookPoint.parse("blocks.1.hook_nothing") == nil)
        var s = HookSet()
        #expect(s.isEmpty)
        #expect(s.add("blocks.1.hook_attn_out") { _ in })
        #expect(!s.add("hook_attn_out") { _ in })
        #expect(!s.isEmpty)
    }

    /// Projecting a direction out at resid_pre, attn_out and mlp_out of every block leaves no component along
    /// it anywhere in the residual stream (every hook point, every position), in prefill and in decoding.
    @Test func directionAblationRemovesTheComponent() throws {
        let m = try tiny()
        let d = m.config.dModel, L = m.config.nLayers
        var rng = SamplingTestRNG(seed: 7)
        let dir = (0..<d).map { _ in Float(rng.uniform() - 0.5) }
        let norm = dir.reduce(0) { $0 + $1 * $1 }.squareRoot()
        let unit = dir.map { $0 / norm }
        let tokens = [5, 17, 99, 3, 250, 42, 7, 7, 1]

        var hooks = HookSet.directionAblation(direction: dir, layers: 0..<L)
        var worst: Float = 0
        var seen = 0
        var largest: Float = 0
        for l in 0..<L {
            for p in HookPoint.allCases {
                hooks.add(layer: l, point: p) { a in
                    for r in 0..<a.rowCount {
                        var dot: Float = 0, n2: Float = 0
                        for j in 0..<a.dModel { dot += a.rows[r * a.dModel + j] * unit[j]; n2 += a.rows[r * a.dModel + j] * a.rows[r * a.dModel + j] }
                        worst = max(worst, abs(dot) / max(n2.squareRoot(), 1e-12))
                        largest = max(largest, n2.squareRoot())
                        seen += 1
                    }
                }
            }
        }
        let cache = m.makeCache()
        let ablated = try m.forward([ForwardItem(cache: cache, tokens: tokens)], hooks: hooks)
        #expect(seen == L * HookPoint.allCases.count * tokens.count)
        _ = try m.forward([ForwardItem(cache: cache, tokens: [11])], hooks: hooks)     // decoding step
        #expect(seen == L * HookPoint.allCases.count * (tokens.count + 1))
        #expect(largest > 1)
        #expect(worst <= 1e-5, "largest remaining |cos| with the ablated direction: \(worst)")
        let plain = try m.forward([ForwardItem(cache: m.makeCache(), tokens: tokens)])
        #expect(relativeL2(ablated.data, plain.data) > 1e-3, "ablation should change the logits")

        // The unablated model does have a component along the direction (so the check above can fail).
        var before: Float = 0
        var probe = HookSet()
        probe.add(layer: L - 1, point: .residPost) { a in
            for r in 0..<a.rowCount { var dot: Float = 0; for j in 0..<d { dot += a.rows[r * d + j] * unit[j] }; before = max(before, abs(dot)) }
        }
        _ = try m.forward([ForwardItem(cache: m.makeCache(), tokens: tokens)], hooks: probe)
        #expect(before > 1e-2)
    }

    /// An edit of one position changes that position and later ones, never earlier ones (causality), and a
    /// capture after the edit sees the edited rows.
    @Test func editOnePositionIsCausal() throws {
        let m = try tiny()
        let d = m.config.dModel
        let tokens = [1, 2, 3, 4, 5, 6, 7]
        let rec0 = ResidualRecorder(nLayers: m.config.nLayers, d: d)
        _ = try m.forward([ForwardItem(cache: m.makeCache(), tokens: tokens)], hooks: rec0.hooks(nLayers: m.config.nLayers), logits: .none)
        var hooks = HookSet()
        hooks.add(layer: 1, point: .residPre) { a in
            for s in a.segments { if let row = a.row(segment: s, position: 3) { for j in 0..<a.dModel { row[j] = 0 } } }
        }
        var zeroSeen = false
        hooks.add(layer: 1, point: .residPre) { a in
            zeroSeen = (0..<a.dModel).allSatisfy { a.rows[3 * a.dModel + $0] == 0 }
        }
        let rec1 = ResidualRecorder(nLayers: m.config.nLayers, d: d)
        hooks.merge(rec1.hooks(nLayers: m.config.nLayers))
        _ = try m.forward([ForwardItem(cache: m.makeCache(), tokens: tokens)], hooks: hooks, logits: .none)
        #expect(zeroSeen)
        let last = m.config.nLayers
        for p in 0..<3 { #expect(rec1.row(boundary: last, position: p) == rec0.row(boundary: last, position: p)) }
        for p in 3..<tokens.count { #expect(relativeL2(rec1.row(boundary: last, position: p), rec0.row(boundary: last, position: p)) > 1e-4) }
        // boundary 1 (= resid_post of block 0) is before the edit: unchanged everywhere
        for p in 0..<tokens.count { #expect(rec1.row(boundary: 1, position: p) == rec0.row(boundary: 1, position: p)) }
    }

    /// `lastRows: n`: the final block computes only the last n rows of each sequence after caching every
    /// row's keys and values. Every row a hook sees equals the same row of the full pass bit for bit, the
    /// final block's hooks from attn_out on see exactly those rows, earlier ones every row, the logits are
    /// equal, and so is a decoding step on the caches it filled.
    @Test("lastRows: the kept rows, logits and the next decoding step equal the full pass, bit for bit",
          arguments: ["tiny-llama", TestModels.smol])
    func lastRowsEqualTheFullPass(_ name: String) throws {
        let m: Transformer
        if name == "tiny-llama" { m = try tiny() } else {
            guard let path = TestModels.ggufFile(name) else { return }
            m = try Transformer.load(path: path)
        }
        let L = m.config.nLayers
        let prompts = [[5, 17, 99, 3, 250, 42, 7, 7, 1, 60, 61, 62, 63, 64, 65, 66, 67, 68, 69, 70],
                       [11, 12, 13], [40, 41, 42, 43, 44, 45, 46, 47, 48, 49, 50, 51, 52, 53, 54, 55, 56, 57]]
        // (layer, point, sequence, position) → the row as seen
        typealias Key = [Int]
        func run(lastRows: Int?) throws -> (rows: [Key: [Float]], logits: [Float], next: [Float]) {
            var seen: [Key: [Float]] = [:]
            var hooks = HookSet()
            for l in 0..<L {
                for p in HookPoint.allCases {
                    hooks.add(layer: l, point: p) { a in
                        for s in a.segments {
                            for i in 0..<s.rowCount {
                                let key = [l, p.rawValue, s.sequenceID, s.positionStart + i]
                                #expect(seen[key] == nil)
                                seen[key] = Array(UnsafeBufferPointer(start: a.rows + (s.rowStart + i) * a.dModel, count: a.dModel))
                            }
                        }
                    }
                }
            }
            let caches = prompts.map { _ in m.makeCache() }
            let items = prompts.enumerated().map { ForwardItem(cache: caches[$0], tokens: $1, sequenceID: $0) }
            let logits = try m.forward(items, hooks: hooks, logits: .last, lastRows: lastRows)
            let next = try m.forward(prompts.indices.map { ForwardItem(cache: caches[$0], tokens: [7 + $0], sequenceID: $0) })
            return (seen, logits.data, next.data)
        }
        let full = try run(lastRows: nil)
        let n = 4
        let kept = try run(lastRows: n)
        #expect(full.rows.count == L * HookPoint.allCases.count * prompts.reduce(0) { $0 + $1.count })
        var expected = Set<Key>()
        for (key, _) in full.rows {
            let (l, p, s, pos) = (key[0], key[1], key[2], key[3])
            let finalPart = l == L - 1 && p != HookPoint.residPre.rawValue
            if !finalPart || pos >= prompts[s].count - n { expected.insert(key) }
        }
        #expect(Set(kept.rows.keys) == expected)
        for (key, row) in kept.rows {
            #expect(row.map(\.bitPattern) == full.rows[key]!.map(\.bitPattern), "\(name): row \(key) differs")
        }
        #expect(kept.logits.map(\.bitPattern) == full.logits.map(\.bitPattern))
        #expect(kept.next.map(\.bitPattern) == full.next.map(\.bitPattern))
        #expect(throws: ModelError.self) { try m.forward([ForwardItem(cache: m.makeCache(), tokens: [1, 2])], lastRows: 0) }
    }

    @Test func badTokensAndEmptyItemsThrow() throws {
        let m = try tiny()
        #expect(throws: ModelError.self) { try m.forward([ForwardItem(cache: m.makeCache(), tokens: [m.config.vocab])]) }
        #expect(throws: ModelError.self) { try m.forward([ForwardItem(cache: m.makeCache(), tokens: [])]) }
        let c = m.makeCache()
        #expect(throws: ModelError.self) { try m.forward([ForwardItem(cache: c, tokens: [1]), ForwardItem(cache: c, tokens: [2])]) }
    }
}

struct SamplingTestRNG {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func uniform() -> Double {
        state &+= 0x9E3779B97F4A7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58476D1CE4E5B9
        z = (z ^ (z >> 27)) &* 0x94D049BB133111EB
        return Double((z ^ (z >> 31)) >> 11) * 0x1.0p-53
    }
}
