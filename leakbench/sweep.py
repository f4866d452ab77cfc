"""`leakbench sweep`: how each unlearning method's defaults are chosen, on a victim that is not the reported one.

For every method, each hyper-parameter in its grid (`leakbench.unlearn.METHODS[m].grid`) is varied in turn, the
others at their defaults; every point is unlearned from the sweep's victim and scored on the direct probes and
the held-out code (`leakbench_direct`, `leakbench_code`). Utility kept is the smaller of the code edit
similarity and bits/byte relative to the victim's. The chosen point is, in this order of preference:
1. among points keeping >= 99% (CodeEraser's bar) that cut the direct leak rate by >= 50% (Gu et al.'s), the
   lowest direct leak rate;
2. otherwise, among points keeping >= 91% (Gu et al.'s utility bar), the lowest direct leak rate;
3. otherwise, the point that keeps the most utility.
The study's victim is built with another seed, so no default is tuned on reported numbers.
Each point's figures are kept as it finishes: an interrupted sweep resumes where it stopped.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from leakbench.data import check_subset
from leakbench.harness import evaluate
from leakbench.metrics import CODE, DIRECT, kept, metric, study_metrics
from leakbench.records import (
    LeakBenchError,
    UsageError,
    check_not_aliased,
    check_output,
    model_label,
    provenance,
    resolved,
    write_text_atomic,
)
from leakbench.schemas import SweepRecord, model_record
from leakbench.unlearn import METHODS, UnlearnConfig, check_methods, unlearn

TASKS = [DIRECT, CODE]
TARGET_KEPT = 0.99  # CodeEraser / the methods issue: utility kept
HALF = 0.5  # Gu et al.: the direct leak rate more than halved ...
PAPER_KEPT = 0.91  # ... with at least 91% of code ability kept
RULES = ("99% kept, >= 50% cut", "91% kept", "most utility kept")
UTILITY = ("code_edit_similarity", "code_bits_per_byte")  # utility kept = the smaller of these, relative to the victim


def grid_points(method: str) -> list[dict[str, Any]]:
    """One-at-a-time grid: each grid value of each hyper-parameter, the others at the method's defaults (the
    defaults themselves first)."""

    spec = METHODS[method]
    points: list[dict[str, Any]] = [{}]
    for name, values in spec.grid.items():
        points.extend({name: v} for v in values if v != spec.defaults[name])
    return points


def _label(method: str, point: dict[str, Any]) -> str:
    """The point's folder name: the method and the values of its grid's hyper-parameters (stable when the
    defaults later move to a chosen point)."""

    values = {k: point.get(k, METHODS[method].defaults[k]) for k in METHODS[method].grid}
    return method + "".join(f"-{k}={v}" for k, v in values.items())


POINT = "sweep_point.json"  # a point's figures in its run folder, with the key they were measured under


def _cached(run_dir: Path, key: dict[str, Any]) -> dict[str, Any] | None:
    """A point's figures measured under `key` (same victim, subset, seed and point), or None: an interrupted
    sweep resumes, and a sweep of another victim into the same --out measures again."""
    try:
        found = json.loads((run_dir / POINT).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return found.get("figures") if isinstance(found, dict) and found.get("key") == key else None


def _score(model_dir: Path, run_dir: Path, subset: str, key: dict[str, Any]) -> dict[str, Any]:
    metrics = study_metrics(evaluate(model_dir, run_dir, TASKS, subset=subset))
    figures = {"direct_leak_rate": metrics["direct_leak_rate"], **{k: metrics[k] for k in UTILITY}}
    write_text_atomic(run_dir / POINT, json.dumps({"key": key, "figures": figures}) + "\n")
    return figures


def choose(victim: dict[str, Any], points: list[dict[str, Any]]) -> tuple[dict[str, Any], str]:
    """The chosen point and the rule that chose it (see the module doc): "99% kept, >= 50% cut", "91% kept"
    or "most utility kept"."""

    def utility(p: dict[str, Any]) -> float:
        return min(kept(victim[k], p["figures"][k], lower_is_better=metric(k).lower_is_better) or 0.0 for k in UTILITY)

    def cut(p: dict[str, Any]) -> float:
        return 1 - p["figures"]["direct_leak_rate"] / victim["direct_leak_rate"] if victim["direct_leak_rate"] else 0

    def lowest_leak(ps: list[dict[str, Any]]) -> dict[str, Any]:
        return min(ps, key=lambda p: p["figures"]["direct_leak_rate"])

    if best := [p for p in points if utility(p) >= TARGET_KEPT and cut(p) >= HALF]:
        return lowest_leak(best), RULES[0]
    if good := [p for p in points if utility(p) >= PAPER_KEPT]:
        return lowest_leak(good), RULES[1]
    return max(points, key=utility), RULES[2]


def check_options(model: str | Path, out: str | Path, methods: tuple[str, ...], *, subset: str, seed: int) -> None:
    """What every other verb checks, before any evaluation: the options (each method's configuration, as the
    points will run it), the victim, and an output that can be written and is not the victim."""

    check_subset(subset)
    check_methods(methods)
    for method in methods:
        UnlearnConfig(method=method, subset=subset, seed=seed)
    check_output(out, kind="directory")
    if not (Path(model) / "config.json").is_file():
        what = "no such directory" if not Path(model).exists() else "no config.json"
        raise LeakBenchError(f"{model}: not a Hugging Face model directory ({what}) (--model)")
    check_not_aliased("--out", out, {"--model": model})
    if resolved(model) in resolved(out).parents:
        raise UsageError(f"--out {out} lies inside --model {model}: the sweep would write into the victim's folder; "
                         "choose another output")  # fmt: skip


def run_sweep(model: str | Path, out: str | Path, methods: tuple[str, ...], *, subset: str = "mini",
              seed: int = 0, log: Callable[[str], None] = print) -> dict[str, Any]:  # fmt: skip
    """Sweep `methods` on the victim `model` into `out`; returns (and writes) OUT/sweep.json."""

    check_options(model, out, methods, subset=subset, seed=seed)
    out = Path(out)
    record = model_record(model)
    log(f"sweep victim {model}: leak and code utility")
    base_key = {"victim": model_label(Path(model)), "subset": subset, "seed": seed}
    victim_dir = out / "runs" / "victim"
    victim = _cached(victim_dir, base_key) or _score(Path(model), victim_dir, subset, base_key)
    results: dict[str, Any] = {}
    for method in methods:
        rows, spec = [], METHODS[method]
        for point in grid_points(method):
            label = _label(method, point)
            run_dir, model_dir = out / "runs" / label, out / "models" / label
            key = {**base_key, "point": label}
            figures = _cached(run_dir, key)
            if figures is None:
                log(f"sweep {label}")
                shared = {k: v for k, v in point.items() if k in ("steps", "lr", "retain_weight", "beta")}
                params = {k: v for k, v in point.items() if k not in shared}
                unlearn(model, model_dir, UnlearnConfig(method=method, subset=subset, seed=seed, params=params,
                                                        **shared), overwrite=True, log=log)  # fmt: skip
                figures = _score(model_dir, run_dir, subset, key)
            ran = model_record(model_dir)  # what the point ran with, whatever the defaults are now
            rows.append({"point": label, "hyperparameters": {k: ran["hyperparameters"][k] for k in spec.defaults},
                         "wall_time_s": ran["wall_time_s"], "figures": figures})  # fmt: skip
        chosen, rule = choose(victim, rows)
        results[method] = {"points": rows, "chosen": chosen["hyperparameters"], "rule": rule}
        log(f"sweep {method}: chose {chosen['point']} (direct leak "
            f"{chosen['figures']['direct_leak_rate']:.3f}; {rule})")  # fmt: skip
    summary = SweepRecord(**provenance(
        kind="sweep", subset=subset, seed=seed, tasks=TASKS, rules=list(RULES),
        victim={"model": model_label(Path(model)), "seed": record.get("seed"), "config_key": record.get("config_key"),
                "figures": victim},
        methods=results,
    ))  # fmt: skip
    summary.write(out)
    return summary.dump()
