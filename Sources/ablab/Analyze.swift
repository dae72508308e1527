import ArgumentParser
import Foundation
import AblabCore
import Analysis

struct Analyze: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Analyse a run's activation caches: PCA spectra, refusal directions, separation, probes, similarity, stability, candidates.",
        discussion: """
        Reads RUN/activations/*.h5 and writes RUN/analysis.h5 and tidy CSVs RUN/analysis/metrics.csv \
        (checkpoint,layer,position,method,metric,value), RUN/analysis/similarity.csv and RUN/analysis/candidates.csv. \
        Directions are fit on the 'train' prompts and evaluated on the 'test' prompts; overlapping ids are \
        reported loudly and flagged (leakage = 1).
        """)
    @OptionGroup var global: GlobalOptions
    @Argument(help: "A run folder (with an activations/ folder).") var run: String
    @Option(help: "Bootstrap replicates for direction stability (0: off).") var bootstrap = 200
    @Option(help: "Largest number of PCs a probe uses (probes on 1, 2, 4, … PCs).") var maxComponents = 32
    @Option(help: "Seed of the bootstrap / split-half generator.") var seed: UInt64 = AnalysisOptions().seed
    @Option(name: .customLong("checkpoint"), help: "Only these checkpoints (repeatable).") var checkpoints: [String] = []

    func run() async throws {
        global.bootstrap()
        try await runReportingErrors {
            let options = AnalysisOptions(bootstrap: bootstrap, maxComponents: maxComponents, seed: seed)
            let start = Date()
            let r = try RunAnalyzer.analyze(run: run, options: options, checkpoints: checkpoints.isEmpty ? nil : checkpoints)
            try RunAnalyzer.write(r, run: run, options: options)
            let sites = r.checkpoints.reduce(0) { $0 + $1.sites.count }
            AblabLog.logger("analyze").info("analysed \(sites) sites of \(r.checkpoints.count) checkpoint(s) in \(String(format: "%.1f", Date().timeIntervalSince(start))) s; wrote \(run)/analysis.h5 and \(run)/analysis/*.csv")
            for (ck, best) in CandidateRanking.best(r.ranking).sorted(by: { $0.key < $1.key }) {
                let c = best.candidate
                print("\(ck): layer \(c.key.layer) position \(c.key.position) \(c.key.method.rawValue) (\(c.rankedOn.rawValue) Cohen's d \(String(format: "%.2f", c.cohenD)), AUROC \(String(format: "%.3f", c.auroc)))")
            }
            if r.leakage { FileHandle.standardError.write(Data("warning: train/test prompts overlap; results are flagged with leakage = 1\n".utf8)) }
        }
    }
}
