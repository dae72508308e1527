"""Chat-template fixtures: every family's real Jinja template rendered by transformers.

Run from the repository root with the reference venv:
    .venv-ref/bin/python notebooks-scripts/fixtures_chat_templates.py [MODELS_DIR]

The templates are the model families' own (notebooks-scripts/chat_templates/, sources in the README
there). For each family this renders a set of conversations (no system message, a system message, an
empty one, several turns, whitespace that the template trims, Qwen3 history with a think block) with
`tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True, chat_template=...)`
and records the text, or the exception when the template raises (Gemma 2 has no system role, Gemma and
Mistral need alternating turns). Qwen3 is rendered with enable_thinking unset (the template's default,
the model may think) and enable_thinking=False.

Token ids: `apply_chat_template(..., tokenize=True)` with a tokenizer carrying the family's special
tokens. For ChatML/Qwen3 that is a small byte-level BPE trained here with Qwen2's split and NFC plus the
Qwen special tokens (<|im_start|>, <|im_end|>, <|endoftext|>, <think>, </think>); for Llama 3 one with
Llama 3's split and its header tokens; for Mistral, Phi-3 and GLM-4 a GPT-2-style one with their
control tokens. The tokenizer.json of each goes into the fixture (a few tens of kB), so the Swift side
loads exactly the same tokenizer. Gemma's ids come from the real Gemma-3-270M GGUF (`make
models-gemma`) converted by transformers (AutoTokenizer gguf_file=), when it is present in MODELS_DIR.

Writes Tests/ModelRuntimeTests/Fixtures/chat/<family>.json.
"""
import json
import os
import sys
from pathlib import Path

from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
from transformers import AutoTokenizer, PreTrainedTokenizerFast

ROOT = Path(__file__).resolve().parent.parent
TEMPLATES = ROOT / "notebooks-scripts/chat_templates"
OUT = ROOT / "Tests/ModelRuntimeTests/Fixtures/chat"
MODELS = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(os.environ.get("ABLAB_MODELS_DIR", ROOT / "models"))
GEMMA_GGUF = "gemma-3-270m.Q4_K_M.gguf"

QWEN2_SPLIT = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
               r"|\s*[\r\n]+|\s+(?!\S)|\s+")
LLAMA3_SPLIT = QWEN2_SPLIT.replace(r"|\p{N}|", r"|\p{N}{1,3}|")

U, A, S = "user", "assistant", "system"


def m(role, content):
    return {"role": role, "content": content}


CONVERSATIONS = [
    ("user", [m(U, "How do I bake bread?")]),
    ("system", [m(S, "You are a terse assistant."), m(U, "Explain recursion.")]),
    ("empty-system", [m(S, ""), m(U, "Hi")]),
    ("multi-turn", [m(U, "What is 2+2?"), m(A, "4."), m(U, "And times 3?")]),
    ("multi-turn-system", [m(S, "Be kind."), m(U, "Hello!"), m(A, "Hi there."),
                           m(U, "你好，世界！ Tell me a joke\n\nplease ")]),
    ("whitespace", [m(S, "  Padded system \n"), m(U, "  Emoji 😀 and spaces  \n"), m(A, "\n Sure. \t"),
                    m(U, "\u3000ideographic space and\u00a0nbsp\u00a0")]),
    ("three-turns", [m(U, "one"), m(A, "two"), m(U, "three"), m(A, "four"), m(U, "five")]),
    ("thinking-history", [m(U, "What is 6*7?"), m(A, "<think>\nSix sevens.\n</think>\n\n42."),
                          m(U, "And 6*8?")]),
    ("not-alternating", [m(U, "first"), m(U, "second")]),
    ("system-later", [m(U, "first"), m(S, "late system"), m(U, "second")]),
]

# family: (template file, bos, eos, tokenizer kind, special tokens)
FAMILIES = {
    "chatml": ("chatml.jinja", None, "<|im_end|>", "qwen", ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]),
    "qwen3": ("qwen3.jinja", None, "<|im_end|>", "qwen", ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]),
    "llama3": ("llama3.jinja", "<|begin_of_text|>", "<|eot_id|>", "llama3",
               ["<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"]),
    "llama3.1": ("llama3.3.jinja", "<|begin_of_text|>", "<|eot_id|>", "llama3",
                 ["<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>",
                  "<|eom_id|>", "<|python_tag|>"]),
    "gemma2": ("gemma2.jinja", "<bos>", "<eos>", "gemma", None),
    "gemma3": ("gemma3.jinja", "<bos>", "<eos>", "gemma", None),
    "mistral": ("mistral-v0.3.jinja", "<s>", "</s>", "gpt2", ["<unk>", "<s>", "</s>", "[INST]", "[/INST]",
                                                                "[TOOL_CALLS]", "[AVAILABLE_TOOLS]"]),
    "phi3": ("phi3.jinja", "<s>", "<|endoftext|>", "gpt2", ["<unk>", "<s>", "</s>", "<|endoftext|>", "<|system|>",
                                                            "<|user|>", "<|assistant|>", "<|end|>"]),
    "glm4": ("glm4.jinja", None, "<|endoftext|>", "gpt2", ["<|endoftext|>", "[MASK]", "[gMASK]", "[sMASK]", "<sop>",
                                                           "<eop>", "<|system|>", "<|user|>", "<|assistant|>",
                                                           "<|observation|>"]),
}
# The generic ChatML template (no default system turn), as in fixtures_tokenizer.py.
CHATML = ("{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content']"
          " + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}"
          "{{ '<|im_start|>assistant\n' }}{% endif %}")


def template_source(name):
    if name == "chatml.jinja":
        return CHATML
    return (TEMPLATES / name).read_text(encoding="utf-8")


def corpus():
    text = []
    for name in ("harmful", "harmless"):
        path = ROOT / "notebooks-scripts/data/prompts" / f"{name}.jsonl"
        text += [json.loads(l)["text"] for l in open(path, encoding="utf-8") if l.strip()][:300]
    for _, msgs in CONVERSATIONS:
        text += [x["content"] for x in msgs]
    return text


def tiny_tokenizer(kind, specials, extra_added):
    split = {"qwen": QWEN2_SPLIT, "llama3": LLAMA3_SPLIT}.get(kind)
    tk = Tokenizer(models.BPE())
    if kind == "qwen":
        tk.normalizer = normalizers.NFC()
    if split:
        tk.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Split(Regex(split), behavior="isolated"),
                                                    pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    else:
        tk.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tk.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=700, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), special_tokens=specials)
    tk.train_from_iterator(corpus(), trainer=trainer)
    if extra_added:
        tk.add_tokens(extra_added)  # non-special added tokens (Qwen3's <think>, </think>)
    return tk


def render(tok, src, msgs, **kw):
    try:
        text = tok.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True, chat_template=src, **kw)
    except Exception as e:  # jinja2 TemplateError from raise_exception
        return {"error": str(e)}
    ids = tok.apply_chat_template(msgs, tokenize=True, add_generation_prompt=True, chat_template=src,
                                  return_dict=False, **kw)
    if hasattr(ids, "tolist"):
        ids = ids.tolist()
    if ids and isinstance(ids[0], list):
        ids = ids[0]
    # apply_chat_template tokenizes without adding special tokens; the same as encoding the text.
    assert ids == tok(text, add_special_tokens=False)["input_ids"], "ids differ from encoding the text"
    return {"text": text, "ids": ids}


def family_fixture(name):
    file, bos, eos, kind, specials = FAMILIES[name]
    src = template_source(file)
    doc = None
    if kind == "gemma":
        if not (MODELS / GEMMA_GGUF).exists():
            print(f"{name}: {MODELS / GEMMA_GGUF} missing (make models-gemma): texts only, no ids", file=sys.stderr)
            tok = PreTrainedTokenizerFast(tokenizer_object=tiny_tokenizer("gpt2", ["<bos>", "<eos>", "<start_of_turn>",
                                                                                    "<end_of_turn>"], None),
                                          bos_token="<bos>", eos_token="<eos>")
            with_ids = False
        else:
            tok = AutoTokenizer.from_pretrained(str(MODELS), gguf_file=GEMMA_GGUF)
            with_ids = True
    else:
        extra = ["<think>", "</think>"] if name == "qwen3" else None
        tk = tiny_tokenizer(kind, specials, extra)
        doc = json.loads(tk.to_str())
        tok = PreTrainedTokenizerFast(tokenizer_object=tk, bos_token=bos, eos_token=eos)
        with_ids = True
    cases = []
    variants = [({}, None)]
    if name == "qwen3":
        variants = [({}, True), ({"enable_thinking": False}, False)]
    for kw, thinking in variants:
        for cname, msgs in CONVERSATIONS:
            r = render(tok, src, msgs, **kw)
            if not with_ids:
                r.pop("ids", None)
            case = {"name": cname, "messages": msgs, **r}
            if thinking is not None:
                case["thinking"] = thinking
            cases.append(case)
    # The tokens after the user's text in a single-turn generation prompt.
    marker = "MARKER"
    tails = []
    for kw, thinking in variants:
        t = tok.apply_chat_template([m(U, marker)], tokenize=False, add_generation_prompt=True, chat_template=src, **kw)
        tail = t[t.rindex(marker) + len(marker):]
        entry = {"text": tail}
        if with_ids:
            entry["ids"] = tok(tail, add_special_tokens=False)["input_ids"]
        if thinking is not None:
            entry["thinking"] = thinking
        tails.append(entry)
    import transformers
    out = {"family": name, "template_file": file, "chat_template": src,
           "reference": f"transformers {transformers.__version__} apply_chat_template(add_generation_prompt=True)",
           "tokenizer": doc, "tokenizer_source": ("gguf:" + GEMMA_GGUF) if kind == "gemma" and with_ids else
           ("tiny" if doc else None), "bos_token": bos, "eos_token": eos,
           "cases": cases, "generation_tails": tails}
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / f"{name}.json"
    path.write_text(json.dumps(out, ensure_ascii=False, indent=None))
    print(f"wrote {path} ({path.stat().st_size} bytes; {sum('error' in c for c in cases)} refused)")


def main():
    for name in FAMILIES:
        family_fixture(name)


if __name__ == "__main__":
    main()
