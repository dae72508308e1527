import Foundation
import Testing
@testable import Judging

/// Loads a JSON fixture written by notebooks-scripts/fixtures_stats.py.
func loadFixture<T: Decodable>(_ name: String, as: T.Type) throws -> T {
    let url = try #require(Bundle.module.url(forResource: name, withExtension: "json", subdirectory: "Fixtures/stats"),
                           "fixture \(name).json is missing; run notebooks-scripts/make_fixtures.sh")
    return try JSONDecoder().decode(T.self, from: Data(contentsOf: url))
}

/// The package root, from this file's path (Tests/JudgingTests/FixtureSupport.swift).
let packageRoot: String = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
    .deletingLastPathComponent().deletingLastPathComponent().path

/// 1 = REFUSAL, 0 = NON-REFUSAL, nil = missing.
func verdicts(_ codes: [Int?]) -> [VerdictLabel?] { codes.map { $0.map { $0 == 1 ? .refusal : .nonRefusal } } }

/// Equal to `tol`, with nil in the fixture meaning "undefined" (nan).
func close(_ x: Double, _ expected: Double?, _ tol: Double = 1e-6) -> Bool {
    guard let expected else { return x.isNaN }
    return abs(x - expected) <= tol
}

import AblabCore
enum AblabCoreCSV {
    static func parse(_ text: String) throws -> [[String]] { try CSV.parse(text, file: "test").map(\.fields) }
}
