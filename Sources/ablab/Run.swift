import ArgumentParser
import Foundation
import AblabCore
import ActivationCache
import LinearAlgebra
import Study

struct Run: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run a whole study from a TOML file: record → analyze → select → grid → generate → judge → probe → agree → subspace → costs → report.",
        discussion: """
        A stage whose inputs (hashes of models, prompts and settings) are unchanged is skipped.
        RUN/manifest.json holds versions, hashes, settings and timings. Study keys: README, "Study files".
        """)
    @OptionGroup var global: GlobalOptions
    @Argument(help: "The study file (TOML).") var study: String
    @Option(name: .long, help: "Only these stages, comma-separated (record, analyze, select, generate, judge, probe, agree, report).")
    var stages: String?
    @Option(name: .long, help: "Only this checkpoint (for record, select, generate, judge and probe; used by Slurm array tasks).") var checkpoint: String?
    @Option(name: .long, help: "Record shard k/n (with --stages record).") var shard: String?
    @Option(name: .long, help: "Only this system of --checkpoint for generate, judge and probe: 'original' or 'alpha=<α>' (used by Slurm array tasks).")
    var system: String?
    @Option(name: .long, help: "Record each checkpoint by merging its N finished shards (record --shard k/N outputs); an output that already equals them is kept.")
    var mergeShards: Int?
    @Option(name: .long, help: "Copy the figures here too (overrides [report].figures).") var figures: String?
    @Option(name: .long, help: "Threads for matrix multiplies (default: all cores).") var threads: Int?
    @Flag(name: .long, help: "Run every stage even if its inputs are unchanged.") var force = false

    func run() async throws {
        global.bootstrap()
        try await runReportingErrors {
            if let threads { setThreads(threads) }
            let spec = try StudyFile.load(study)
            var o = RunOptions()
            if let stages {
                var set = Set<Stage>()
                for s in stages.split(separator: ",") {
                    guard let st = Stage(rawValue: s.trimmingCharacters(in: .whitespaces)) else {
                        throw InputError(file: "--stages", "unknown stage '\(s)'; use \(Stage.allCases.map(\.rawValue).joined(separator: ", "))")
                    }
                    set.insert(st)
                }
                o.stages = set
            }
            if let checkpoint {
                guard spec.checkpoints.contains(where: { $0.name == checkpoint }) else {
                    throw InputError(file: study, key: "checkpoints", "no checkpoint named '\(checkpoint)'")
                }
                o.checkpoint = checkpoint
            }
            if let shard { o.shard = try ShardSpec(parsing: shard) }
            if let system {
                guard o.checkpoint != nil else { throw InputError(file: "--system", "needs --checkpoint") }
                o.system = try SystemChoice(parsing: system)
            }
            if let mergeShards {
                guard mergeShards >= 1 else { throw InputError(file: "--merge-shards", "must be at least 1") }
                o.mergeShards = mergeShards
            }
            o.figures = figures
            o.force = force
            try Pipeline(studyFile: study, spec: spec, options: o).execute()
        }
    }
}

struct Slurm: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write Slurm scripts for a study: job arrays for record (checkpoint × shard), select (checkpoint), generate, judge and probe (system), and jobs for analysis and the rest.",
        discussion: """
        Writes one .sbatch file per job and submit.sh, which submits them with their dependencies and         prints `<job> <id>` per job. Every job is safe to resubmit (run submit.sh again): finished stages         are skipped, interrupted ones resume. The jobs run in the folder `ablab slurm` ran in. See README, "On a cluster (Slurm)".
        """)
    @OptionGroup var global: GlobalOptions
    @Argument(help: "The study file (TOML).") var study: String
    @Option(name: .long, help: "Folder for the scripts (default: RUN/slurm).") var out: String?
    @Option(name: .long, help: "Shards per checkpoint.") var shards: Int = 1
    @Option(name: .long, help: "CPUs per task.") var cpus: Int = 8
    @Option(name: .long, help: "Memory per task.") var mem: String = "32G"
    @Option(name: .long, help: "Time limit per task.") var time: String = "08:00:00"
    @Option(name: .long, help: "Partition.") var partition: String?
    @Option(name: .long, help: "The ablab executable on the cluster.") var ablab: String = "ablab"

    func run() async throws {
        global.bootstrap()
        try await runReportingErrors {
            let spec = try StudyFile.load(study)
            var plan = SlurmPlan(studyFile: study, spec: spec)
            plan.shards = shards; plan.cpusPerTask = cpus; plan.memory = mem; plan.time = time
            plan.partition = partition; plan.ablab = ablab
            try plan.validate()
            let written = try plan.write(to: out ?? spec.out + "/slurm")
            for p in written { print("wrote \(p)") }
            print("submit with: bash \(SlurmPlan.shellQuote(written.last!))  (on the cluster's login node)")
        }
    }
}
