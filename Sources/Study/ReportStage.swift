import AblabCore
import Foundation
import Report

extension Pipeline {
    /// Report: figures and `<run>/report.pdf` from the run's files (never reruns a model). Always
    /// re-rendered, since it is cheap and its inputs are every other stage's outputs. Register with
    /// `.report: { try $0.reportStage() }` in `StageRegistry.implementations`.
    public func reportStage() throws {
        // The cache-only mechanism analyses the report shows (skipped when unchanged).
        do { try mechanismsStage() } catch { log.warning("[report] mechanisms: \(error)") }
        var o = ReportOptions()
        // Relative paths are relative to the working folder, like every path in a study file.
        o.figuresDirectory = options.figures ?? spec.figures
        o.paperDirectory = spec.paperData
        o.reference = spec.referenceJudge
        let s = try StudyReport.render(run: run, options: o)
        for (k, v) in s.missing.sorted(by: { $0.key < $1.key }) { log.info("[report] \(k): \(v)") }
        log.info("[report] wrote \(s.pdf) (\(s.pages) pages) and \(s.figures.count) figures to \(s.figuresDirectory)")
    }
}
