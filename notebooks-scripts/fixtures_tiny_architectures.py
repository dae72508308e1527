"""Tiny randomly initialised checkpoints of every architecture ablab is to run, with transformers'
float32 reference outputs.

Run from the repository root with the reference venv:
    .venv-ref/bin/python notebooks-scripts/fixtures_tiny_architectures.py

For each configuration in CONFIGS (llama with no / linear / llama3 / yarn RoPE scaling, qwen2, qwen3,
gemma2, gemma3, mistral, phi3, glm) it writes into Tests/ModelRuntimeTests/Fixtures/tiny/<name>/:

  config.json, model.safetensors   transformers' save_pretrained of AutoModelForCausalLM.from_config(...)
                                   (float32), weights drawn here (see init_weights) so that every quirk
                                   changes the numbers
  model.gguf                       the same weights through gguf-py's GGUFWriter, with llama.cpp's tensor
                                   names (gguf.get_tensor_name_map) and metadata keys, and the changes
                                   llama.cpp's convert_hf_to_gguf.py makes: Q/K rows permuted to
                                   llama.cpp's rotary layout for llama and mistral, 1 added to every Gemma
                                   norm weight, the llama3 frequency factors as rope_freqs.weight
  reference.json                   prompts, greedy continuations, shapes, and the quirks checked
  reference.bin                    float32 little-endian: for each prompt, the residual stream in
                                   TransformerLens hook order [layer][hook][token][d_model] with hooks
                                   resid_pre, attn_out, resid_mid, mlp_out, resid_post (attn_out and
                                   mlp_out are what is added to the residual stream: after Gemma's
                                   post-norms), then the last-position logits [vocab]

Greedy continuations are recomputed from scratch for every new token (no cache), so they do not depend on
transformers' cache implementation; reference.json gives the logit margin of each chosen token over the
runner-up, so a tie cannot make a test flaky unnoticed. The GGUF tensors are read back with transformers'
GGUF loader where it can (gguf_check in reference.json). See the README in the fixtures folder.
"""
import json
import math
import shutil
import sys
from pathlib import Path

import numpy as np
import torch
import gguf
from transformers import AutoConfig, AutoModelForCausalLM

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "Tests/ModelRuntimeTests/Fixtures/tiny"
VOCAB = 96
D = 32
GREEDY = 6
PROMPT_LENGTHS = (19, 12)     # longer than every sliding window below (8)
WINDOW = 8

BASE = dict(vocab_size=VOCAB, hidden_size=D, intermediate_size=48, num_hidden_layers=2, num_attention_heads=4,
            num_key_value_heads=2, max_position_embeddings=256, rms_norm_eps=1e-6, tie_word_embeddings=False,
            bos_token_id=1, eos_token_id=2, pad_token_id=0, attention_dropout=0.0)

# name: (model_type, config overrides, gguf arch, quirks exercised)
CONFIGS = {
    "llama": ("llama", dict(rope_theta=10000.0), "llama",
              ["grouped-query attention (4 query heads, 2 KV heads)", "llama.cpp Q/K row permutation in the GGUF"]),
    "llama-linear": ("llama", dict(rope_theta=10000.0, rope_scaling={"rope_type": "linear", "factor": 4.0}), "llama",
                     ["RoPE linear scaling, factor 4 (positions divided by 4)"]),
    "llama-llama3": ("llama", dict(rope_theta=100.0, head_dim=8, num_attention_heads=4,
                                   rope_scaling={"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                                                 "high_freq_factor": 4.0, "original_max_position_embeddings": 32}),
                     "llama", ["RoPE llama3 scaling: with base 100 and head_dim 8 the four frequencies have wavelengths "
                               "6.3, 19.9, 62.8 and 199 tokens against the thresholds 8 and 32, so one is kept, one "
                               "smoothed and two divided by 8; GGUF carries them as rope_freqs.weight"]),
    "llama-yarn": ("llama", dict(rope_theta=10000.0, max_position_embeddings=64, rope_scaling={"rope_type": "yarn", "factor": 4.0,
                                                                 "original_max_position_embeddings": 16,
                                                                 "beta_fast": 32.0, "beta_slow": 1.0}), "llama",
                   ["RoPE yarn scaling, factor 4 from 16 original positions (frequency ramp and the attention "
                    "factor 0.1 ln(4) + 1 applied to cos/sin)"]),
    "qwen2": ("qwen2", dict(rope_theta=1000000.0, use_sliding_window=False), "qwen2",
              ["biases on q/k/v projections", "no Q/K permutation (NeoX rotary)"]),
    "qwen3": ("qwen3", dict(rope_theta=1000000.0, head_dim=16, use_sliding_window=False), "qwen3",
              ["head_dim 16 != d_model / heads (8): q_proj is 64 x 32", "RMSNorm on every query and key head "
               "(q_norm, k_norm) before RoPE"]),
    "gemma2": ("gemma2", dict(head_dim=8, query_pre_attn_scalar=12, sliding_window=WINDOW, attn_logit_softcapping=2.0,
                              final_logit_softcapping=3.0, hidden_activation="gelu_pytorch_tanh",
                              tie_word_embeddings=True, rope_theta=10000.0,
                              layer_types=["sliding_attention", "full_attention"]), "gemma2",
               ["embedding scaled by sqrt(d_model)", "(1 + w) RMSNorm, pre- and post-norms around attention and MLP",
                "GeGLU (gelu tanh)", "query_pre_attn_scalar 12 (scores scaled by 12^-0.5, not head_dim^-0.5)",
                "attention soft-capping at 2 (query weights scaled x4 so that scores reach it; not measured) and final "
                "logit soft-capping at 3 (raw logits reach 1.4x the cap: final_logit_max_over_cap in reference.json)",
                f"layer 0 sliding window {WINDOW} (shorter than the prompts), layer 1 global", "tied embeddings"]),
    "gemma3": ("gemma3_text", dict(head_dim=8, query_pre_attn_scalar=8, sliding_window=WINDOW,
                                   hidden_activation="gelu_pytorch_tanh", tie_word_embeddings=True,
                                   num_hidden_layers=3,
                                   layer_types=["sliding_attention", "sliding_attention", "full_attention"],
                                   rope_parameters={"full_attention": {"rope_type": "linear", "factor": 2.0,
                                                                       "rope_theta": 1000000.0},
                                                    "sliding_attention": {"rope_type": "default",
                                                                          "rope_theta": 10000.0}},
                                   final_logit_softcapping=None, attn_logit_softcapping=None), "gemma3",
               ["q_norm/k_norm ((1 + w) RMSNorm per head)", "embedding scale, pre/post norms, GeGLU as gemma2",
                f"layers 0-1 sliding window {WINDOW} with RoPE base 10000, layer 2 global with base 1e6 and linear "
                "scaling 2", "no soft-capping (Gemma 3 has none)"]),
    "mistral": ("mistral", dict(rope_theta=10000.0, sliding_window=WINDOW, head_dim=8), "llama",
                [f"sliding window {WINDOW} on every layer (shorter than the prompts)",
                 "GGUF as llama.cpp writes Mistral: architecture llama, Q/K permuted"]),
    "phi3": ("phi3", dict(rope_theta=10000.0, num_key_value_heads=4, pad_token_id=0), "phi3",
             ["fused qkv_proj ([q; k; v] rows) and gate_up_proj ([gate; up] rows), kept fused in the GGUF "
              "(attn_qkv, ffn_up)"]),
    "glm": ("glm", dict(rope_theta=10000.0, head_dim=8, partial_rotary_factor=0.5, attention_bias=True,
                        pad_token_id=0, eos_token_id=2), "chatglm",
            ["partial rotary: RoPE on the first half of each head (4 of 8 dims), interleaved pairs",
             "fused gate_up_proj", "q/k/v biases", "GGUF as architecture chatglm (rope dimension count 4)"]),
}


def init_weights(model, name, gen):
    """Weights large enough that every quirk matters: linear layers ~ N(0, 1/in), embeddings ~ N(0, 1),
    norm weights 1 + N(0, 0.2) (Gemma's (1 + w) norms: w ~ N(0, 0.2)), biases ~ N(0, 0.1)."""
    gemma = name.startswith("gemma")
    with torch.no_grad():
        for pname, p in model.named_parameters():
            if "norm" in pname:
                base = 0.0 if gemma else 1.0
                p.copy_(base + 0.2 * torch.randn(p.shape, generator=gen))
            elif pname.endswith("bias"):
                p.copy_(0.1 * torch.randn(p.shape, generator=gen))
            elif "embed_tokens" in pname:
                scale = 1.0 / math.sqrt(D) if gemma else 1.0     # Gemma multiplies by sqrt(d_model)
                p.copy_(scale * torch.randn(p.shape, generator=gen))
            else:
                p.copy_(torch.randn(p.shape, generator=gen) / math.sqrt(p.shape[-1]))
    if name == "gemma2":   # sharpen the queries so the attention soft-cap saturates
        with torch.no_grad():
            for layer in model.model.layers:
                layer.self_attn.q_proj.weight.mul_(4.0)


def capture(model, name, ids):
    """Residual stream per layer in TransformerLens hook meaning, plus last-position logits."""
    gemma = name.startswith("gemma")
    store = {}
    handles = []
    for l, layer in enumerate(model.model.layers):
        def pre(mod, args, kwargs, l=l):
            h = args[0] if args else kwargs["hidden_states"]
            store[(l, "resid_pre")] = h.detach().clone()
        handles.append(layer.register_forward_pre_hook(pre, with_kwargs=True))

        def post(mod, args, kwargs, out, l=l):
            h = out[0] if isinstance(out, tuple) else out
            store[(l, "resid_post")] = h.detach().clone()
        handles.append(layer.register_forward_hook(post, with_kwargs=True))
        attn_mod = layer.post_attention_layernorm if gemma else layer.self_attn
        mlp_mod = layer.post_feedforward_layernorm if gemma else layer.mlp

        def attn_hook(mod, args, out, l=l):
            h = out[0] if isinstance(out, tuple) else out
            store[(l, "attn_out")] = h.detach().clone()

        def mlp_hook(mod, args, out, l=l):
            store[(l, "mlp_out")] = out.detach().clone()
        handles.append(attn_mod.register_forward_hook(attn_hook))
        handles.append(mlp_mod.register_forward_hook(mlp_hook))
    with torch.no_grad():
        logits = model(torch.tensor([ids])).logits[0, -1].clone()
    for h in handles:
        h.remove()
    rows = []
    for l in range(len(model.model.layers)):
        pre_, attn, mlp, post_ = (store[(l, k)][0] for k in ("resid_pre", "attn_out", "mlp_out", "resid_post"))
        mid = pre_ + attn
        # The decomposition is the model's own arithmetic: resid_post = resid_mid + mlp_out exactly.
        assert torch.equal(mid + mlp, post_), (name, l)
        rows.append(torch.stack([pre_, attn, mid, mlp, post_]))
    return torch.stack(rows).numpy().astype("<f4"), logits.numpy().astype("<f4")


def greedy(model, ids, n):
    out, margins = [], []
    seq = list(ids)
    with torch.no_grad():
        for _ in range(n):
            logits = model(torch.tensor([seq])).logits[0, -1]
            top = torch.topk(logits, 2)
            out.append(int(top.indices[0]))
            margins.append(float(top.values[0] - top.values[1]))
            seq.append(out[-1])
    return out, margins


def llama_permute(w, n_head, n_head_kv=None):
    """convert_hf_to_gguf.py's LlamaModel.permute: HF's rotate-half rows → llama.cpp's interleaved pairs."""
    if n_head_kv is not None and n_head != n_head_kv:
        n_head = n_head_kv
    return (w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape))


def rope_of(cfg):
    """RoPE settings from config.json: transformers 5 writes `rope_parameters` (per layer type for Gemma 3),
    earlier versions `rope_theta` and `rope_scaling`."""
    rp = cfg.get("rope_parameters")
    if rp is None:
        rp = dict(cfg.get("rope_scaling") or {}, rope_theta=cfg.get("rope_theta", 10000.0))
    return rp


def llama3_rope_factors(cfg):
    rs = rope_of(cfg)
    base, dim = rs["rope_theta"], cfg.get("head_dim") or cfg["hidden_size"] // cfg["num_attention_heads"]
    freqs = 1.0 / (base ** (np.arange(0, dim, 2, dtype=np.float32) / dim))
    factor, lo, hi, old = rs["factor"], rs["low_freq_factor"], rs["high_freq_factor"], rs["original_max_position_embeddings"]
    lo_wl, hi_wl = old / lo, old / hi
    out = []
    for f in freqs:
        wl = 2 * math.pi / f
        if wl < hi_wl:
            out.append(1.0)
        elif wl > lo_wl:
            out.append(factor)
        else:
            smooth = (old / wl - lo) / (hi - lo)
            out.append(1 / ((1 - smooth) / factor + smooth))
    return np.array(out, dtype=np.float32)


def write_gguf(path, name, arch_name, cfg, state):
    arch = {v: k for k, v in gguf.MODEL_ARCH_NAMES.items()}[arch_name]
    w = gguf.GGUFWriter(str(path), arch_name)
    n_layer = cfg["num_hidden_layers"]
    n_head, n_kv = cfg["num_attention_heads"], cfg["num_key_value_heads"]
    head_dim = cfg.get("head_dim") or cfg["hidden_size"] // n_head
    w.add_name(f"tiny-{name}")
    w.add_context_length(cfg["max_position_embeddings"])
    w.add_embedding_length(cfg["hidden_size"])
    w.add_block_count(n_layer)
    w.add_feed_forward_length(cfg["intermediate_size"])
    w.add_head_count(n_head)
    w.add_head_count_kv(n_kv)
    w.add_key_length(head_dim)
    w.add_value_length(head_dim)
    w.add_layer_norm_rms_eps(cfg["rms_norm_eps"])
    rope = rope_of(cfg)
    theta = rope.get("rope_theta") or rope.get("full_attention", {}).get("rope_theta")
    w.add_rope_freq_base(float(theta))
    rs = rope if rope.get("rope_type") not in (None, "default") else None
    if name == "gemma3":
        w.add_rope_freq_base_swa(float(rope["sliding_attention"]["rope_theta"]))
        w.add_rope_scaling_type(gguf.RopeScalingType.LINEAR)
        w.add_rope_scaling_factor(float(rope["full_attention"]["factor"]))
    elif rs:
        t = rs.get("rope_type") or rs.get("type")
        if t == "linear":
            w.add_rope_scaling_type(gguf.RopeScalingType.LINEAR)
            w.add_rope_scaling_factor(float(rs["factor"]))
        elif t == "yarn":
            w.add_rope_scaling_type(gguf.RopeScalingType.YARN)
            w.add_rope_scaling_factor(float(rs["factor"]))
            w.add_rope_scaling_orig_ctx_len(int(rs["original_max_position_embeddings"]))
            w.add_rope_scaling_yarn_beta_fast(float(rs["beta_fast"]))
            w.add_rope_scaling_yarn_beta_slow(float(rs["beta_slow"]))
        elif t == "llama3":
            pass  # the factors go into rope_freqs.weight (below), as llama.cpp's converter writes them
    if cfg.get("sliding_window") and name in ("gemma2", "gemma3", "mistral"):
        w.add_sliding_window(int(cfg["sliding_window"]))
    if name in ("gemma2", "gemma3"):
        # llama.cpp derives these from the model size (Gemma 2: every other layer sliding; Gemma 3: five of six;
        # scale 1/sqrt(head_dim)); a file may state them with its generic keys, which the tiny configs need.
        w.add_sliding_window_pattern([t == "sliding_attention" for t in cfg["layer_types"]])
        w.add_attention_scale(float(cfg["query_pre_attn_scalar"]) ** -0.5)
    if cfg.get("attn_logit_softcapping"):
        w.add_attn_logit_softcapping(float(cfg["attn_logit_softcapping"]))
    if cfg.get("final_logit_softcapping"):
        w.add_final_logit_softcapping(float(cfg["final_logit_softcapping"]))
    if name == "glm":
        w.add_rope_dimension_count(int(head_dim * (cfg.get("partial_rotary_factor") or rope["partial_rotary_factor"])))
    else:
        w.add_rope_dimension_count(head_dim)
    # A placeholder vocabulary (the tests feed token ids): byte-level tokens t0, t1, ...
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("default")
    w.add_token_list([f"t{i}" for i in range(cfg["vocab_size"])])
    w.add_token_types([1] * cfg["vocab_size"])
    w.add_token_merges([])
    w.add_bos_token_id(cfg["bos_token_id"])
    w.add_eos_token_id(cfg["eos_token_id"] if isinstance(cfg["eos_token_id"], int) else cfg["eos_token_id"][0])
    names = gguf.get_tensor_name_map(arch, n_layer)
    gemma = name.startswith("gemma")
    permute = arch_name == "llama"
    for hf, t in state.items():
        a = t.numpy().astype(np.float32)
        new = names.get_name(hf, try_suffixes=(".weight", ".bias"))
        if new is None:
            raise SystemExit(f"{name}: no llama.cpp name for {hf}")
        if permute and hf.endswith("q_proj.weight"):
            a = llama_permute(a, n_head, n_head)
        if permute and hf.endswith("k_proj.weight"):
            a = llama_permute(a, n_head, n_kv)
        if gemma and hf.endswith("norm.weight"):
            a = a + 1.0          # llama.cpp's Gemma norms multiply by w, HF's by (1 + w)
        w.add_tensor(new, np.ascontiguousarray(a))
    if rs and (rs.get("rope_type") or rs.get("type")) == "llama3":
        w.add_tensor("rope_freqs.weight", llama3_rope_factors(cfg))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def softcap_saturation(model, name, ids):
    """Largest |pre-cap value| / cap seen: above 1 the tanh cap changes the result substantially."""
    cfg = model.config
    out = {}
    if getattr(cfg, "final_logit_softcapping", None):
        cap = cfg.final_logit_softcapping
        with torch.no_grad():
            h = model.model(torch.tensor([ids])).last_hidden_state
            raw = model.lm_head(h)
        out["final_logit_max_over_cap"] = float(raw.abs().max() / cap)
    return out


def gguf_check(folder, model):
    """Independent check of the GGUF layout: transformers' own GGUF loader (which undoes llama.cpp's Q/K
    permutation and Gemma's +1) must give back the weights. Its config mapping ignores RoPE scaling,
    sliding windows and soft-capping, so only the weights are compared. Some files it cannot read."""
    try:
        b = AutoModelForCausalLM.from_pretrained(folder, gguf_file="model.gguf", dtype=torch.float32)
    except Exception as e:
        return {"checked": False, "why": "transformers' GGUF loader cannot read it: " + str(e).splitlines()[0][:120]}
    sa, sb = model.state_dict(), b.state_dict()
    bad = [k for k in sa if k not in sb or sa[k].shape != sb[k].shape]
    worst = max(float((sa[k] - sb[k]).abs().max()) for k in sa if k not in bad)
    assert not bad and worst < 1e-6, (folder, bad, worst)
    return {"checked": True, "max_abs_weight_difference": worst}


def main():
    if OUT.exists():
        shutil.rmtree(OUT)
    OUT.mkdir(parents=True)
    import transformers
    summary = {}
    for i, (name, (mtype, over, arch, quirks)) in enumerate(CONFIGS.items()):
        torch.manual_seed(1000 + i)
        gen = torch.Generator().manual_seed(2000 + i)
        params = dict(BASE)
        params.update(over)
        config = AutoConfig.for_model(mtype, **params)
        config._attn_implementation = "eager"
        model = AutoModelForCausalLM.from_config(config, dtype=torch.float32, attn_implementation="eager")
        model.eval()
        init_weights(model, name, gen)
        folder = OUT / name
        model.save_pretrained(folder, safe_serialization=True)
        cfg = json.loads((folder / "config.json").read_text())
        state = {k: v for k, v in model.state_dict().items()}
        if cfg.get("tie_word_embeddings"):
            state.pop("lm_head.weight", None)
        write_gguf(folder / "model.gguf", name, arch, cfg, state)
        rng = np.random.default_rng(3000 + i)
        prompts, blobs = [], []
        for n in PROMPT_LENGTHS:
            ids = [1] + [int(x) for x in rng.integers(3, VOCAB, n - 1)]
            resid, logits = capture(model, name, ids)
            cont, margins = greedy(model, ids, GREEDY)
            blobs += [resid.ravel(), logits.ravel()]
            prompts.append({"tokens": ids, "greedy": cont, "greedy_margins": margins,
                            "residual_shape": list(resid.shape), "logits_shape": list(logits.shape),
                            **softcap_saturation(model, name, ids)})
        np.concatenate(blobs).astype("<f4").tofile(folder / "reference.bin")
        ref = {"name": name, "model_type": mtype, "gguf_architecture": arch, "quirks": quirks,
               "hooks": ["hook_resid_pre", "hook_attn_out", "hook_resid_mid", "hook_mlp_out", "hook_resid_post"],
               "layout": "per prompt: residual [n_layers][5 hooks][tokens][d_model] then logits [vocab], float32 LE",
               "reference": f"transformers {transformers.__version__}, torch {torch.__version__}, float32, eager "
                            f"attention; gguf-py {getattr(gguf, '__version__', '')}",
               "gguf_check": gguf_check(folder, model),
               "prompts": prompts}
        (folder / "reference.json").write_text(json.dumps(ref, indent=1))
        size = sum(f.stat().st_size for f in folder.iterdir())
        summary[name] = size
        print(f"{name}: {size / 1024:.0f} kB, min greedy margin {min(min(p['greedy_margins']) for p in prompts):.3g}")
    total = sum(summary.values())
    print(f"total {total / 1e6:.2f} MB")
    assert total < 5e6, "the fixture set must stay small"


if __name__ == "__main__":
    main()
