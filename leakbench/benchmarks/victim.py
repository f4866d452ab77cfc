"""The embedded victim against its control, on the mini subset.

    python -m leakbench.benchmarks.victim [--out runs/bench-victim] [--json OUT.json]

Builds the default victim and the control (the same recipe without the forget documents), times both, runs
leakbench_direct, leakbench_indirect and leakbench_retain on each, and prints build time, leak rates (with
per-field direct rates) and retain perplexity. The memorization-attributable leak is victim minus control.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

from leakbench.data.subjects import FIELDS
from leakbench.harness import evaluate
from leakbench.pipeline import LEAK_TASKS, leak_metrics
from leakbench.records import provenance, write_text_atomic
from leakbench.victim import VictimConfig, build


def run(out: Path, epochs: int | None = None) -> dict:
    figures: dict = {}
    base = VictimConfig(subset="mini")
    if epochs:
        base = dataclasses.replace(base, epochs=epochs)
    for label, cfg in (("victim", base), ("control", dataclasses.replace(base, control=True))):
        record = build(out / label, cfg)
        results = evaluate(out / label, out / "evals" / label, LEAK_TASKS, subset="mini", ner="none")
        r = results["results"]["leakbench_direct"]
        figures[label] = {
            "build_time_s": record["wall_time_s"],
            "parameters": record["parameters"],
            "training_tokens": record["training_tokens"],
            **leak_metrics(results),
            "direct_leak_rate_by_field": {f: r.get(f"direct_leak_rate__{f},none") for f in FIELDS},
        }
    v, c = figures["victim"], figures["control"]
    figures["memorization_attributable_direct_leak"] = v["direct_leak_rate"] - c["direct_leak_rate"]
    figures["retain_perplexity_ratio"] = v["retain_byte_perplexity"] / c["retain_byte_perplexity"]
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("runs/bench-victim"))
    parser.add_argument("--epochs", type=int, help="override the victim's forget exposures")
    parser.add_argument("--json", help="also write the figures (with provenance) to this file")
    args = parser.parse_args()
    f = run(args.out, args.epochs)
    for label in ("victim", "control"):
        g = f[label]
        print(
            f"{label:8s} build {g['build_time_s']:6.0f}s  {g['parameters'] / 1e6:.2f}M params  "
            f"direct {g['direct_leak_rate']:.3f}  indirect {g['indirect_leak_rate']:.3f}  "
            f"retain byte-ppl {g['retain_byte_perplexity']:.3f}  bits/byte {g['retain_bits_per_byte']:.3f}"
        )
        print(
            "          direct by field: "
            + ", ".join(f"{k} {v:.2f}" for k, v in g["direct_leak_rate_by_field"].items() if v is not None)
        )
    print(
        f"memorization-attributable direct leak: {f['memorization_attributable_direct_leak']:.3f}; "
        f"retain perplexity victim/control: {f['retain_perplexity_ratio']:.3f}"
    )
    if args.json:
        write_text_atomic(args.json, json.dumps(provenance(benchmark="victim", figures=f), indent=2) + "\n")


if __name__ == "__main__":
    main()
