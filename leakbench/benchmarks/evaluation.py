"""Wall time of LeakBench's lm-eval tasks on one model, task by task, for a subset.

    python -m leakbench.benchmarks.evaluation --model DIR [--subset full] [--tasks ...] [--ner none] [--json OUT]

Each task runs alone through `leakbench.harness.evaluate` (lm-eval's `simple_evaluate`, hf backend), so the
time includes loading the model and the data, generation or log-likelihoods, and scoring. `scoring_s` is what
the scorer alone takes for the task's generations (re-scored from the logged samples in this process), so the
rest is lm-eval and the model.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from leakbench.data import read_table
from leakbench.harness import evaluate
from leakbench.metrics import DIRECT, DIRECT_SAMPLED, INDIRECT, INDIRECT_SAMPLED, RECONSTRUCT, RETAIN
from leakbench.records import provenance, write_text_atomic
from leakbench.scoring import LeakScorer

PROBE_TASKS = (DIRECT, INDIRECT, DIRECT_SAMPLED, INDIRECT_SAMPLED)


def _rescore_time(run_dir: Path, task: str, ner: str) -> float:
    subjects = {s["subject_id"]: s for s in read_table("subjects")}
    scorer = LeakScorer(list(subjects.values()), ner_model=ner)
    rows = [json.loads(line) for path in run_dir.rglob(f"samples_{task}_*.jsonl") for line in path.open()]
    started = time.perf_counter()
    for row in rows:
        doc = row["doc"]
        for generation in row["resps"][0] if row["resps"] else []:
            scorer.score(doc["prompt"], generation, doc["target_field"], subjects[doc["subject_id"]])
    return time.perf_counter() - started


def run(model: str, subset: str, tasks: list[str], ner: str, batch_size: int | str) -> dict:
    figures: dict = {"model": Path(model).name, "subset": subset, "ner": ner, "tasks": {}}
    with tempfile.TemporaryDirectory() as tmp:
        for task in tasks:
            started = time.perf_counter()
            results = evaluate(model, Path(tmp) / task, [task], subset=subset, ner=ner, batch_size=batch_size)
            wall = time.perf_counter() - started
            entry = {"wall_s": round(wall, 1), "n_docs": results["n-samples"][task]["effective"]}
            if task in PROBE_TASKS:
                entry["scoring_s"] = round(_rescore_time(Path(tmp) / task, task, ner), 1)
            figures["tasks"][task] = entry
            print(f"{task:28s} {entry['n_docs']:6d} docs  {wall:7.1f} s" +
                  (f"  (scoring {entry['scoring_s']:.1f} s)" if "scoring_s" in entry else ""), flush=True)  # fmt: skip
    figures["total_s"] = round(sum(t["wall_s"] for t in figures["tasks"].values()), 1)
    print(f"{'total':28s} {'':6s}       {figures['total_s']:7.1f} s")
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="model directory (e.g. a `leakbench victim build` output)")
    parser.add_argument("--subset", default="full", choices=("full", "mini"))
    parser.add_argument("--tasks", default=",".join((DIRECT, INDIRECT, RETAIN, RECONSTRUCT)),
                        help="comma-separated LeakBench tasks")  # fmt: skip
    parser.add_argument("--ner", default="none", help="Presidio NER model, or none (pattern-only)")
    parser.add_argument("--batch-size", default="32")
    parser.add_argument("--json", help="also write the figures (with provenance) to this file")
    args = parser.parse_args()
    batch = int(args.batch_size) if args.batch_size.isdigit() else args.batch_size
    figures = run(args.model, args.subset, args.tasks.split(","), args.ner, batch)
    if args.json:
        write_text_atomic(args.json, json.dumps(provenance(benchmark="evaluation", figures=figures), indent=2) + "\n")


if __name__ == "__main__":
    main()
