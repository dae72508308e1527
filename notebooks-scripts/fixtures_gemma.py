#!/usr/bin/env python3
"""Reference fixtures for Gemma-3-270M (GGUF Q4_K_M, `make models-gemma`) computed with transformers float32.

transformers loads the GGUF itself (`gguf_file=`: it dequantizes every tensor and undoes llama.cpp's
+1 on the Gemma norm weights), so the reference is independent of ablab's GGUF reader. For 16
chat-templated prompts (8 harmful, 8 harmless, from notebooks-scripts/data/prompts, the first of each
kind with a system prompt, which Gemma's template folds into the user turn) it writes
Tests/ModelRuntimeTests/Fixtures/forward/gemma-3-270m.Q4_K_M-<k>.{json,bin} in the format of
fixtures_forward.py:
  - the token ids (tokenizer.apply_chat_template(..., add_generation_prompt=True)),
  - for the first 4 prompts, the residual stream at every layer boundary (index 0 = scaled embeddings =
    blocks.0.hook_resid_pre; l+1 = blocks.l.hook_resid_post, before the final norm) at up to 6 positions
    (the file stays small: 19 × 640 floats per position); the other 12 store the last position only,
  - the top-20 last-position logits and their logsumexp,
  - the greedy continuation of up to 24 new tokens (stops at an EOS id) and the logit margin of each
    chosen token over the runner-up (from generate()'s scores).

Run from the repository root: .venv-ref/bin/python notebooks-scripts/fixtures_gemma.py
"""
import json
import os
import sys
from pathlib import Path

import numpy as np
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fixtures_forward import write_fixture  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
MODELS = Path(os.environ.get("ABLAB_MODELS_DIR", ROOT / "models"))
OUT = ROOT / "Tests" / "ModelRuntimeTests" / "Fixtures" / "forward"
GGUF = "gemma-3-270m.Q4_K_M.gguf"
STEM = GGUF[:-len(".gguf")]
N_PER_KIND = 8
NEW_TOKENS = 24
TOPK = 20
RESIDUAL_PROMPTS = 4
RESIDUAL_POSITIONS = 6

torch.set_grad_enabled(False)
torch.set_num_threads(2)


def prompts():
    out = []
    for kind in ("harmful", "harmless"):
        rows = [json.loads(l) for l in (ROOT / "notebooks-scripts/data/prompts" / f"{kind}.jsonl").open()]
        rows = [r for r in rows if r.get("english", True) and len(r["text"]) < 90][:N_PER_KIND]
        for i, r in enumerate(rows):
            out.append(("Be brief." if i == 0 else None, r["text"], r["id"]))
    # interleave so the residual prompts (the first four) cover both kinds
    return [p for pair in zip(out[:N_PER_KIND], out[N_PER_KIND:]) for p in pair]


def boundaries(model, ids):
    """[n_layers + 1, T, d]: embeddings (scaled), then each block's output; and logits [T, V]."""
    caught = []
    hooks = [layer.register_forward_hook(lambda m, a, o: caught.append((o[0] if isinstance(o, tuple) else o).detach().clone()))
             for layer in model.model.layers]
    try:
        out = model(input_ids=ids, output_hidden_states=True, use_cache=False)
    finally:
        for h in hooks:
            h.remove()
    stack = torch.stack([out.hidden_states[0][0]] + [c[0] for c in caught]).float().numpy()
    return stack, out.logits[0].float()


def greedy_with_margins(model, t, eos):
    """generate()'s greedy continuation and, from its raw scores, each chosen token's margin over the runner-up."""
    out = model.generate(t, attention_mask=torch.ones_like(t), max_new_tokens=NEW_TOKENS, do_sample=False,
                         eos_token_id=eos, pad_token_id=eos[0], output_scores=True, return_dict_in_generate=True)
    new = [int(x) for x in out.sequences[0, t.shape[1]:]]
    margins = []
    for tok_id, sc in zip(new, out.scores):
        top2 = torch.topk(sc[0].double(), 2)
        assert int(top2.indices[0]) == tok_id
        margins.append(float(top2.values[0] - top2.values[1]))
    return new, margins


def main():
    if not (MODELS / GGUF).exists():
        sys.exit(f"{MODELS / GGUF} missing: run make models-gemma")
    tok = AutoTokenizer.from_pretrained(MODELS, gguf_file=GGUF)
    if not tok.chat_template:
        # This GGUF carries no tokenizer.chat_template: Gemma 3's own template (notebooks-scripts/chat_templates,
        # source in the README there), as `ablab --chat-format gemma3` renders it.
        tok.chat_template = (ROOT / "notebooks-scripts/chat_templates/gemma3.jinja").read_text()
    model = AutoModelForCausalLM.from_pretrained(MODELS, gguf_file=GGUF, dtype=torch.float32, attn_implementation="eager").eval()
    cfg = model.config
    eos = model.generation_config.eos_token_id
    eos = set(eos if isinstance(eos, list) else [eos] if eos is not None else [])
    if tok.eos_token_id is not None:
        eos.add(tok.eos_token_id)
    for t in ("<end_of_turn>",):
        i = tok.convert_tokens_to_ids(t)
        if isinstance(i, int) and i >= 0:
            eos.add(i)
    eos = sorted(eos)
    summary = {"arch": cfg.model_type, "n_layers": cfg.num_hidden_layers, "d_model": cfg.hidden_size,
               "n_heads": cfg.num_attention_heads, "n_kv_heads": cfg.num_key_value_heads, "head_dim": cfg.head_dim,
               "ffn_dim": cfg.intermediate_size, "vocab": cfg.vocab_size, "sliding_window": cfg.sliding_window,
               "layer_types": list(cfg.layer_types), "query_pre_attn_scalar": cfg.query_pre_attn_scalar,
               "rope_parameters": getattr(cfg, "rope_parameters", None)}
    for k, (system, user, pid) in enumerate(prompts()):
        messages = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": user}]
        ids = tok.apply_chat_template(messages, add_generation_prompt=True, tokenize=True)
        if isinstance(ids, dict) or hasattr(ids, "input_ids"):
            ids = ids["input_ids"]
        ids = [int(i) for i in ids]
        t = torch.tensor([ids])
        stack, logits = boundaries(model, t)
        last = logits[-1].double()
        top = torch.topk(last, TOPK)
        new, margins = greedy_with_margins(model, t, eos)
        T = len(ids)
        if k < RESIDUAL_PROMPTS:
            positions = sorted(set([0, 1, T // 2] + list(range(T - (RESIDUAL_POSITIONS - 3), T))))
        else:
            positions = [T - 1]
        header = {"model": STEM, "gguf": GGUF, "config": summary, "prompt_id": pid, "system": system, "user": user,
                  "tokens": ids, "positions": positions, "eos_ids": eos,
                  "residual_layout": "index 0 = embeddings (blocks.0.hook_resid_pre), index l+1 = blocks.l.hook_resid_post (before the final norm)",
                  "top_ids": [int(i) for i in top.indices], "top_logits": [float(v) for v in top.values],
                  "logsumexp": float(torch.logsumexp(last, 0)), "greedy": new, "greedy_margins": margins,
                  "greedy_max_new_tokens": NEW_TOKENS, "greedy_stopped_at_eos": bool(new and new[-1] in eos),
                  "reference": "transformers float32 eager attention, weights dequantized by transformers' GGUF loader"}
        write_fixture(OUT / f"{STEM}-{k}", header, [("residuals", stack[:, positions, :])])
        print(f"prompt {k} ({pid}): {T} tokens, greedy {len(new)}, min margin {min(margins) if margins else 0:.3g}", file=sys.stderr)


if __name__ == "__main__":
    main()
