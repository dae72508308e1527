#!/usr/bin/env python3
"""llama.cpp peer of `make bench` (through llama-cpp-python): the same prompts as `ablab bench`, the
GGUF file as it is (its own quantisation), CPU only.

  peer_llamacpp.py --model M.gguf --prompts P.jsonl --n 64 --threads 2 --new-tokens 64 --batch 16 --json OUT.json

Workloads (each after one uncounted warm-up on 2 prompts, timed with time.perf_counter):
  record            prefill only: each prompt evaluated after a reset (logits_all=False), no capture
                    of hidden states; tokens/s = prompt tokens / seconds
  generate_batched  not run: llama-cpp-python has no batched generation
  decode_single     the first prompt, greedy (argmax of the last logits), exactly --new-tokens new
                    tokens with no EOS stop, driven token by token with Llama.eval; tokens/s over the
                    decode only (the tokens after the first), and the rate including the prefill
The prompt text is the model's chat template (from the GGUF metadata) rendered with jinja2 the way
transformers renders it, tokenised without an added BOS (the template writes its own special
tokens), so the token counts match the PyTorch peer's.
--batch only matters for the PyTorch peer and ablab; it is accepted here for the common command line.
"""
import os
import sys
from datetime import datetime

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

PEER = "llama.cpp"


def render_chat(template, messages, bos_token, eos_token):
    """The chat template rendered as transformers does it (sandboxed jinja2, trim_blocks,
    lstrip_blocks, raise_exception and strftime_now available), with the generation prompt."""
    from jinja2.exceptions import TemplateError
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    def raise_exception(message):
        raise TemplateError(message)

    def strftime_now(fmt):
        return datetime.now().strftime(fmt)

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = strftime_now
    return env.from_string(template).render(messages=messages, add_generation_prompt=True,
                                            bos_token=bos_token, eos_token=eos_token)


def body(args):
    os.environ["OMP_NUM_THREADS"] = str(args.threads)
    import numpy as np
    import llama_cpp
    from llama_cpp import Llama

    model_file = os.path.basename(args.model)
    prompts = common.load_prompts(args.prompts, args.n)

    kwargs = dict(model_path=args.model, n_ctx=2048, n_batch=512, n_threads=args.threads,
                  n_threads_batch=args.threads, n_gpu_layers=0, seed=0, verbose=False)
    try:
        llm = Llama(logits_all=False, **kwargs)
    except TypeError:  # a version without the logits_all keyword
        llm = Llama(**kwargs)

    template = llm.metadata.get("tokenizer.chat_template")
    if not template:
        raise RuntimeError(f"{model_file} has no tokenizer.chat_template")

    def token_text(tid):
        if tid is None or tid < 0:
            return ""
        try:
            return llm.detokenize([tid], special=True).decode("utf-8", "replace")
        except TypeError:  # a version without special=
            return llm.detokenize([tid]).decode("utf-8", "replace")

    bos_text, eos_text = token_text(llm.token_bos()), token_text(llm.token_eos())

    def encode(text):
        rendered = render_chat(template, common.messages_for(text), bos_text, eos_text)
        return llm.tokenize(rendered.encode("utf-8"), add_bos=False, special=True)

    token_ids = [encode(t) for t in prompts]
    prompt_tokens = sum(len(t) for t in token_ids)
    longest = max(len(t) for t in token_ids)
    if longest + args.new_tokens > llm.n_ctx():
        raise RuntimeError(f"context {llm.n_ctx()} too small for {longest} + {args.new_tokens} tokens")
    common.log(PEER, f"{model_file}: {len(prompts)} prompts, {prompt_tokens} prompt tokens "
                     f"(first: {len(token_ids[0])})")

    # ---- record: prefill only -------------------------------------------------------------------
    def prefill_all(seqs):
        for ids in seqs:
            llm.reset()
            llm.eval(ids)

    prefill_all(token_ids[:common.WARMUP_PROMPTS])
    t0 = common.now()
    prefill_all(token_ids)
    secs = common.now() - t0
    rec = {"tokens": prompt_tokens, "seconds": round(secs, 4),
           "tokens_per_s": common.rate(prompt_tokens, secs),
           "prefill_only": True,
           "note": ("prefill only: each prompt evaluated alone after a reset, logits_all=False, "
                    "no hidden states captured")}
    common.log(PEER, f"record (prefill only): {rec['tokens_per_s']} tok/s ({secs:.2f} s)")

    # ---- decode_single ------------------------------------------------------------------------
    n_vocab = llm.n_vocab()

    def next_token():
        # With logits_all=False Llama.eval keeps no logits: read the last row from the context.
        row = llama_cpp.llama_get_logits_ith(llm.ctx, -1)
        return int(np.argmax(np.ctypeslib.as_array(row, shape=(n_vocab,))))

    def greedy(ids, new_tokens, clock=None):
        llm.reset()
        llm.eval(ids)
        out = [next_token()]
        if clock is not None:
            clock.append(common.now())
        while len(out) < new_tokens:  # no EOS stop: exactly new_tokens tokens
            llm.eval([out[-1]])
            out.append(next_token())
        return out

    greedy(token_ids[0], min(8, args.new_tokens))
    clock = []
    t0 = common.now()
    generated = greedy(token_ids[0], args.new_tokens, clock)
    t_end = common.now()
    t_first = clock[0]
    decode_tokens = args.new_tokens - 1
    dec = {"tokens": decode_tokens, "seconds": round(t_end - t_first, 4),
           "tokens_per_s": common.rate(decode_tokens, t_end - t_first),
           "prompt_tokens": len(token_ids[0]),
           "prefill_seconds": round(t_first - t0, 4),
           "new_tokens": args.new_tokens,
           "total_seconds": round(t_end - t0, 4),
           "tokens_per_s_incl_prefill": common.rate(args.new_tokens, t_end - t0),
           "generated_ids": generated,
           "note": (f"first prompt, greedy argmax, exactly {args.new_tokens} new tokens (no EOS stop), "
                    f"Llama.eval token by token; tokens_per_s = the {decode_tokens} tokens after the "
                    f"first / time from the first new token to the last; tokens_per_s_incl_prefill = "
                    f"{args.new_tokens} / total")}
    common.log(PEER, f"decode_single: {dec['tokens_per_s']} tok/s decode, "
                     f"{dec['tokens_per_s_incl_prefill']} tok/s with prefill")

    try:
        sysinfo = llama_cpp.llama_print_system_info().decode("utf-8", "replace").strip()
    except Exception:  # noqa: BLE001
        sysinfo = None
    version = getattr(llama_cpp, "__version__", "unknown")
    return {"version": f"llama-cpp-python {version}",
            "versions": {"llama-cpp-python": version, "numpy": np.__version__},
            "model": model_file, "threads": args.threads, "n_prompts": len(prompts),
            "prompt_tokens": prompt_tokens, "dtype": "as stored in the GGUF",
            "system_info": sysinfo,
            "workloads": {
                "record": rec,
                "generate_batched": {"tokens": None, "seconds": None, "tokens_per_s": None,
                                     "note": "not run: llama-cpp-python has no batched generation"},
                "decode_single": dec}}


if __name__ == "__main__":
    common.run_peer(PEER, body)
