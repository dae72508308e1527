#!/usr/bin/env python3
"""TOML fixtures from Python's own parser (tomllib, Python >= 3.11), for ablab's TOML reader.

Writes Tests/StudyTests/Fixtures/toml_cases.json: a list of {"name", "text", "ok", "value"} where "ok" says
whether tomllib accepts the document and "value" is the parsed document with every value tagged by its
TOML type ({"string": ...}, {"integer": ...}, {"float": "repr"}, {"bool": ...}, {"datetime": null},
{"array": [...]}, {"table": [[key, value], ...]} in file order). Date-times are compared by type only.

Cases: hand-written documents covering the TOML 1.0 grammar and its table rules, every study file in
notebooks-scripts/studies/, and 400 deterministic mutations of the default study (printable ASCII
insertions, deletions and swaps) so that both parsers meet the same broken files.

Run: python3 notebooks-scripts/fixtures_toml.py   (no third-party packages needed)
"""
import datetime
import json
import math
import pathlib
import random
import tomllib

ROOT = pathlib.Path(__file__).resolve().parent.parent
OUT = ROOT / "Tests/StudyTests/Fixtures/toml_cases.json"

HAND = {
    # --- valid: scalars ---
    "strings": 'a = "basic \\t \\" \\\\ \\u00e9 \\U0001F680"\nb = \'literal \\n\'\nc = ""\nd = \'\'\n',
    "multiline-basic": 'a = """\nline one\nline two"""\nb = """trim \\\n    here"""\nc = """q""\"\"\"\nd = """a\\\n\n\n  b"""\n',
    "multiline-literal": "a = '''\nraw \\n text\n'''\nb = '''x''''\n",
    "integers": "a = 0\nb = +17\nc = -42\nd = 1_000_000\ne = 0xDEAD_beef\nf = 0o755\ng = 0b1101\nh = -0\n",
    "floats": "a = 1.0\nb = -3.14_15\nc = 5e+22\nd = 1E6\ne = -2E-2\nf = 6.626e-34\ng = inf\nh = -inf\ni = nan\nj = +nan\nk = 0.0\nl = 224_617.445_991_228\n",
    "bools": "a = true\nb = false\n",
    "datetimes": "a = 1979-05-27T07:32:00Z\nb = 1979-05-27T00:32:00.999999-07:00\nc = 1979-05-27 07:32:00\nd = 1979-05-27\ne = 07:32:00\nf = 00:32:00.5\ng = 2000-02-29\n",
    "arrays": "a = [1, 2, 3]\nb = [\"x\", 'y']\nc = [[1, 2], [\"a\"]]\nd = [\n  1, # one\n  2,\n]\ne = []\nf = [1, \"mixed\", 2.5, true]\ng = [ { x = 1 }, { y = [2] } ]\n",
    "inline-tables": "a = { x = 1, y = \"two\" }\nb = {}\nc = { d.e = 1, d.f = 2 }\nn = { o = { p = 3 } }\n",
    "keys": "bare_key-1 = 1\n\"quoted key\" = 2\n'literal key' = 3\n\"\" = 4\n1234 = 5\na.b.c = 6\na . d = 7\n\"x.y\" = 8\n",
    "comments-and-space": "# comment\n\n   \t a = 1 # trailing\n[t] # header comment\n  b = 2\n\r\nc = 3\r\n",
    # --- valid: tables ---
    "tables": "[a]\nx = 1\n[a.b]\ny = 2\n[c . \"d\" . e]\nz = 3\n",
    "implicit-then-explicit": "[a.b.c]\nx = 1\n[a]\ny = 2\n",
    "array-of-tables": "[[p]]\nname = \"one\"\n[[p]]\nname = \"two\"\n[p.sub]\nq = 1\n[[p.items]]\nk = 1\n[[p.items]]\nk = 2\n",
    "dotted-in-section": "[a]\nb.c = 1\nb.d = 2\n",
    "dotted-root-then-header-below": "a.b = 1\n[a.c]\nd = 2\n",
    "implicit-via-header-extended-by-dotted": "[a.b.c]\nx = 1\n[a]\nb.d = 2\n",
    "empty-document": "",
    "only-comments": "# nothing\n# here\n",
    # --- invalid ---
    "bad-no-value": "a = \n",
    "bad-no-equals": "a 1\n",
    "bad-bare-string": "a = hello\n",
    "bad-duplicate-key": "a = 1\na = 2\n",
    "bad-duplicate-table": "[a]\n[a]\n",
    "bad-table-after-dotted": "a.b = 1\n[a]\n",
    "bad-dotted-into-header-table": "[a.b]\nx = 1\n[a]\nb.y = 2\n",
    "bad-header-over-dotted": "[a]\nb.c = 1\n[a.b]\n",
    "bad-table-over-value": "a = 1\n[a]\n",
    "bad-array-table-over-array": "a = [1]\n[[a]]\n",
    "bad-table-over-array-table": "[[a]]\n[a]\n",
    "bad-inline-extend": "a = { b = 1 }\na.c = 2\n",
    "bad-inline-header": "a = { b = 1 }\n[a.c]\n",
    "bad-inline-multiline": "a = { b = 1,\n c = 2 }\n",
    "bad-inline-trailing-comma": "a = { b = 1, }\n",
    "bad-unclosed-string": "a = \"abc\n",
    "bad-unclosed-array": "a = [1, 2\n",
    "bad-unclosed-header": "[a\n",
    "bad-array-missing-comma": "a = [1 2]\n",
    "bad-escape": "a = \"\\q\"\n",
    "bad-unicode-escape": "a = \"\\uD800\"\n",
    "bad-leading-zero": "a = 012\n",
    "bad-double-underscore": "a = 1__0\n",
    "bad-trailing-underscore": "a = 10_\n",
    "bad-float-dot": "a = 1.\n",
    "bad-float-leading-dot": "a = .5\n",
    "bad-exponent": "a = 1e\n",
    "bad-hex-sign": "a = +0x10\n",
    "bad-octal-digit": "a = 0o8\n",
    "bad-date": "a = 2001-02-29\n",
    "bad-time": "a = 25:00:00\n",
    "bad-two-values": "a = 1 2\n",
    "bad-key-after-header": "[a] b = 1\n",
    "bad-control-in-string": "a = \"x\x01y\"\n",
    "bad-control-in-comment": "# x\x01\n",
    "bad-lone-cr": "a = 1\rb = 2\n",
    "bad-multiline-key": "\"\"\"k\"\"\" = 1\n",
    "bad-empty-bare-key": "= 1\n",
    "bad-true-prefix": "a = truex\n",
    "bad-dot-key-end": "a. = 1\n",
    "bad-header-empty": "[]\n",
    "bad-array-of-tables-unclosed": "[[a]\n",
    "nested-100": "a = " + "[" * 100 + "]" * 100 + "\n",
}


def tag(v):
    if isinstance(v, bool):
        return {"bool": v}
    if isinstance(v, int):
        return {"integer": v}
    if isinstance(v, float):
        return {"float": "nan" if math.isnan(v) else repr(v)}
    if isinstance(v, str):
        return {"string": v}
    if isinstance(v, (datetime.datetime, datetime.date, datetime.time)):
        return {"datetime": None}
    if isinstance(v, list):
        return {"array": [tag(x) for x in v]}
    if isinstance(v, dict):
        return {"table": [[k, tag(x)] for k, x in v.items()]}
    raise TypeError(type(v))


def case(name, text):
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError:
        return {"name": name, "text": text, "ok": False, "value": None}
    except RecursionError:
        return {"name": name, "text": text, "ok": False, "value": None}
    # Integers beyond 64 bits are valid for tomllib but not representable in ablab (nor allowed by TOML 1.0).
    return {"name": name, "text": text, "ok": True, "value": tag(doc)}


def fits64(v):
    if isinstance(v, bool):
        return True
    if isinstance(v, int):
        return -(2 ** 63) <= v < 2 ** 63
    if isinstance(v, list):
        return all(fits64(x) for x in v)
    if isinstance(v, dict):
        return all(fits64(x) for x in v.values())
    return True


def main():
    cases = [case(n, t) for n, t in HAND.items()]
    studies = sorted((ROOT / "notebooks-scripts/studies").glob("*.toml"))
    for p in studies:
        cases.append(case("study:" + p.name, p.read_text(encoding="utf-8")))
    base = (ROOT / "notebooks-scripts/studies/default.toml").read_text(encoding="utf-8")
    rng = random.Random(2510_02768)
    alphabet = "[]{}=\"'.,#\n \t_-+:0123456789abcdeftrunxoEZT"
    for k in range(400):
        s = list(base)
        for _ in range(rng.randint(1, 4)):
            op = rng.randrange(3)
            pos = rng.randrange(len(s) + 1)
            if op == 0:
                s.insert(pos, rng.choice(alphabet))
            elif op == 1 and s:
                del s[min(pos, len(s) - 1)]
            elif s:
                s[min(pos, len(s) - 1)] = rng.choice(alphabet)
        text = "".join(s)
        c = case(f"mutation:{k}", text)
        if c["ok"] and not fits64(tomllib.loads(text)):
            continue
        cases.append(c)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(cases, ensure_ascii=False, indent=0) + "\n", encoding="utf-8")
    ok = sum(c["ok"] for c in cases)
    print(f"wrote {OUT.relative_to(ROOT)}: {len(cases)} cases ({ok} valid, {len(cases) - ok} invalid)")


if __name__ == "__main__":
    main()
