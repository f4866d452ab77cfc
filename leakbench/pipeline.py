"""`leakbench run`: the whole study, composed from the verbs.

victim and oracle (fine-tunes of the embedded base, built or reused) -> leak, near-neighbour, held-out code,
EvalPlus and privacy measurements on both -> each unlearning method (over several seeds) -> the same again -> a
table of leak rates, memorization and membership inference, utility kept relative to the victim, and every
row's gap to the oracle (the model that never saw the forget set), as mean ± 95% CI over seeds.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from leakbench.leaderboard.schema import INCOMPLETE, ROBUSTNESS_RECORD, RunRecord
from leakbench.metrics import (
    CODE,
    DIRECT,
    HEADLINE_UTILITY,
    INDIRECT,
    KIND_METRICS,
    LEAKS,
    PRIVACY,
    RETAIN,
    aggregate,
    direct_leak_reduction,
    flat_metrics,
    gap_key,
    leak_change,
    oracle_gap,
    over_kept,
    pass_at_1_key,
    result,
    utility_kept,
    verdict,
    vs_oracle_key,
)
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

if TYPE_CHECKING:
    from leakbench.robustness import RobustnessConfig

STUDY_TASKS = [DIRECT, INDIRECT, RETAIN, CODE]  # leak probes, near-neighbour and held-out code utility
# The paper's three, NPO, and the two strongest new methods of the sweep (results/sweep.json): RMU (the one point
# keeping >= 99% of code utility while halving the leaks) and redaction DPO (the lowest leak keeping >= 91%).
DEFAULT_METHODS = ("ga", "ga_gd", "ga_kl", "npo", "rmu", "dpo")


@dataclass
class StudyConfig:
    out: Path
    subset: str = "mini"
    methods: tuple[str, ...] = DEFAULT_METHODS
    model: str | None = None  # an existing victim directory; None: build the embedded one
    oracle: str | None = None  # with `model`: its oracle (same recipe without the forget set), if there is one
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
    seeds: int = 1  # unlearning runs per method, seeds unlearn.seed, +1, ...
    victim_seeds: int = 1  # victim/oracle pairs, seeds victim.seed, +1, ... (each unlearned `seeds` times)
    robustness: bool = False  # relearning, quantization, sequential requests, scaling (leakbench.robustness)
    robustness_options: dict[str, Any] = field(default_factory=dict)  # RobustnessConfig overrides
    publish: bool = True
    publish_to: Path | None = None  # the leaderboard folder; None: the study's own --out folder

    def __post_init__(self) -> None:
        """Every option is checked here, before a model is built or a task runs."""
        from leakbench.data import check_subset
        from leakbench.unlearn import UnlearnConfig, expand_methods
        from leakbench.utility import parse_datasets
        from leakbench.victim import VictimConfig

        check_subset(self.subset)
        self.methods = expand_methods(self.methods)  # `all`: every registered method
        parse_datasets(self.utility)
        self.batch_size = parse_batch_size(self.batch_size)
        from leakbench.harness import check_backend

        check_backend(self.backend, self.model_args)
        check_number("--limit", self.limit, integer=True)
        check_number("--max-new-tokens", self.max_new_tokens, integer=True)
        check_number("--seeds", self.seeds, integer=True)
        check_number("--victim-seeds", self.victim_seeds, integer=True)
        if self.model is not None and self.victim_seeds > 1:
            raise UsageError("--victim-seeds needs the embedded victim: a --model is one trained model")
        VictimConfig(subset=self.subset, **self.victim)
        if self.robustness:  # the options, and the splits they ask of this subset (cheap: no model)
            from leakbench.data import read_table
            from leakbench.robustness import RobustnessConfig, splits

            splits(read_table("forget", subset=self.subset, data_dir=self.data_dir),
                   RobustnessConfig(**self.robustness_options))  # fmt: skip
        for method in self.methods:
            UnlearnConfig(method=method, subset=self.subset, **self.unlearn)
        if self.publish_to is not None and not self.publish:
            raise UsageError("--publish-to and --no-publish contradict each other: give one of them")
        if self.oracle is not None and self.model is None:
            raise UsageError("--oracle needs --model (the study builds the embedded victim's oracle itself)")
        for option, value in (("--model", self.model), ("--oracle", self.oracle)):
            if value is not None and not Path(value).is_dir():
                raise LeakBenchError(f"{value}: no such model directory ({option})")
        if self.oracle is not None and Path(self.oracle).resolve() == Path(str(self.model)).resolve():
            raise UsageError("--oracle must be another model than --model (the one trained without the forget set)")
        if self.evalplus_dir is not None and not Path(self.evalplus_dir).is_dir():
            raise LeakBenchError(f"{self.evalplus_dir}: no such directory (--evalplus-dir)")
        check_output(self.out, kind="directory")
        for option, value in (("--model", self.model), ("--oracle", self.oracle)):
            if value is not None and any(
                Path(value).resolve().is_relative_to((Path(self.out) / sub).resolve()) for sub in ("models", "runs")
            ):
                raise UsageError(f"{option} {value} lies inside --out {self.out}, which the study rewrites; move it")
        if self.ner is not None:
            from leakbench.scoring.engine import choose_ner_model

            choose_ner_model(self.ner)  # an unknown spaCy model fails here, not after the victim is trained
        if self.publish_to is not None:
            check_output(self.publish_to, kind="directory")
        from leakbench.data import read_table

        if not read_table("subjects", subset=self.subset, data_dir=self.data_dir, split="holdout"):
            raise LeakBenchError(
                f"{self.data_dir}: the release has no holdout subjects, which the privacy metrics need; build one "
                "with `leakbench data build` (v2, the default)"
            )


def parse_batch_size(value: int | str) -> int | str:
    """lm-eval's batch size: a positive integer, `auto`, or `auto:N` (N re-detections)."""
    text = str(value).strip()
    if text.isdigit() and int(text) > 0:
        return int(text)
    if text == "auto" or (text.startswith("auto:") and text[5:].isdigit() and int(text[5:]) > 0):
        return text
    raise UsageError(f"--batch-size must be a positive integer, 'auto' or 'auto:N', got {value!r}")


def study_metrics(
    results: dict[str, Any], pass_at_1: dict[str, float] | None = None, privacy: dict[str, Any] | None = None
) -> dict[str, float | None]:
    """A model's flat figures (`leakbench.metrics.FLAT_METRICS`) from its lm-eval results, EvalPlus pass@1 and
    `leakbench privacy` metrics."""

    def lookup(task: str, metric: str) -> float | None:
        if task == PRIVACY:
            value = (privacy or {}).get(metric)
            return float(value) if isinstance(value, int | float) else None
        return result(results, task, metric)

    return flat_metrics(lookup, pass_at_1)


def comparisons(victim: dict[str, Any], model: dict[str, Any], oracle: dict[str, Any] | None) -> dict[str, Any]:
    """A row's headline comparisons (defined in `leakbench.metrics`): direct-leak reduction and indirect change
    relative to the victim, utility kept relative to the victim (flagged above 100%), and the gap to the oracle."""
    kept_values = utility_kept(victim, model)
    return {
        "direct_leak_reduction": direct_leak_reduction(victim["direct_leak_rate"], model["direct_leak_rate"]),
        "indirect_leak_change": leak_change(victim["indirect_leak_rate"], model["indirect_leak_rate"]),
        "utility_kept": kept_values,
        "utility_kept_above_100": over_kept(kept_values),
        "vs_oracle": oracle_gap(oracle, model) if oracle is not None else None,
    }


def run_study(cfg: StudyConfig, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Run the study into `cfg.out`; returns (and writes) `summary.json`.

    Layout: OUT/models/<label> (weights), OUT/runs/<label> (lm-eval outputs, utility.json, privacy.json, run.json:
    one leaderboard entry each), OUT/summary.json and OUT/summary.md. With several seeds a label carries them
    (`victim-v1`, `npo-v1-s2`); the table has one row per model kind, mean ± 95% CI over its runs.
    """
    import dataclasses

    from leakbench.data import release_hash
    from leakbench.harness import evaluate
    from leakbench.privacy import PrivacyConfig, compare, measure
    from leakbench.unlearn import UnlearnConfig, unlearn
    from leakbench.victim import VictimConfig, build, reusable

    started = time.perf_counter()
    data_hash = release_hash(data_dir=cfg.data_dir)
    out = Path(cfg.out)
    models, runs = out / "models", out / "runs"
    timings: dict[str, float] = {}
    privacy_cfg = PrivacyConfig(subset=cfg.subset, data_dir=cfg.data_dir)

    def timed(label: str, fn: Callable[[], Any]) -> Any:
        t = time.perf_counter()
        value = fn()
        timings[label] = round(time.perf_counter() - t, 1)
        return value

    utility_sets = _utility_datasets(cfg, log)  # before any training: a missing file fails fast

    def evaluate_model(
        label: str, model_dir: Path, run: dict[str, Any], reference: dict[str, Any] | None
    ) -> tuple[dict[str, float | None], dict[str, Any]]:
        run_dir = runs / label
        # A re-evaluation replaces lm_eval/, utility/, privacy.json and run.json one after another; until run.json
        # is written the folder says it is incomplete, so a stop half-way (new results beside old records) is
        # refused by publish rather than published as a mix. Written first, removed last.
        write_text_atomic(run_dir / INCOMPLETE, "being evaluated by `leakbench run`; publish refuses this folder "
                          "until the evaluation finishes\n")  # fmt: skip
        log(f"    {label}: {', '.join(STUDY_TASKS)} on the {cfg.subset} subset")
        results = timed(f"eval_{label}", lambda: evaluate(
            model_dir, run_dir, STUDY_TASKS, subset=cfg.subset, data_dir=cfg.data_dir, ner=cfg.ner,
            batch_size=cfg.batch_size, limit=cfg.limit, backend=cfg.backend, model_args=cfg.model_args,
        ))  # fmt: skip
        pass_at_1 = {}
        for dataset, mini in utility_sets:
            from leakbench.utility import run_utility

            log(f"    {label}: EvalPlus {dataset}{'-mini' if mini else ''}")
            record = timed(f"utility_{label}_{dataset}", lambda d=dataset, m=mini: run_utility(
                run_dir / "utility" / d, d, model_dir=model_dir, mini=m, data_dir=cfg.evalplus_dir,
                limit=cfg.limit, max_new_tokens=cfg.max_new_tokens, overwrite=True,
            ))  # fmt: skip
            pass_at_1[dataset] = record["pass@1"]["plus"]
        log(f"    {label}: memorization and membership inference (leakbench privacy)")
        privacy = timed(f"privacy_{label}", lambda: measure(model_dir, privacy_cfg, reference=reference))
        if reference is None and run["role"] == "oracle":  # the oracle against itself: 0 and 1 by construction
            privacy["metrics"].update(compare(privacy, privacy))
            privacy["reference"] = privacy["model"]
        write_text_atomic(run_dir / "privacy.json", dumps_record(privacy))
        (run_dir / ROBUSTNESS_RECORD).unlink(missing_ok=True)  # attacks on an earlier model of this label
        metrics = study_metrics(results, pass_at_1, privacy["metrics"])
        record = RunRecord(**run, model_source=_study_source(model_dir, out), metrics=metrics,
                           provenance=provenance())  # fmt: skip
        write_text_atomic(run_dir / "run.json", dumps_record(record.model_dump(mode="json", exclude_none=True)))
        (run_dir / INCOMPLETE).unlink()
        return metrics, privacy

    robustness: dict[str, dict[str, Any]] = {}
    attacked: tuple[Path, Path | None, dict[str, str]] = (Path(), None, {})
    runs_of: dict[str, list[dict[str, Any]]] = {}  # row -> its runs (one per seed)
    labels: list[str] = []
    family = ""
    for v in range(cfg.victim_seeds):
        tag = f"-v{v}" if cfg.victim_seeds > 1 else ""
        step = f"[victim {v + 1}/{cfg.victim_seeds}] " if cfg.victim_seeds > 1 else ""
        oracle_dir: Path | None
        if cfg.model:
            victim_dir, oracle_dir = Path(cfg.model), Path(cfg.oracle) if cfg.oracle else None
            from leakbench.privacy import model_label

            # folder name plus content: two studies of different victims in folders of the same name stay apart
            victim_name = model_label(victim_dir)
            oracle_name = model_label(oracle_dir) if oracle_dir else None
            log(f"[1] victim: {victim_dir}; oracle: {oracle_dir or 'none given (no oracle gaps, no PrivLeak)'}")
        else:
            victim_dir, oracle_dir = models / f"victim{tag}", models / f"oracle{tag}"
            vcfg = dataclasses.replace(VictimConfig(subset=cfg.subset), **cfg.victim)
            vcfg = dataclasses.replace(vcfg, seed=vcfg.seed + v)
            victim_name = f"leakbench-tiny-{vcfg.key()[:8]}"
            oracle_name = f"{victim_name}/oracle"
            log(f"[1] {step}victim and oracle: fine-tune (or reuse) the embedded base with and without the forget set")
            for label, folder, c in (
                (f"victim{tag}", victim_dir, vcfg),
                (f"oracle{tag}", oracle_dir, dataclasses.replace(vcfg, oracle=True)),
            ):
                # cached by configuration and release: reused when built with the same, rebuilt when either changed
                stale = (folder / "victim.json").is_file() and not reusable(model_record(folder), c, data_hash)
                timed(label, lambda f=folder, c=c, s=stale: build(f, c, data_dir=cfg.data_dir, overwrite=s, log=log))
        vrecord = model_record(victim_dir)
        family = family if v else victim_name  # what groups the runs of every seed: the first victim's name
        log(f"[2] {step}leak, near-neighbour, held-out code, EvalPlus and privacy on the victim and the oracle")
        oracle_metrics = oracle_privacy = None
        if oracle_dir is not None:
            orecord = model_record(oracle_dir)
            oracle_run = _built_run(oracle_name, "oracle", orecord, baseline_model_name=victim_name,
                                    group=f"{family}/oracle")  # fmt: skip
            oracle_metrics, oracle_privacy = evaluate_model(f"oracle{tag}", oracle_dir, oracle_run, None)
        victim_run = _built_run(victim_name, "victim", vrecord, oracle_model_name=oracle_name, group=f"{family}/victim")
        victim_metrics, _ = evaluate_model(f"victim{tag}", victim_dir, victim_run, oracle_privacy)
        found = [("victim", f"victim{tag}", victim_metrics, None)]
        if oracle_metrics is not None:
            found.append(("oracle", f"oracle{tag}", oracle_metrics, None))
        for i, method in enumerate(cfg.methods, 3):
            base_ucfg = UnlearnConfig(method=method, subset=cfg.subset, **cfg.unlearn)
            for s in range(cfg.seeds):
                label = f"{method}{tag}" + (f"-s{s}" if cfg.seeds > 1 else "")
                log(f"[{i}] {step}unlearning: {method}" + (f" (seed {s + 1}/{cfg.seeds})" if cfg.seeds > 1 else ""))
                ucfg = dataclasses.replace(base_ucfg, seed=base_ucfg.seed + s)
                record = timed(f"unlearn_{label}", lambda u=ucfg, lab=label, vd=victim_dir: unlearn(
                    vd, models / lab, u, data_dir=cfg.data_dir, overwrite=True, log=log))  # fmt: skip
                run = {
                    "model_name": f"{victim_name}/{method}" + (f"@seed{ucfg.seed}" if cfg.seeds > 1 else ""),
                    "role": "unlearned", "method": method, "group": f"{family}/{method}",
                    "hyperparameters": record["hyperparameters"], "baseline_model_name": victim_name,
                    "oracle_model_name": oracle_name, "parameters": vrecord.get("parameters"),
                    "seeds": {"victim": vrecord.get("seed"), "unlearn": record["seed"]},
                    "wall_times_s": {"victim_build": vrecord.get("wall_time_s"), "unlearn": record["wall_time_s"]},
                }  # fmt: skip
                metrics, _ = evaluate_model(label, models / label, run, oracle_privacy)
                unlearn_info = {k: record[k] for k in ("hyperparameters", "steps", "wall_time_s", "loss_before",
                                                       "loss_after")}  # fmt: skip
                found.append((method, label, metrics, unlearn_info))
        if v == 0:  # the robustness stage attacks the first victim's models: each method's first seed
            first: dict[str, str] = {}
            for row, label, _, unlearn_info in found:
                if unlearn_info:
                    first.setdefault(row, label)
            attacked = (victim_dir, oracle_dir, first)
        for row, label, metrics, unlearn_info in found:
            labels.append(label)
            runs_of.setdefault(row, []).append({
                "label": label, "metrics": metrics,
                "comparisons": comparisons(victim_metrics, metrics, oracle_metrics),
                **({"unlearn": unlearn_info} if unlearn_info else {}),
            })  # fmt: skip
    rows = {row: summarize(row_runs) for row, row_runs in runs_of.items()}

    def summarized(**extra: Any) -> dict[str, Any]:
        return provenance(
            kind="study", subset=cfg.subset, methods=list(cfg.methods), seeds=cfg.seeds,
            victim_seeds=cfg.victim_seeds, ner=cfg.ner, utility=[f"{d}{'-mini' if m else ''}" for d, m in utility_sets],
            rows=rows, **extra, timings_s=timings, wall_time_s=round(time.perf_counter() - started, 1),
        )  # fmt: skip

    step = len(cfg.methods) + 3
    if cfg.robustness:
        from leakbench.robustness import RobustnessConfig, study_stage

        # the measurements first: should the stage fail, `leakbench robustness OUT` can take it up again
        write_summary(out, summarized(), rows)
        log(f"[{step}] robustness: relearning and quantization attacks, sequential deletion requests, forget-set "
            "scaling")  # fmt: skip
        victim_dir, oracle_dir, first = attacked
        robustness = timed("robustness", lambda: study_stage(
            out, victim_dir, oracle_dir, first, RobustnessConfig(**cfg.robustness_options), subset=cfg.subset,
            data_dir=cfg.data_dir, ner=cfg.ner, log=log))  # fmt: skip
        step += 1
    published = None
    board = Path(cfg.publish_to) if cfg.publish_to is not None else out
    if cfg.publish:
        from leakbench.leaderboard import publish

        log(f"[{step}] publishing into {board}")
        published = publish([runs / label for label in labels], board / "leaderboard.json", board / "index.html")
    summary = summarized(published=published, **({"robustness": robustness} if robustness else {}))
    for folder in dict.fromkeys([out, board] if cfg.publish else [out]):  # the study's folder and the board's
        write_summary(folder, summary, rows)
    return summary


def write_summary(folder: Path, summary: dict[str, Any], rows: dict[str, dict[str, Any]]) -> None:
    """FOLDER/summary.json (the record) and summary.md (the table, and the robustness table when there is one)."""
    write_text_atomic(folder / "summary.json", json.dumps(summary, indent=2, default=str) + "\n")
    write_text_atomic(folder / "summary.md", summary_table(rows) + _robustness_section(summary.get("robustness") or {}))


def _robustness_section(records: dict[str, dict[str, Any]]) -> str:
    from leakbench.robustness import robustness_table

    return "\n## Robustness\n\n" + robustness_table(records) if records else ""


def _built_run(name: str, role: str, record: dict[str, Any], **extra: Any) -> dict[str, Any]:
    """The run record of a victim or oracle: its name, role, size, seed and build time."""
    return {"model_name": name, "role": role, "method": "none", "parameters": record.get("parameters"),
            "seeds": {role: record.get("seed")}, "wall_times_s": {f"{role}_build": record.get("wall_time_s")},
            **extra}  # fmt: skip


def summarize(row_runs: list[dict[str, Any]]) -> dict[str, Any]:
    """One table row from its runs (seeds): mean metrics and comparisons, their 95% CI half-widths (None with a
    single run), and the runs themselves."""
    metrics, metrics_ci = aggregate([r["metrics"] for r in row_runs])
    found, found_ci = aggregate([r["comparisons"] for r in row_runs])
    row: dict[str, Any] = {"metrics": metrics, "comparisons": found, "n_runs": len(row_runs)}
    if len(row_runs) > 1:
        row |= {"ci95": metrics_ci, "comparisons_ci95": found_ci}
    row["runs"] = row_runs
    return row


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


def _pct(x: float | None, ci: float | None = None) -> str:
    if x is None or math.isnan(x):
        return "n/a"
    return f"{100 * x:.1f}%" + (f" ± {100 * ci:.1f}" if ci is not None else "")


def _pts(x: float | None, ci: float | None = None) -> str:
    return "n/a" if x is None else f"{100 * x:+.1f} pts" + (f" ± {100 * ci:.1f}" if ci is not None else "")


def _num(x: float | None, ci: float | None, fmt: str) -> str:
    spread = f" ± {format(ci, fmt.lstrip('+'))}" if ci is not None else ""
    return "n/a" if x is None else format(x, fmt) + spread


def _datasets(rows: dict[str, dict[str, Any]]) -> list[str]:
    first = next(iter(rows.values()))["metrics"]
    return [k.removesuffix("_plus_pass_at_1") for k in first if k.endswith("_plus_pass_at_1")]


UTILITY_COLUMNS = {  # flat metric -> (column, format)
    "code_edit_similarity": ("code edit sim.", ".3f"),
    "code_exact_match": ("code exact match", ".3f"),
    "code_bits_per_byte": ("held-out bits/byte", ".3f"),
    "near_neighbour_bits_per_byte": ("near-neighbour bits/byte", ".3f"),
}
PRIVACY_COLUMNS = {  # flat metric -> (column, format)
    "exact_memorization": ("EM", ".3f"),
    "extraction_strength": ("ES", ".3f"),
    "mia_min_k_plus_plus": ("Min-K%++ AUC", ".3f"),
    "forget_quality": ("forget quality", ".3g"),
}
KEPT_MARK = " ↑"  # utility kept above 100%


def table(rows: dict[str, dict[str, Any]]) -> tuple[list[str], list[list[str]], list[str]]:
    """The study table: columns, one list of cells per model, and the notes that explain its marks (the
    Markdown file and the console print the same). Rows over several seeds show mean ± 95% CI half-width."""
    datasets = _datasets(rows)
    utility = {**UTILITY_COLUMNS, **{pass_at_1_key(d): (f"{d}+ pass@1", ".3f") for d in datasets}}
    columns = [
        "model", "runs", "direct leak", "indirect leak", "reformatted", "partial", "cross-attr.", "cross-subj.",
        "direct vs oracle", "indirect vs oracle", *(name for name, _ in PRIVACY_COLUMNS.values()), "PrivLeak",
        *(f"{name} (kept)" for name, _ in utility.values()),
        "direct-leak reduction", "indirect change", "code edit sim. vs oracle",
    ]  # fmt: skip
    cells, flagged, undefined, seeded = [], False, [], False
    for label, row in rows.items():
        m, c = row["metrics"], row.get("comparisons") or {}
        mci, cci = row.get("ci95") or {}, row.get("comparisons_ci95") or {}
        seeded |= bool(mci)
        kept_values, gap = c.get("utility_kept") or {}, c.get("vs_oracle") or {}
        kept_ci, gap_ci = cci.get("utility_kept") or {}, cci.get("vs_oracle") or {}
        line = [label, str(row.get("n_runs", 1)), _pct(m["direct_leak_rate"], mci.get("direct_leak_rate")),
                _pct(m["indirect_leak_rate"], mci.get("indirect_leak_rate")),
                *(_pct(m[k], mci.get(k)) for k in KIND_METRICS),
                *(_pts(gap.get(gap_key(leak)), gap_ci.get(gap_key(leak))) for leak in LEAKS)]  # fmt: skip
        line += [_num(m.get(k), mci.get(k), fmt) for k, (_, fmt) in PRIVACY_COLUMNS.items()]
        leak = m.get("privleak")
        line.append("n/a" if leak is None else f"{_num(leak, mci.get('privleak'), '+.1f')}% ({verdict(leak)})")
        for key, (_, fmt) in utility.items():
            text = _num(m.get(key), mci.get(key), fmt)
            if label != "victim":
                share = kept_values.get(key)
                mark = KEPT_MARK if key in c.get("utility_kept_above_100", ()) else ""
                flagged |= bool(mark)
                text += f" ({_pct(share, kept_ci.get(key))}{mark})"
                if share is None and key.endswith("_pass_at_1") and rows["victim"]["metrics"].get(key) == 0:
                    undefined.append(key.removesuffix("_plus_pass_at_1"))
            line.append(text)
        headline = _pct(gap.get(vs_oracle_key(HEADLINE_UTILITY)), gap_ci.get(vs_oracle_key(HEADLINE_UTILITY)))
        if label == "victim":
            line += ["", "", headline]
        else:
            line += [_pct(c.get("direct_leak_reduction"), cci.get("direct_leak_reduction")),
                     _pts(c.get("indirect_leak_change"), cci.get("indirect_leak_change")), headline]  # fmt: skip
        cells.append(line)
    notes = ["(kept): relative to the victim; vs oracle: minus (leaks) or relative to (utility) the oracle, the "
             "same recipe without the forget set.",
             "EM, ES: exact memorization and extraction strength of the forget values in their training context; "
             "Min-K%++ AUC: forget vs holdout subjects' values (0.5 = chance); PrivLeak: that AUC relative to the "
             "oracle's (within ±10% = neither under- nor over-unlearned); forget quality: KS-test p-value of the "
             "truth ratios against the oracle's."]  # fmt: skip
    if seeded:
        notes.append("x ± y: mean over the row's runs (seeds) ± the 95% confidence half-width (Student t).")
    if flagged:
        notes.append(
            f"{KEPT_MARK.strip()}: utility kept above 100% - the model beats the victim there; after unlearning, on "
            "near-neighbour bits/byte, that can mean fitting the evaluation's templates."
        )
    for dataset in dict.fromkeys(undefined):
        notes.append(f"{dataset}+ pass@1 kept is n/a: the victim's pass@1 is 0, so the ratio is undefined.")
    return columns, cells, notes


def summary_table(rows: dict[str, dict[str, Any]]) -> str:
    """The study table as Markdown: one row per model, then its notes."""
    columns, cells, notes = table(rows)
    lines = ["| " + " | ".join(columns) + " |", "|" + " --- |" * len(columns)]
    lines += ["| " + " | ".join(row) + " |" for row in cells]
    return "\n".join([*lines, "", *notes]) + "\n"


def merge_summaries(paths: list[str | Path], out: str | Path) -> dict[str, Any]:
    """One summary (OUT/summary.json and summary.md) from studies of the same victim and oracle run side by side
    with different `--methods` (e.g. two `leakbench run`s at once, one thread each): the first study's victim
    and oracle rows, every study's method rows, each study's timings under its own name."""
    studies = [json.loads(Path(p).read_text(encoding="utf-8")) for p in paths]
    first = studies[0]
    for path, study in zip(paths, studies, strict=True):
        if (study["subset"], study["seeds"], study["victim_seeds"]) != (first["subset"], first["seeds"],
                                                                         first["victim_seeds"]):  # fmt: skip
            raise LeakBenchError(f"{path}: another subset or number of seeds than {paths[0]}; not one study")
        for row in ("victim", "oracle"):
            if row in study["rows"] and study["rows"][row]["metrics"] != first["rows"][row]["metrics"]:
                raise LeakBenchError(f"{path}: its {row} measured differently from {paths[0]}'s; not one study")
    rows = dict(first["rows"])
    for study in studies[1:]:
        rows.update({k: v for k, v in study["rows"].items() if k not in ("victim", "oracle")})
    parts = [{"methods": s["methods"], "wall_time_s": s["wall_time_s"], "timings_s": s["timings_s"]} for s in studies]
    robustness = {k: v for s in studies for k, v in (s.get("robustness") or {}).items()}
    merged = {**first, "methods": [m for s in studies for m in s["methods"]], "rows": rows, "merged_from": parts,
              **({"robustness": robustness} if robustness else {}),
              "timings_s": {}, "wall_time_s": max(s["wall_time_s"] for s in studies)}  # fmt: skip
    write_summary(Path(out), merged, rows)
    return merged


def add_robustness(
    study: str | Path,
    cfg: RobustnessConfig,
    *,
    methods: tuple[str, ...] | None = None,
    model: str | Path | None = None,
    oracle: str | Path | None = None,
    data_dir: str | Path | None = None,
    ner: str | None = None,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """The robustness stage (a `leakbench.robustness.RobustnessConfig`) on a finished study: each method's first
    run, against the study's first victim and oracle (or `model` / `oracle`, for a study of an existing
    victim); the records join OUT/summary.json and summary.md and the run folders (publish them again)."""
    from leakbench.robustness import study_stage
    from leakbench.unlearn import check_methods

    study = Path(study)
    path = study / "summary.json"
    try:
        summary = json.loads(path.read_text(encoding="utf-8"))
        rows, subset = summary["rows"], summary["subset"]
        first = {row: str(found["runs"][0]["label"]) for row, found in rows.items()}  # each row's first run
    except FileNotFoundError:
        raise LeakBenchError(f"{path}: no such file; give the --out folder of a finished `leakbench run`") from None
    except (OSError, UnicodeDecodeError, ValueError, KeyError, IndexError, TypeError):
        raise LeakBenchError(f"{path}: not a LeakBench study summary (rows missing or unreadable)") from None
    chosen = list(methods or [m for m in summary.get("methods", []) if m in rows])
    check_methods(chosen)
    missing = [m for m in chosen if m not in rows]
    if missing:
        raise UsageError(f"the study in {study} has no runs of {', '.join(missing)}; it has: "
                         f"{', '.join(m for m in rows if m not in ('victim', 'oracle'))}")  # fmt: skip
    for option, given in (("--model", model), ("--oracle", oracle)):
        if given is not None and not Path(given).is_dir():
            raise LeakBenchError(f"{given}: no such model directory ({option})")
    in_study = {row: study / "models" / label for row, label in first.items()}
    victim_dir = Path(model) if model else in_study.get("victim")
    oracle_dir = Path(oracle) if oracle else in_study.get("oracle")
    if victim_dir is None or not victim_dir.is_dir():
        raise UsageError(f"{study}: the victim is not in the study folder (a study of --model); give --model")
    if oracle_dir is not None and not oracle_dir.is_dir():
        oracle_dir = None  # a study of --model without an oracle, or its folder since removed: no oracle rows
    labels = {m: first[m] for m in chosen}
    for label in labels.values():
        if not (study / "models" / label).is_dir():
            raise LeakBenchError(f"{study / 'models' / label}: no such model directory (the study's unlearned model)")
    records = study_stage(study, victim_dir, oracle_dir, labels, cfg, subset=subset, data_dir=data_dir,
                          ner=ner if ner is not None else summary.get("ner", "none"), log=log)  # fmt: skip
    # a method attacked again replaces its whole record (the axes of one run share their settings)
    summary["robustness"] = {**(summary.get("robustness") or {}), **records}
    write_summary(study, summary, rows)
    return summary
