import ArgumentParser
import Foundation
import AblabCore
import ActivationCache
import LinearAlgebra
import Study

struct Run: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run a whole study from a TOML file: record → analyze → generate → judge → probe → agree → report.",
        discussion: """
        A stage whose inputs (hashes of models, prompts and settings) are unchanged is skipped.
        RUN/manifest.json holds versions, hashes, settings and timings. Study keys: README, "Study files".
        """)
    @OptionGroup var global: GlobalOptions
    @Argument(help: "The study file (TOML).") var study: String
    @Option(name: .long, help: "Only these stages, comma-separated (record, analyze, generate, judge, probe, agree, report).")
    var stages: String?
    @Option(name: .long, help: "Only this checkpoint (for record and generate; used by Slurm array tasks).") var checkpoint: String?
    @Option(name: .long, help: "Record shard k/n (with --stages record).") var shard: String?
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
            o.figures = figures
            o.force = force
            try Pipeline(studyFile: study, spec: spec, options: o).execute()
        }
    }
}

struct Slurm: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write Slurm scripts for a study: a record job array (one checkpoint or shard per task) and a dependent job for the rest.")
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
            guard shards >= 1 else { throw InputError(file: "--shards", "must be at least 1") }
            var plan = SlurmPlan(studyFile: study, spec: spec)
            plan.shards = shards; plan.cpusPerTask = cpus; plan.memory = mem; plan.time = time
            plan.partition = partition; plan.ablab = ablab
            let dir = out ?? spec.out + "/slurm"
            try SafeFiles.createDirectory(dir)
            let rec = dir + "/record.sbatch", fin = dir + "/finish.sbatch", sub = dir + "/submit.sh"
            try SafeFiles.atomicWrite(Data(plan.recordScript().utf8), to: rec)
            try SafeFiles.atomicWrite(Data(plan.finishScript().utf8), to: fin)
            try SafeFiles.atomicWrite(Data(plan.submitScript(recordPath: rec, finishPath: fin).utf8), to: sub)
            chmod(sub, 0o755)
            print("wrote \(rec)\nwrote \(fin)\nwrote \(sub)  (run it on the cluster's login node)")
        }
    }
}
