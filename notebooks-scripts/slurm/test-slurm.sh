#!/usr/bin/env bash
# `make test-slurm`: a small study run on a real single-node Slurm cluster must give exactly what one
# `ablab run` process gives.
#
#  1. installs Debian's slurm-wlm and munge when missing (apt-get update first; needs root, as CI has);
#  2. starts munged (its own key and socket), slurmctld and slurmd on this machine with slurm.conf.in (this
#     folder); controller, node and clients address each other as 127.0.0.1;
#  3. in a folder whose name holds spaces and both kinds of quotes: `ablab slurm study.toml --shards 2`,
#     `bash submit.sh`, waits for every job, and compares every output with a one-process `ablab run`
#     of the same study (compare_runs.py: activation and analysis datasets bit for bit, generations,
#     judgments, self-judgments, agreement and analysis tables byte for byte);
#  4. runs `ablab merge` of the shards again (the output already equals them: kept);
#  5. submits the study again into a new run folder, cancels one generate array task while it runs
#     (its dependants are cancelled by Slurm), runs submit.sh again, and compares again;
#  6. stops the daemons it started.
#
# Environment: ABLAB (the executable, default .build/release/ablab), PY (Python with h5py and numpy,
# default .venv-test/bin/python), SLURM_TEST_TIMEOUT (seconds per wait, default 1800), SLURM_TEST_SHARDS
# (record shards per checkpoint, default 2; with 1 the merge check of step 4 is skipped).
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
HERE=$ROOT/notebooks-scripts/slurm
ABLAB=${ABLAB:-$ROOT/.build/release/ablab}
PY=${PY:-$ROOT/.venv-test/bin/python}
STATE=$ROOT/.build/slurm-test
TIMEOUT=${SLURM_TEST_TIMEOUT:-1800}
SHARDS=${SLURM_TEST_SHARDS:-2}
MODEL=$ROOT/models/SmolLM2-135M-Instruct.Q4_1.gguf

say() { echo "test-slurm: $*" >&2; }
fail() { echo "test-slurm: FAIL: $*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || fail "the Slurm daemons need root (run as root, as CI does)"
[ -x "$ABLAB" ] || fail "$ABLAB is missing; build it first (make test-slurm does)"
[ -f "$MODEL" ] || fail "$MODEL is missing; run make models-smol"
"$PY" -c "import h5py, numpy" || fail "$PY cannot import h5py and numpy (make venv-test)"
missing=""
{ command -v sbatch && command -v slurmctld && command -v slurmd; } >/dev/null || missing="slurm-wlm"
command -v munged >/dev/null || missing="$missing munge"
if [ -n "$missing" ]; then
    say "installing:$missing"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null
fi

# ---- start the daemons ----------------------------------------------------------------------
rm -rf "$STATE" && mkdir -p "$STATE/ctld" "$STATE/slurmd" "$STATE/munge"
chmod 755 "$STATE/munge"
cleanup() {
    scancel --quiet --user="$(id -un)" 2>/dev/null || true   # only jobs of this private test cluster
    sleep 1
    for pidfile in "$STATE/slurmd.pid" "$STATE/slurmctld.pid" "$STATE/munge/munged.pid"; do
        [ -f "$pidfile" ] || continue
        pid=$(cat "$pidfile")
        kill "$pid" 2>/dev/null || continue
        for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done   # wait until it has exited
    done
}
trap cleanup EXIT

# munge with its own key and socket (no system-wide munge is needed or touched)
dd if=/dev/urandom of="$STATE/munge/munge.key" bs=1024 count=1 status=none
chmod 400 "$STATE/munge/munge.key"
munged --force --key-file="$STATE/munge/munge.key" --socket="$STATE/munge/munge.socket" \
    --pid-file="$STATE/munge/munged.pid" --log-file="$STATE/munge/munged.log" --seed-file="$STATE/munge/munged.seed"
for _ in $(seq 50); do [ -S "$STATE/munge/munge.socket" ] && break; sleep 0.1; done
munge -n -S "$STATE/munge/munge.socket" | unmunge -S "$STATE/munge/munge.socket" >/dev/null || fail "munge does not work: $(tail -5 "$STATE/munge/munged.log")"

cpus=$(slurmd -C | sed -n 's/.* CPUs=\([0-9]*\).*/\1/p' | head -1)
[ -n "$cpus" ] || cpus=$(nproc)
sed -e "s|@STATE@|$STATE|g" -e "s|@HOST@|$(hostname -s)|g" -e "s|@CPUS@|$cpus|g" -e "s|@MEMORY_MB@|6000|g" \
    -e "s|@CTLD_PORT@|${SLURM_TEST_CTLD_PORT:-6817}|g" -e "s|@SLURMD_PORT@|${SLURM_TEST_SLURMD_PORT:-6818}|g" \
    "$HERE/slurm.conf.in" > "$STATE/slurm.conf"
echo "AuthInfo=socket=$STATE/munge/munge.socket" >> "$STATE/slurm.conf"
export SLURM_CONF=$STATE/slurm.conf
slurmctld -i || fail "slurmctld did not start: $(tail -5 "$STATE/slurmctld.log" 2>/dev/null)"
slurmd -N localhost || fail "slurmd did not start: $(tail -5 "$STATE/slurmd.log" 2>/dev/null)"
for _ in $(seq 120); do
    state=$(timeout 5 sinfo -h -n localhost -o %T 2>/dev/null || true)
    [ "$state" = idle ] && break
    sleep 0.5
done
[ "$state" = idle ] || fail "the node is not idle (state '$state'): $(tail -5 "$STATE/slurmctld.log") $(tail -5 "$STATE/slurmd.log")"
say "cluster up: $(sinfo -h -o '%P %D %c %T') ($(sinfo -V))"

# ---- the study, in a folder with spaces and quotes in its name --------------------------------------
WORK="$STATE/work dir 'single' \"double\""
mkdir -p "$WORK/prompts dir"
cp notebooks-scripts/data/prompts/harmful.jsonl notebooks-scripts/data/prompts/harmless.jsonl "$WORK/prompts dir/"
cd "$WORK"
study() { # study <file> <out>
    cat > "$1" <<EOF
# A tiny study for make test-slurm: SmolLM2, 12 + 12 train and 5 + 5 answered test prompts, 24 new tokens.
[study]
name = "slurm-test"
out = "$2"
[[checkpoints]]
name = "SmolLM2 it's"
model = "$MODEL"
[prompts]
files = ["prompts dir/harmful.jsonl", "prompts dir/harmless.jsonl"]
train_per_class = 12
test_per_class = 6
[analysis]
bootstrap = 20
max_components = 8
[abliteration]
layer = 16                      # too few prompts for an automatic choice
alphas = [1.0, 0.5]
[generation]
harmful = 5
harmless = 5
max_new_tokens = 24
batch_size = 2
[judges]
use = ["regex:paper", "substring:arditi", "llm:SmolLM2 it's"]
reference = "regex:paper"
self_judgment = true
EOF
}
study "study 'slurm'.toml" "slurm run"
study "study single.toml" "single run"
study "study again.toml" "resubmitted run"

ACTIVE=PENDING,RUNNING,CONFIGURING,COMPLETING,SUSPENDED,REQUEUED,RESIZING
# Prints "<job> <id>" lines (submit.sh's output) → waits until none of the jobs is pending or running.
wait_jobs() {
    local ids; ids=$(awk '{print $2}' "$1" | paste -sd, -)
    local t0=$SECONDS
    while [ -n "$(squeue -h -j "$ids" -t "$ACTIVE" -o %i 2>/dev/null)" ]; do
        [ $((SECONDS - t0)) -lt "$TIMEOUT" ] || { squeue; fail "jobs $ids still queued after $TIMEOUT s"; }
        sleep 2
    done
}
# Job states of every job and array task listed in $1, one "<job> <array job id>_<task> <STATE>" per line.
job_states() {
    while read -r name id; do
        scontrol show job -o "$id" | awk -v n="$name" '{
            j = ""; a = ""; t = ""; s = ""
            for (i = 1; i <= NF; i++) {
                k = substr($i, 1, index($i, "=") - 1); v = substr($i, index($i, "=") + 1)
                if (k == "JobId" && j == "") j = v; if (k == "ArrayJobId" && a == "") a = v
                if (k == "ArrayTaskId" && t == "") t = v; if (k == "JobState" && s == "") s = v
            }
            print n, (a == "" ? j : a "_" t), s }'
    done < "$1"
}
show_logs() { for f in "$1"/slurm/logs/*.log; do echo "== $f"; tail -20 "$f"; done >&2; }
expect_all_completed() { # <jobs file> <run>
    job_states "$1" > "$1.states"
    local bad; bad=$(grep -v ' COMPLETED$' "$1.states" || true)
    [ -z "$bad" ] || { show_logs "$2"; fail "jobs did not complete: $bad"; }
    say "$(wc -l < "$1.states") jobs and array tasks COMPLETED"
}

say "1/3: ablab slurm … && bash submit.sh"
"$ABLAB" slurm "study 'slurm'.toml" --shards "$SHARDS" --cpus 1 --mem 1500M --time 00:30:00 --ablab "$ABLAB"
bash "slurm run/slurm/submit.sh" > jobs-1.txt
cat jobs-1.txt >&2
wait_jobs jobs-1.txt
expect_all_completed jobs-1.txt "slurm run"

say "the same study in one process: ablab run"
"$ABLAB" run "study single.toml" --threads 1 2> single.log || { tail -20 single.log >&2; fail "ablab run failed"; }
"$PY" "$HERE/compare_runs.py" "single run" "slurm run"

if [ "$SHARDS" -gt 1 ]; then
    say "2/3: merging the shards again keeps the merged file"
    ck="slurm run/activations/SmolLM2_it_s"
    before=$(stat -c %i "$ck.h5")
    parts=()
    for k in $(seq 0 $((SHARDS - 1))); do parts+=("$ck.shard-$k-of-$SHARDS.h5"); done
    "$ABLAB" merge "${parts[@]}" --out "$ck.h5" 2> merge.log || { cat merge.log >&2; fail "the repeated merge failed"; }
    grep -q "already equals the merge of its shards" merge.log || fail "the repeated merge did not say it kept the file: $(cat merge.log)"
    [ "$(stat -c %i "$ck.h5")" = "$before" ] || fail "the repeated merge rewrote $ck.h5"
fi

say "3/3: cancel one generate array task while it runs, resubmit, compare"
"$ABLAB" slurm "study again.toml" --shards "$SHARDS" --cpus 1 --mem 1500M --time 00:30:00 --ablab "$ABLAB" >/dev/null
bash "resubmitted run/slurm/submit.sh" > jobs-2.txt
gen=$(awk '$1 == "generate" {print $2}' jobs-2.txt)
# Task 1 is the abliterated system at α = 1: cancel it once it has written some of its answers.
answers="resubmitted run/generations/SmolLM2_it_s_abl-mean-diff-L16-p-1-a1.jsonl"
t0=$SECONDS
until [ "$(squeue -h -j "${gen}_1" -o %T 2>/dev/null)" = RUNNING ] && [ -s "$answers" ]; do
    [ $((SECONDS - t0)) -lt "$TIMEOUT" ] || fail "generate task ${gen}_1 never ran"
    [ -n "$(squeue -h -j "${gen}_1" -t "$ACTIVE" -o %i 2>/dev/null)" ] || fail "generate task ${gen}_1 finished before it could be cancelled"
    sleep 0.2
done
scancel "${gen}_1"
say "cancelled ${gen}_1 while running, after $(wc -l < "$answers") of its 10 answers"
wait_jobs jobs-2.txt
job_states jobs-2.txt > states-2.txt
cat states-2.txt >&2
grep -q "^generate ${gen}_1 CANCELLED$" states-2.txt || fail "the cancelled task is not CANCELLED"
! grep -q "^finish .* COMPLETED$" states-2.txt || fail "the finishing job ran although a task was cancelled"
[ "$(wc -l < "$answers")" -lt 10 ] || fail "the cancelled task had finished its answers"
[ ! -e "resubmitted run/judgments.csv" ] || fail "judgments.csv exists although a generate task was cancelled"
bash "resubmitted run/slurm/submit.sh" > jobs-3.txt
cat jobs-3.txt >&2
wait_jobs jobs-3.txt
expect_all_completed jobs-3.txt "resubmitted run"
rec=$(awk '$1 == "record" {print $2}' jobs-3.txt)
for f in "resubmitted run/slurm/logs/"*-record-"$rec"_*.log; do
    grep -q "unchanged, skipped" "$f" || fail "the resubmitted record task ($f) did not skip its finished work"
done
"$PY" "$HERE/compare_runs.py" "single run" "resubmitted run"
say "PASS"
