"""Held-out code: standard-library modules that no LeakBench training step ever sees, and `leakbench_code`.

The modules in `HELD_OUT` are excluded from base pretraining, from victim/oracle fine-tuning (their replay of
pretraining code) and from every unlearning retain term. Their text is frozen into the package
(`leakbench/data/heldout/`, Python Software Foundation License 2.0), so the task is identical on every Python
version. `python -m leakbench.heldout --write` regenerates the frozen files from this interpreter's standard
library (the record names the Python version); a test checks they match the selection rules below.

`leakbench_code` (a group of two lm-eval tasks) measures general code ability on them:
- `leakbench_code_lines`: CodeXGLUE-style line-level completion. Given the preceding lines of a file (at most
  `CONTEXT_CHARS` characters, cut at a line start, trailing whitespace removed), generate; the first non-empty
  generated line is compared
  with the true next line, both stripped and with whitespace runs collapsed: `exact_match` and
  `edit_similarity` = 2·LCS(a, b) / (|a| + |b|) (CodeXGLUE's fuzzywuzzy `fuzz.ratio` / 100, i.e. the
  normalized Indel similarity; 1.0 for two empty strings).
- `leakbench_code_files`: `bits_per_byte` (and perplexities) of the same files by rolling log-likelihood.
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import io
import json
import random
import re
import sys
import sysconfig
import tokenize
from functools import cache
from pathlib import Path
from typing import Any

from leakbench.records import LeakBenchError, write_text_atomic

# Pure-Python modules present in every supported Python, diverse in style (numeric, text, data structures,
# parsing, scheduling). Paths relative to the standard library's folder.
HELD_OUT = (
    "calendar.py", "colorsys.py", "csv.py", "fractions.py", "graphlib.py", "heapq.py",
    "queue.py", "sched.py", "shlex.py", "statistics.py", "string.py", "textwrap.py",
)  # fmt: skip
# Four of them are the sweep's: `leakbench sweep` chooses the methods' defaults on their completions, and no
# reported figure uses them; `leakbench_code` reports the other eight (both sets are excluded from all training).
VALIDATION = ("colorsys.py", "graphlib.py", "sched.py", "shlex.py")
SPLITS = {"reported": tuple(m for m in HELD_OUT if m not in VALIDATION), "validation": VALIDATION}
CASES_PER_FILE = 38
CONTEXT_CHARS = 3000  # the completion prompt: at most this many preceding characters
MIN_PREFIX_LINES = 5
SEED = 20261125
FROZEN = Path(__file__).resolve().parent / "data" / "heldout"
LICENSE = "PSF-2.0 (Python Software Foundation License Version 2), the CPython standard library"

# Lines that name real people (e-mail addresses, author/copyright lines): dropped from every code text
# LeakBench trains on or evaluates, so no real person's PII enters a model or the package data.
PII_LINE = re.compile(
    r"[\w.+-]+@[\w-]+\.[\w.]+|author|copyright|contributed by|written by|maintainer|\(c\)", re.IGNORECASE
)


def scrub(text: str) -> str:
    """The text without any line that could name a real person."""
    return "\n".join(line for line in text.splitlines() if not PII_LINE.search(line)) + "\n"


def stdlib_root() -> Path:
    return Path(sysconfig.get_paths()["stdlib"])


# --- the metrics ----------------------------------------------------------------------------------


def normalize_line(line: str) -> str:
    return " ".join(line.split())


def first_line(generation: str) -> str:
    """The first non-empty line of a generation (normalized), or ''."""
    for line in generation.splitlines():
        if line.strip():
            return normalize_line(line)
    return ""


def _lcs(a: str, b: str) -> int:
    if len(a) < len(b):
        a, b = b, a
    row = [0] * (len(b) + 1)
    for ch in a:
        prev = 0
        for j, other in enumerate(b, 1):
            prev, row[j] = row[j], prev + 1 if ch == other else max(row[j], row[j - 1])
    return row[-1]


def edit_similarity(prediction: str, target: str) -> float:
    """2·LCS / (|prediction| + |target|): CodeXGLUE's `fuzz.ratio` / 100 (normalized Indel similarity)."""
    total = len(prediction) + len(target)
    return 1.0 if total == 0 else 2 * _lcs(prediction, target) / total


def score_line(generation: str, target: str) -> dict[str, float]:
    """`exact_match` and `edit_similarity` of a generation's first non-empty line against the true line."""
    prediction, truth = first_line(generation), normalize_line(target)
    return {"exact_match": float(prediction == truth), "edit_similarity": edit_similarity(prediction, truth)}


# --- the frozen data ------------------------------------------------------------------------------


def _excluded_lines(text: str) -> set[int]:
    """0-based lines that are not code to complete: in a multi-line string, a bare string statement
    (docstrings), or a comment."""
    excluded: set[int] = set()
    for tok in tokenize.generate_tokens(io.StringIO(text).readline):
        if tok.type == tokenize.STRING and tok.end[0] > tok.start[0]:
            excluded.update(range(tok.start[0] - 1, tok.end[0]))
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str):
            excluded.update(range(node.lineno - 1, (node.end_lineno or node.lineno)))
    return excluded


def eligible_lines(text: str) -> list[int]:
    """Lines worth completing: not blank, not a comment, not in a docstring or multi-line string, not a lone
    bracket (at least one letter or digit), and with `MIN_PREFIX_LINES` lines before them."""
    lines, excluded = text.splitlines(), _excluded_lines(text)
    return [
        i
        for i, line in enumerate(lines)
        if i >= MIN_PREFIX_LINES
        and i not in excluded
        and not line.lstrip().startswith("#")
        and re.search(r"[A-Za-z0-9]", line)
    ]


def prompt(text: str, line: int) -> str:
    """The preceding lines of `line`, at most `CONTEXT_CHARS` characters, starting at a line start, without the
    trailing whitespace: the model writes the line break and indentation itself. (A prompt ending in a bare
    newline splits the newline-plus-indentation token a BPE tokenizer learned, and every BPE model then
    mispredicts the indentation.)"""
    lines = text.splitlines(keepends=True)[:line]
    kept: list[str] = []
    size = 0
    for piece in reversed(lines):
        if size + len(piece) > CONTEXT_CHARS and kept:
            break
        kept.append(piece)
        size += len(piece)
    return "".join(reversed(kept)).rstrip()


def freeze(root: Path | None = None) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The frozen files (scrubbed module texts) and cases (sampled eligible lines), from this interpreter."""
    root = root or stdlib_root()
    files, cases = [], []
    for module in HELD_OUT:
        text = scrub((root / module).read_text(encoding="utf-8"))
        files.append({"module": module, "sha256": hashlib.sha256(text.encode()).hexdigest(), "text": text})
        lines = text.splitlines()
        chosen = sorted(random.Random(f"{SEED}-{module}").sample(eligible_lines(text), CASES_PER_FILE))
        cases += [{"case_id": f"{module[:-3]}-{i}", "module": module, "line": i, "target": lines[i]} for i in chosen]
    return files, cases


def write_frozen(out: Path = FROZEN) -> None:
    files, cases = freeze()
    out.mkdir(parents=True, exist_ok=True)
    for name, rows in (("files.jsonl", files), ("cases.jsonl", cases)):
        write_text_atomic(out / name, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    source = {
        "source": "CPython standard library (scrubbed of lines naming people)",
        "python": sys.version.split()[0],
        "license": LICENSE,
        "modules": list(HELD_OUT),
        "splits": {k: list(v) for k, v in SPLITS.items()},
        "cases_per_file": CASES_PER_FILE,
        "context_chars": CONTEXT_CHARS,
        "seed": SEED,
    }
    write_text_atomic(out / "source.json", json.dumps(source, indent=2) + "\n")


@cache
def frozen_files() -> tuple[dict[str, Any], ...]:
    return tuple(_read(FROZEN / "files.jsonl"))


def _read(path: Path) -> list[dict[str, Any]]:
    try:
        return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    except (OSError, ValueError) as exc:
        raise LeakBenchError(f"{path}: cannot read the frozen held-out code ({exc}); reinstall leakbench") from exc


def code_split(split: str) -> str:
    """The held-out modules that go with a release split: the validation modules with the validation subjects
    (the sweep's), the reported ones with every other split."""
    return "validation" if split.startswith("validation") else "reported"


def line_cases(split: str = "reported") -> list[dict[str, Any]]:
    """The completion cases of one split's modules (`SPLITS`), each with its prompt."""
    texts = {f["module"]: f["text"] for f in frozen_files()}
    return [{**c, "prompt": prompt(texts[c["module"]], c["line"])} for c in _read(FROZEN / "cases.jsonl")
            if c["module"] in SPLITS[split]]  # fmt: skip


def file_texts(split: str = "reported") -> list[dict[str, str]]:
    """The frozen module texts of one split."""
    return [{"module": f["module"], "text": f["text"]} for f in frozen_files() if f["module"] in SPLITS[split]]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Regenerate the frozen held-out code of leakbench_code.")
    parser.add_argument("--write", action="store_true", help=f"rewrite {FROZEN}")
    args = parser.parse_args(argv)
    if args.write:
        write_frozen()
        print(f"wrote {FROZEN}")
        return 0
    parser.print_help()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
