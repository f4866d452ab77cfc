"""Wall time of the robustness stage per method on a finished study (the robustness issue's target: <= 5 minutes
per method on mini, 2 cores), without writing into the study.

    python -m leakbench.benchmarks.robustness --study runs/study [--methods ga,npo] [--json OUT.json]
    python -m leakbench.benchmarks.robustness --study runs/study --relearn-lrs 1e-4,3e-4,1e-3

The second form is how the relearning attack's learning rate was chosen: per rate, the victim's direct leak on
the evaluated subjects after benign relearning (retain documents; it should stay where it was) and the oracle's
on the slice after the attack.

Times the shared references once (the victim and the oracle measured, the oracle relearned, the victim
quantized) and then each method's four axes (`Robustness.assess`: its unlearned model measured, the relearning
attack and its benign variant, two quantized loads, K sequential and the smaller forget-set unlearning runs).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from leakbench.corpus import retain_training_documents
from leakbench.records import provenance, write_text_atomic
from leakbench.robustness import Robustness, RobustnessConfig, documents_of, unlearn_overrides
from leakbench.schemas import model_record

TARGET_S = 300.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--study", required=True, type=Path, help="a finished `leakbench run` --out folder")
    parser.add_argument("--methods", help="comma-separated methods of the study (default: all of them)")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--relearn-lrs", help="instead: comma-separated relearning rates to compare")
    args = parser.parse_args(argv)
    summary = json.loads((args.study / "summary.json").read_text(encoding="utf-8"))
    rows = summary["rows"]
    methods = [m.strip() for m in args.methods.split(",")] if args.methods else summary["methods"]
    models = args.study / "models"
    stage = Robustness(models / rows["victim"]["runs"][0]["label"], models / rows["oracle"]["runs"][0]["label"],
                       RobustnessConfig(), subset=summary["subset"], log=lambda m: None)  # fmt: skip
    if args.relearn_lrs:
        return compare_relearn_rates(stage, [float(x) for x in args.relearn_lrs.split(",")])
    started = time.perf_counter()
    stage.references()
    figures: dict[str, object] = {"references_s": round(time.perf_counter() - started, 1)}
    print(f"{'references':10s} {figures['references_s']:6.1f} s (once per victim)", flush=True)
    with tempfile.TemporaryDirectory(prefix="leakbench-bench-") as tmp:
        for method in methods:
            model_dir = models / rows[method]["runs"][0]["label"]
            started = time.perf_counter()
            stage.assess(method, model_dir, unlearn_overrides(model_record(model_dir)), work=tmp)
            total = time.perf_counter() - started
            figures[method] = {"total_s": round(total, 1), "within_target": total <= TARGET_S}
            print(f"{method:10s} {total:6.1f} s{'' if total <= TARGET_S else f'  (over the {TARGET_S:.0f} s target)'}",
                  flush=True)  # fmt: skip
    if args.json:
        write_text_atomic(args.json, json.dumps(provenance(benchmark="robustness", **figures), indent=2) + "\n")
    return 0


def compare_relearn_rates(stage: Robustness, rates: list[float]) -> int:
    import dataclasses


    sliced, evaluated = stage.parts["relearn"]  # the relearning attack's split: slice, evaluated subjects
    victim = stage.meter.measure(*stage.load_model(stage.victim_dir), utility=False).on(evaluated)
    print(f"victim: direct leak {100 * victim['direct_leak_rate']:.1f}% on the {len(evaluated)} evaluated "
          "subjects", flush=True)  # fmt: skip
    retain = retain_training_documents(stage.subset, stage.data_dir)
    for lr in rates:
        stage.cfg = dataclasses.replace(stage.cfg, relearn_lr=lr)
        benign = stage.relearned(stage.victim_dir, retain).on(evaluated)
        oracle = stage.relearned(stage.oracle_dir, documents_of(stage.docs, sliced)).on(sliced)
        print(f"lr {lr:g}: victim after benign relearning {100 * benign['direct_leak_rate']:.1f}% (evaluated "
              f"subjects); oracle after the attack {100 * oracle['direct_leak_rate']:.1f}% on the slice, exact "
              f"memorization {oracle['exact_memorization']:.3f}", flush=True)  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
