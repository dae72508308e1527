import ArgumentParser
import Foundation
import AblabCore
import Report

struct ReportCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "report",
        abstract: "Render the study's figures (PNG + PDF) and a multi-page PDF report from a run folder.",
        discussion: """
        Reads only files of RUN (manifest.json, activations/ headers, analysis.h5, analysis/*.csv, \
        judgments.csv or agreement/judgments_paper.csv, self_judgment.csv, generations/*.jsonl) and writes \
        RUN/report.pdf and one PNG (2x) + PDF per figure into RUN/figures (or --figures). Missing inputs \
        are reported in the PDF; the rest renders. Abliterated systems are named \
        <checkpoint>+abl-<method>-L<layer>-p<position>-a<alpha>[-study][-fallback] (the study's '<model>-ALB' is read too).
        """)
    @OptionGroup var global: GlobalOptions
    @Argument(help: "A run folder.") var run: String
    @Option(name: .long, help: "Folder for the figure files (default RUN/figures).") var figures: String?
    @Option(name: .long, help: "The study's CSV folder (notebooks-scripts/data/paper): adds its judge heatmaps.") var paper: String?
    @Option(name: .long, help: "Judge of the refusal-rate figures (default: the first judge in the judgments).") var judge: String?
    @Option(name: .long, help: "Reference judge of the confusion table (default human_1 when present).") var reference: String?
    @Option(name: .long, help: "Token position of the analysis figures (default -1).") var position: Int?
    @Option(name: .long, parsing: .upToNextOption, help: "Layers of the PC1-PC2 scatter (default: about 1/3, 2/3 and the last).") var layers: [Int] = []
    @Option(name: .long, help: "Example prompts per model in the appendix.") var examples = 2
    @Option(name: .long, help: "Models (original/abliterated pairs) in the appendix.") var appendixModels = 4
    @Option(name: .long, help: "Bootstrap replicates of the intervals.") var replicates = 1000

    func validate() throws {
        if replicates < 0 || replicates > 1_000_000 { throw ValidationError("--replicates must be between 0 and 1000000") }
        if examples < 0 || examples > 100 { throw ValidationError("--examples must be between 0 and 100") }
        if appendixModels < 0 || appendixModels > 1000 { throw ValidationError("--appendix-models must be between 0 and 1000") }
    }

    func run() async throws {
        global.bootstrap()
        try await runReportingErrors {
            var isDir: ObjCBool = false
            guard FileManager.default.fileExists(atPath: run, isDirectory: &isDir), isDir.boolValue else {
                throw InputError(file: run, "not a run folder; give the folder `ablab run` (or `ablab agree --out RUN/agreement`) wrote")
            }
            var o = ReportOptions()
            o.figuresDirectory = figures
            o.paperDirectory = paper
            o.judge = judge
            o.reference = reference
            o.position = position
            o.scatterLayers = layers.isEmpty ? nil : layers
            o.examples = examples
            o.appendixModels = appendixModels
            o.replicates = replicates
            let s = try StudyReport.render(run: run, options: o)
            for (k, v) in s.missing.sorted(by: { $0.key < $1.key }) {
                FileHandle.standardError.write(Data("note: \(k): \(v)\n".utf8))
            }
            print("wrote \(s.pdf) (\(s.pages) pages) and \(s.figures.count) figures to \(s.figuresDirectory)")
        }
    }
}
