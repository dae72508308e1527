import AblabCore
import Foundation
import Judging

extension Pipeline {
    /// Agree: judge agreement and refusal tables from `<run>/judgments.csv` and, when the study names
    /// the paper's data, the study's own annotations and judge summaries → `<run>/agreement/`.
    func agreeStage() throws {
        let judgmentsPath = run + "/judgments.csv"
        let haveJudgments = FileManager.default.fileExists(atPath: judgmentsPath)
        guard haveJudgments || spec.paperData != nil else {
            log.info("[agree] no judgments.csv and no [paper] data: nothing to compare")
            return
        }
        var parts: [String: String] = ["reference": spec.referenceJudge, "judges": spec.judges.joined(separator: ",")]
        if haveJudgments { parts["judgments"] = try SHA256.hex(file: judgmentsPath) }
        for name in spec.judges where name.hasPrefix("llm") {
            let ckpt = String(name.drop(while: { $0 != ":" }).dropFirst())
            parts["judge:" + name] = (try? fileHash(spec.checkpoints.first(where: { $0.name == ckpt })?.model ?? ckpt)) ?? "missing"
        }
        for p in spec.patternJudges { parts["pattern:" + p.name] = String(p.regex) + ":" + p.patterns.joined(separator: "\u{1}") }
        if let paper = spec.paperData {
            let files = ((try? FileManager.default.contentsOfDirectory(atPath: paper)) ?? []).filter { $0.hasSuffix(".csv") }.sorted()
            for f in files { parts["paper:" + f] = try fileHash(paper + "/" + f) }
        }
        let dir = run + "/agreement"
        try stage("agree", fingerprint: fingerprint(parts), outputs: [dir + "/agreement.csv", dir + "/refusal_rates.csv"]) {
            var rows: [Judgment] = haveJudgments ? try JudgmentsFile.read(judgmentsPath) : []
            var reference: String? = spec.referenceJudge
            if let paper = spec.paperData {
                let s = try PaperStudy.load(directory: paper)
                rows += s.humanJudgments
                // Every judge of the study calibrated on the study's 200 human-labelled responses
                // (labels: judges hold verdicts of this run's items, not of the study's, and are left out).
                var calibration: [JudgeCalibration.Row] = []
                for name in ["regex:paper"] + spec.judges.filter({ $0 != "regex:paper" && !$0.hasPrefix("labels:") }) {
                    guard let judge = try judge(named: name) else { continue }
                    let judged = try judge.judgeAll(s.items)
                    rows += judged
                    calibration += try JudgeCalibration.compute(study: s, judge: name, judgments: judged, replicates: 1000)
                }
                try SafeFiles.createDirectory(dir)
                try SafeFiles.atomicWrite(Data(JudgeCalibration.csv(calibration).utf8), to: dir + "/calibration.csv")
                if let best = JudgeCalibration.best(calibration) {
                    log.info("[agree] judge closest to Human 1 on the study's 200 responses: \(best.judge) (κ \(String(format: "%.3f", best.kappa.estimate)))")
                }
                if !haveJudgments { reference = "human_1" }
                let h = try s.humanAgreement()
                log.info("[agree] the study's annotators: \(h)")
            }
            let table = try JudgmentTable(rows)
            let report = try AgreementReport.compute(table, options: .init(reference: reference, replicates: 1000, seed: 20251002, level: 0.95))
            try SafeFiles.createDirectory(dir)
            try report.write(to: dir)
            if spec.paperData != nil { try JudgmentsFile.write(rows, to: dir + "/judgments_paper.csv") }
            return [dir + "/agreement.csv", dir + "/refusal_rates.csv"]
        }
    }
}
