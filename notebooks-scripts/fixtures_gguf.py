#!/usr/bin/env python3
"""Fixtures for the Swift GGUF reader/dequantizer tests, made with the independent `gguf` package (gguf-py).

Run from the repository root:  .venv-ref/bin/python notebooks-scripts/fixtures_gguf.py
Models are found in $ABLAB_MODELS_DIR (default: ./models).

Writes into Tests/ModelRuntimeTests/Fixtures/gguf/:
  model-<name>.json   header facts, selected metadata, the full tensor table, and for every tensor type
                      present one real tensor: a few dequantized rows (gguf.quants.dequantize) plus float64
                      sums over selected rows and over the whole tensor.
  blocks.json         for every supported type: raw block bytes (random but valid, or produced by gguf-py's
                      quantize) and their dequantization by gguf-py.
  gguf-py-written.gguf + gguf-py-written.json
                      a tiny GGUF written by gguf-py's GGUFWriter (all metadata types, nested arrays, F32/F16/
                      Q8_0 tensors) and what gguf-py's reader sees in it.
"""
import base64
import hashlib
import json
import os
import sys

import numpy as np
import gguf
from gguf import GGUFReader, GGMLQuantizationType as QT
from gguf.quants import dequantize, quantize

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "Tests", "ModelRuntimeTests", "Fixtures", "gguf")
MODELS = os.environ.get("ABLAB_MODELS_DIR", os.path.join(ROOT, "models"))
DEFAULT_MODELS = {
    "smollm2-135m-q4_1": "SmolLM2-135M-Instruct.Q4_1.gguf",
    "qwen2.5-coder-0.5b": "Qwen2.5-Coder-0.5B-Instruct.gguf",
}
MAX_ROW_VALUES = 512  # values stored per dumped row (sums cover the full row)


def f32list(a):
    """float32 values as JSON numbers that parse back to the same float32."""
    return [float(x) for x in np.asarray(a, dtype=np.float32).ravel()]


def field_value(f):
    """A metadata field as plain Python (strings decoded, arrays as lists)."""
    t = f.types[0]
    if t == gguf.GGUFValueType.ARRAY:
        return f.contents()
    return f.contents()


def type_name(f):
    names = [gguf.GGUFValueType(t).name.lower() for t in f.types]
    if names[0] == "array":
        return "array[" + (names[1] if len(names) > 1 else "?") + "]"
    return names[0]


def summarize_model(key, fname):
    path = os.path.join(MODELS, fname)
    r = GGUFReader(path)
    fields = r.fields
    arch = fields["general.architecture"].contents()
    out = {"file": fname, "file_size": os.path.getsize(path), "version": int(fields["GGUF.version"].contents()),
           "tensor_count": len(r.tensors), "alignment": int(r.alignment), "data_offset": int(r.data_offset)}
    keys = [k for k in fields if not k.startswith("GGUF.")]
    out["metadata_keys"] = keys
    out["metadata_types"] = {k: type_name(fields[k]) for k in keys}
    scalars = {}
    arrays = {}
    for k in keys:
        f = fields[k]
        v = f.contents()
        if isinstance(v, list):
            arrays[k] = {"count": len(v), "first": v[:5], "last": v[-3:]}
        elif isinstance(v, str):
            b = v.encode("utf-8")
            if len(b) > 200:
                scalars[k] = {"string_sha256": hashlib.sha256(b).hexdigest(), "utf8_length": len(b)}
            else:
                scalars[k] = v
        else:
            scalars[k] = v.item() if hasattr(v, "item") else v
    out["scalars"] = scalars
    out["arrays"] = arrays
    out["architecture"] = arch
    out["tensors"] = [{"name": t.name, "type": t.tensor_type.name, "dims": [int(x) for x in t.shape],
                       "offset": int(t.data_offset - r.data_offset), "bytes": int(t.n_bytes)} for t in r.tensors]

    # one real tensor per type (prefer 2-D with the fewest elements per row, then the smallest)
    samples = {}
    by_type = {}
    for t in r.tensors:
        by_type.setdefault(t.tensor_type.name, []).append(t)
    for tname, ts in sorted(by_type.items()):
        ts2 = [t for t in ts if len(t.shape) >= 2] or ts
        t = min(ts2, key=lambda t: (int(t.shape[0]), int(t.n_elements)))
        full = dequantize(np.asarray(t.data), t.tensor_type).astype(np.float32)
        shape = [int(x) for x in reversed(t.shape)]
        full = full.reshape(shape[0], -1) if len(shape) >= 2 else full.reshape(-1, 1)
        nrows = full.shape[0]
        pick = sorted(set([0, 1 % nrows, nrows // 2, nrows - 1]))
        rows = []
        for i in pick:
            row = full[i]
            rows.append({"row": i, "first_values": f32list(row[:MAX_ROW_VALUES]),
                         "sum": float(row.astype(np.float64).sum()),
                         "sum_squares": float((row.astype(np.float64) ** 2).sum())})
        samples[tname] = {"tensor": t.name, "dims": [int(x) for x in t.shape], "shape": shape,
                          "rows": rows,
                          "sum": float(full.astype(np.float64).sum()),
                          "sum_abs": float(np.abs(full.astype(np.float64)).sum()),
                          "sum_squares": float((full.astype(np.float64) ** 2).sum())}
    out["samples"] = samples
    with open(os.path.join(OUT, f"model-{key}.json"), "w") as fh:
        json.dump(out, fh, indent=0, ensure_ascii=False)
    print(f"{key}: {len(r.tensors)} tensors, types {sorted(by_type)}")


def random_halves(rng, n, lo=1e-3, hi=2.0):
    """Finite float16 scales with random sign and magnitude (including a few subnormals)."""
    mags = np.exp(rng.uniform(np.log(lo), np.log(hi), n)).astype(np.float16)
    mags[::7] = np.float16(3.0e-6)  # subnormal half
    return (mags * rng.choice([-1, 1], n).astype(np.float16)).astype(np.float16)


def block_bytes_random(rng, qtype, nblocks):
    """Random valid blocks per the ggml layout: random quant bytes, finite random f16 scales."""
    bs, ts = gguf.GGML_QUANT_SIZES[qtype]
    raw = rng.integers(0, 256, size=(nblocks, ts), dtype=np.uint8)
    def put_half(col):
        raw[:, col:col + 2] = random_halves(rng, nblocks).view(np.uint8).reshape(nblocks, 2)
    if qtype in (QT.Q4_0, QT.Q5_0, QT.Q8_0):
        put_half(0)
    elif qtype in (QT.Q4_1, QT.Q5_1, QT.Q4_K, QT.Q5_K):
        put_half(0); put_half(2)
    elif qtype == QT.Q6_K:
        put_half(ts - 2)
    return raw


def blocks_fixture():
    rng = np.random.default_rng(20251002)
    cases = []
    for qtype in [QT.Q4_0, QT.Q4_1, QT.Q5_0, QT.Q5_1, QT.Q8_0, QT.Q4_K, QT.Q5_K, QT.Q6_K]:
        bs, ts = gguf.GGML_QUANT_SIZES[qtype]
        nblocks = 4 if bs == 256 else 12
        raw = block_bytes_random(rng, qtype, nblocks)
        deq = dequantize(raw.reshape(1, -1), qtype)
        cases.append({"type": qtype.name, "source": "random blocks", "elements": nblocks * bs,
                      "bytes_base64": base64.b64encode(raw.tobytes()).decode(), "expected": f32list(deq)})
        try:  # gguf-py's own quantizer where it has one
            x = rng.normal(0, 1, size=(2, nblocks * bs // 2)).astype(np.float32)
            q = quantize(x, qtype)
            deq = dequantize(q, qtype)
            cases.append({"type": qtype.name, "source": "gguf-py quantize", "elements": nblocks * bs,
                          "bytes_base64": base64.b64encode(np.ascontiguousarray(q).tobytes()).decode(),
                          "expected": f32list(deq)})
        except NotImplementedError:
            pass
    # F16: random normals, large/small magnitudes, subnormals, zeros of both signs, extremes
    h = np.concatenate([rng.normal(0, 1, 200), np.clip(rng.normal(0, 3e4, 20), -65000, 65000), [0.0, -0.0, 65504.0, -65504.0,
                        6.0e-8, -6.0e-8, 3.0e-5, 6.1e-5]]).astype(np.float16)
    cases.append({"type": "F16", "source": "numpy float16", "elements": int(h.size),
                  "bytes_base64": base64.b64encode(h.tobytes()).decode(),
                  "expected": f32list(dequantize(h.view(np.uint8), QT.F16))})
    # BF16 via gguf-py's quantize (round to nearest even), values over many magnitudes
    x = (rng.normal(0, 1, 256) * np.exp(rng.uniform(-30, 30, 256))).astype(np.float32)
    b = quantize(x, QT.BF16)
    cases.append({"type": "BF16", "source": "gguf-py quantize", "elements": int(x.size),
                  "bytes_base64": base64.b64encode(np.ascontiguousarray(b).tobytes()).decode(),
                  "expected": f32list(dequantize(b, QT.BF16))})
    # F32 -> F16 rounding (numpy: round to nearest even, overflow to inf), as bit patterns
    ties = [1 + 2**-11, 1 + 3 * 2**-11, 2**-25, 3 * 2**-25, 2**-14 - 2**-25, 65504.0, 65519.0, 65520.0,
            1e6, 1e-9, -0.0, 0.0, 2**-24, 1.5 * 2**-24, 0.1, -0.1, 1 / 3]
    x = np.concatenate([np.array(ties), rng.normal(0, 1, 300), rng.normal(0, 1, 100) * 1e-6,
                        rng.normal(0, 1, 50) * 3e4]).astype(np.float32)
    x = np.concatenate([x, np.array([np.inf, -np.inf], dtype=np.float32)])
    f16 = {"float32_bits": [int(v) for v in x.view(np.uint32)],
           "float16_bits": [int(v) for v in x.astype(np.float16).view(np.uint16)]}
    with open(os.path.join(OUT, "blocks.json"), "w") as fh:
        json.dump({"cases": cases, "f32_to_f16": f16}, fh, indent=0)
    print(f"blocks: {len(cases)} cases")


def written_fixture():
    """A tiny GGUF written by gguf-py, and what gguf-py reads back."""
    path = os.path.join(OUT, "gguf-py-written.gguf")
    w = gguf.GGUFWriter(path, arch="llama")
    w.add_uint8("test.u8", 200)
    w.add_int8("test.i8", -100)
    w.add_uint16("test.u16", 60000)
    w.add_int16("test.i16", -30000)
    w.add_uint32("test.u32", 4000000000)
    w.add_int32("test.i32", -2000000000)
    w.add_uint64("test.u64", 18000000000000000000)
    w.add_int64("test.i64", -9000000000000000000)
    w.add_float32("test.f32", 0.1)
    w.add_float64("test.f64", 0.1)
    w.add_bool("test.bool_true", True)
    w.add_bool("test.bool_false", False)
    w.add_string("test.string", "héllo wörld ✓")
    w.add_key_value("test.empty_string", "", gguf.GGUFValueType.STRING)
    w.add_array("test.int_array", [1, -2, 3])
    w.add_array("test.float_array", [0.5, -1.25, 3.0])
    w.add_array("test.string_array", ["a", "bc", ""])
    w.add_array("test.bool_array", [True, False])
    w.add_key_value("test.nested", [[1, 2], [3]], gguf.GGUFValueType.ARRAY, sub_type=gguf.GGUFValueType.ARRAY)
    rng = np.random.default_rng(7)
    a = rng.normal(0, 1, (3, 5)).astype(np.float32)          # torch shape [3, 5] -> GGUF dims [5, 3]
    b = rng.normal(0, 1, (4, 8)).astype(np.float16)
    c = rng.normal(0, 1, (2, 64)).astype(np.float32)
    cq = quantize(c, QT.Q8_0)
    v = rng.normal(0, 1, 7).astype(np.float32)
    w.add_tensor("a.f32", a)
    w.add_tensor("b.f16", b)
    w.add_tensor("c.q8_0", cq, raw_dtype=QT.Q8_0)
    w.add_tensor("v.f32", v)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()

    r = GGUFReader(path)
    meta = {}
    for k, f in r.fields.items():
        if k.startswith("GGUF."):
            continue
        v = f.contents()
        meta[k] = {"type": type_name(f), "value": v.item() if hasattr(v, "item") else v}
    # float values need their exact float32 / float64 values
    meta["test.f32"]["value"] = float(np.float32(0.1))
    tensors = []
    for t in r.tensors:
        deq = dequantize(np.asarray(t.data), t.tensor_type)
        tensors.append({"name": t.name, "type": t.tensor_type.name, "dims": [int(x) for x in t.shape],
                        "offset": int(t.data_offset - r.data_offset), "bytes": int(t.n_bytes),
                        "values": f32list(deq)})
    out = {"version": int(r.fields["GGUF.version"].contents()), "alignment": int(r.alignment),
           "data_offset": int(r.data_offset), "metadata_keys": [k for k in r.fields if not k.startswith("GGUF.")],
           "metadata": meta, "tensors": tensors}
    with open(os.path.join(OUT, "gguf-py-written.json"), "w") as fh:
        json.dump(out, fh, indent=1, ensure_ascii=False)
    print(f"gguf-py-written: {os.path.getsize(path)} bytes")


def main():
    os.makedirs(OUT, exist_ok=True)
    blocks_fixture()
    written_fixture()
    for key, fname in DEFAULT_MODELS.items():
        if not os.path.exists(os.path.join(MODELS, fname)):
            sys.exit(f"missing model {fname} in {MODELS} (run `make models`)")
        summarize_model(key, fname)


if __name__ == "__main__":
    main()
