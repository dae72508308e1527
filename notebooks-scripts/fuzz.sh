#!/usr/bin/env bash
# Coverage-guided fuzzing of ablab's file parsers with libFuzzer (`make fuzz`).
#   notebooks-scripts/fuzz.sh [seconds per target] [target ...]
# Targets: gguf tokenizer-json activation-cache prompts-jsonl prompts-csv study-toml judgments-csv safetensors.
# Builds the driver with -sanitize=fuzzer,address into .build/fuzz (separate from ordinary builds), writes
# each target's seed corpus to .build/fuzz-corpus/<target>, runs libFuzzer for the given time and keeps
# crashing inputs in .build/fuzz-artifacts/. Exit status 1 when any target found a failure.
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_PER_TARGET="${1:-60}"
shift || true
TARGETS=("$@")
[ ${#TARGETS[@]} -gt 0 ] || TARGETS=(gguf tokenizer-json activation-cache prompts-jsonl prompts-csv study-toml judgments-csv safetensors)
SCRATCH=.build/fuzz
CORPUS=.build/fuzz-corpus
ARTIFACTS=.build/fuzz-artifacts
mkdir -p "$CORPUS" "$ARTIFACTS"

# Every Swift module is instrumented (coverage + AddressSanitizer); only the driver links libFuzzer.
ABLAB_LIBFUZZER=1 swift build -c release --scratch-path "$SCRATCH" --product ablab-fuzz \
  -Xswiftc -sanitize=fuzzer,address -Xswiftc -parse-as-library \
  -Xcc -fsanitize=fuzzer-no-link,address 2>&1 | tail -n 3
BIN="$(ABLAB_LIBFUZZER=1 swift build -c release --scratch-path "$SCRATCH" --show-bin-path)/ablab-fuzz"

# HDF5 prints nothing (ablab silences it); ASan would report leaks of the C libraries' caches.
export ASAN_OPTIONS="detect_leaks=0:allocator_may_return_null=1:${ASAN_OPTIONS:-}"
status=0
for t in "${TARGETS[@]}"; do
  [ -n "$(ls -A "$CORPUS/$t" 2>/dev/null)" ] || ABLAB_FUZZ_TARGET="$t" ABLAB_FUZZ_WRITE_CORPUS="$CORPUS/$t" "$BIN"
  echo "== fuzzing $t for ${SECONDS_PER_TARGET}s"
  # -malloc_limit_mb: any single allocation above it counts as a failure (files here are a few KB).
  if ABLAB_FUZZ_TARGET="$t" "$BIN" "$CORPUS/$t" -max_total_time="$SECONDS_PER_TARGET" -timeout=10 \
      -rss_limit_mb=3072 -malloc_limit_mb=512 -max_len=65536 -print_final_stats=1 \
      -artifact_prefix="$ARTIFACTS/$t-" 2> "$ARTIFACTS/$t.log"; then
    grep -E "^stat::number_of_executed_units|^stat::peak_rss_mb" "$ARTIFACTS/$t.log" | tr '\n' ' '; echo
  else
    status=1
    echo "!! $t: failure, see $ARTIFACTS/$t.log"; grep -E "ERROR|ablab-fuzz|SUMMARY" "$ARTIFACTS/$t.log" | head -n 5
  fi
done
exit $status
