import AblabCore
import Logging

/// Result of the train/test disjointness check.
public struct LeakageReport: Sendable, Equatable {
    /// Prompt ids present in both splits, sorted.
    public var overlapping: [String]
    public var leaked: Bool { !overlapping.isEmpty }
}

/// Directions are fit on `train` and judged on `test`; a prompt in both makes every test number
/// optimistic. The guard does not stop the analysis: it logs a loud warning and the caller records
/// `LayerAnalysis.leakage = true` (a `leakage` row in the tidy CSV) so reports can flag it.
public enum LeakageGuard {
    public static func check(trainIDs: [String], testIDs: [String], context: String,
                             logger: Logger = AblabLog.logger("analysis")) -> LeakageReport {
        let overlap = Set(trainIDs).intersection(testIDs).sorted()
        if !overlap.isEmpty {
            let shown = overlap.prefix(5).joined(separator: ", ") + (overlap.count > 5 ? ", …" : "")
            logger.warning("""
                !!! DATA LEAKAGE in \(context): \(overlap.count) prompt id(s) are in BOTH the train and the test split \
                (\(shown)). Separation, probe accuracy and candidate ranking for this run are optimistic; fix the \
                'split' column of the prompt files. The results are flagged with leakage = 1.
                """)
        }
        return LeakageReport(overlapping: overlap)
    }
}
