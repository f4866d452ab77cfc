"""Wall time of every privacy metric for one model (the README's figure; the target is <= 60 s on mini, 2 cores).

    python -m leakbench.benchmarks.privacy --model runs/study/models/victim [--reference oracle.json]
        [--subset mini] [--repeats 3] [--json OUT.json]

Runs `leakbench.privacy.measure` (loading, token statistics of the forget and holdout values and of the
truth-ratio rows, every metric) `--repeats` times and prints the fastest and median wall time with the metrics.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

from leakbench.privacy import PrivacyConfig, measure
from leakbench.records import provenance, write_text_atomic


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", required=True, help="model directory to measure")
    parser.add_argument("--reference", type=Path, help="the oracle's privacy record (adds PrivLeak, forget quality)")
    parser.add_argument("--subset", default="mini")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)
    reference = json.loads(args.reference.read_text(encoding="utf-8")) if args.reference else None
    cfg = PrivacyConfig(subset=args.subset)
    times, record = [], {}
    for _ in range(args.repeats):
        started = time.perf_counter()
        record = measure(args.model, cfg, reference=reference)
        times.append(time.perf_counter() - started)
    figures = {
        "model": record["model"], "subset": args.subset, "repeats": args.repeats,
        "fastest_s": round(min(times), 1), "median_s": round(statistics.median(times), 1),
        "counts": record["counts"], "metrics": record["metrics"],
    }  # fmt: skip
    print(f"privacy metrics of {record['model']} on {args.subset}: fastest {figures['fastest_s']} s, median "
          f"{figures['median_s']} s over {args.repeats} runs ({record['counts']})")  # fmt: skip
    for name, value in record["metrics"].items():
        print(f"  {name:24s} {value:.4g}" if value is not None else f"  {name:24s} n/a")
    if args.json:
        write_text_atomic(args.json, json.dumps(provenance(**figures), indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
