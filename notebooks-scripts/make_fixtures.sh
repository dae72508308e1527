#!/usr/bin/env bash
# Regenerates every test fixture from the independent reference implementations (numpy, scikit-learn,
# scipy, PyTorch/transformers, gguf-py, …). Run from anywhere; uses the reference venv in the repo
# root (`make venv-ref` creates it).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
py="$root/.venv-ref/bin/python"
if [ ! -x "$py" ]; then
  echo "make_fixtures.sh: $py not found; run 'make venv-ref' first" >&2
  exit 2
fi
cd "$root"
failed=()
for script in notebooks-scripts/fixtures_*.py; do
  [ -e "$script" ] || continue
  echo "== $script" >&2
  "$py" "$script" || failed+=("$script")
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "make_fixtures.sh: failed: ${failed[*]}" >&2
  exit 1
fi
