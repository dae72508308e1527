"""Fixtures for the context-length, memory and disk checks, from gguf-py and Hugging Face transformers.

Run from the repository root with the reference venv:
    .venv-ref/bin/python notebooks-scripts/fixtures_limits.py [MODELS_DIR]

Writes Tests/ModelRuntimeTests/Fixtures/limits/models.json with, per model (gguf-py's reader):
  * the metadata the checks use: `<arch>.context_length`, block count, widths, head counts, vocabulary;
  * the tensors the runtime loads (token embedding, final norm, output head when present, every block's
    attention and MLP tensors) with their element counts and stored byte counts;
and, for SmolLM2 (transformers' tokenizer built from the GGUF file, corrected as in fixtures_tokenizer.py,
chat template with the default system prompt): the number n of repetitions of " word" after "word" for
which the chat-formatted prompt has exactly context_length + 1 tokens, with that token count (and the
count with one repetition less).
"""
import json
import os
import sys
from pathlib import Path

import gguf
from transformers import AutoTokenizer

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fixtures_tokenizer import fix_smollm2  # noqa: E402  (the same pre-tokenizer correction)

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "Tests/ModelRuntimeTests/Fixtures/limits"
MODELS = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(os.environ.get("ABLAB_MODELS_DIR", ROOT / "models"))

LAYER_TENSORS = ["attn_norm", "attn_q", "attn_k", "attn_v", "attn_q.bias", "attn_k.bias", "attn_v.bias",
                 "attn_output", "ffn_norm", "ffn_gate", "ffn_up", "ffn_down"]


def field(r, key):
    f = r.fields[key]
    v = f.parts[f.data[0]]
    return bytes(v).decode() if f.types[0] == gguf.GGUFValueType.STRING else v.tolist()[0]


def model_entry(name):
    r = gguf.GGUFReader(str(MODELS / name))
    arch = field(r, "general.architecture")
    n_layers = field(r, f"{arch}.block_count")
    by_name = {t.name: t for t in r.tensors}
    wanted = ["token_embd.weight", "output_norm.weight", "output.weight"]
    for l in range(n_layers):
        for t in LAYER_TENSORS:
            wanted.append(f"blk.{l}.{t}" if t.endswith(".bias") else f"blk.{l}.{t}.weight")
    loaded = [{"name": n, "elements": int(by_name[n].n_elements), "stored_bytes": int(by_name[n].n_bytes),
               "dims": len(by_name[n].shape)}
              for n in wanted if n in by_name]
    heads = field(r, f"{arch}.attention.head_count")
    d = field(r, f"{arch}.embedding_length")
    return {
        "file": name, "architecture": arch,
        "context_length": field(r, f"{arch}.context_length"),
        "n_layers": n_layers, "d_model": d,
        "n_heads": heads, "n_kv_heads": field(r, f"{arch}.attention.head_count_kv"),
        "head_dim": d // heads,
        "ffn_dim": field(r, f"{arch}.feed_forward_length"),
        "vocab": int(by_name["token_embd.weight"].shape[1]),
        "file_bytes": (MODELS / name).stat().st_size,
        "loaded_tensors": loaded,
        "loaded_elements": sum(t["elements"] for t in loaded),
        "loaded_stored_bytes": sum(t["stored_bytes"] for t in loaded),
        # as the runtime holds them: matrices as stored (read in place from the mapped file), 1-D tensors
        # (norms, biases) as float32 copies
        "loaded_held_bytes": sum(t["stored_bytes"] if t["dims"] > 1 else 4 * t["elements"] for t in loaded),
        "loaded_matrix_bytes": sum(t["stored_bytes"] for t in loaded if t["dims"] > 1),
    }


def over_context(name, context):
    tok = AutoTokenizer.from_pretrained(str(MODELS), gguf_file=name)
    fix_smollm2(tok.backend_tokenizer)

    def count(n):
        text = tok.apply_chat_template([{"role": "user", "content": "word" + " word" * n}], tokenize=False,
                                       add_generation_prompt=True)
        return len(tok.backend_tokenizer.encode(text, add_special_tokens=False).ids)

    base = count(0)
    n = context + 1 - base
    assert count(n) == context + 1, (count(n), context + 1)
    return {"word": "word", "repeat": " word", "repeats": n, "chat_tokens": count(n), "chat_tokens_one_repeat_less": count(n - 1),
            "chat_tokens_without_repeats": base,
            "reference": f"transformers {__import__('transformers').__version__} AutoTokenizer(gguf_file), "
                         f"tokenizers {__import__('tokenizers').__version__}"}


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    models = {}
    for short, name in [("smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"), ("qwen2.5-coder-0.5b", "Qwen2.5-Coder-0.5B-Instruct.gguf")]:
        if (MODELS / name).exists():
            models[short] = model_entry(name)
    smol = models["smollm2"]
    smol["over_context_prompt"] = over_context(smol["file"], smol["context_length"])
    out = {"reference": f"gguf-py {getattr(gguf, '__version__', 'unknown')}", "models": models}
    for m in models.values():
        m["loaded_tensors"] = len(m["loaded_tensors"])   # counts only: the sums are what the tests use
    path = OUT / "models.json"
    path.write_text(json.dumps(out, indent=1) + "\n")
    print(f"wrote {path} ({path.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
