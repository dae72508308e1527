#!/usr/bin/env python3
"""Fixtures for the Swift quantizer tests (GGMLQuantizer), made by llama.cpp's own reference quantizers.

Run from the repository root:  .venv-ref/bin/python notebooks-scripts/fixtures_quant.py
The expected bytes come from ggml's `ggml_quantize_chunk` (libggml-base of the llama-cpp-python build in
.venv-bench, called through ctypes; without an importance matrix it runs `quantize_row_*_ref`), and for
the types gguf-py also quantizes (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, BF16) the script checks that gguf-py's
numpy quantizers give the same bytes. Set GGML_BASE_LIB to use another libggml-base.so.

Writes into Tests/ModelRuntimeTests/Fixtures/quant/:
  input.f32        the input rows, little-endian float32, ROWS × COLS
  <TYPE>.bin       ggml's encoding of all rows for each type
  manifest.json    rows, cols, the row kinds, the ggml library used, and per type the byte count and sha256
"""
import ctypes
import glob
import hashlib
import json
import os
import sys

import numpy as np
import gguf
from gguf import GGMLQuantizationType as QT
from gguf.quants import quantize as gguf_quantize

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "Tests", "ModelRuntimeTests", "Fixtures", "quant")
MODELS = os.environ.get("ABLAB_MODELS_DIR", os.path.join(ROOT, "models"))
COLS = 512
TYPES = {"F16": QT.F16, "BF16": QT.BF16, "Q8_0": QT.Q8_0, "Q4_0": QT.Q4_0, "Q4_1": QT.Q4_1, "Q5_0": QT.Q5_0,
         "Q5_1": QT.Q5_1, "Q4_K": QT.Q4_K, "Q5_K": QT.Q5_K, "Q6_K": QT.Q6_K}
GGUF_PY = {"BF16", "Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q5_1"}


def find_lib():
    if os.environ.get("GGML_BASE_LIB"):
        return os.environ["GGML_BASE_LIB"]
    hits = sorted(glob.glob(os.path.join(ROOT, ".venv-bench", "lib", "python*", "site-packages", "llama_cpp", "lib",
                                         "libggml-base.so")))
    if not hits:
        print("fixtures_quant.py: skipped, libggml-base.so not found (build .venv-bench with `make bench`, or set "
              "GGML_BASE_LIB); the committed fixtures are unchanged", file=sys.stderr)
        sys.exit(0)
    return hits[0]


def rows():
    """Row kinds chosen to reach every branch of the reference quantizers."""
    rng = np.random.default_rng(1313)
    out, kinds = [], []

    def add(kind, r):
        out.append(np.asarray(r, dtype=np.float32).reshape(COLS)); kinds.append(kind)

    for s in (0.02, 1.0, 300.0):
        add(f"normal sd {s}", rng.normal(0, s, COLS))
    add("laplace", rng.laplace(0, 0.05, COLS))
    add("all positive", rng.uniform(0.1, 1.0, COLS))
    add("all negative", -rng.uniform(0.1, 1.0, COLS))
    add("uniform ±1", rng.uniform(-1, 1, COLS))
    r = rng.normal(0, 0.03, COLS); r[::97] = 2.5; add("outliers", r)
    r = rng.normal(0, 1, COLS); r[:256] = 0; add("zero super-block", r)
    r = rng.normal(0, 1, COLS); r[32:64] = 0.75; r[300:316] = -0.2; add("constant sub-blocks", r)
    r = rng.normal(0, 1e-6, COLS); add("tiny", r)
    r = rng.normal(0, 1, COLS); r[0:32] = np.float32(1e-20); add("denormal-scale block", r)
    add("integers", rng.integers(-8, 8, COLS))
    r = np.zeros(COLS); r[5] = 1; r[300] = -1; add("sparse", r)
    # real weights: rows of SmolLM2's layers as ablab and llama.cpp see them (dequantized Q4_1 / Q8_0)
    path = os.path.join(MODELS, "SmolLM2-135M-Instruct.Q4_1.gguf")
    if os.path.exists(path):
        rd = gguf.GGUFReader(path)
        for name in ("blk.0.attn_q.weight", "blk.7.ffn_down.weight", "token_embd.weight"):
            t = next(t for t in rd.tensors if t.name == name)
            w = gguf.quants.dequantize(t.data, t.tensor_type).reshape(-1)
            for k in range(6):
                add(f"{name} values {k * COLS}…", w[k * 7919 * 2 % (w.size - COLS):][:COLS])
    else:
        sys.exit(f"fixtures_quant.py: {path} missing (make models-smol)")
    return np.stack(out), kinds


def main():
    lib_path = find_lib()
    os.makedirs(OUT, exist_ok=True)
    x, kinds = rows()
    nrows = x.shape[0]
    lib = ctypes.CDLL(lib_path)
    lib.ggml_quantize_chunk.restype = ctypes.c_size_t
    lib.ggml_quantize_chunk.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64, ctypes.c_int64,
                                        ctypes.c_int64, ctypes.c_void_p]
    lib.ggml_quantize_init.argtypes = [ctypes.c_int]
    x = np.ascontiguousarray(x, dtype=np.float32)
    x.tofile(os.path.join(OUT, "input.f32"))
    manifest = {"rows": nrows, "cols": COLS, "kinds": kinds, "reference": "ggml_quantize_chunk (llama-cpp-python 0.3.36, libggml-base)",
                "types": {}}
    for name, qt in TYPES.items():
        bs, tb = gguf.GGML_QUANT_SIZES[qt]
        nbytes = nrows * COLS // bs * tb
        buf = np.zeros(nbytes, dtype=np.uint8)
        lib.ggml_quantize_init(int(qt))
        got = lib.ggml_quantize_chunk(int(qt), x.ctypes.data, buf.ctypes.data, 0, nrows, COLS, None)
        assert got == nbytes, (name, got, nbytes)
        if name in GGUF_PY:
            py = np.asarray(gguf_quantize(x, qt)).view(np.uint8).reshape(-1)
            same = np.array_equal(py, buf)
            print(f"{name}: gguf-py {'==' if same else '!='} ggml")
            assert same, f"gguf-py and ggml disagree on {name}"
        buf.tofile(os.path.join(OUT, f"{name}.bin"))
        manifest["types"][name] = {"bytes": nbytes, "sha256": hashlib.sha256(buf.tobytes()).hexdigest()}
    with open(os.path.join(OUT, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1, ensure_ascii=False)
    print(f"wrote {OUT}: {nrows} rows × {COLS}")


if __name__ == "__main__":
    main()
