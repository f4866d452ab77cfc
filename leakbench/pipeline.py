"""`leakbench run`: the whole study, composed from the verbs.

victim (build or reuse) -> leak and retain tasks -> each unlearning method -> the tasks again -> a table of
leak rates before/after, retain utility, and the study's two headline ratios.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from leakbench.metrics import DIRECT, INDIRECT, RETAIN, direct_leak_reduction, kept, leak_change
from leakbench.records import (
    LeakBenchError,
    UsageError,
    check_number,
    check_output,
    dumps_record,
    model_record,
    provenance,
    write_text_atomic,
)
from leakbench.scoring.taxonomy import INDIRECT_LEAK_KINDS

LEAK_TASKS = [DIRECT, INDIRECT, RETAIN]
DEFAULT_METHODS = ("ga", "ga_gd", "ga_kl", "npo")
KINDS = INDIRECT_LEAK_KINDS  # the taxonomy's indirect kinds, in its order


@dataclass
class StudyConfig:
    out: Path
    subset: str = "mini"
    methods: tuple[str, ...] = DEFAULT_METHODS
    model: str | None = None  # an existing victim directory; None: build the embedded one
    victim: dict[str, Any] = field(default_factory=dict)  # VictimConfig overrides
    unlearn: dict[str, Any] = field(default_factory=dict)  # UnlearnConfig overrides, for every method
    ner: str | None = "none"  # pattern-only Presidio by default: the NER engine is ~8x slower on CPU
    batch_size: int | str = 32
    backend: str = "hf"  # lm-eval's model type: hf or vllm
    model_args: str = ""  # passed to the backend unchanged, after pretrained=<model dir>
    limit: int | None = None
    data_dir: Path | None = None
    utility: tuple[str, ...] = ("humaneval-mini",)  # EvalPlus datasets: humaneval, humaneval-mini, mbpp
    evalplus_dir: Path | None = None  # folder with the official EvalPlus files (offline)
    max_new_tokens: int = 128  # EvalPlus completions: tiny models ramble
    publish: bool = True
    publish_to: Path | None = None  # the leaderboard folder; None: the study's own --out folder

    def __post_init__(self) -> None:
        """Every option is checked here, before a model is built or a task runs."""
        from leakbench.data import check_subset
        from leakbench.unlearn import UnlearnConfig, check_methods
        from leakbench.utility import parse_datasets
        from leakbench.victim import VictimConfig

        check_subset(self.subset)
        check_methods(self.methods)
        parse_datasets(self.utility)
        self.batch_size = parse_batch_size(self.batch_size)
        from leakbench.harness import check_backend

        check_backend(self.backend, self.model_args)
        check_number("--limit", self.limit, integer=True)
        check_number("--max-new-tokens", self.max_new_tokens, integer=True)
        VictimConfig(subset=self.subset, **self.victim)
        for method in self.methods:
            UnlearnConfig(method=method, subset=self.subset, **self.unlearn)
        if self.model is not None and not Path(self.model).is_dir():
            raise LeakBenchError(f"{self.model}: no such model directory (--model)")
        if self.evalplus_dir is not None and not Path(self.evalplus_dir).is_dir():
            raise LeakBenchError(f"{self.evalplus_dir}: no such directory (--evalplus-dir)")
        check_output(self.out, kind="directory")
        if self.model is not None and any(
            Path(self.model).resolve().is_relative_to((Path(self.out) / sub).resolve()) for sub in ("models", "runs")
        ):
            raise UsageError(f"--model {self.model} lies inside --out {self.out}, which the study rewrites; move it")
        if self.ner is not None:
            from leakbench.scoring.engine import choose_ner_model

            choose_ner_model(self.ner)  # an unknown spaCy model fails here, not after the victim is trained
        if self.publish_to is not None:
            check_output(self.publish_to, kind="directory")


def parse_batch_size(value: int | str) -> int | str:
    """lm-eval's batch size: a positive integer, `auto`, or `auto:N` (N re-detections)."""
    text = str(value).strip()
    if text.isdigit() and int(text) > 0:
        return int(text)
    if text == "auto" or (text.startswith("auto:") and text[5:].isdigit() and int(text[5:]) > 0):
        return text
    raise UsageError(f"--batch-size must be a positive integer, 'auto' or 'auto:N', got {value!r}")


def leak_metrics(results: dict[str, Any]) -> dict[str, float]:
    """The headline numbers of one lm-eval result set (LeakBench tasks)."""
    r = results["results"]

    def get(task: str, metric: str) -> float:
        value = r.get(task, {}).get(f"{metric},none")
        return float(value) if isinstance(value, int | float) else math.nan

    out = {
        "direct_leak_rate": get(DIRECT, "direct_leak_rate"),
        "indirect_leak_rate": get(INDIRECT, "indirect_leak_rate"),
        "any_leak_rate_direct_probes": get(DIRECT, "any_leak_rate"),
        "any_leak_rate_indirect_probes": get(INDIRECT, "any_leak_rate"),
        "other_pii_rate": get(INDIRECT, "other_pii_rate"),
        "retain_bits_per_byte": get(RETAIN, "bits_per_byte"),
        "retain_byte_perplexity": get(RETAIN, "byte_perplexity"),
    }
    for kind in KINDS:  # over all probes: an indirect leak can answer a direct probe too
        out[f"{kind}_rate"] = (get(DIRECT, f"{kind}_rate") + get(INDIRECT, f"{kind}_rate")) / 2
    return out


def ratios(before: dict[str, float], after: dict[str, float]) -> dict[str, float | None]:
    """The study's headline ratios (defined in `leakbench.metrics`): relative direct-leak reduction, the change
    in indirect leakage, and retain utility kept (bits per byte: lower is better, so victim / unlearned)."""
    return {
        "direct_leak_reduction": direct_leak_reduction(before["direct_leak_rate"], after["direct_leak_rate"]),
        "indirect_leak_change": leak_change(before["indirect_leak_rate"], after["indirect_leak_rate"]),
        "retain_utility_retained": kept(before["retain_bits_per_byte"], after["retain_bits_per_byte"],
                                        lower_is_better=True),
    }  # fmt: skip


def run_study(cfg: StudyConfig, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Run the study into `cfg.out`; returns (and writes) `summary.json`.

    Layout: OUT/models/<label> (weights), OUT/runs/<label> (lm-eval outputs, utility.json, run.json: one
    leaderboard entry each), OUT/summary.json and OUT/summary.md.
    """
    import dataclasses

    from leakbench.harness import evaluate
    from leakbench.unlearn import UnlearnConfig, unlearn
    from leakbench.victim import VictimConfig, build

    started = time.perf_counter()
    out = Path(cfg.out)
    models, runs = out / "models", out / "runs"
    timings: dict[str, float] = {}

    def timed(label: str, fn: Callable[[], Any]) -> Any:
        t = time.perf_counter()
        value = fn()
        timings[label] = round(time.perf_counter() - t, 1)
        return value

    utility_sets = _utility_datasets(cfg, log)  # before any training: a missing file fails fast
    if cfg.model:
        victim_dir = Path(cfg.model)
        from leakbench.leaderboard.publish import model_fingerprint

        # folder name plus content: two studies of different victims in folders of the same name stay apart
        victim_name = f"{victim_dir.resolve().name}@{model_fingerprint(victim_dir)[:12]}"
        log(f"[1] victim: {victim_dir}")
    else:
        victim_dir = models / "victim"
        vcfg = dataclasses.replace(VictimConfig(subset=cfg.subset), **cfg.victim)
        victim_name = f"leakbench-tiny-{vcfg.key()[:8]}"
        log("[1] victim: build or reuse the embedded tiny code model")
        timed("victim", lambda: build(victim_dir, vcfg, data_dir=cfg.data_dir, log=log))
    vrecord = model_record(victim_dir)


    def evaluate_model(label: str, model_dir: Path, run: dict[str, Any]) -> dict[str, float]:
        run_dir = runs / label
        log(f"    {label}: {', '.join(LEAK_TASKS)} on the {cfg.subset} subset")
        results = timed(f"eval_{label}", lambda: evaluate(
            model_dir, run_dir, LEAK_TASKS, subset=cfg.subset, data_dir=cfg.data_dir, ner=cfg.ner,
            batch_size=cfg.batch_size, limit=cfg.limit, backend=cfg.backend, model_args=cfg.model_args,
        ))  # fmt: skip
        for dataset, mini in utility_sets:
            from leakbench.utility import run_utility

            log(f"    {label}: EvalPlus {dataset}{'-mini' if mini else ''}")
            timed(f"utility_{label}_{dataset}", lambda d=dataset, m=mini: run_utility(
                run_dir / "utility" / d, d, model_dir=model_dir, mini=m, data_dir=cfg.evalplus_dir,
                limit=cfg.limit, max_new_tokens=cfg.max_new_tokens, overwrite=True,
            ))  # fmt: skip
        metrics = leak_metrics(results)
        record = {**run, "model_source": _study_source(model_dir, out), "metrics": metrics, "provenance": provenance()}
        write_text_atomic(run_dir / "run.json", dumps_record(record))
        return metrics

    log("[2] leak, retain and utility tasks on the victim")
    victim_run = {
        "model_name": victim_name, "role": "victim", "method": "none", "parameters": vrecord.get("parameters"),
        "seeds": {"victim": vrecord.get("seed")}, "wall_times_s": {"victim_build": vrecord.get("wall_time_s")},
    }  # fmt: skip
    rows: dict[str, dict[str, Any]] = {"victim": {"metrics": evaluate_model("victim", victim_dir, victim_run)}}
    for i, method in enumerate(cfg.methods, 3):
        log(f"[{i}] unlearning: {method}")
        ucfg = UnlearnConfig(method=method, subset=cfg.subset, **cfg.unlearn)
        record = timed(f"unlearn_{method}", lambda m=method, u=ucfg: unlearn(
            victim_dir, models / m, u, data_dir=cfg.data_dir, overwrite=True, log=log))  # fmt: skip
        run = {
            "model_name": f"{victim_name}/{method}", "role": "unlearned", "method": method,
            "hyperparameters": record["hyperparameters"], "baseline_model_name": victim_name,
            "parameters": vrecord.get("parameters"),
            "seeds": {"victim": vrecord.get("seed"), "unlearn": record["seed"]},
            "wall_times_s": {"victim_build": vrecord.get("wall_time_s"), "unlearn": record["wall_time_s"]},
        }  # fmt: skip
        metrics = evaluate_model(method, models / method, run)
        rows[method] = {
            "metrics": metrics,
            "ratios": ratios(rows["victim"]["metrics"], metrics),
            "unlearn": {k: record[k] for k in ("hyperparameters", "steps", "wall_time_s", "loss_before", "loss_after")},
        }
    published = None
    board = Path(cfg.publish_to) if cfg.publish_to is not None else out
    if cfg.publish:
        from leakbench.leaderboard import publish

        log(f"[{len(cfg.methods) + 3}] publishing into {board}")
        published = publish([runs / label for label in rows], board / "leaderboard.json", board / "index.html")
    summary = provenance(
        kind="study",
        subset=cfg.subset,
        methods=list(cfg.methods),
        victim=victim_name,
        utility=[f"{d}{'-mini' if m else ''}" for d, m in utility_sets],
        rows=rows,
        published=published,
        timings_s=timings,
        wall_time_s=round(time.perf_counter() - started, 1),
    )
    for folder in dict.fromkeys([out, board] if cfg.publish else [out]):  # the study's folder and the board's
        write_text_atomic(folder / "summary.json", json.dumps(summary, indent=2, default=str) + "\n")
        write_text_atomic(folder / "summary.md", summary_table(rows))
    return summary


def _study_source(model_dir: Path, out: Path) -> str | None:
    """A model built by the study is published by its place in the study folder (portable); any other model
    by what `leakbench publish` derives from its directory (None here)."""
    try:
        return f"study:{Path(model_dir).resolve().relative_to(out.resolve()).as_posix()}"
    except ValueError:
        return None


def _utility_datasets(cfg: StudyConfig, log: Callable[[str], None]) -> list[tuple[str, bool]]:
    """The EvalPlus datasets to run: those whose data can be loaded (local files, or EvalPlus's download)."""
    from leakbench.utility import load_problems, parse_datasets

    chosen = []
    for dataset, mini in parse_datasets(cfg.utility):
        name = f"{dataset}{'-mini' if mini else ''}"
        try:
            load_problems(dataset, mini, cfg.evalplus_dir)
            chosen.append((dataset, mini))
        except LeakBenchError as exc:
            if cfg.evalplus_dir is not None:  # files the user pointed at must load
                raise
            log(f"    EvalPlus {name} skipped: {exc}")
    return chosen


def _pct(x: float | None) -> str:
    return "n/a" if x is None or math.isnan(x) else f"{100 * x:.1f}%"


TABLE_COLUMNS = (
    "model", "direct leak", "indirect leak", "reformatted", "partial", "cross-attr.", "cross-subj.",
    "retain bits/byte", "direct-leak reduction", "retain utility kept", "indirect change",
)  # fmt: skip


def table_cells(rows: dict[str, dict[str, Any]]) -> list[list[str]]:
    """The study table's cells, one list per model, in TABLE_COLUMNS order (Markdown file and console alike)."""
    cells = []
    for name, row in rows.items():
        m, r = row["metrics"], row.get("ratios", {})
        change = r.get("indirect_leak_change")
        cells.append([
            name, _pct(m["direct_leak_rate"]), _pct(m["indirect_leak_rate"]), *(_pct(m[f"{k}_rate"]) for k in KINDS),
            f"{m['retain_bits_per_byte']:.3f}", _pct(r.get("direct_leak_reduction")),
            _pct(r.get("retain_utility_retained")), "" if change is None else f"{100 * change:+.1f} pts",
        ])  # fmt: skip
    return cells


def summary_table(rows: dict[str, dict[str, Any]]) -> str:
    """The study table as Markdown: one row per model."""
    lines = ["| " + " | ".join(TABLE_COLUMNS) + " |", "|" + " --- |" * len(TABLE_COLUMNS)]
    lines += ["| " + " | ".join(cells) + " |" for cells in table_cells(rows)]
    return "\n".join(lines) + "\n"
