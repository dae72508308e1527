#!/usr/bin/env bash
# `make bench` (after the release build of ablab): ablab against PyTorch and llama.cpp on the same
# prompts, one program at a time, then the report (notebooks-scripts/bench/results.md).
#
# Per model: `ablab bench` (record, generate_batched, decode_single; on a CPU with avx512_bf16 also
# `--compute bf16`: record and generate_batched in bf16 and their deviation from f32), `ablab bench --workloads record`
# over every prompt of harmful.jsonl + harmless.jsonl (peak RSS), peer_torch.py, peer_llamacpp.py.
# Results: runs/bench/{ablab,ablab-record_all,pytorch,llamacpp}-<model>.json, logs in runs/bench/logs/.
#
# The peers run in the venv .venv-bench (created here when missing: requirements.txt, then
# llama-cpp-python built from source, ~20 min on 2 cores; rebuilt when requirements-llamacpp.txt or
# the build flags change). If llama-cpp-python cannot be built the bench goes on and reports llama.cpp
# as "not run" with the reason; a later run tries the same build again only with BENCH_RETRY_LLAMACPP=1.
#
# Environment: ABLAB_MODELS_DIR (default ./models), BENCH_MODELS (file names, space separated),
# BENCH_LARGE_MODELS (ablab alone, when present; default the 1.5B of `make models-large`), BENCH_PROFILE (1),
# BENCH_N (64), BENCH_THREADS (2), BENCH_NEW_TOKENS (64), BENCH_BATCH (16), BENCH_RECORD_ALL (1),
# BENCH_TIMEOUT (seconds per program, 3600), BENCH_VENV (.venv-bench), ABLAB (.build/release/ablab),
# BENCH_OUT (runs/bench), BENCH_REPORT (notebooks-scripts/bench/results.md).
set -uo pipefail
cd "$(dirname "$0")/../.."

BENCH=notebooks-scripts/bench
VENV=${BENCH_VENV:-.venv-bench}
PY="$VENV/bin/python"
ABLAB=${ABLAB:-.build/release/ablab}
MODELS_DIR=${ABLAB_MODELS_DIR:-$PWD/models}
OUT=${BENCH_OUT:-runs/bench}
LOGS=$OUT/logs
REPORT=${BENCH_REPORT:-$BENCH/results.md}
PROMPTS=notebooks-scripts/data/prompts/harmful.jsonl
ALL_PROMPTS=(notebooks-scripts/data/prompts/harmful.jsonl notebooks-scripts/data/prompts/harmless.jsonl)
N=${BENCH_N:-64}
THREADS=${BENCH_THREADS:-2}
NEW=${BENCH_NEW_TOKENS:-64}
BATCH=${BENCH_BATCH:-16}
RECORD_ALL=${BENCH_RECORD_ALL:-1}
TIMEOUT=${BENCH_TIMEOUT:-3600}
read -r -a MODELS <<< "${BENCH_MODELS:-SmolLM2-135M-Instruct.Q4_1.gguf Qwen2.5-Coder-0.5B-Instruct.gguf}"
# No native CPU detection (its AMX path crashes on some machines here); AVX-512 only where the CPU has it.
if grep -qw avx512f /proc/cpuinfo 2>/dev/null; then AVX512=ON; else AVX512=OFF; fi
LLAMA_CMAKE_ARGS=${LLAMA_CMAKE_ARGS:-"-DGGML_NATIVE=OFF -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_AVX512=$AVX512"}

log() { echo "bench: $*" >&2; }
mkdir -p "$OUT" "$LOGS"

# fail_json PEER MODEL_FILE REASON OUT: the failure record a peer writes itself when it can start.
fail_json() {
  python3 - "$@" <<'PY'
import json, sys
peer, model, reason, out = sys.argv[1:]
with open(out, "w", encoding="utf-8") as f:
    json.dump({"peer": peer, "model": model, "error": reason}, f, indent=2)
    f.write("\n")
PY
}

# ---- the venv ---------------------------------------------------------------------------------------
core_ok=1
core_reason=""
if [ ! -f "$VENV/.ok-core" ] || [ "$BENCH/requirements.txt" -nt "$VENV/.ok-core" ]; then
  log "installing $BENCH/requirements.txt into $VENV (PyTorch, transformers, gguf, numpy, accelerate)"
  if { [ -x "$PY" ] || python3 -m venv "$VENV"; } &&
     "$PY" -m pip install -q --disable-pip-version-check -r "$BENCH/requirements.txt" > "$LOGS/venv-core.log" 2>&1; then
    touch "$VENV/.ok-core"
  else
    core_ok=0
    core_reason="the venv $VENV could not be set up: $(tail -n 1 "$LOGS/venv-core.log" 2>/dev/null) (see $LOGS/venv-core.log)"
    log "$core_reason"
  fi
fi

llama_ok=0
llama_reason=""
# What the installed llama-cpp-python was built from: a change of flags or of the pinned version rebuilds it.
llama_spec="$(grep -v '^\s*#' "$BENCH/requirements-llamacpp.txt" | tr -s ' \n' ' ') CMAKE_ARGS=$LLAMA_CMAKE_ARGS"
built_spec=$(cat "$VENV/.llamacpp-built" 2>/dev/null)
failed_spec=$(head -n 1 "$VENV/.llamacpp-failed" 2>/dev/null)
if [ "$core_ok" = 1 ]; then
  have_llama=0
  "$PY" -c "import llama_cpp" > /dev/null 2>&1 && have_llama=1
  if [ "$have_llama" = 1 ] && [ "$built_spec" = "$llama_spec" ]; then
    llama_ok=1
  elif [ "$failed_spec" = "$llama_spec" ] && [ -z "${BENCH_RETRY_LLAMACPP:-}" ]; then
    llama_reason="llama-cpp-python did not build earlier: $(tail -n 1 "$VENV/.llamacpp-failed") (BENCH_RETRY_LLAMACPP=1 to try again)"
    if [ "$have_llama" = 1 ]; then
      llama_ok=1
      log "$llama_reason; using the llama-cpp-python already installed (built from: ${built_spec:-unknown})"
    else
      log "$llama_reason"
    fi
  else
    log "building llama-cpp-python from source with CMAKE_ARGS=\"$LLAMA_CMAKE_ARGS\" (~20 min on 2 cores; log: $LOGS/llamacpp-install.log)"
    start=$(date +%s)
    # --force-reinstall --no-deps: a rebuild with other flags replaces the installed one only once it built
    if CMAKE_ARGS="$LLAMA_CMAKE_ARGS" CMAKE_BUILD_PARALLEL_LEVEL="${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc)}" \
         nice -n 19 "$PY" -m pip install --disable-pip-version-check --no-cache-dir --force-reinstall \
         --no-deps --no-binary llama-cpp-python -r "$BENCH/requirements-llamacpp.txt" > "$LOGS/llamacpp-install.log" 2>&1 &&
       "$PY" -m pip install -q --disable-pip-version-check -r "$BENCH/requirements-llamacpp.txt" >> "$LOGS/llamacpp-install.log" 2>&1 &&
       "$PY" -c "import llama_cpp" >> "$LOGS/llamacpp-install.log" 2>&1; then
      llama_ok=1
      rm -f "$VENV/.llamacpp-failed"
      echo "$llama_spec" > "$VENV/.llamacpp-built"
      log "llama-cpp-python built in $(( $(date +%s) - start )) s"
    else
      last=$(grep -v '^\s*$' "$LOGS/llamacpp-install.log" | tail -n 1)
      llama_reason="llama-cpp-python failed to build: ${last:-no output} (see $LOGS/llamacpp-install.log)"
      printf '%s\n%s\n' "$llama_spec" "$llama_reason" > "$VENV/.llamacpp-failed"
      if "$PY" -c "import llama_cpp" > /dev/null 2>&1; then
        llama_ok=1
        log "$llama_reason; using the llama-cpp-python already installed (built from: ${built_spec:-unknown})"
      else
        log "$llama_reason"
      fi
    fi
  fi
else
  llama_reason="$core_reason"
fi

# ---- the runs, one program at a time --------------------------------------------------------------
load=$(cut -d' ' -f1 /proc/loadavg 2>/dev/null || echo 0)
if awk -v l="$load" 'BEGIN { exit !(l > 1.5) }'; then
  log "warning: load average is $load on $(nproc) cores; the timings will suffer from whatever else is running"
fi

# run_one PEER MODEL_FILE JSON LOGNAME CMD...: runs CMD under a timeout; a failure without a JSON
# becomes the peer's error record.
run_one() {
  local peer="$1" model="$2" json="$3" logname="$4"; shift 4
  rm -f "$json"
  log "$logname ..."
  timeout --kill-after=30s "$TIMEOUT" "$@" > "$LOGS/$logname.out" 2> "$LOGS/$logname.err"
  local rc=$?
  if [ ! -s "$json" ]; then
    local why="exited with status $rc"
    [ "$rc" = 124 ] && why="did not finish within $TIMEOUT s"
    local last; last=$(grep -v '^\s*$' "$LOGS/$logname.err" | tail -n 1)
    fail_json "$peer" "$model" "$why${last:+: $last} (see $LOGS/$logname.err)" "$json"
  fi
}

# bf16 compute where the CPU has the instruction (ablab refuses it elsewhere, naming the missing feature)
compute=()
if grep -qw avx512_bf16 /proc/cpuinfo 2>/dev/null; then compute=(--compute bf16); fi

for model in "${MODELS[@]}"; do
  path="$MODELS_DIR/$model"
  stem="${model%.gguf}"
  if [ ! -f "$path" ]; then
    log "missing $path (run notebooks-scripts/fetch_models.sh)"
    for p in ablab pytorch llamacpp; do fail_json "$p" "$model" "model file missing" "$OUT/$p-$stem.json"; done
    continue
  fi
  common=(--model "$path" --prompts "$PROMPTS" --n "$N" --threads "$THREADS" --new-tokens "$NEW" --batch "$BATCH")

  if [ -x "$ABLAB" ]; then
    run_one ablab "$model" "$OUT/ablab-$stem.json" "ablab-$stem" "$ABLAB" bench "${common[@]}" "${compute[@]}" --json "$OUT/ablab-$stem.json"
    if [ "$RECORD_ALL" = 1 ]; then
      all=()
      for f in "${ALL_PROMPTS[@]}"; do all+=(--prompts "$f"); done
      run_one ablab "$model" "$OUT/ablab-record_all-$stem.json" "ablab-record_all-$stem" \
        "$ABLAB" bench --model "$path" "${all[@]}" --n 0 --threads "$THREADS" --workloads record \
        --json "$OUT/ablab-record_all-$stem.json"
    fi
  else
    fail_json ablab "$model" "no $ABLAB (make build)" "$OUT/ablab-$stem.json"
  fi

  if [ "$core_ok" = 1 ]; then
    run_one pytorch "$model" "$OUT/pytorch-$stem.json" "pytorch-$stem" \
      "$PY" "$BENCH/peer_torch.py" "${common[@]}" --json "$OUT/pytorch-$stem.json"
  else
    fail_json pytorch "$model" "$core_reason" "$OUT/pytorch-$stem.json"
  fi

  if [ "$llama_ok" = 1 ]; then
    run_one llama.cpp "$model" "$OUT/llamacpp-$stem.json" "llamacpp-$stem" \
      "$PY" "$BENCH/peer_llamacpp.py" "${common[@]}" --json "$OUT/llamacpp-$stem.json"
  else
    fail_json llama.cpp "$model" "$llama_reason" "$OUT/llamacpp-$stem.json"
  fi
done

# Where the time goes: each workload of each model sampled once more with `perf` (perf_profile.py); report.py
# shows the profile under every target that is not met. Skipped with BENCH_PROFILE=0.
if [ "${BENCH_PROFILE:-1}" = 1 ] && [ -x "$ABLAB" ]; then
  for model in "${MODELS[@]}"; do
    path="$MODELS_DIR/$model"; stem="${model%.gguf}"
    [ -f "$path" ] || continue
    for w in record generate_batched decode_single; do
      log "profile $stem $w ..."
      python3 "$BENCH/perf_profile.py" --ablab "$ABLAB" --model "$path" --prompts "$PROMPTS" --workload "$w" \
        --n 32 --threads "$THREADS" --new-tokens "$NEW" --batch "$BATCH" --json "$OUT/profile-$stem-$w.json" \
        2>> "$LOGS/profile.err" || log "profile $stem $w failed (see $LOGS/profile.err)"
    done
  done
fi

# The larger checkpoint (`make models-large`), ablab alone: its rates and peak RSS (target ≤ 2.0 GB for
# record and generate). The peers and record_all are not run on it (PyTorch would need ~6 GB and an hour).
LARGE=()
for model in ${BENCH_LARGE_MODELS-Qwen2.5-Coder-1.5B-Instruct.gguf}; do
  path="$MODELS_DIR/$model"; stem="${model%.gguf}"
  if [ -f "$path" ] && [ -x "$ABLAB" ]; then
    run_one ablab "$model" "$OUT/ablab-$stem.json" "ablab-$stem" "$ABLAB" bench --model "$path" --prompts "$PROMPTS" \
      --n "${BENCH_LARGE_N:-16}" --threads "$THREADS" --new-tokens "$NEW" --batch "$BATCH" "${compute[@]}" \
      --json "$OUT/ablab-$stem.json"
    LARGE+=("$model")
  else
    log "skipping $model: not in $MODELS_DIR (make models-large)"
  fi
done

python3 "$BENCH/report.py" --dir "$OUT" --out "$REPORT" "${MODELS[@]}" "${LARGE[@]}"

# `ablab serve` with 16 concurrent openai clients next to generate_batched (the openai client is in the
# test venv, made by `make venv-test`); appends its section to the report.
if [ -x .venv-test/bin/python ] && .venv-test/bin/python -c "import openai" 2>/dev/null; then
  .venv-test/bin/python "$BENCH/serve_bench.py" --models "${MODELS[@]}" --threads "$THREADS" --new "$NEW" --clients "$BATCH" \
    --ablab "$ABLAB" --out "$OUT" --report "$REPORT" || log "serve_bench failed; see above"
else
  log "skipping the serve throughput: no openai client in .venv-test (make venv-test)"
fi
