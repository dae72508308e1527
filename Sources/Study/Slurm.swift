import Foundation
import AblabCore
import ActivationCache

/// Writes Slurm job scripts for a study, every expensive stage an array of independent tasks:
///
/// | job | tasks | runs | after |
/// |---|---|---|---|
/// | `record` | checkpoint × shard | `ablab run STUDY --stages record --checkpoint C [--shard k/N]` | — |
/// | `analyze` | 1 | `ablab run STUDY --stages record,analyze [--merge-shards N]` (merges shards) | every record task |
/// | `select` | checkpoint | `ablab run STUDY --stages select --checkpoint C` (only with an automatic layer) | analyze |
/// | `generate` | system | `ablab run STUDY --stages generate --checkpoint C --system S` | analyze / select |
/// | `judge` | system | `--stages judge --checkpoint C --system S` | the same system's generate task |
/// | `probe` | system | `--stages probe --checkpoint C --system S` (with self-judgment) | the same system's judge task |
/// | `finish` | 1 | `ablab run STUDY`: joins judgments and self-judgments, agree, report | every task before |
///
/// Every job is safe to resubmit: stages whose inputs are unchanged are skipped, recording and generation
/// resume, and a merge whose output already equals its shards is kept. Every path and name in the
/// scripts is single-quoted (`shellQuote`), so spaces, quotes, `$` or backticks in a path neither break
/// nor inject into them.
public struct SlurmPlan: Sendable {
    public var studyFile: String
    public var spec: StudySpec
    public var ablab: String = "ablab"
    public var cpusPerTask: Int = 8
    public var memory: String = "32G"
    public var time: String = "08:00:00"
    public var partition: String?
    public var shards: Int = 1
    /// The folder the jobs run in (relative paths of the study resolve from there): where `ablab slurm` ran.
    public var workingDirectory: String = FileManager.default.currentDirectoryPath

    public init(studyFile: String, spec: StudySpec) { self.studyFile = studyFile; self.spec = spec }

    /// A word for bash: single-quoted, each `'` written as `'\''`.
    public static func shellQuote(_ s: String) -> String {
        "'" + s.replacingOccurrences(of: "'", with: "'\\''") + "'"
    }

    /// Refuses resource values that are not plain Slurm words (`#SBATCH` lines are not shell-quoted).
    public func validate() throws {
        func plain(_ v: String, _ option: String) throws {
            let ok = !v.isEmpty && v.unicodeScalars.allSatisfy { ($0.isASCII && $0.properties.isAlphabetic) || ("0"..."9").contains($0) || ":.-_,+".unicodeScalars.contains($0) }
            guard ok else { throw InputError(file: option, "'\(v)' is not a Slurm value (letters, digits and : . - _ , + only)") }
        }
        try plain(memory, "--mem"); try plain(time, "--time")
        if let partition { try plain(partition, "--partition") }
        guard cpusPerTask >= 1 else { throw InputError(file: "--cpus", "must be at least 1") }
        guard shards >= 1 else { throw InputError(file: "--shards", "must be at least 1") }
    }

    /// Tasks of the record array: (checkpoint, shard) pairs.
    public var tasks: [(checkpoint: String, shard: Int)] {
        spec.checkpoints.flatMap { c in (0..<shards).map { (c.name, $0) } }
    }

    /// Tasks of the generate, judge and probe arrays: (checkpoint, `--system` value) pairs, the original
    /// model first, then one per α, checkpoint by checkpoint.
    public var systemTasks: [(checkpoint: String, system: String)] {
        spec.checkpoints.flatMap { c in
            [(c.name, SystemChoice.original.description)] + spec.alphas.map { (c.name, SystemChoice.alpha($0).description) }
        }
    }

    /// Whether the layer is chosen with the model (a `select` job array).
    public var needsSelection: Bool { spec.layer == nil && spec.selectTop > 0 && !spec.alphas.isEmpty }

    var generates: Bool { !spec.checkpoints.isEmpty && spec.harmfulTest + spec.harmlessTest > 0 }

    /// The jobs, in submission order: (name, script, dependency on earlier jobs).
    public var jobs: [(name: String, script: String, after: (job: String, kind: String)?)] {
        var out: [(String, String, (String, String)?)] = []
        if !spec.checkpoints.isEmpty {
            out.append(("record", recordScript(), nil))
            out.append(("analyze", analyzeScript(), ("record", "afterok")))
            var last = "analyze"
            if generates {
                if needsSelection { out.append(("select", selectScript(), ("analyze", "afterok"))); last = "select" }
                out.append(("generate", systemScript("generate"), (last, "afterok")))
                out.append(("judge", systemScript("judge"), ("generate", "aftercorr")))
                last = "judge"
                if spec.selfJudgment { out.append(("probe", systemScript("probe"), ("judge", "aftercorr"))); last = "probe" }
            }
            out.append(("finish", finishScript(), (last, "afterok")))
        } else {
            out.append(("finish", finishScript(), nil))
        }
        return out
    }

    private func header(_ job: String, array count: Int?) -> String {
        var s = "#!/bin/bash\n"
        s += "#SBATCH --job-name=ablab-\(SafeFiles.sanitize(spec.name))-\(job)\n"
        if let count { s += "#SBATCH --array=0-\(max(count - 1, 0))\n" }
        s += "#SBATCH --cpus-per-task=\(cpusPerTask)\n#SBATCH --mem=\(memory)\n#SBATCH --time=\(time)\n"
        if let partition { s += "#SBATCH --partition=\(partition)\n" }
        s += "set -euo pipefail\n"
        s += "ABLAB=\(Self.shellQuote(ablab))\n"
        s += "STUDY=\(Self.shellQuote(studyFile))\n"
        s += "export OMP_NUM_THREADS=\"$SLURM_CPUS_PER_TASK\"\n"
        return s
    }

    private func array(_ name: String, _ values: [String]) -> String {
        "\(name)=(\(values.map(Self.shellQuote).joined(separator: " ")))\n"
    }

    /// The record array: one checkpoint (and shard) per task.
    public func recordScript() -> String {
        var s = header("record", array: tasks.count)
        s += "# One task per checkpoint\(shards > 1 ? " and shard" : ""): records its residual stream (resumes after a kill).\n"
        s += array("CHECKPOINTS", tasks.map(\.checkpoint))
        s += array("SHARDS", tasks.map { String($0.shard) })
        s += "i=$SLURM_ARRAY_TASK_ID\n"
        let shardArg = shards > 1 ? " --shard \"${SHARDS[$i]}/\(shards)\"" : ""
        s += "\"$ABLAB\" run \"$STUDY\" --stages record --checkpoint \"${CHECKPOINTS[$i]}\"\(shardArg) --threads \"$SLURM_CPUS_PER_TASK\"\n"
        return s
    }

    /// After every record task: merges the shards (kept when already merged) and analyses the caches.
    public func analyzeScript() -> String {
        var s = header("analyze", array: nil)
        s += "# Merges each checkpoint's shards (an output that already equals them is kept), then the analysis.\n"
        let merge = shards > 1 ? " --merge-shards \(shards)" : ""
        s += "\"$ABLAB\" run \"$STUDY\" --stages record,analyze\(merge) --threads \"$SLURM_CPUS_PER_TASK\"\n"
        return s
    }

    /// One checkpoint per task: the model-based choice of the direction's layer.
    public func selectScript() -> String {
        var s = header("select", array: spec.checkpoints.count)
        s += array("CHECKPOINTS", spec.checkpoints.map(\.name))
        s += "i=$SLURM_ARRAY_TASK_ID\n"
        s += "\"$ABLAB\" run \"$STUDY\" --stages select --checkpoint \"${CHECKPOINTS[$i]}\" --threads \"$SLURM_CPUS_PER_TASK\"\n"
        return s
    }

    /// One system per task (`stage` is generate, judge or probe); task i is the same system in all three.
    public func systemScript(_ stage: String) -> String {
        var s = header(stage, array: systemTasks.count)
        s += "# One system per task: the original model or one abliteration (α) of one checkpoint.\n"
        s += array("CHECKPOINTS", systemTasks.map(\.checkpoint))
        s += array("SYSTEMS", systemTasks.map(\.system))
        s += "i=$SLURM_ARRAY_TASK_ID\n"
        s += "\"$ABLAB\" run \"$STUDY\" --stages \(stage) --checkpoint \"${CHECKPOINTS[$i]}\" --system \"${SYSTEMS[$i]}\" --threads \"$SLURM_CPUS_PER_TASK\"\n"
        return s
    }

    /// The last job: every stage (the finished ones are skipped): joins the per-system judgments and
    /// self-judgments, agreement, report.
    public func finishScript() -> String {
        var s = header("finish", array: nil)
        s += "# Runs after every task: joins judgments and self-judgments, agreement and the report (finished stages are skipped).\n"
        s += "\"$ABLAB\" run \"$STUDY\" --threads \"$SLURM_CPUS_PER_TASK\"\n"
        return s
    }

    /// Slurm expands `%` in `--output`; `%%` is a literal percent sign.
    static func slurmPattern(_ s: String) -> String { s.replacingOccurrences(of: "%", with: "%%") }

    /// The submit script: submits every job with its dependency, prints `<job> <id>` per job, logs to
    /// `<slurm folder>/logs/<job name>-<array job id>_<task>.log` (`<job name>-<job id>.log` for the two single jobs). Running it again resubmits the whole chain.
    public func submitScript(scriptPaths: [String: String], logDirectory: String) -> String {
        var s = """
        #!/bin/bash
        # Submits the study's jobs with their dependencies; safe to run again after a failure or a timeout
        # (finished work is skipped, interrupted work resumes).
        set -euo pipefail
        cd \(Self.shellQuote(workingDirectory))
        mkdir -p \(Self.shellQuote(logDirectory))
        submit() { local id; id=$(sbatch --parsable --chdir=\(Self.shellQuote(workingDirectory)) "$@"); echo "${id%%;*}"; }

        """
        let logs = Self.slurmPattern(logDirectory)
        for j in jobs {
            let dep = j.after.map { " --dependency=\($0.kind):\"$\($0.job)\"" } ?? ""
            let pattern = ["analyze", "finish"].contains(j.name) ? "/%x-%j.log" : "/%x-%A_%a.log"
            s += "\(j.name)=$(submit --output=\(Self.shellQuote(logs + pattern))\(dep) \(Self.shellQuote(scriptPaths[j.name] ?? j.name + ".sbatch")))\n"
            s += "echo \"\(j.name) $\(j.name)\"\n"
        }
        return s
    }

    /// Writes `<name>.sbatch` for every job and `submit.sh` into `directory`; returns the paths written.
    public func write(to directory: String) throws -> [String] {
        try SafeFiles.createDirectory(directory)
        let dir = directory.hasPrefix("/") ? directory : workingDirectory + "/" + directory
        var paths: [String: String] = [:]
        var written: [String] = []
        for j in jobs {
            let p = dir + "/" + j.name + ".sbatch"
            try SafeFiles.atomicWrite(Data(j.script.utf8), to: p)
            paths[j.name] = p
            written.append(p)
        }
        let sub = dir + "/submit.sh"
        try SafeFiles.atomicWrite(Data(submitScript(scriptPaths: paths, logDirectory: dir + "/logs").utf8), to: sub)
        chmod(sub, 0o755)
        written.append(sub)
        return written
    }
}
