import Foundation
import AblabCore

/// The three disjoint roles a study's prompts play.
///
/// - `fit`: the `train` prompts the directions and PCA are fit on (`train_per_class` per label, in file order);
/// - `validation`: the prompts every *choice* is made on — the cache ranking of candidate directions and the
///   model-based selection (bypass / induce / KL). Per label, `validation_per_class` prompts taken, in
///   order, from the train prompts beyond `train_per_class`, then from the `extra` split, then (when those
///   run short) from the end of the fit prompts, which then leave the fit set. A prompt whose text is
///   already a fit or test prompt's is never taken.
/// - `test`: the `test` prompts (`test_per_class` per label); they only measure (test metrics, generation).
///
/// Validation prompts are recorded with split `validation`, so the activation cache says which role
/// every prompt played.
public struct PromptRoles: Sendable, Equatable {
    public var fit: [Prompt]
    public var validation: [Prompt]
    public var test: [Prompt]
    /// Per label: how many validation prompts came from the fit prompts (the fit set shrank by as many).
    public var takenFromFit: [String: Int]

    /// Every prompt with its role as split (`train`, `validation`, `test`), fit first, then validation, then test.
    public var all: [Prompt] {
        fit.map { with($0, "train") } + validation.map { with($0, "validation") } + test.map { with($0, "test") }
    }

    private func with(_ p: Prompt, _ split: String) -> Prompt { var q = p; q.split = split; return q }

    /// `role,id,label,text`: one row per prompt (written to `<run>/prompt_roles.csv`).
    public var csv: String {
        var s = "role,id,label,text\n"
        for (role, ps) in [("fit", fit), ("validation", validation), ("test", test)] {
            for p in ps { s += [role, p.id, p.label, p.text].map(CSV.escape).joined(separator: ",") + "\n" }
        }
        return s
    }

    static func key(_ text: String) -> String { text.trimmingCharacters(in: .whitespacesAndNewlines) }

    /// Assigns the roles from every prompt of the prompt files (any split).
    public static func assign(_ prompts: [Prompt], trainPerClass: Int?, testPerClass: Int?,
                              validationPerClass: Int) -> PromptRoles {
        func trimmed(_ split: String, _ limit: Int?) -> (kept: [Prompt], rest: [Prompt]) {
            var perLabel: [String: Int] = [:]
            var kept: [Prompt] = [], rest: [Prompt] = []
            for p in prompts where p.split == split {
                let n = perLabel[p.label, default: 0]
                if let limit, n >= limit { rest.append(p); continue }
                perLabel[p.label] = n + 1
                kept.append(p)
            }
            return (kept, rest)
        }
        var (fit, unusedTrain) = trimmed("train", trainPerClass)
        let test = trimmed("test", testPerClass).kept
        let extra = prompts.filter { $0.split == "extra" }
        var taken = Set((fit + test).map { key($0.text) })
        var validation: [Prompt] = []
        var takenFromFit: [String: Int] = [:]
        var labels: [String] = []
        for p in fit + test where !labels.contains(p.label) { labels.append(p.label) }
        for label in labels where validationPerClass > 0 {
            var mine: [Prompt] = []
            for p in unusedTrain + extra where p.label == label && mine.count < validationPerClass && !taken.contains(key(p.text)) {
                mine.append(p); taken.insert(key(p.text))
            }
            // Short: the last fit prompts of this label change role (at least 2 stay to fit on).
            while mine.count < validationPerClass,
                  let i = fit.lastIndex(where: { $0.label == label }), fit.filter({ $0.label == label }).count > 2 {
                mine.append(fit.remove(at: i))
                takenFromFit[label, default: 0] += 1
            }
            validation += mine
        }
        return PromptRoles(fit: fit, validation: validation, test: test, takenFromFit: takenFromFit)
    }

    /// Prompts that play two roles, by id or by (trimmed) text: "id (fit, test)". Empty when the roles are disjoint.
    public var conflicts: [String] {
        var roleOfID: [String: Set<String>] = [:], roleOfText: [String: Set<String>] = [:], idsOfText: [String: [String]] = [:]
        for (role, ps) in [("fit", fit), ("validation", validation), ("test", test)] {
            for p in ps {
                roleOfID[p.id, default: []].insert(role)
                roleOfText[Self.key(p.text), default: []].insert(role)
                idsOfText[Self.key(p.text), default: []].append(p.id)
            }
        }
        var out: [String] = []
        for (id, r) in roleOfID where r.count > 1 { out.append("\(id) (\(r.sorted().joined(separator: ", ")))") }
        for (t, r) in roleOfText where r.count > 1 {
            out.append("same text as \(idsOfText[t]!.joined(separator: " and ")) (\(r.sorted().joined(separator: ", ")))")
        }
        return out.sorted()
    }
}
