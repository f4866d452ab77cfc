"""`leakbench sweep`: how each unlearning method's defaults are chosen, on validation items only.

The victim (the shipped one by default) memorized two disjoint sets of synthetic people: the forget subjects the
study reports, and the validation subjects. The sweep unlearns the validation subjects' documents
(`UnlearnConfig.split = "validation_forget"`) and scores the direct probes of those subjects and the four
validation held-out modules (`leakbench.heldout.SPLITS["validation"]`); no subject, probe or module it sees is
in any reported figure.

Every method gets the same budget: its grid (`Method.grid`) is a full product of exactly `GRID_POINTS` points over
its own hyper-parameters, the steps among them, and every point runs at `SEEDS` unlearning seeds. A point's
figures are means over its seeds: the direct leak rate, and utility kept = the smaller of the validation code's
edit similarity and bits/byte relative to the victim's. The record keeps every run, each point's means and the
Pareto front (the points no other point beats on both leak and utility kept). One rule, the same for every
method, picks the default among the points (`RULES`, in this order of preference):
1. among points keeping >= 99% (CodeEraser's bar) that cut the direct leak rate by >= 50% (Gu et al.'s), the
   lowest direct leak rate;
2. otherwise, among points keeping >= 91% (Gu et al.'s utility bar), the lowest direct leak rate;
3. otherwise, the point that keeps the most utility.
Each run's figures are written into OUT/sweep.json as it finishes (the record is its own cache): an interrupted
sweep resumes where it stopped, and a partial record can be committed and continued in another session.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from leakbench import __version__
from leakbench.data import check_subset, release_hash
from leakbench.harness import declarations_hash, evaluate
from leakbench.metrics import CODE, DIRECT, kept, metric, study_metrics
from leakbench.records import (
    LeakBenchError,
    UsageError,
    check_not_aliased,
    check_number,
    check_output,
    model_label,
    provenance,
    resolved,
)
from leakbench.schemas import SweepRecord, model_record
from leakbench.unlearn import GRID_POINTS, METHODS, OPTIONS, UnlearnConfig, check_methods, unlearn
from leakbench.workers import default_workers, output_to, run_each, workers_for

TASKS = [DIRECT, CODE]
SPLIT = "validation_forget"  # the subjects unlearned and probed; with it, leakbench_code takes the validation modules
SEEDS = 3  # unlearning seeds per point (0, 1, 2)
TARGET_KEPT = 0.99  # CodeEraser / the methods issue: utility kept
HALF = 0.5  # Gu et al.: the direct leak rate more than halved ...
PAPER_KEPT = 0.91  # ... with at least 91% of code ability kept
RULES = ("99% kept, >= 50% cut", "91% kept", "most utility kept")
UTILITY = ("code_edit_similarity", "code_bits_per_byte")  # utility kept = the smaller of these, relative to the victim


def grid_points(method: str) -> list[dict[str, Any]]:
    """Every combination of the method's grid values (the product, in declaration order)."""
    grid = METHODS[method].grid
    return [dict(zip(grid, values, strict=True)) for values in itertools.product(*grid.values())]


def _label(method: str, point: dict[str, Any]) -> str:
    return method + "".join(f"-{k}={v}" for k, v in point.items())


@dataclass(frozen=True)
class Run:
    """One point of one method at one seed."""

    method: str
    point: dict[str, Any]
    seed: int

    @property
    def label(self) -> str:
        return f"{_label(self.method, self.point)}@{self.seed}"

    def config(self, subset: str) -> UnlearnConfig:
        shared = {k: v for k, v in self.point.items() if k in OPTIONS}
        params = {k: v for k, v in self.point.items() if k not in shared}
        return UnlearnConfig(method=self.method, subset=subset, seed=self.seed, split=SPLIT, params=params, **shared)


@dataclass(frozen=True)
class Bench:
    """What a worker needs (picklable)."""

    victim: Path
    work: Path  # scratch: each run's model and lm-eval output, removed once scored
    subset: str
    limit: int | None  # probes and cases per task (smoke runs)
    logs: Path | None  # a worker's output goes to LOGS/<label>.log; None: printed here


def _figures(metrics: dict[str, float | None]) -> dict[str, float | None]:
    return {"direct_leak_rate": metrics["direct_leak_rate"], **{k: metrics[k] for k in UTILITY}}


def score_run(bench: Bench, run: Run) -> dict[str, Any]:
    """Unlearn the validation subjects with one point at one seed, score it, remove the scratch; the run's entry."""
    model_dir, run_dir = bench.work / "models" / run.label, bench.work / "runs" / run.label
    log = output_to(bench.logs / f"{run.label}.log") if bench.logs is not None else contextlib.nullcontext()
    with log:
        record = unlearn(bench.victim, model_dir, run.config(bench.subset), overwrite=True, log=print,
                         teachers=bench.work / "teachers")  # UNDO's teacher: once per seed, not per point
        figures = _figures(study_metrics(evaluate(model_dir, run_dir, TASKS, subset=bench.subset, split=SPLIT,
                                                     limit=bench.limit)))
    for folder in (model_dir, run_dir):
        shutil.rmtree(folder, ignore_errors=True)
    return {"method": run.method, "point": _label(run.method, run.point), "seed": run.seed,
            "hyperparameters": {k: record["hyperparameters"][k] for k in METHODS[run.method].defaults},
            "wall_time_s": record["wall_time_s"], "figures": figures}  # fmt: skip


def utility_kept(victim: dict[str, Any], figures: dict[str, Any]) -> float:
    """The smaller of edit similarity and bits/byte kept relative to the victim (0 when undefined)."""
    return min(kept(victim[k], figures[k], lower_is_better=metric(k).lower_is_better) or 0.0 for k in UTILITY)


def summarize_point(victim: dict[str, Any], runs: list[dict[str, Any]]) -> dict[str, Any]:
    """A point's means over its seeds, and its utility kept (of the means)."""
    means = {k: sum(r["figures"][k] for r in runs) / len(runs) for k in runs[0]["figures"]}
    return {"point": runs[0]["point"], "hyperparameters": runs[0]["hyperparameters"],
            "seeds": [r["seed"] for r in runs], "figures": means, "utility_kept": utility_kept(victim, means),
            "wall_time_s": sum(r["wall_time_s"] for r in runs) / len(runs)}  # fmt: skip


def pareto_front(points: list[dict[str, Any]]) -> list[str]:
    """The points no other point beats on both axes (lower direct leak, more utility kept), by leak."""

    def beaten(p: dict[str, Any]) -> bool:
        a, u = p["figures"]["direct_leak_rate"], p["utility_kept"]
        return any(q["figures"]["direct_leak_rate"] <= a and q["utility_kept"] >= u
                   and (q["figures"]["direct_leak_rate"] < a or q["utility_kept"] > u) for q in points)  # fmt: skip

    return [p["point"] for p in sorted(points, key=lambda p: p["figures"]["direct_leak_rate"]) if not beaten(p)]


def choose(victim: dict[str, Any], points: list[dict[str, Any]]) -> tuple[dict[str, Any], str]:
    """The chosen point and the rule that chose it (see the module doc)."""

    def cut(p: dict[str, Any]) -> float:
        return 1 - p["figures"]["direct_leak_rate"] / victim["direct_leak_rate"] if victim["direct_leak_rate"] else 0

    def lowest_leak(ps: list[dict[str, Any]]) -> dict[str, Any]:
        return min(ps, key=lambda p: p["figures"]["direct_leak_rate"])

    if best := [p for p in points if p["utility_kept"] >= TARGET_KEPT and cut(p) >= HALF]:
        return lowest_leak(best), RULES[0]
    if good := [p for p in points if p["utility_kept"] >= PAPER_KEPT]:
        return lowest_leak(good), RULES[1]
    return max(points, key=lambda p: p["utility_kept"]), RULES[2]


def check_options(model: str | Path, out: str | Path, methods: tuple[str, ...], *, subset: str, seeds: int,
                  jobs: int | None) -> None:  # fmt: skip
    """What every other verb checks, before any evaluation: the options (each method's configuration, as the
    points will run it), the victim, and an output that can be written and is not the victim."""

    check_subset(subset)
    check_methods(methods)
    check_number("--seeds", seeds, integer=True)
    check_number("--jobs", jobs, integer=True)
    for method in methods:
        if not METHODS[method].grid:
            raise UsageError(f"method {method} declares no sweep grid; give its Method a grid of {GRID_POINTS} points "
                             "(the same budget as every other method)")  # fmt: skip
        for point in grid_points(method):
            Run(method, point, 0).config(subset)
    check_output(out, kind="directory")
    if not (Path(model) / "config.json").is_file():
        what = "no such directory" if not Path(model).exists() else "no config.json"
        raise LeakBenchError(f"{model}: not a Hugging Face model directory ({what}) (--model)")
    check_not_aliased("--out", out, {"--model": model})
    if resolved(model) in resolved(out).parents:
        raise UsageError(f"--out {out} lies inside --model {model}: the sweep would write into the victim's folder; "
                         "choose another output")  # fmt: skip


def _previous(out: Path, key: dict[str, Any]) -> dict[str, Any]:
    """The runs of an earlier sweep into OUT under the same key (victim, release, code), by label; {} if none."""
    try:
        found = SweepRecord.find(out)
    except LeakBenchError:
        return {}  # a damaged record: swept again
    if found is None or found.key != key:
        return {}
    return {"victim": found.victim, **found.runs}


def run_sweep(model: str | Path, out: str | Path, methods: tuple[str, ...], *, subset: str = "mini", seeds: int = SEEDS,
              jobs: int | None = None, limit: int | None = None, log: Callable[[str], None] = print
              ) -> dict[str, Any]:  # fmt: skip
    """Sweep `methods` on the victim `model`'s validation subjects into `out`; returns (and writes) OUT/sweep.json,
    rewritten after every run."""
    check_options(model, out, methods, subset=subset, seeds=seeds, jobs=jobs)
    check_number("--limit", limit, integer=True)
    out, started = Path(out), time.perf_counter()
    record = model_record(model)
    key = {"victim": model_label(Path(model)), "subset": subset, "split": SPLIT, "release": release_hash(),
           "limit": limit, "leakbench": __version__, "declarations": declarations_hash(tuple(TASKS))}  # fmt: skip
    done = _previous(out, key)
    if not done:  # teachers kept by a sweep under another key (other code, victim or release) are not this one's
        shutil.rmtree(out / "work" / "teachers", ignore_errors=True)
    victim = done.pop("victim", None)
    if victim is None:
        log(f"sweep victim {model}: direct leaks of the validation subjects, validation code")
        victim = _figures(study_metrics(evaluate(model, out / "work" / "runs" / "victim", TASKS, subset=subset,
                                                 split=SPLIT, limit=limit)))  # fmt: skip
        shutil.rmtree(out / "work" / "runs" / "victim", ignore_errors=True)
    runs = done  # every finished run stays in the record, whichever methods this call sweeps
    todo = [run for m in methods for p in grid_points(m) for s in range(seeds)
            if (run := Run(m, p, s)).label not in runs]  # fmt: skip
    width = jobs or min(2, default_workers())
    if runs:
        log(f"sweep: {len(runs)} runs done already (reused), {len(todo)} to go")

    def write(complete: bool) -> dict[str, Any]:
        summary = SweepRecord(**provenance(
            kind="sweep", key=key, subset=subset, split=SPLIT, seeds=seeds, grid_points=GRID_POINTS,
            tasks=TASKS, rules=list(RULES), complete=complete,
            victim={"model": model_label(Path(model)), "seed": record.get("seed"),
                    "config_key": record.get("config_key"), **victim},
            methods=_methods(victim, runs, _swept(methods, runs), seeds), runs=runs,
            wall_time_s=round(time.perf_counter() - started, 1),
        ))  # fmt: skip
        summary.write(out)
        return summary.dump()

    total, count = len(todo), [0]

    def finished(run: Run, entry: dict[str, Any]) -> None:
        runs[run.label] = entry
        write(complete=False)
        count[0] += 1
        log(f"sweep {run.label}: direct leak {entry['figures']['direct_leak_rate']:.3f} ({count[0]}/{total})")

    bench = Bench(Path(model), out / "work", subset, limit, out / "work" / "logs" if width > 1 else None)
    with workers_for(width, threads=max(1, default_workers() // width)) as pool:
        run_each(pool, width, todo, functools.partial(score_run, bench), finished,
                 lambda run: log(f"sweep {run.label}"))  # fmt: skip
    shutil.rmtree(out / "work", ignore_errors=True)
    summary = write(complete=True)
    for method, row in summary["methods"].items():
        chosen = row["chosen"]
        log(f"sweep {method}: chose {chosen['point']} (direct leak {chosen['figures']['direct_leak_rate']:.3f}, "
            f"utility kept {chosen['utility_kept']:.3f}; {row['rule']})")  # fmt: skip
    return summary


def _swept(methods: tuple[str, ...], runs: dict[str, dict[str, Any]]) -> tuple[str, ...]:
    """This call's methods, then those an earlier call swept into the same record."""
    return tuple(dict.fromkeys([*methods, *(r["method"] for r in runs.values())]))


def _methods(victim: dict[str, Any], runs: dict[str, dict[str, Any]], methods: tuple[str, ...], seeds: int
             ) -> dict[str, dict[str, Any]]:  # fmt: skip
    """Per method whose every point has run at every seed: its points, Pareto front, chosen point and rule."""
    out = {}
    for method in methods:
        labels = [_label(method, p) for p in grid_points(method)]
        by_point = {label: [r for r in runs.values() if r["point"] == label] for label in labels}
        if any(len(found) < seeds for found in by_point.values()):
            continue
        points = [summarize_point(victim, found) for found in by_point.values()]
        chosen, rule = choose(victim, points)
        out[method] = {"points": points, "front": pareto_front(points), "chosen": chosen, "rule": rule}
    return out


def sweep_table(record: dict[str, Any]) -> str:
    """A sweep record's finished methods as Markdown (docs/unlearning.md's table): every point's mean direct leak,
    validation code figures and utility kept over its seeds, whether it is on the Pareto front (●), and the
    chosen point with the rule that chose it."""
    victim = record["victim"]
    lines = [f"Sweep victim ({victim['model']}) on the validation items: direct leak "
             f"{100 * victim['direct_leak_rate']:.1f}%, code edit similarity {victim['code_edit_similarity']:.3f}, "
             f"bits/byte {victim['code_bits_per_byte']:.3f}; {record['seeds']} seeds per point.", "",
             "| method | point | direct leak | code edit sim. | bits/byte | utility kept | front | unlearning s "
             "| chosen |",
             "| --- | --- | ---: | ---: | ---: | ---: | :---: | ---: | --- |"]  # fmt: skip
    for method, found in record["methods"].items():
        for p in found["points"]:
            f, name = p["figures"], p["point"]
            chosen = f"**{found['rule']}**" if name == found["chosen"]["point"] else ""
            lines.append(f"| `{method}` | {name.removeprefix(method + '-')} | {100 * f['direct_leak_rate']:.1f}% | "
                         f"{f['code_edit_similarity']:.3f} | {f['code_bits_per_byte']:.3f} | "
                         f"{100 * p['utility_kept']:.1f}% | {'●' if name in found['front'] else ''} | "
                         f"{p['wall_time_s']:.0f} | {chosen} |")  # fmt: skip
    return "\n".join(lines) + "\n"


if __name__ == "__main__":  # python -m leakbench.sweep [SWEEP_JSON]: print its table
    import sys

    print(sweep_table(SweepRecord.read(sys.argv[1] if len(sys.argv) > 1 else "results/sweep.json").dump()), end="")
