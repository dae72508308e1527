#!/usr/bin/env python3
"""gguf-py reads a GGUF file written by ablab's GGUFWriter and compares it with what the Swift test expected.

The Swift test "GGUF writer / round trip" leaves gguf-writer-roundtrip.gguf and .json in $ABLAB_INTEROP_DIR:
  ABLAB_INTEROP_DIR=.build/interop swift test --filter GGUFWriter
  .venv-ref/bin/python notebooks-scripts/check_gguf_writer.py .build/interop
If the folder also holds gguf-writer-copy.gguf (the test's copy of SmolLM2 with two tensors replaced), it is
checked too. Optionally also pass an exported model (any .gguf) to check that gguf-py can read and dequantize it all.
"""
import json
import math
import os
import sys

import numpy as np
from gguf import GGUFReader
from gguf.quants import dequantize

EXPECTED_META = {
    "general.architecture": "test", "t.u8": 7, "t.i8": -128, "t.u16": 65535, "t.i16": -32768,
    "t.u32": 2**32 - 1, "t.i32": -2**31, "t.u64": 2**64 - 1, "t.i64": -2**63, "t.true": True, "t.false": False,
    "t.string": "multi\nline ✓ \"quoted\"", "t.empty_string": "", "t.strings": ["a", "", "ü"], "t.ints": [1, -2],
    "t.floats": [0.25, -8.0], "t.empty": [], "general.alignment": 64,
}


def check_roundtrip(folder):
    path = os.path.join(folder, "gguf-writer-roundtrip.gguf")
    expected = json.load(open(os.path.join(folder, "gguf-writer-roundtrip.json")))
    r = GGUFReader(path)
    failures = []
    for k, want in EXPECTED_META.items():
        f = r.fields.get(k)
        if f is None:
            failures.append(f"missing key {k}")
            continue
        got = f.contents()
        if hasattr(got, "item"):
            got = got.item()
        if got != want:
            failures.append(f"{k}: gguf-py reads {got!r}, expected {want!r}")
    # gguf-py's contents() flattens nested arrays, so compare the raw parts after the key: outer type ARRAY,
    # element type ARRAY, count 2, [INT64 x 2: 1, 2], [STRING x 1: len 1, "x"]
    nested = [p.tolist() for p in r.fields["t.nested"].parts[2:]]
    if nested != [[9], [9], [2], [11], [2], [1], [2], [8], [1], [1], [ord("x")]]:
        failures.append(f"t.nested parts {nested}")
    f32 = r.fields["t.f32"].contents()
    if np.float32(f32) != np.float32(-1.5e-7):
        failures.append(f"t.f32: {f32}")
    if r.fields["t.f64"].contents() != math.pi:
        failures.append("t.f64")
    if r.alignment != 64:
        failures.append(f"alignment {r.alignment}")
    names = [t.name for t in r.tensors]
    if names != ["a", "h", "q", "s"]:
        failures.append(f"tensor names {names}")
    for t in r.tensors:
        got = dequantize(np.asarray(t.data), t.tensor_type).astype(np.float32).ravel()
        want = np.array(expected[t.name], dtype=np.float32)
        if got.shape != want.shape or not np.array_equal(got, want):
            failures.append(f"tensor {t.name}: values differ")
    a = next(t for t in r.tensors if t.name == "a")
    if list(a.shape) != [5, 3] or a.tensor_type.name != "F32":
        failures.append(f"tensor a: shape {list(a.shape)} type {a.tensor_type.name}")
    return failures


def check_model(path):
    r = GGUFReader(path)
    n = 0
    for t in r.tensors:
        v = dequantize(np.asarray(t.data), t.tensor_type)
        if not np.all(np.isfinite(v)):
            return [f"{path}: tensor {t.name} has non-finite values"]
        n += v.size
    print(f"{path}: {len(r.tensors)} tensors, {n} values, {len(r.fields)} fields read by gguf-py")
    return []


def check_copy(folder):
    """The model copy of the Swift test "copy of a real model": gguf-py dequantizes every tensor, the
    replaced ones hold the new values and all others equal the source model's bytes."""
    meta = json.load(open(os.path.join(folder, "gguf-writer-copy.json")))
    copy = GGUFReader(os.path.join(folder, "gguf-writer-copy.gguf"))
    failures = check_model(os.path.join(folder, "gguf-writer-copy.gguf"))
    if not os.path.exists(meta["source"]):
        return failures + [f"source model {meta['source']} not found"]
    src = {t.name: t for t in GGUFReader(meta["source"]).tensors}
    for t in copy.tensors:
        if t.name == meta["replaced_f16"] or t.name == meta["replaced_f32"]:
            want_type, key = ("F16", "f16_first") if t.name == meta["replaced_f16"] else ("F32", "f32_first")
            got = dequantize(np.asarray(t.data), t.tensor_type).astype(np.float32).ravel()[:256]
            if t.tensor_type.name != want_type or not np.array_equal(got, np.array(meta[key], dtype=np.float32)):
                failures.append(f"replaced tensor {t.name} differs")
        elif not np.array_equal(np.asarray(t.data).view(np.uint8), np.asarray(src[t.name].data).view(np.uint8)):
            failures.append(f"copied tensor {t.name} differs from the source")
    return failures


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    failures = check_roundtrip(sys.argv[1])
    if os.path.exists(os.path.join(sys.argv[1], "gguf-writer-copy.gguf")):
        failures += check_copy(sys.argv[1])
    for extra in sys.argv[2:]:
        failures += check_model(extra)
    for f in failures:
        print("FAIL", f)
    if failures:
        sys.exit(1)
    print("gguf-py agrees with ablab's GGUF writer")


if __name__ == "__main__":
    main()
