import Foundation

/// The name of a system (a model that answered prompts) in judgments, generations and self-judgment
/// files.
///
/// - An original checkpoint is named by its checkpoint name, e.g. `smollm2-135m`.
/// - An abliterated variant is `<checkpoint>+abl-<method>-L<layer>-p<position>-a<alpha>` (then `-study`
///   for the study's edit scheme, `-fallback` for a direction no candidate filter passed; `-p…` is
///   absent in names written before positions were named), e.g.
///   `smollm2-135m+abl-mean-diff-L12-a1` or `qwen2.5+abl-pc1-L7-a0.5`: the refusal direction of
///   `method` (`mean-diff` or `pc1`) found at residual layer `layer`, removed with strength `alpha`
///   (1 = full projection). `alpha` is written as the shortest decimal (`1`, `0.5`, `1.25`).
/// - The study's own data names abliterated models `<model>-ALB` (also `<model> - ALB`, `<model> -ALB`);
///   `parse` reads those as abliterated with unknown method, layer and alpha.
public struct SystemName: Sendable, Hashable, CustomStringConvertible {
    public struct Abliteration: Sendable, Hashable {
        /// Direction method, e.g. "mean-diff" or "pc1" (nil: unknown, as in the study's "-ALB" names).
        public var method: String?
        public var layer: Int?
        public var alpha: Double?
        public init(method: String?, layer: Int?, alpha: Double?) { self.method = method; self.layer = layer; self.alpha = alpha }
    }

    public var checkpoint: String
    /// nil for the original model.
    public var abliteration: Abliteration?
    /// The name as written in the files (kept so lenient forms round-trip).
    public var raw: String

    public var isAbliterated: Bool { abliteration != nil }

    /// The checkpoint without a path prefix ("models/org/name" → "name"): the key that pairs an
    /// original with its abliterated copy when the copy was saved under another folder.
    public var shortCheckpoint: String { SystemName.lastPathComponent(checkpoint) }

    /// The written name without a path prefix, for figure and table labels.
    public static func shortName(_ raw: String) -> String { lastPathComponent(raw) }

    static func lastPathComponent(_ s: String) -> String {
        s.split(separator: "/", omittingEmptySubsequences: true).last.map(String.init) ?? s
    }

    public init(checkpoint: String, abliteration: Abliteration? = nil) {
        self.checkpoint = checkpoint
        self.abliteration = abliteration
        self.raw = ""
        self.raw = formatted
    }

    /// The canonical spelling (`<checkpoint>` or `<checkpoint>+abl-<method>-L<layer>-a<alpha>`).
    public var formatted: String {
        guard let a = abliteration else { return checkpoint }
        guard let m = a.method, let l = a.layer, let al = a.alpha else { return checkpoint + "-ALB" }
        return "\(checkpoint)+abl-\(m)-L\(l)-a\(SystemName.formatAlpha(al))"
    }

    public var description: String { raw }

    /// Shortest decimal form: 1 → "1", 0.5 → "0.5".
    public static func formatAlpha(_ a: Double) -> String {
        if a == a.rounded() && abs(a) < 1e15 { return String(Int(a)) }
        return "\(a)"
    }

    /// Reads any system name: the canonical abliterated form, the study's "-ALB" forms, or a plain
    /// checkpoint name (original). Never fails: unknown shapes are original checkpoints.
    public static func parse(_ s: String) -> SystemName {
        if let r = s.range(of: "+abl-", options: .backwards) {
            let base = String(s[..<r.lowerBound])
            let spec = String(s[r.upperBound...])
            // <method>-L<layer>[-p<position>]-a<alpha>; the method may itself contain '-', the position is
            // negative for positions counted from the end (as `ablab` writes them: "-p-1").
            if !base.isEmpty, let m = spec.wholeMatch(of: /(.+)-L(\d+)(?:-p(-?\d+))?-a([0-9.eE+\-]+?)(?:-study)?(?:-fallback)?/),
               let layer = Int(m.output.2), let alpha = Double(m.output.4) {
                var n = SystemName(checkpoint: base, abliteration: Abliteration(method: String(m.output.1), layer: layer, alpha: alpha))
                n.raw = s
                return n
            }
        }
        let t = s.trimmingCharacters(in: .whitespaces)
        // "<model>-ALB", "<model> - ALB", "<model> -ALB" (also "-abl", "-abliterated", any case)
        for suffix in ["abliterated", "alb", "abl"] where t.lowercased().hasSuffix(suffix) {
            var base = String(t.dropLast(suffix.count)).trimmingCharacters(in: .whitespaces)
            guard base.hasSuffix("-") else { continue }
            base = String(base.dropLast()).trimmingCharacters(in: .whitespaces)
            if base.isEmpty { break }
            var n = SystemName(checkpoint: base, abliteration: Abliteration(method: nil, layer: nil, alpha: nil))
            n.raw = s
            return n
        }
        var n = SystemName(checkpoint: t)
        n.raw = s
        return n
    }
}
