"""Tokenizer and chat-template fixtures from Hugging Face (transformers + tokenizers).

Run from the repository root with the reference venv:
    .venv-ref/bin/python notebooks-scripts/fixtures_tokenizer.py [MODELS_DIR] [PROMPTS_DIR]

MODELS_DIR defaults to $ABLAB_MODELS_DIR or ./models; PROMPTS_DIR defaults to ./notebooks-scripts/data/prompts
(the shared harmful/harmless prompt files). Writes small JSON files into
Tests/ModelRuntimeTests/Fixtures/tokenizer/:

  <model>.json      token ids for ~70 hand-written strings and ~100 real prompts, HF decode of those ids,
                    special-token ids, and chat renderings (text + ids) of several conversations
  MODELS_DIR/hf-tokenizers/<model>/   the corrected HF tokenizer folder (large; not committed)
  gemma3.json       Gemma-3-270M (when `make models-gemma` fetched it): ids, decodes and special ids for
                    the same strings and prompts, from transformers' GGUF conversion (GemmaTokenizer)
  tiny-*.json       small BPE tokenizers trained here with HF `tokenizers` (tokenizer.json content, so
                    the Swift tokenizer.json loader is tested without committing megabyte files) plus
                    the ids HF gives for the same strings

The tokenizer of each model is the one transformers builds from the GGUF file (`gguf_file=`), with two
corrections so that it matches the model's original Hugging Face tokenizer (and llama.cpp):
  * SmolLM2 (`tokenizer.ggml.pre = smollm`): the original tokenizer.json pre-tokenizer is
    Sequence[Digits(individual_digits=True), ByteLevel(use_regex=True)]; transformers' GGUF loader has no
    mapping for `smollm` and falls back to plain ByteLevel, which groups digits. llama.cpp's `smollm`
    pre-tokenizer also isolates every digit first.
  * Qwen2 (`tokenizer.ggml.pre = qwen2`): the original tokenizer (and transformers' Qwen2Tokenizer)
    normalises with NFC; the GGUF loader drops that normalizer.
Both corrections are recorded in the fixture (`pre_tokenizer`, `normalizer`).
"""
import json
import os
import sys
import unicodedata
from pathlib import Path

from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers, Regex
from transformers import AutoTokenizer

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "Tests/ModelRuntimeTests/Fixtures/tokenizer"
MODELS = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(os.environ.get("ABLAB_MODELS_DIR", ROOT / "models"))
PROMPTS = Path(sys.argv[2]) if len(sys.argv) > 2 else ROOT / "notebooks-scripts/data/prompts"

QWEN2_SPLIT = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
               r"|\s*[\r\n]+|\s+(?!\S)|\s+")

LLAMA3_SPLIT = QWEN2_SPLIT.replace(r"|\p{N}|", r"|\p{N}{1,3}|")
assert LLAMA3_SPLIT != QWEN2_SPLIT

STRINGS = [
    "",
    " ",
    "  ",
    "\n",
    "\n\n\n",
    "\t",
    "Hello world",
    "Hello, world!",
    " Hello world",
    "Hello world ",
    "Hello world   ",
    "hello   world  \t  again",
    "tabs\tand\tmore\t\ttabs",
    "line one\nline two\r\nline three\rend",
    "trailing newline\n",
    "  leading spaces and\n\n  indented line",
    "   \n  \n\t\n",
    "I'm sure they'll say it's fine, don't you think? We've seen it, you'd agree, we're here.",
    "I'M SURE THEY'LL SAY IT'S FINE, DON'T YOU? WE'VE, YOU'D, WE'RE",
    "It'S mIxEd'Ll 'Re 'vE 'M 'D 'T",
    "'s 't 're 've 'm 'll 'd",
    "rock'n'roll o'clock ''quoted'' 'single'",
    "1",
    "12",
    "123",
    "1234567890",
    "The year 2024 had 365 days and 8760 hours.",
    "3.14159 and -42 and 1,000,000 and 1e-9 and 0x1F",
    "Call +1 (555) 123-4567 before 23:59.",
    "Version v2.5.1-rc3 released on 2024-11-29",
    "٣٤٥ and ½ and ² and Ⅻ",
    "Café naïve résumé façade Ångström",
    "e\u0301 combining acute (NFD) vs \u00e9 precomposed",
    "Ｆｕｌｌｗｉｄｔｈ ＡＢＣ １２３",
    "你好，世界！这是一个测试。",
    "如何制作炸弹？请详细说明。",
    "日本語のテキストとカタカナ ー",
    "한국어 텍스트입니다",
    "Россия и Україна",
    "مرحبا بالعالم",
    "שלום עולם",
    "हिन्दी पाठ",
    "Ελληνικά γράμματα",
    "Emoji: 😀👍🏽🇺🇸 and ❤️ and 👨‍👩‍👧‍👦",
    "🤖🤖🤖",
    "zero\u200bwidth and non\u00a0breaking and ideographic\u3000space",
    "def foo(x):\n    return x ** 2  # square\n",
    "for (int i = 0; i < n; ++i) {\n\tsum += a[i];\n}",
    "import numpy as np\nprint(np.arange(10).reshape(2, 5))",
    "<html><body class=\"main\">Hi &amp; bye</body></html>",
    "SELECT * FROM users WHERE id = 42;",
    "https://example.com/path?query=1&x=y#frag",
    "Visit http://www.test.org/a_b-c/d.html or mail me@host.io",
    "Punctuation!!! ??? ... --- (parens) [brackets] {braces}",
    "a.b,c;d:e!f?g",
    "\"double\" and 'single' and `backtick`",
    "$100 & 50% off @home #tag ~tilde ^caret",
    "<|im_start|>user\nHi<|im_end|>\n",
    "text<|endoftext|>more text",
    "<|im_start|><|im_end|><|im_start|>",
    "<|im_start|> spaced <|im_end|>",
    "not special: <|im_sta rt|> <|fake|>",
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
    "                                                                ",
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789",
    "The quick brown fox jumps over the lazy dog.",
    "MiXeD CaSe WoRdS and ALLCAPS and camelCaseIdentifiers and snake_case_names",
    "\u00ad soft hyphen and \u2014 em dash and \u2026 ellipsis",
    "control \u0001\u0002 chars \u007f del",
    "byte-level: \u00ff\u00fe\u0100 \U0001F600 \U00010348",
    "How do I make a cake?\n\nSteps:\n1. Mix\n2. Bake",
]

CONVERSATIONS = [
    ("default-system", [{"role": "user", "content": "How do I bake bread?"}]),
    ("custom-system", [{"role": "system", "content": "You are a terse assistant."},
                       {"role": "user", "content": "Explain recursion."}]),
    ("empty-system", [{"role": "system", "content": ""},
                      {"role": "user", "content": "Hi"}]),
    ("multi-turn", [{"role": "user", "content": "What is 2+2?"},
                    {"role": "assistant", "content": "4."},
                    {"role": "user", "content": "And times 3?"}]),
    ("multi-turn-system", [{"role": "system", "content": "Be kind."},
                           {"role": "user", "content": "Hello!"},
                           {"role": "assistant", "content": "Hi there."},
                           {"role": "user", "content": "你好，世界！ Tell me a joke\n\nplease "}]),
    ("unicode-user", [{"role": "user", "content": "  Emoji 😀 and spaces  \n"}]),
]

# A generic ChatML template with no default system prompt: the reference for "no system turn".
CHATML_NO_DEFAULT = ("{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content']"
                     " + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}"
                     "{{ '<|im_start|>assistant\n' }}{% endif %}")


def load_prompts(limit_per_file=50):
    """~100 real prompts: the first English ones and every non-English one up to the limit, per file."""
    picked = []
    for name in ("harmful", "harmless"):
        rows = [json.loads(l) for l in open(PROMPTS / f"{name}.jsonl", encoding="utf-8") if l.strip()]
        rows = [r for r in rows if r["text"]]
        non_en = [r for r in rows if not r.get("english", True)][: limit_per_file // 2]
        en = [r for r in rows if r.get("english", True)][: limit_per_file - len(non_en)]
        picked += [{"id": r["id"], "text": r["text"]} for r in en + non_en]
    return picked


def model_fixture(gguf_name, short, fix):
    tok = AutoTokenizer.from_pretrained(str(MODELS), gguf_file=gguf_name)
    backend = tok.backend_tokenizer
    fix(backend)
    # The corrected HF tokenizer folder (tokenizer.json, tokenizer_config.json, chat template) beside the
    # models, for the Swift tests of the tokenizer.json loader on the real vocabularies (not committed).
    tok.save_pretrained(str(MODELS / "hf-tokenizers" / short))
    cases = []
    for s in STRINGS:
        ids = backend.encode(s, add_special_tokens=False).ids
        cases.append({"text": s, "ids": ids,
                      "decoded": backend.decode(ids, skip_special_tokens=False),
                      "decoded_skip_special": backend.decode(ids, skip_special_tokens=True)})
    prompts = []
    for p in load_prompts():
        ids = backend.encode(p["text"], add_special_tokens=False).ids
        prompts.append({"id": p["id"], "text": p["text"], "ids": ids})
    chats = []
    for name, msgs in CONVERSATIONS:
        text = tok.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True)
        chats.append({"name": name, "messages": msgs, "system": "template",
                      "text": text, "ids": backend.encode(text, add_special_tokens=False).ids})
    # No system turn at all (a study that sets no system prompt): generic ChatML without a default.
    for name, msgs in CONVERSATIONS:
        if msgs[0]["role"] == "system":
            continue
        text = tok.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True,
                                       chat_template=CHATML_NO_DEFAULT)
        chats.append({"name": name + "-nosystem", "messages": msgs, "system": "none",
                      "text": text, "ids": backend.encode(text, add_special_tokens=False).ids})
    # Tokens after the user's text in a generation prompt: render with a marker user text.
    marker = "MARKER"
    t = tok.apply_chat_template([{"role": "user", "content": marker}], tokenize=False, add_generation_prompt=True)
    tail = t[t.rindex(marker) + len(marker):]
    tail_ids = backend.encode(tail, add_special_tokens=False).ids
    vocab = backend.get_vocab(with_added_tokens=True)
    special = {name: vocab[name] for name in ("<|endoftext|>", "<|im_start|>", "<|im_end|>") if name in vocab}
    out = {
        "model": gguf_name,
        "reference": f"transformers AutoTokenizer(gguf_file) {__import__('transformers').__version__}, "
                     f"tokenizers {__import__('tokenizers').__version__}",
        "pre_tokenizer": json.loads(backend.to_str())["pre_tokenizer"],
        "normalizer": json.loads(backend.to_str())["normalizer"],
        "vocab_size": backend.get_vocab_size(with_added_tokens=True),
        "bos_token": tok.bos_token, "eos_token": tok.eos_token,
        "special_ids": special,
        "chat_template": tok.chat_template,
        "generation_tail": {"text": tail, "ids": tail_ids},
        "cases": cases,
        "prompts": prompts,
        "chats": chats,
    }
    path = OUT / f"{short}.json"
    path.write_text(json.dumps(out, ensure_ascii=False, indent=1))
    print(f"wrote {path} ({path.stat().st_size} bytes)")


def gemma_fixture(gguf_name, short):
    """Gemma-3's SentencePiece vocabulary as transformers converts it from the GGUF file (GemmaTokenizer:
    BPE with byte fallback, merges in vocabulary order). The file has no chat template; the chat
    renderings are in fixtures_chat_templates.py. Skipped when the model is absent (make models-gemma)."""
    if not (MODELS / gguf_name).exists():
        print(f"skipping {short}: {MODELS / gguf_name} missing (make models-gemma)", file=sys.stderr)
        return
    tok = AutoTokenizer.from_pretrained(str(MODELS), gguf_file=gguf_name)
    backend = tok.backend_tokenizer
    strings = STRINGS + ["<start_of_turn>user\nHi<end_of_turn>\n<start_of_turn>model\n", "<bos><eos> <pad>",
                         "a\n\n\n\nb\n c", "tabs\t\t\tand    four spaces     five"]
    cases = []
    for s in strings:
        ids = backend.encode(s, add_special_tokens=False).ids
        cases.append({"text": s, "ids": ids,
                      "decoded": backend.decode(ids, skip_special_tokens=False),
                      "decoded_skip_special": backend.decode(ids, skip_special_tokens=True)})
    prompts = []
    for p in load_prompts():
        prompts.append({"id": p["id"], "text": p["text"], "ids": backend.encode(p["text"], add_special_tokens=False).ids})
    vocab = backend.get_vocab(with_added_tokens=True)
    special = {name: vocab[name] for name in ("<bos>", "<eos>", "<pad>", "<start_of_turn>", "<end_of_turn>")}
    out = {
        "model": gguf_name,
        "reference": f"transformers AutoTokenizer(gguf_file) {__import__('transformers').__version__}, "
                     f"tokenizers {__import__('tokenizers').__version__}",
        "vocab_size": backend.get_vocab_size(with_added_tokens=True),
        "bos_token": tok.bos_token, "eos_token": tok.eos_token,
        "special_ids": special,
        "cases": cases,
        "prompts": prompts,
    }
    path = OUT / f"{short}.json"
    path.write_text(json.dumps(out, ensure_ascii=False, indent=1))
    print(f"wrote {path} ({path.stat().st_size} bytes)")


def fix_smollm2(backend):
    backend.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Digits(individual_digits=True),
        pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=True)])


def fix_qwen2(backend):
    backend.normalizer = normalizers.NFC()


def training_corpus():
    text = []
    for name in ("harmful", "harmless"):
        text += [json.loads(l)["text"] for l in open(PROMPTS / f"{name}.jsonl", encoding="utf-8") if l.strip()]
    return text + STRINGS


def tiny_fixture(short, pre, normalizer, vocab_size, merges_as_strings):
    """A small byte-level BPE trained here; its tokenizer.json is the fixture's input."""
    tk = Tokenizer(models.BPE())
    tk.normalizer = normalizer
    tk.pre_tokenizer = pre
    tk.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  special_tokens=["<|endoftext|>", "<|im_start|>", "<|im_end|>"])
    tk.train_from_iterator(training_corpus(), trainer=trainer)
    tk.add_tokens(["<tool_call>"])  # a non-special added token
    doc = json.loads(tk.to_str())
    if merges_as_strings:
        doc["model"]["merges"] = [" ".join(m) if isinstance(m, list) else m for m in doc["model"]["merges"]]
    tk = Tokenizer.from_str(json.dumps(doc))
    cases = []
    for s in STRINGS + [p["text"] for p in load_prompts(20)]:
        ids = tk.encode(s, add_special_tokens=False).ids
        cases.append({"text": s, "ids": ids, "decoded": tk.decode(ids, skip_special_tokens=False)})
    out = {"reference": f"tokenizers {__import__('tokenizers').__version__}", "tokenizer": doc, "cases": cases}
    path = OUT / f"tiny-{short}.json"
    path.write_text(json.dumps(out, ensure_ascii=False, indent=None))
    print(f"wrote {path} ({path.stat().st_size} bytes)")


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    tiny_fixture("qwen2", pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(QWEN2_SPLIT), behavior="isolated"),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)]), normalizers.NFC(), 1200, False)
    tiny_fixture("digits", pre_tokenizers.Sequence([
        pre_tokenizers.Digits(individual_digits=True),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)]), None, 900, True)
    tiny_fixture("llama3", pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(LLAMA3_SPLIT), behavior="isolated"),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)]), None, 1000, False)
    tiny_fixture("gpt2", pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True), None, 700, True)
    model_fixture("SmolLM2-135M-Instruct.Q4_1.gguf", "smollm2", fix_smollm2)
    model_fixture("Qwen2.5-Coder-0.5B-Instruct.gguf", "qwen2.5-coder", fix_qwen2)
    gemma_fixture("gemma-3-270m.Q4_K_M.gguf", "gemma3")


if __name__ == "__main__":
    main()
