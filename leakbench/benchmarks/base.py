"""The base scaling table: width, depth and training tokens against held-out code metrics.

    python -m leakbench.benchmarks.base [--out runs/bench-base] [--tokens 2500000] [--json OUT.json]
    python -m leakbench.benchmarks.base --model leakbench/models/base   # evaluate one base only

Pretrains each configuration of `SIZES` for the same token budget (resumable: rerun after an interruption),
runs `leakbench_code` on it, and prints parameters, tokens, tokens/s, held-out bits/byte, line edit
similarity and exact match (the README's scaling table).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from leakbench.base import BaseConfig, build
from leakbench.harness import evaluate
from leakbench.metrics import CODE, code_metrics
from leakbench.records import provenance, write_text_atomic

SIZES = {"h96-l3": {"hidden": 96, "layers": 3}, "h128-l4": {"hidden": 128, "layers": 4},
         "h192-l4": {"hidden": 192, "layers": 4}}  # fmt: skip
COLUMNS = ("model", "parameters", "tokens", "tokens/s", "held-out bits/byte", "line edit sim.", "line exact match")


def measure(model_dir: Path, out: Path) -> dict[str, Any]:
    record = json.loads((model_dir / "base.json").read_text(encoding="utf-8"))
    metrics = code_metrics(evaluate(model_dir, out, [CODE], batch_size=32))
    return {
        "parameters": record["parameters"], "tokens": record["tokens_seen"],
        "tokens_per_s": round(record["tokens_seen"] / record["wall_time_s"]), "wall_time_s": record["wall_time_s"],
        **metrics,
    }  # fmt: skip


def row(name: str, f: dict[str, Any]) -> str:
    scores = (f"{f[m]:.3f}" for m in ("code_bits_per_byte", "code_edit_similarity", "code_exact_match"))
    cells = [name, f"{f['parameters'] / 1e6:.2f}M", f"{f['tokens'] / 1e6:.1f}M", f"{f['tokens_per_s']:,}", *scores]
    return "| " + " | ".join(cells) + " |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("runs/bench-base"))
    parser.add_argument("--tokens", type=int, default=2_500_000, help="training budget of each size")
    parser.add_argument("--model", type=Path, action="append", help="evaluate this base instead of training SIZES")
    parser.add_argument("--json", help="also write the figures (with provenance) to this file")
    args = parser.parse_args()
    figures: dict[str, Any] = {}
    targets = [(m.name, m) for m in args.model] if args.model else []
    for name, size in ({} if args.model else SIZES).items():
        cfg = BaseConfig(tokens=args.tokens, warmup_steps=30, **size)
        build(args.out / name, cfg)
        targets.append((name, args.out / name))
    for name, model_dir in targets:
        figures[name] = measure(model_dir, args.out / "evals" / name)
    print("| " + " | ".join(COLUMNS) + " |\n|" + " --- |" * len(COLUMNS))
    print("\n".join(row(name, f) for name, f in figures.items()))
    if args.json:
        write_text_atomic(args.json, json.dumps(provenance(kind="benchmark-base", figures=figures), indent=2) + "\n")


if __name__ == "__main__":
    main()
