#!/usr/bin/env python3
"""Fixture for `ablab quantize` (ModelQuantization): what llama.cpp's llama_model_quantize writes for SmolLM2.

Run from the repository root with the bench venv (llama-cpp-python built from source, `make bench`):
    .venv-bench/bin/python notebooks-scripts/fixtures_quant_model.py
For each file type (Q4_0, Q8_0, Q4_K_S), llama_model_quantize requantizes SmolLM2-135M-Instruct.Q4_1.gguf
(allow_requantize, no importance matrix, default mix rules) into a temporary file; the fixture keeps, for
every tensor, its type and the sha256 of its bytes, so the Swift test can compare tensor by tensor without
shipping the 100 MB outputs. Writes Tests/ModelRuntimeTests/Fixtures/quant/model-smollm2.json.
"""
import hashlib
import json
import os
import sys
import tempfile

import gguf

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
try:
    import llama_cpp
except ImportError:  # run by make_fixtures.sh with the reference venv: use the bench venv's python instead
    venv = os.path.join(ROOT, ".venv-bench")
    bench = os.path.join(venv, "bin", "python")
    if os.path.exists(bench) and os.path.realpath(sys.prefix) != os.path.realpath(venv):
        os.execv(bench, [bench] + sys.argv)
    print("fixtures_quant_model.py: skipped, llama-cpp-python is missing (build .venv-bench with `make bench`); "
          "the committed fixture is unchanged", file=sys.stderr)
    sys.exit(0)

OUT = os.path.join(ROOT, "Tests", "ModelRuntimeTests", "Fixtures", "quant", "model-smollm2.json")
MODELS = os.environ.get("ABLAB_MODELS_DIR", os.path.join(ROOT, "models"))
SRC = os.path.join(MODELS, "SmolLM2-135M-Instruct.Q4_1.gguf")
FTYPES = {"Q4_0": llama_cpp.LLAMA_FTYPE_MOSTLY_Q4_0, "Q8_0": llama_cpp.LLAMA_FTYPE_MOSTLY_Q8_0,
          "Q4_K": llama_cpp.LLAMA_FTYPE_MOSTLY_Q4_K_S}


def main():
    if not os.path.exists(SRC):
        sys.exit(f"{SRC} missing (make models-smol)")
    result = {"source": os.path.basename(SRC), "llama_cpp_python": llama_cpp.__version__, "types": {}}
    with tempfile.TemporaryDirectory() as tmp:
        for name, ftype in FTYPES.items():
            out = os.path.join(tmp, f"{name}.gguf")
            p = llama_cpp.llama_model_quantize_default_params()
            p.ftype = ftype
            p.allow_requantize = True
            p.nthread = 2
            rc = llama_cpp.llama_model_quantize(SRC.encode(), out.encode(), p)
            assert rc == 0, f"llama_model_quantize failed for {name}: {rc}"
            r = gguf.GGUFReader(out)
            result["types"][name] = {
                "file_type": int(r.fields["general.file_type"].parts[-1][0]),
                "tensors": {t.name: {"type": t.tensor_type.name, "sha256": hashlib.sha256(bytes(t.data.tobytes())).hexdigest()}
                            for t in r.tensors}}
            print(name, {k: sum(1 for t in r.tensors if t.tensor_type.name == k) for k in {t.tensor_type.name for t in r.tensors}})
    with open(OUT, "w") as f:
        json.dump(result, f, indent=1)
    print("wrote", OUT)


if __name__ == "__main__":
    main()
