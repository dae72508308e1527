#!/usr/bin/env bash
# Regenerate every test fixture from the independent reference implementations (reference venv).
# Run from anywhere; uses .venv-ref/bin/python at the repository root.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
py=".venv-ref/bin/python"
export ABLAB_MODELS_DIR="${ABLAB_MODELS_DIR:-$root/models}"
for script in notebooks-scripts/fixtures_*.py; do
  echo "make_fixtures: $script" >&2
  "$py" "$script"
done
