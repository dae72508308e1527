#!/usr/bin/env bash
# Regenerates every test fixture from the independent references (PyTorch, gguf-py, HF tokenizers,
# numpy, scikit-learn, scipy, statsmodels). Runs each notebooks-scripts/fixtures_*.py with the
# reference venv from the repository root. Create the venv with `make venv-ref`.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv-ref/bin/python
if [ ! -x "$PY" ]; then
  echo "make_fixtures.sh: $PY is missing; run 'make venv-ref' first" >&2
  exit 2
fi
shopt -s nullglob
scripts=(notebooks-scripts/fixtures_*.py)
if [ ${#scripts[@]} -eq 0 ]; then
  echo "make_fixtures.sh: no notebooks-scripts/fixtures_*.py found" >&2
  exit 1
fi
for s in "${scripts[@]}"; do
  echo "== $s"
  ABLAB_MODELS_DIR="${ABLAB_MODELS_DIR:-$PWD/models}" "$PY" "$s"
done
