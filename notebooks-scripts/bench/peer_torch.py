#!/usr/bin/env python3
"""PyTorch peer of `make bench`: the same prompts and workloads as `ablab bench`, run with
transformers on float32 weights dequantised from the GGUF file.

  peer_torch.py --model M.gguf --prompts P.jsonl --n 64 --threads 2 --new-tokens 64 --batch 16 --json OUT.json

Workloads (each after one uncounted warm-up on 2 prompts, timed with time.perf_counter):
  record            batches of --batch prompts, left padded, base model only (no lm_head),
                    output_hidden_states=True, every layer's hidden states at the last 5 positions
                    copied to numpy; tokens/s = real (unpadded) prompt tokens / seconds
  generate_batched  the first --batch prompts, left padded, greedy, exactly --new-tokens new tokens
                    each; tokens/s = batch x new tokens / seconds (prefill included)
  decode_single     the first prompt, greedy, exactly --new-tokens new tokens; tokens/s over the
                    decode only (new tokens after the first, timed from the first new token on), and
                    the rate including the prefill
Tokenisation happens before the timed sections.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

PEER = "pytorch"
LAST_POSITIONS = 5


def body(args):
    # Thread counts must be in the environment before torch loads its OpenMP / MKL runtimes.
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = str(args.threads)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")
    import numpy as np
    import torch
    import transformers
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.set_num_threads(args.threads)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:
        pass
    transformers.logging.set_verbosity_error()
    try:
        transformers.utils.logging.disable_progress_bar()
    except AttributeError:
        pass

    model_dir, model_file = os.path.split(os.path.abspath(args.model))
    prompts = common.load_prompts(args.prompts, args.n)

    tok = AutoTokenizer.from_pretrained(model_dir, gguf_file=model_file)
    try:
        model = AutoModelForCausalLM.from_pretrained(model_dir, gguf_file=model_file, dtype=torch.float32)
    except TypeError:  # transformers before `dtype` was the keyword
        model = AutoModelForCausalLM.from_pretrained(model_dir, gguf_file=model_file,
                                                     torch_dtype=torch.float32)
    model.eval()

    def encode(text):
        ids = tok.apply_chat_template(common.messages_for(text), add_generation_prompt=True, tokenize=True)
        if hasattr(ids, "keys"):  # BatchEncoding (transformers 5 returns a dict by default)
            ids = ids["input_ids"]
        return [int(t) for t in ids]

    token_ids = [encode(t) for t in prompts]
    prompt_tokens = sum(len(t) for t in token_ids)
    common.log(PEER, f"{model_file}: {len(prompts)} prompts, {prompt_tokens} prompt tokens "
                     f"(first: {len(token_ids[0])})")

    pad_id = tok.pad_token_id
    if pad_id is None:
        pad_id = tok.eos_token_id if tok.eos_token_id is not None else 0

    def left_pad(batch):
        width = max(len(t) for t in batch)
        ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
        mask = torch.zeros((len(batch), width), dtype=torch.long)
        for i, t in enumerate(batch):
            ids[i, width - len(t):] = torch.tensor(t, dtype=torch.long)
            mask[i, width - len(t):] = 1
        return ids, mask

    def batches(seqs, size):
        return [seqs[i:i + size] for i in range(0, len(seqs), size)]

    # ---- record ------------------------------------------------------------------------------
    def record(seqs):
        stored = []
        for batch in batches(seqs, args.batch):
            ids, mask = left_pad(batch)
            pos = (mask.cumsum(-1) - 1).clamp(min=0)
            with torch.inference_mode():
                out = model.model(input_ids=ids, attention_mask=mask, position_ids=pos,
                                  output_hidden_states=True, use_cache=False)
                stored.append([h[:, -LAST_POSITIONS:, :].numpy().copy() for h in out.hidden_states])
        return stored

    record(token_ids[:common.WARMUP_PROMPTS])
    t0 = common.now()
    stored = record(token_ids)
    secs = common.now() - t0
    layers = len(stored[0])
    rec = {"tokens": prompt_tokens, "seconds": round(secs, 4),
           "tokens_per_s": common.rate(prompt_tokens, secs),
           "note": (f"float32 base model, batches of {args.batch} left padded, output_hidden_states; "
                    f"{layers} hidden-state tensors (embeddings + each layer) at the last "
                    f"{LAST_POSITIONS} positions copied to numpy; tokens = real prompt tokens")}
    assert all(a.dtype == np.float32 for a in stored[0])
    del stored
    common.log(PEER, f"record: {rec['tokens_per_s']} tok/s ({secs:.2f} s)")

    # ---- generate_batched ------------------------------------------------------------------------
    gen_kwargs = dict(do_sample=False, pad_token_id=pad_id, num_beams=1,
                      temperature=None, top_p=None, top_k=None)

    def generate(batch, new_tokens, streamer=None):
        ids, mask = left_pad(batch)
        with torch.inference_mode():
            out = model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=new_tokens,
                                 min_new_tokens=new_tokens, streamer=streamer, **gen_kwargs)
        got = out.shape[1] - ids.shape[1]
        if got != new_tokens:
            raise RuntimeError(f"generate produced {got} new tokens, {new_tokens} asked")
        return out

    gen_batch = token_ids[:args.batch]
    generate(token_ids[:common.WARMUP_PROMPTS], min(8, args.new_tokens))
    t0 = common.now()
    generate(gen_batch, args.new_tokens)
    secs = common.now() - t0
    n_new = len(gen_batch) * args.new_tokens
    gen = {"tokens": n_new, "seconds": round(secs, 4), "tokens_per_s": common.rate(n_new, secs),
           "batch": len(gen_batch), "new_tokens": args.new_tokens,
           "prompt_tokens": sum(len(t) for t in gen_batch),
           "note": (f"model.generate, {len(gen_batch)} prompts left padded, greedy, exactly "
                    f"{args.new_tokens} new tokens each (min_new_tokens = max_new_tokens); "
                    f"seconds include the prefill")}
    common.log(PEER, f"generate_batched: {gen['tokens_per_s']} tok/s ({secs:.2f} s)")

    # ---- decode_single -------------------------------------------------------------------------
    class Clock:
        """A streamer that only timestamps: generate() calls put() with the prompt, then once per
        new token."""

        def __init__(self):
            self.puts = []

        def put(self, value):
            self.puts.append(common.now())

        def end(self):
            pass

    generate(token_ids[:1], min(8, args.new_tokens))
    clock = Clock()
    t0 = common.now()
    out = generate(token_ids[:1], args.new_tokens, streamer=clock)
    t_end = common.now()
    if len(clock.puts) != args.new_tokens + 1:
        raise RuntimeError(f"streamer saw {len(clock.puts)} puts, expected {args.new_tokens + 1}")
    t_first = clock.puts[1]  # the first new token: end of the prefill
    decode_tokens = args.new_tokens - 1
    dec = {"tokens": decode_tokens, "seconds": round(t_end - t_first, 4),
           "tokens_per_s": common.rate(decode_tokens, t_end - t_first),
           "prompt_tokens": len(token_ids[0]),
           "prefill_seconds": round(t_first - t0, 4),
           "new_tokens": args.new_tokens,
           "total_seconds": round(t_end - t0, 4),
           "tokens_per_s_incl_prefill": common.rate(args.new_tokens, t_end - t0),
           "generated_ids": [int(t) for t in out[0, len(token_ids[0]):]],
           "note": (f"model.generate, first prompt, greedy, exactly {args.new_tokens} new tokens; "
                    f"tokens_per_s = the {decode_tokens} tokens after the first / time from the first "
                    f"new token to the last; tokens_per_s_incl_prefill = {args.new_tokens} / total")}
    common.log(PEER, f"decode_single: {dec['tokens_per_s']} tok/s decode, "
                     f"{dec['tokens_per_s_incl_prefill']} tok/s with prefill")

    return {"version": f"torch {torch.__version__}, transformers {transformers.__version__}",
            "versions": {"torch": torch.__version__, "transformers": transformers.__version__,
                         "numpy": np.__version__},
            "model": model_file, "threads": args.threads, "n_prompts": len(prompts),
            "prompt_tokens": prompt_tokens, "dtype": "float32",
            "torch_cpu_capability": _cpu_capability(torch),
            "workloads": {"record": rec, "generate_batched": gen, "decode_single": dec}}


def _cpu_capability(torch):
    try:
        return torch.backends.cpu.get_cpu_capability()
    except Exception:  # noqa: BLE001
        return None


if __name__ == "__main__":
    common.run_peer(PEER, body)
