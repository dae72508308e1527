import Foundation
import AblabCore
import ActivationCache

/// Writes Slurm job scripts for a study: a job array records one checkpoint per task (the expensive,
/// embarrassingly parallel part), then a dependent job runs every remaining stage (recording is
/// skipped there, since its inputs are unchanged) and writes the report.
public struct SlurmPlan: Sendable {
    public var studyFile: String
    public var spec: StudySpec
    public var ablab: String = "ablab"
    public var cpusPerTask: Int = 8
    public var memory: String = "32G"
    public var time: String = "08:00:00"
    public var partition: String?
    public var shards: Int = 1

    public init(studyFile: String, spec: StudySpec) { self.studyFile = studyFile; self.spec = spec }

    /// Tasks of the array: (checkpoint, shard) pairs.
    public var tasks: [(checkpoint: String, shard: Int)] {
        spec.checkpoints.flatMap { c in (0..<shards).map { (c.name, $0) } }
    }

    private func header(_ name: String, array: String?) -> String {
        var s = "#!/bin/bash\n"
        s += "#SBATCH --job-name=\(name)\n"
        if let array { s += "#SBATCH --array=\(array)\n" }
        s += "#SBATCH --cpus-per-task=\(cpusPerTask)\n#SBATCH --mem=\(memory)\n#SBATCH --time=\(time)\n"
        s += "#SBATCH --output=\(spec.out)/slurm/%x-%A_%a.log\n"
        if let partition { s += "#SBATCH --partition=\(partition)\n" }
        s += "set -euo pipefail\n"
        return s
    }

    /// The array job: one checkpoint (and shard) per task.
    public func recordScript() -> String {
        let base = SafeFiles.sanitize(spec.name)
        var s = header("ablab-\(base)-record", array: "0-\(max(tasks.count - 1, 0))")
        s += "# One task per checkpoint\(shards > 1 ? " and shard" : ""): records its residual stream.\n"
        s += "CHECKPOINTS=(\(tasks.map { "'\($0.checkpoint)'" }.joined(separator: " ")))\n"
        s += "SHARDS=(\(tasks.map { String($0.shard) }.joined(separator: " ")))\n"
        s += "i=$SLURM_ARRAY_TASK_ID\n"
        s += "export OMP_NUM_THREADS=$SLURM_CPUS_PER_TASK\n"
        let shardArg = shards > 1 ? " --shard \"${SHARDS[$i]}/\(shards)\"" : ""
        s += "\(ablab) run '\(studyFile)' --stages record --checkpoint \"${CHECKPOINTS[$i]}\"\(shardArg) --threads \"$SLURM_CPUS_PER_TASK\"\n"
        return s
    }

    /// The dependent job: merge shards (if any), then every other stage and the report.
    public func finishScript() -> String {
        let base = SafeFiles.sanitize(spec.name)
        var s = header("ablab-\(base)-finish", array: nil)
        s += "# Runs after every record task succeeded: analysis, generation, judges, agreement, report.\n"
        s += "export OMP_NUM_THREADS=$SLURM_CPUS_PER_TASK\n"
        if shards > 1 {
            for c in spec.checkpoints {
                let parts = (0..<shards).map { k in
                    "'" + ActivationCacheWriter.finalPath(run: spec.out, checkpoint: c.name, shard: try! ShardSpec(index: k, count: shards)) + "'"
                }.joined(separator: " ")
                s += "\(ablab) merge \(parts) --out '\(ActivationCacheWriter.finalPath(run: spec.out, checkpoint: c.name))'\n"
            }
        }
        s += "\(ablab) run '\(studyFile)' --threads \"$SLURM_CPUS_PER_TASK\"\n"
        return s
    }

    /// A submit script chaining the two jobs.
    public func submitScript(recordPath: String, finishPath: String) -> String {
        """
        #!/bin/bash
        # Submits the record array, then the finishing job once every array task succeeded.
        set -euo pipefail
        mkdir -p '\(spec.out)/slurm'
        jid=$(sbatch --parsable '\(recordPath)')
        sbatch --dependency=afterok:${jid} '\(finishPath)'

        """
    }
}
