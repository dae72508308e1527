#!/usr/bin/env bash
# Regenerates every test fixture from the independent reference implementations (PyTorch/transformers,
# gguf-py, HF tokenizers, numpy/scipy/sklearn). Called by `make fixtures`; run from anywhere.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
py=".venv-ref/bin/python"
export ABLAB_MODELS_DIR="${ABLAB_MODELS_DIR:-$root/models}"

# ModelRuntime: forward pass (also writes the HF checkpoint folders under $ABLAB_MODELS_DIR/hf/).
"$py" notebooks-scripts/fixtures_forward.py
