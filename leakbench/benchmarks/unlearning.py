"""Wall time of each unlearning method at its defaults on one victim (the methods issue's target: <= 60 s per
method on mini, 2 cores; the methods aimed at relearning, UNDO and sharpness-aware NPO: <= 2x GA+GD's time).

    python -m leakbench.benchmarks.unlearning --model leakbench/models/victim [--methods all] [--json OUT.json]

Times the whole `leakbench.unlearn.unlearn` call (loading, encoding, the before/after losses, training, saving)
and reports its training part (`wall_time_s` of the record) beside it, and, when GA+GD is among the methods,
each method's time as a multiple of GA+GD's.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from leakbench.records import provenance, write_text_atomic
from leakbench.unlearn import UnlearnConfig, expand_methods, unlearn

TARGET_S = 60.0
TARGET_VS_GA_GD = 2.0  # UNDO and sharpness-aware NPO: at most twice GA+GD's time


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", required=True, help="the victim to unlearn")
    parser.add_argument("--methods", default="all", help="comma-separated methods, or 'all'")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)
    rows = {}
    with tempfile.TemporaryDirectory(prefix="leakbench-bench-") as tmp:
        for method in expand_methods([m.strip() for m in args.methods.split(",") if m.strip()]):
            started = time.perf_counter()
            record = unlearn(args.model, Path(tmp) / method, UnlearnConfig(method=method), log=lambda m: None)
            total = time.perf_counter() - started
            rows[method] = {"total_s": round(total, 1), "training_s": record["wall_time_s"],
                            "within_target": total <= TARGET_S}  # fmt: skip
            print(f"{method:8s} {total:6.1f} s in all, {record['wall_time_s']:6.1f} s training"
                  f"{'' if total <= TARGET_S else f'  (over the {TARGET_S:.0f} s target)'}", flush=True)
    if "ga_gd" in rows:
        for method, row in rows.items():
            row["vs_ga_gd"] = round(row["total_s"] / rows["ga_gd"]["total_s"], 2)
            over = row["vs_ga_gd"] > TARGET_VS_GA_GD
            print(f"{method:8s} {row['vs_ga_gd']:5.2f}x GA+GD's time{'  (over 2x)' if over else ''}", flush=True)
    if args.json:
        write_text_atomic(args.json, json.dumps(provenance(benchmark="unlearning", methods=rows), indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
