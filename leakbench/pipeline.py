"""`leakbench run`: the whole study, composed from the verbs.

victim and oracle (fine-tunes of the embedded base, built or reused) -> leak, near-neighbour, held-out code,
EvalPlus and privacy measurements on both -> each unlearning method (over several seeds) -> the same again -> a
table of leak rates, memorization and membership inference, utility kept relative to the victim, and every
row's gap to the oracle (the model that never saw the forget set), as mean ± 95% CI over seeds.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import json
import math
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from leakbench import __version__
from leakbench.data import check_subset, read_table, release_hash
from leakbench.harness import check_backend, declarations_hash, evaluate
from leakbench.leaderboard import publish
from leakbench.leaderboard.publish import (
    copy_kept,
    entry_before_change,
    has_samples,
    keep_entry,
    keep_entry_again,
    kept_entry_is_current,
)
from leakbench.metrics import (
    CODE,
    CONSOLE_HEADLINE,
    DIRECT,
    DIRECT_SAMPLED,
    HEADLINE_UTILITY,
    INDIRECT,
    METRICS,
    RECONSTRUCT,
    RETAIN,
    Metric,
    aggregate,
    direct_leak_reduction,
    gap_key,
    leak_change,
    metric,
    oracle_gap,
    over_kept,
    privacy_metrics,
    study_metrics,
    utility_kept,
    vs_oracle_key,
)
from leakbench.privacy import CALIBRATION, PrivacyConfig, compared, measure, per_question
from leakbench.records import (
    LeakBenchError,
    UsageError,
    atomic_dir,
    check_not_aliased,
    check_number,
    check_output,
    has_weights,
    model_label,
    model_name,
    provenance,
    signals_deferred,
    write_text_atomic,
)
from leakbench.robustness import RobustnessConfig, attacked_already, robustness_table, splits, study_stage
from leakbench.schemas import (
    INCOMPLETE,
    PrivacyRecord,
    RobustnessRecord,
    RunRecord,
    StudySummary,
    UnlearnRecord,
    UtilityRecord,
    VictimRecord,
    model_record,
)
from leakbench.scoring.engine import choose_ner_model
from leakbench.unlearn import UnlearnConfig, check_methods, expand_methods, reusable_unlearned, unlearn
from leakbench.utility import dataset_name, load_problems, parse_datasets, run_utility
from leakbench.victim import PREBUILT, VictimConfig, build, reusable
from leakbench.workers import default_workers, output_to, run_each, workers_for

# leak probes (greedy; sampled leak@5 and leak@10 and reconstruction on the probe sample), near-neighbour and
# held-out code utility
STUDY_TASKS = [DIRECT, INDIRECT, RETAIN, CODE, DIRECT_SAMPLED, RECONSTRUCT]
BEYOND_GREEDY = (DIRECT_SAMPLED, RECONSTRUCT)  # the tasks `StudyConfig.sampled_probes` restricts
# The default run's probe sample for those: ten samples per probe cost ten greedy runs (~0.3 s per probe per
# model on one core), so the default study takes 30 probes of each, evenly spaced over the subjects (timings in
# docs/study.md); the reference run takes them all.
SAMPLED_PROBES = 30
# The shipped victim's and oracle's measurements by a default `leakbench run` (`ship_measurements`), reused by a
# run that would measure the same weights with the same settings, as OpenUnlearning ships its retain models'
# evaluation logs: the default run then measures the methods only.
SHIPPED_MEASUREMENTS = PREBUILT / "measured"
# The paper's three (Gu et al.: GA, GA+GD, GA+KL) and NPO, OpenUnlearning's standard baseline; the reference run
# adds the others (`--methods all`).
DEFAULT_METHODS = ("ga", "ga_gd", "ga_kl", "npo")


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
    batch_size: int | str = 64  # lm-eval's; 64 generates 15% faster than 32 on a CPU, the same greedy outputs
    backend: str = "hf"  # lm-eval's model type: hf or vllm
    model_args: str = ""  # passed to the backend unchanged, after pretrained=<model dir>
    limit: int | None = None
    sampled_probes: int | None = SAMPLED_PROBES  # leak@k and reconstruction on this many probes; None: every one
    data_dir: Path | None = None
    utility: tuple[str, ...] = ("humaneval-mini",)  # EvalPlus datasets: humaneval, humaneval-mini, mbpp
    evalplus_dir: Path | None = None  # folder with the official EvalPlus files (offline)
    max_new_tokens: int = 128  # EvalPlus completions: tiny models ramble
    jobs: int | None = None  # models measured at once, in worker processes; None: `default_jobs`
    seeds: int = 1  # unlearning runs per method, seeds unlearn.seed, +1, ...
    victim_seeds: int = 1  # victim/oracle pairs, seeds victim.seed, +1, ... (each unlearned `seeds` times)
    robustness: bool = False  # relearning, quantization, sequential requests, scaling (leakbench.robustness)
    robustness_options: dict[str, Any] = field(default_factory=dict)  # RobustnessConfig overrides
    publish: bool = True
    publish_to: Path | None = None  # the leaderboard folder; None: the study's own --out folder
    reuse_shipped: bool = True  # the shipped victim's and oracle's measurements, when made with these settings

    def __post_init__(self) -> None:
        """Every option is checked here, before a model is built or a task runs."""

        check_subset(self.subset)
        self.methods = expand_methods(self.methods)  # `all`: every registered method
        parse_datasets(self.utility)
        self.batch_size = parse_batch_size(self.batch_size)

        check_backend(self.backend, self.model_args)
        check_number("--limit", self.limit, integer=True)
        check_number("--sampled-probes", self.sampled_probes, integer=True)
        check_number("--max-new-tokens", self.max_new_tokens, integer=True)
        check_number("--seeds", self.seeds, integer=True)
        check_number("--jobs", self.jobs, integer=True)
        check_number("--victim-seeds", self.victim_seeds, integer=True)
        if self.model is not None and self.victim_seeds > 1:
            raise UsageError("--victim-seeds needs the embedded victim: a --model is one trained model")
        VictimConfig(subset=self.subset, **self.victim)
        if self.robustness:  # the options, and the splits they ask of this subset (cheap: no model)
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
            choose_ner_model(self.ner)  # an unknown spaCy model fails here, not after the victim is trained
        if self.publish_to is not None:
            check_output(self.publish_to, kind="directory")

        if not read_table("subjects", subset=self.subset, data_dir=self.data_dir, split="holdout"):
            raise LeakBenchError(
                f"{self.data_dir}: the release has no holdout subjects, which the privacy metrics need; build one "
                "with `leakbench data build` (v3, the default)"
            )


def parse_sampled_probes(value: str) -> int | None:
    """--sampled-probes: a positive number of probes, or `all` (None)."""
    text = value.strip().lower()
    if text == "all":
        return None
    if not text.isdigit() or int(text) == 0:
        raise UsageError(f"--sampled-probes: expected a positive number of probes or 'all', got {value!r}")
    return int(text)


def parse_batch_size(value: int | str) -> int | str:
    """lm-eval's batch size: a positive integer, `auto`, or `auto:N` (N re-detections)."""
    text = str(value).strip()
    if text.isdigit() and int(text) > 0:
        return int(text)
    if text == "auto" or (text.startswith("auto:") and text[5:].isdigit() and int(text[5:]) > 0):
        return text
    raise UsageError(f"--batch-size must be a positive integer, 'auto' or 'auto:N', got {value!r}")


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


STAGES = ("models", "measure", "unlearn", "robustness", "publish")  # what `leakbench run` does, in order


@dataclass
class Pair:
    """One victim and its oracle (None for a study of an external victim without one), named for the board."""

    victim: Path
    oracle: Path | None
    victim_name: str
    oracle_name: str | None
    record: dict[str, Any]  # the victim's victim.json (or {})
    tag: str  # "-v1" for the second victim seed, "" with a single victim


@dataclass
class Measured:
    """The references' figures: what every unlearned model of one pair is compared with."""

    victim: dict[str, float | None]
    oracle: dict[str, float | None] | None
    oracle_privacy: dict[str, Any] | None


@dataclass
class Job:
    """One model to measure into OUT/runs/LABEL; a method's model is first unlearned from the pair's victim, in
    the same worker (`measure_job`)."""

    label: str
    model_dir: Path
    run: dict[str, Any]  # the run record's names, role and seeds ({} until an unlearned model exists)
    method: str | None = None
    unlearn: UnlearnConfig | None = None  # None: the model exists
    victim: Path | None = None
    # the label of the weights a run folder measured whose privacy record is of an older LeakBench: on those
    # weights (made again, byte for byte, where only the records are kept) only privacy is measured again
    privacy_only: str | None = None


def measure_order(jobs: list[Job]) -> list[Job]:
    """The order models are handed to the workers: the oracle and victim first (the others' records wait for the
    oracle's privacy record), then the models whose privacy alone is measured again (minutes each: done before a
    stop can lose them), then the models still to unlearn, the most unlearning steps first (the longest jobs
    start early, so the workers finish together), then those unlearned already; otherwise as given."""
    return sorted(jobs, key=lambda j: (j.method is not None, j.privacy_only is None,
                                       -(j.unlearn.resolved().steps if j.unlearn else 0)))  # fmt: skip


@dataclass
class Bench:
    """What a worker needs to measure a model the way the study does (picklable: sent to worker processes)."""

    cfg: StudyConfig
    utility_sets: list[tuple[str, bool]]
    privacy: PrivacyConfig
    logs: Path | None  # a worker's output goes to LOGS/<label>.log; None: printed here
    samples: dict[str, list[int]] | None = None  # lm-eval's: the probe sample of the beyond-greedy tasks


@dataclass
class Outcome:
    """A model's measurements, before they are compared with the oracle and recorded (`Study.record`)."""

    results: dict[str, Any] | None  # lm-eval's, without the samples; None: only privacy was measured again
    pass_at_1: dict[str, float]  # EvalPlus, plus tests, per dataset
    privacy: dict[str, Any]  # the privacy record, not yet compared with the oracle's
    unlearned: dict[str, Any] | None  # the unlearn.json of a model made by this job
    timings: dict[str, float]


def measure_job(bench: Bench, job: Job) -> Outcome:
    """Unlearn (if the job says so), then run lm-eval's tasks, EvalPlus and the privacy metrics on one model,
    writing OUT/runs/LABEL/lm_eval and utility/. Runs in a worker process when the study has several."""
    cfg, run_dir, timings = bench.cfg, Path(bench.cfg.out) / "runs" / job.label, {}

    def timed(label: str, fn: Callable[[], Any]) -> Any:
        t = time.perf_counter()
        value = fn()
        timings[label] = round(time.perf_counter() - t, 1)
        return value

    log = contextlib.nullcontext() if bench.logs is None else output_to(bench.logs / f"{job.label}.log")
    with log:
        unlearned = None
        if job.unlearn is not None:
            assert job.victim is not None
            unlearned = timed(f"unlearn_{job.label}", lambda: unlearn(
                job.victim, job.model_dir, job.unlearn, data_dir=cfg.data_dir, overwrite=True, log=print))  # fmt: skip
        if job.privacy_only is not None and model_label(job.model_dir) == job.privacy_only:
            print(f"    {job.label}: memorization and membership inference again (leakbench privacy)", flush=True)
            privacy = timed(f"privacy_{job.label}", lambda: measure(job.model_dir, bench.privacy))
            return Outcome(None, {}, privacy, unlearned, timings)
        if job.privacy_only is not None:  # unlearned again into other weights: measured whole
            mark_incomplete(run_dir)
        results = timed(f"eval_{job.label}", lambda: evaluate(
            job.model_dir, run_dir, STUDY_TASKS, subset=cfg.subset, data_dir=cfg.data_dir, ner=cfg.ner,
            batch_size=cfg.batch_size, limit=cfg.limit, backend=cfg.backend, model_args=cfg.model_args,
            samples=bench.samples,
        ))  # fmt: skip
        pass_at_1 = {}
        wanted = {dataset for dataset, _ in bench.utility_sets}
        for stale in (run_dir / "utility").glob("*"):  # an earlier measurement's: publish would carry it
            if stale.is_dir() and stale.name not in wanted:
                shutil.rmtree(stale)
        for dataset, mini in bench.utility_sets:
            print(f"    {job.label}: EvalPlus {dataset_name(dataset, mini)}", flush=True)
            record = timed(f"utility_{job.label}_{dataset}", lambda d=dataset, m=mini: run_utility(
                run_dir / "utility" / d, d, model_dir=job.model_dir, mini=m, data_dir=cfg.evalplus_dir,
                limit=cfg.limit, max_new_tokens=cfg.max_new_tokens, overwrite=True,
            ))  # fmt: skip
            pass_at_1[dataset] = record["pass@1"]["plus"]
        print(f"    {job.label}: memorization and membership inference (leakbench privacy)", flush=True)
        privacy = timed(f"privacy_{job.label}", lambda: measure(job.model_dir, bench.privacy))
    return Outcome({k: v for k, v in results.items() if k != "samples"}, pass_at_1, privacy, unlearned, timings)


def mark_incomplete(run_dir: Path) -> None:
    write_text_atomic(run_dir / INCOMPLETE, "being evaluated by `leakbench run`; publish refuses this folder until "
                      "the evaluation finishes\n")  # fmt: skip


def evenly_spaced(n: int, wanted: int | None) -> list[int] | None:
    """`wanted` indices spread evenly over `n` items (the first, then every n/wanted-th); None: all of them."""
    if wanted is None or wanted >= n:
        return None
    return [i * n // wanted for i in range(wanted)]


def probe_sample(cfg: StudyConfig) -> dict[str, list[int]] | None:
    """lm-eval's `samples` for the beyond-greedy tasks: `cfg.sampled_probes` of their docs, evenly spaced (the
    probes are ordered by subject, so every subject and field is drawn); None: every probe."""
    from leakbench.data import release_dir
    from leakbench.harness import direct_probes, reconstruct_rows

    sizes = {DIRECT_SAMPLED: direct_probes(ner=None, subset=cfg.subset, data_dir=cfg.data_dir)["test"].num_rows,
             RECONSTRUCT: len(reconstruct_rows(release_dir(data_dir=cfg.data_dir), cfg.subset))}  # fmt: skip
    chosen = {task: evenly_spaced(n, cfg.sampled_probes) for task, n in sizes.items()}
    found = {task: indices for task, indices in chosen.items() if indices is not None}
    return found or None


def default_jobs(backend: str) -> int:
    """Models measured at once: two on a CPU with two cores or more (1.6x the throughput of one, measured); one
    on a GPU (one process holds it) or with vLLM (it manages its device itself)."""
    if backend != "hf":
        return 1
    import torch

    return 1 if torch.cuda.is_available() or torch.backends.mps.is_available() else min(2, default_workers())


class Study:
    """`leakbench run` as named stages (`STAGES`) over one state: build or reuse the models, measure them, unlearn
    and measure each method, attack (robustness), publish. Every stage is resumable: a model built with the same
    recipe, an unlearned model made with the same method, hyper-parameters and seed, and a run folder measured
    with the same settings on the same weights are reused, not redone."""

    def __init__(self, cfg: StudyConfig, log: Callable[[str], None] = print) -> None:
        self.cfg, self.log, self.started = cfg, log, time.perf_counter()
        self.out = Path(cfg.out)
        self.models, self.runs = self.out / "models", self.out / "runs"
        self.data_hash = release_hash(data_dir=cfg.data_dir)
        # the reference attack calibrates by the base the victims were fine-tuned from (the shipped one by default)
        self.privacy_cfg = PrivacyConfig(subset=cfg.subset, data_dir=cfg.data_dir,
                                         calibration=cfg.victim.get("base") or CALIBRATION)  # fmt: skip
        self.timings: dict[str, float] = {}
        self.unbuilt: dict[Path, VictimConfig] = {}  # a built model kept without weights -> its recipe
        # before any training: a missing file fails fast; each dataset named with EvalPlus's own hash of its data
        self.utility_data = _utility_datasets(cfg, log)
        self.runs_of: dict[str, list[dict[str, Any]]] = {}  # row -> its runs (one per seed)
        self.labels: list[str] = []
        self.family = ""  # what groups the runs of every victim seed: the first victim's name
        self.robustness: dict[str, Any] = {}  # run label -> its robustness record
        self.jobs = cfg.jobs or default_jobs(cfg.backend)

    def timed(self, label: str, fn: Callable[[], Any]) -> Any:
        t = time.perf_counter()
        value = fn()
        self.timings[label] = round(time.perf_counter() - t, 1)
        return value

    # -- stage: models ---------------------------------------------------------------------------------------

    def models_stage(self, v: int) -> Pair:
        """The victim and oracle of victim seed `v`: the given --model/--oracle, or the embedded base fine-tuned
        on the forget subjects and on their substitutes (the shipped pair copied, or a built one reused, when
        of the same recipe and release)."""
        cfg = self.cfg
        tag = f"-v{v}" if cfg.victim_seeds > 1 else ""
        if cfg.model:
            victim, oracle = Path(cfg.model), Path(cfg.oracle) if cfg.oracle else None
            # folder name plus content: two studies of different victims in folders of the same name stay apart
            names = model_label(victim), model_label(oracle) if oracle else None
            self.log(f"[1] victim: {victim}; oracle: {oracle or 'none given (no oracle gaps, no PrivLeak)'}")
        else:
            victim, oracle = self.models / f"victim{tag}", self.models / f"oracle{tag}"
            vcfg = dataclasses.replace(VictimConfig(subset=cfg.subset), **cfg.victim)
            vcfg = dataclasses.replace(vcfg, seed=vcfg.seed + v)
            names = f"leakbench-tiny-{vcfg.key()[:8]}", f"leakbench-tiny-{vcfg.key()[:8]}/oracle"
            self.log(f"[1] {self._step(v)}victim and oracle: the embedded base fine-tuned on the forget subjects and "
                     "on their substitutes (shipped, reused or trained)")  # fmt: skip
            for label, folder, c in ((f"victim{tag}", victim, vcfg),
                                     (f"oracle{tag}", oracle, dataclasses.replace(vcfg, oracle=True))):  # fmt: skip
                # cached by configuration and release: reused when built with the same, rebuilt when either changed
                recorded = (folder / VictimRecord.FILE).is_file()
                stale = recorded and not reusable(model_record(folder), c, self.data_hash)
                if recorded and not stale and not has_weights(folder):  # git keeps a reference run's records only
                    self.log(f"    {label}: its record without its weights; built again only if one of its pair's "
                             "models is still to measure")  # fmt: skip
                    self.unbuilt[folder] = c
                    continue
                self.timed(label, lambda f=folder, c=c, s=stale: build(f, c, data_dir=cfg.data_dir, overwrite=s,
                                                                       log=self.log))  # fmt: skip
        self.family = self.family or names[0]
        return Pair(victim, oracle, names[0], names[1], model_record(victim), tag)

    # -- stage: measure (and unlearn) --------------------------------------------------------------------------

    def label(self, model_dir: Path, run_label: str) -> str | None:
        """A model's label (`records.model_label`: its folder's name and weights); for a folder kept without its
        weights (git keeps a reference run's records only), the label its measured run recorded, or None."""
        if has_weights(model_dir) or not model_dir.is_dir():  # the weights, or a hub id
            return model_label(model_dir)
        try:
            done = RunRecord.find(self.runs / run_label)
        except LeakBenchError:
            return None
        return (done.evaluation or {}).get("model") if done is not None else None

    def evaluation_key(self, model: str | None, reference: str | None) -> dict[str, Any]:
        """What a run folder's figures depend on: the weights (`model`, their label), the reference's (the
        oracle's weights) and every setting."""
        cfg = self.cfg
        return {"model": model, "reference": reference,
                "leakbench": __version__, "declarations": declarations_hash(),  # tasks' YAMLs and the scorer's
                "release": self.data_hash, "subset": cfg.subset, "tasks": STUDY_TASKS, "ner": cfg.ner,
                "batch_size": cfg.batch_size, "limit": cfg.limit, "sampled_probes": cfg.sampled_probes,
                "backend": cfg.backend, "model_args": cfg.model_args,
                "utility": self.utility_data,  # EvalPlus's data by its hash: downloaded or --evalplus-dir alike
                "max_new_tokens": cfg.max_new_tokens}  # fmt: skip

    def same_evaluation(self, recorded: dict[str, Any] | None, key: dict[str, Any]) -> bool:
        """Whether a run folder's recorded key is `key`. A key written before 2026-12-07 named the EvalPlus folder
        (`evalplus_dir`) and listed the datasets without their data's hash: compared as it was written (the same
        folder), then rewritten in today's form where it is reused (`in_current_form`)."""
        if recorded is not None and "evalplus_dir" in recorded:
            dir_ = self.cfg.evalplus_dir
            key = {**key, "evalplus_dir": str(dir_) if dir_ else None, "utility": list(self.utility_data)}
        return recorded == key

    def measured_already(self, job: Job, reference: str | None
                         ) -> tuple[dict[str, float | None], dict[str, Any]] | None:  # fmt: skip
        """The figures of a run folder measured with the same key (`evaluation_key`); None when the model must be
        measured (also when its samples are gone and its entry.json no longer matches its records: it could not
        be published). A folder holding its samples is named as this study names it; one without keeps its
        names (renaming it would leave its kept entry stale). Either way its records are put in today's form."""
        run_dir = self.runs / job.label
        key = self.evaluation_key(self.label(job.model_dir, job.label), reference)
        if self.cfg.reuse_shipped and not run_dir.exists():
            self.adopt_shipped(job, key)
        try:
            done = RunRecord.find(run_dir) if not (run_dir / INCOMPLETE).exists() else None
            if (done is None or not self.same_evaluation(done.evaluation, key)
                    or not (run_dir / PrivacyRecord.FILE).is_file() or not self.same_utility_data(run_dir, key)):
                return None
            privacy = PrivacyRecord.read(run_dir).dump()
        except LeakBenchError:
            return None  # a damaged or unreadable record: measured again
        if has_samples(run_dir):
            done = RunRecord(**{**job.run, "model_source": _study_source(job.model_dir, self.out),
                                "metrics": with_privacy(done.metrics, privacy), "evaluation": done.evaluation,
                                "provenance": done.provenance, "wall_times_s": done.wall_times_s,
                                })  # the figures and their times are the folder's  # fmt: skip
            with signals_deferred():  # run.json and the entry made from it: both or neither
                done.write(run_dir)
                if not kept_entry_is_current(run_dir):
                    keep_entry(run_dir)
        elif not kept_entry_is_current(run_dir):
            return None
        elif (done.model_name, done.group) != (job.run.get("model_name"), job.run.get("group")):
            self.log(f"    {job.label}: its records, kept without their samples, name it {done.model_name} "
                     f"({done.group}); kept so")  # fmt: skip
        done = self.in_current_form(run_dir, done, key)
        self.log(f"    {job.label}: measured already with these settings ("
                 + ("reused)" if per_question(privacy) else "reused but for privacy, whose record is older)"))
        return done.metrics, privacy

    def same_utility_data(self, run_dir: Path, key: dict[str, Any]) -> bool:
        """Whether every EvalPlus record in a run folder was made on the data this study runs, by EvalPlus's hash
        (what a key of the older form, which named only the folder, leaves unchecked), and of the key's weights:
        by their label, or by the path an older LeakBench wrote (`older_model_path`)."""
        for path in run_dir.rglob(UtilityRecord.FILE):
            record = UtilityRecord.read(path)
            if self.utility_data.get(dataset_name(record.dataset, record.mini)) != record.dataset_hash:
                return False
            model = record.source.get("model")
            if model not in (None, key["model"]) and not older_model_path(model, key["model"]):
                return False
        return True

    def in_current_form(self, run_dir: Path, done: RunRecord, key: dict[str, Any]) -> RunRecord:
        """A reused folder's records as this LeakBench writes them, where an older one wrote fields no entry reads
        otherwise: the evaluation key (its older form named the EvalPlus folder: `same_evaluation`) and an
        EvalPlus record's model (by its path, now by its label). No local path stays in what git keeps; the
        kept entry stays current. (An unlearned model's record: `unlearned_in_current_form`.)"""
        renamed = [(path, record) for path in sorted(run_dir.rglob(UtilityRecord.FILE))
                   if older_model_path((record := UtilityRecord.read(path)).source.get("model"), key["model"])]
        if done.evaluation == key and not renamed:
            return done
        kept = entry_before_change(run_dir)  # everything read before anything is written
        done = done.model_copy(update={"evaluation": key})
        with signals_deferred():  # the records and the entry restated from them: all or none
            done.write(run_dir)
            for path, record in renamed:
                record.model_copy(update={"source": {**record.source, "model": key["model"]}}).write(path.parent)
            keep_entry_again(run_dir, kept)
        return done

    @staticmethod
    def unlearned_in_current_form(job: Job, victim: Path, record: dict[str, Any]) -> dict[str, Any]:
        """An unlearned model's record (`unlearn.json`) with its source named as this LeakBench names it
        (`model_name`: an older one wrote the victim's path)."""
        if record["source_model"] == (name := model_name(victim)):
            return record
        made = UnlearnRecord.read(job.model_dir).model_copy(update={"source_model": name})
        made.write(job.model_dir)
        return made.dump()

    def adopt_shipped(self, job: Job, key: dict[str, Any]) -> None:
        """The shipped measurement of the job's model (`SHIPPED_MEASUREMENTS`) copied in as its run folder, when it
        was made with `key`: the same weights (by their fingerprint), reference, release, declarations and
        settings."""
        if job.run.get("role") not in ("victim", "oracle"):
            return  # only the pair ships measured
        shipped = SHIPPED_MEASUREMENTS / job.run["role"]
        try:
            made = RunRecord.find(shipped)
        except LeakBenchError:
            return  # a damaged shipped record: measured here
        if made is None or made.evaluation != key or not kept_entry_is_current(shipped):
            return
        with atomic_dir(self.runs / job.label) as tmp:
            copy_kept(shipped, tmp)
        when = str((made.provenance or {}).get("date", "?"))[:10]
        self.log(f"    {job.label}: the measurement shipped with it (made {when}) has these settings, weights and "
                 "reference (--measure-shipped measures it here)")  # fmt: skip

    def record(self, job: Job, outcome: Outcome, reference: dict[str, Any] | None) -> dict[str, float | None]:
        """A measured model's privacy record (compared with the oracle's) and run.json, what publish makes an entry
        of; the folder stops being incomplete."""
        run_dir, privacy = self.runs / job.label, outcome.privacy
        if reference is not None:
            compared(privacy, reference)
        elif job.run["role"] == "oracle":  # the oracle against itself: 0 and 1 by construction
            compared(privacy, privacy)
        if outcome.results is None:
            return self.record_privacy(job, privacy)
        PrivacyRecord.parse(privacy, f"{job.label}'s privacy record").write(run_dir)
        (run_dir / RobustnessRecord.FILE).unlink(missing_ok=True)  # attacks on an earlier model of this label
        metrics = study_metrics(outcome.results, outcome.pass_at_1, privacy["metrics"])
        RunRecord(**job.run, model_source=_study_source(job.model_dir, self.out), metrics=metrics,
                  evaluation=self.evaluation_key(model_label(job.model_dir), (reference or {}).get("model")),
                  provenance=provenance()).write(run_dir)  # fmt: skip
        (run_dir / INCOMPLETE).unlink()
        keep_entry(run_dir)  # what publishes the folder once its samples are gone
        return metrics

    def record_privacy(self, job: Job, privacy: dict[str, Any]) -> dict[str, float | None]:
        """A privacy record measured again on the weights a run folder measured: its privacy figures replace the
        old ones in run.json (the rest, its evaluation key and provenance stay) and in the kept entry."""
        run_dir = self.runs / job.label
        done = RunRecord.read(run_dir / RunRecord.FILE)
        kept = entry_before_change(run_dir)
        metrics = with_privacy(done.metrics, privacy)
        with signals_deferred():  # a stop between these would leave run.json's privacy figures behind its record
            PrivacyRecord.parse(privacy, f"{job.label}'s privacy record").write(run_dir)
            done.model_copy(update={"metrics": metrics}).write(run_dir)
            keep_entry_again(run_dir, kept, privacy=True)
        return metrics

    def jobs_of(self, pair: Pair) -> list[Job]:
        """The pair's models to measure: its oracle, its victim, then every method at every seed."""
        cfg, jobs = self.cfg, []
        if pair.oracle is not None:
            jobs.append(Job(f"oracle{pair.tag}", pair.oracle, _built_run(
                pair.oracle_name or "", "oracle", model_record(pair.oracle), baseline_model_name=pair.victim_name,
                group=f"{self.family}/oracle")))  # fmt: skip
        jobs.append(Job(f"victim{pair.tag}", pair.victim, _built_run(
            pair.victim_name, "victim", pair.record, oracle_model_name=pair.oracle_name,
            group=f"{self.family}/victim")))  # fmt: skip
        for method in cfg.methods:
            base = UnlearnConfig(method=method, subset=cfg.subset, **cfg.unlearn)
            for s in range(cfg.seeds):
                label = f"{method}{pair.tag}" + (f"-s{s}" if cfg.seeds > 1 else "")
                ucfg = dataclasses.replace(base, seed=base.seed + s)
                jobs.append(Job(label, self.models / label, {}, method=method, unlearn=ucfg, victim=pair.victim))
        return jobs

    def unlearned_run(self, pair: Pair, job: Job, record: dict[str, Any]) -> dict[str, Any]:
        """An unlearned model's run record fields, from its unlearn.json."""
        vrecord, seeded = pair.record, self.cfg.seeds > 1
        return {
            "model_name": f"{pair.victim_name}/{job.method}" + (f"@seed{record['seed']}" if seeded else ""),
            "role": "unlearned", "method": job.method, "group": f"{self.family}/{job.method}",
            "hyperparameters": record["hyperparameters"], "baseline_model_name": pair.victim_name,
            "oracle_model_name": pair.oracle_name, "parameters": vrecord.get("parameters"),
            "seeds": {"victim": vrecord.get("seed"), "unlearn": record["seed"]},
            "wall_times_s": {"victim_build": vrecord.get("wall_time_s"), "unlearn": record["wall_time_s"]},
        }  # fmt: skip

    def pending(self, pair: Pair) -> tuple[list[Job], dict[str, tuple[dict[str, float | None], dict[str, Any]]],
                                           dict[str, dict[str, Any]], list[Job]]:  # fmt: skip
        """The pair's jobs; those measured already (label -> metrics, privacy record); the unlearned models found
        (label -> unlearn.json); and the jobs still to do. An unlearned model kept without its weights counts as
        made only where its measurement is reused, else it is made again."""
        oracle_label = f"oracle{pair.tag}" if pair.oracle is not None else None
        reference = self.label(pair.oracle, oracle_label) if pair.oracle is not None and oracle_label else None
        source = self.label(pair.victim, f"victim{pair.tag}")
        found: dict[str, tuple[dict[str, float | None], dict[str, Any]]] = {}
        unlearned: dict[str, dict[str, Any]] = {}
        todo: list[Job] = []

        def reuse(job: Job, done: tuple[dict[str, float | None], dict[str, Any]]) -> None:
            """A measured folder: reused, or (its privacy record of an older form) its privacy measured again."""
            if per_question(done[1]):
                found[job.label] = done
            else:
                todo.append(dataclasses.replace(job, privacy_only=self.label(job.model_dir, job.label)))

        for job in (jobs := self.jobs_of(pair)):
            if job.unlearn is not None:
                record = reusable_unlearned(job.model_dir, source, job.unlearn, self.data_hash)
                if record is not None:
                    record = self.unlearned_in_current_form(job, pair.victim, record)
                    run = self.unlearned_run(pair, job, record)
                    if has_weights(job.model_dir):
                        self.log(f"    {job.label}: unlearned already with these settings (reused)")
                        unlearned[job.label] = record
                        job.run, job.unlearn = run, None
                    elif (done := self.measured_already(dataclasses.replace(job, run=run), reference)) is not None:
                        unlearned[job.label], job.run = record, run
                        reuse(job, done)  # measuring its privacy again makes it again first
                        continue
            done = self.measured_already(job, None if job.label == oracle_label else reference) if job.run else None
            if done is not None:
                reuse(job, done)
            else:
                todo.append(job)
        return jobs, found, unlearned, todo

    def measure_stage(self, pair: Pair) -> dict[str, str]:
        """The oracle (against itself), the victim and every method at every seed (each unlearned from the victim
        first), all against the oracle, in `jobs` worker processes; returns the unlearned runs (label -> method).

        A model unlearned or measured already with the same settings is reused. Each model's figures are
        recorded as soon as it is measured (and the oracle's privacy record is), so a stop loses only the models
        being worked on."""
        cfg = self.cfg
        oracle_label = f"oracle{pair.tag}" if pair.oracle is not None else None
        jobs, found, unlearned, todo = self.pending(pair)
        if todo and self.build_again(pair):  # a model of the pair is still to measure: its victim and oracle
            jobs, found, unlearned, todo = self.pending(pair)  # by the labels of the weights built again
        todo = measure_order(todo)
        n_methods = sum(j.unlearn is not None for j in todo)
        again = sum(j.privacy_only is not None for j in todo)
        if not todo:
            self.log(f"[2] {self._step(pair)}nothing to measure: every model's records match these settings")
        else:
            self.log(f"[2] {self._step(pair)}measuring {len(todo)} models ({n_methods} to unlearn first"
                     + (f"; {again} of them only privacy again, their records of an older LeakBench" if again else "")
                     + "), in this "
                     f"order: {', '.join(j.label for j in todo)}, in {self.jobs} worker "
                     f"process{'es' if self.jobs > 1 else ''}"
                     + (f"; their logs in {self.out / 'logs'}" if self.jobs > 1 else ""))  # fmt: skip
        utility_sets = list(parse_datasets(tuple(self.utility_data)))
        bench = Bench(cfg, utility_sets, self.privacy_cfg, self.out / "logs" if self.jobs > 1 else None,
                      probe_sample(cfg))  # fmt: skip
        threads = max(1, default_workers() // self.jobs)
        waiting: dict[str, tuple[Job, Outcome]] = {}  # measured, waiting for the oracle's privacy record

        def recorded(label: str, oracle_privacy: dict[str, Any] | None) -> None:
            job, outcome = waiting.pop(label)
            if outcome.unlearned is not None:
                unlearned[label] = outcome.unlearned
                job.run = self.unlearned_run(pair, job, outcome.unlearned)
            found[label] = self.record(job, outcome, oracle_privacy), outcome.privacy

        def settle() -> None:
            """Record every measured model whose reference is known: the oracle first, the others once it is."""
            if oracle_label in waiting:
                recorded(oracle_label, None)
            if oracle_label is None or oracle_label in found:
                for label in list(waiting):
                    recorded(label, found[oracle_label][1] if oracle_label else None)

        started, finished = time.perf_counter(), []

        def begin(job: Job) -> None:
            if job.privacy_only is not None:  # its measurement stays whole if this stops: the folder is not marked
                self.log(f"    {job.label}: " + ("unlearning again, then " if job.unlearn else "")
                         + "privacy again (its record is of an older LeakBench)")  # fmt: skip
                return
            mark_incomplete(self.runs / job.label)
            self.log(f"    {job.label}: " + ("unlearning, then " if job.unlearn else "")
                     + f"{', '.join(STUDY_TASKS)} on the {cfg.subset} subset, EvalPlus, privacy")  # fmt: skip

        def end(job: Job, outcome: Outcome) -> None:
            self.timings.update(outcome.timings)
            waiting[job.label] = (job, outcome)
            settle()
            finished.append(job.label)
            self.log(f"    {job.label}: measured ({len(finished)}/{len(todo)}, "
                     f"{time.perf_counter() - started:.0f} s into this stage)")  # fmt: skip

        with workers_for(self.jobs, threads=threads) as pool:
            run_each(pool, self.jobs, todo, functools.partial(measure_job, bench), end, begin)
        assert not waiting, f"measured but never recorded: {sorted(waiting)}"

        refs = Measured(found[f"victim{pair.tag}"][0], found[oracle_label][0] if oracle_label else None,
                        found[oracle_label][1] if oracle_label else None)  # fmt: skip
        seed = pair.record.get("seed")
        self._add("victim", f"victim{pair.tag}", seed, refs.victim, refs)
        if oracle_label is not None:
            self._add("oracle", oracle_label, seed, found[oracle_label][0], refs)
        for job in jobs:
            if job.method is not None:
                record = unlearned[job.label]
                self._add(job.method, job.label, seed, found[job.label][0], refs, {k: record[k] for k in (
                    "hyperparameters", "steps", "wall_time_s", "loss_before", "loss_after")})  # fmt: skip
        return {job.label: job.method for job in jobs if job.method is not None}

    # -- stages: robustness, publish -------------------------------------------------------------------------

    def robustness_stage(self, pair: Pair, runs: dict[str, str]) -> None:
        """The attacks on every unlearned model of the pair (`runs`: label -> method), against its own victim and
        oracle, so that every figure has seeds behind it; a run attacked already with the same settings keeps
        its record (a run measured again has lost it). The summary is written first, so that a stop here loses
        only the attacks under way."""
        cfg = self.cfg
        rcfg = RobustnessConfig(**cfg.robustness_options)
        todo = {}
        for label, method in runs.items():
            if (done := attacked_already(self.runs / label, rcfg)) is not None:
                self.robustness[label] = done
            else:
                todo[label] = method
        if not todo:
            self.log(f"[3] {self._step(pair)}robustness: {len(runs)} models attacked already with these settings "
                     "(reused)")  # fmt: skip
            return
        self.write()
        self.log(f"[3] {self._step(pair)}robustness of {len(todo)} models ({', '.join(rcfg.axes)}): "
                 + ", ".join(todo))  # fmt: skip
        self.rebuild(pair, todo)
        self.robustness |= self.timed(f"robustness{pair.tag}", lambda: study_stage(
            self.out, pair.victim, pair.oracle, todo, rcfg, subset=cfg.subset, data_dir=cfg.data_dir, ner=cfg.ner,
            log=self.log))  # fmt: skip

    def build_again(self, pair: Pair) -> bool:
        """Build the pair's victim and oracle where only their records are here (their recipes are byte-for-byte
        deterministic, so the labels match the measured ones); whether any was built."""
        unbuilt = [folder for folder in (pair.victim, pair.oracle) if folder in self.unbuilt]
        for folder in unbuilt:
            self.timed(folder.name, lambda f=folder: build(f, self.unbuilt.pop(f), data_dir=self.cfg.data_dir,
                                                           log=self.log))  # fmt: skip
        return bool(unbuilt)

    def rebuild(self, pair: Pair, runs: dict[str, str]) -> None:
        """The weights the attacks need where only records are here (a reference run resumed from git): the pair
        built again, each attacked model (`runs`: by label) unlearned again, each checked to be the model that was
        measured."""
        measured = {f: self.label(f, f.name) for f in (pair.victim, pair.oracle) if f in self.unbuilt}
        self.build_again(pair)
        for folder, label in measured.items():
            if label is not None and model_label(folder) != label:
                raise LeakBenchError(f"{folder}: built again, it has other weights than the model measured ({label}: "
                                     "floating-point kernels differ between machines); remove "
                                     f"{self.runs / folder.name} to measure the pair again")  # fmt: skip
        for job in self.jobs_of(pair):
            if job.unlearn is None or job.label not in runs or has_weights(job.model_dir):
                continue
            measured = self.label(job.model_dir, job.label)
            self.log(f"    {job.label}: unlearned again for the attacks (only its records are here)")
            unlearn(pair.victim, job.model_dir, job.unlearn, data_dir=self.cfg.data_dir, overwrite=True, log=self.log)
            if model_label(job.model_dir) != measured:
                raise LeakBenchError(f"{job.model_dir}: unlearning again gave other weights than the model measured "
                                     f"({measured}); remove {self.runs / job.label} to measure it again")  # fmt: skip

    def publish_stage(self) -> dict[str, Any]:
        """Every run folder into the leaderboard (the study's folder, or --publish-to) and the summary written
        beside it; returns the summary."""
        cfg, board, published = self.cfg, Path(self.cfg.publish_to or self.out), None
        if cfg.publish:
            self.log(f"[{3 + cfg.robustness}] publishing into {board}")
            published = publish([self.runs / label for label in self.labels], board / "leaderboard.json",
                                board / "index.html")  # fmt: skip
        summary = self.summary(published=published, complete=True)
        for folder in dict.fromkeys([self.out, board] if cfg.publish else [self.out]):  # the study's and the board's
            write_summary(folder, summary, summary["rows"])
        return summary

    # -- the state -------------------------------------------------------------------------------------------

    def _add(self, row: str, label: str, victim_seed: int | None, metrics: dict[str, float | None], refs: Measured,
             unlearn_info: dict[str, Any] | None = None) -> None:  # fmt: skip
        self.labels.append(label)
        by_name = json.loads(json.dumps({"metrics": metrics, "unlearn": unlearn_info}, sort_keys=True))
        self.runs_of.setdefault(row, []).append({  # measured or read back: the same bytes
            "label": label, "victim_seed": victim_seed, "metrics": by_name["metrics"],
            "comparisons": comparisons(refs.victim, metrics, refs.oracle),
            **({"unlearn": by_name["unlearn"]} if unlearn_info else {}),
        })  # fmt: skip

    def _step(self, v: int | Pair) -> str:
        n = self.cfg.victim_seeds
        index = v if isinstance(v, int) else int(v.tag[2:] or 0)
        return f"[victim {index + 1}/{n}] " if n > 1 else ""

    def summary(self, **extra: Any) -> dict[str, Any]:
        cfg = self.cfg
        rows = {row: summarize(row_runs) for row, row_runs in self.runs_of.items()}
        if self.robustness:
            extra["robustness"] = self.robustness
        return provenance(
            kind="study", subset=cfg.subset, methods=list(cfg.methods), seeds=cfg.seeds,
            victim_seeds=cfg.victim_seeds, jobs=self.jobs, ner=cfg.ner,
            utility=list(self.utility_data), rows=rows, **extra,
            timings_s=self.timings, wall_time_s=round(time.perf_counter() - self.started, 1),
        )  # fmt: skip

    def write(self) -> None:
        """OUT/summary.json and summary.md of what is measured so far (`complete`: False)."""
        summary = self.summary(complete=False)
        write_summary(self.out, summary, summary["rows"])


def run_study(cfg: StudyConfig, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Run the study into `cfg.out` stage by stage (`STAGES`); returns (and writes) `summary.json`.

    Layout: OUT/models/<label> (weights), OUT/runs/<label> (lm-eval outputs, utility.json, privacy.json, run.json:
    one leaderboard entry each), OUT/summary.json and OUT/summary.md. With several seeds a label carries them
    (`victim-v1`, `npo-v1-s2`); the table has one row per model kind, mean ± 95% CI over its runs.
    """
    study = Study(cfg, log)
    for v in range(cfg.victim_seeds):
        pair = study.models_stage(v)
        runs = study.measure_stage(pair)
        if cfg.robustness:  # every unlearned model of the pair, while its weights are here
            study.robustness_stage(pair, runs)
        if v + 1 < cfg.victim_seeds:  # a run split across sessions shows the victim seeds it has measured
            study.write()
    return study.publish_stage()


def ship_measurements(study: str | Path) -> list[Path]:
    """Keep the victim's and oracle's measurements of a default `leakbench run` (its --out folder `study`) in the
    package (`SHIPPED_MEASUREMENTS`), for maintainers after the shipped pair or the declarations change; returns
    the folders written."""
    written = []
    for role in ("victim", "oracle"):
        run_dir = Path(study) / "runs" / role
        if (run_dir / INCOMPLETE).exists() or not kept_entry_is_current(run_dir):
            raise LeakBenchError(f"{run_dir}: no complete measurement of the {role} (run `leakbench run --out "
                                 f"{study}`, with one victim seed, to the end first)")  # fmt: skip
        with atomic_dir(SHIPPED_MEASUREMENTS / role, overwrite=True) as tmp:
            copy_kept(run_dir, tmp)
        written.append(SHIPPED_MEASUREMENTS / role)
    return written


def write_summary(folder: Path, summary: dict[str, Any], rows: dict[str, dict[str, Any]]) -> None:
    """FOLDER/summary.json (the record) and summary.md (the table, and the robustness table when there is one)."""
    StudySummary.parse(json.loads(json.dumps(summary)), str(folder / StudySummary.FILE)).write(folder)
    write_text_atomic(folder / "summary.md", summary_markdown({**summary, "rows": rows}))


def summary_markdown(summary: dict[str, Any]) -> str:
    """summary.md: the study's table, then its robustness table when models were attacked; a study under way says
    how many of its victim seeds the rows hold."""
    attacks = study_robustness_table(summary)
    partial = ""
    if not summary.get("complete", True):
        done = len({run.get("victim_seed") for run in summary["rows"].get("victim", {}).get("runs", [])})
        if done < summary["victim_seeds"]:
            partial = f"Under way: the rows hold {done} of {summary['victim_seeds']} victim seeds (the study writes " \
                      "this after each).\n\n"  # fmt: skip
        else:
            partial = "Under way: every victim seed is measured; the robustness attacks are not finished.\n\n"
    return partial + summary_table(summary["rows"]) + (f"\n## Robustness\n\n{attacks}" if attacks else "")


def study_robustness_table(summary: dict[str, Any]) -> str:
    """A study's robustness table, each method over its attacked runs (by victim seed, then unlearning seed);
    empty when nothing was attacked."""
    records = summary.get("robustness") or {}
    victims = {run["label"]: run.get("victim_seed") for row in summary["rows"].values() for run in row["runs"]}
    return robustness_table(records, victims) if records else ""


def with_privacy(metrics: dict[str, float | None], privacy: dict[str, Any]) -> dict[str, float | None]:
    """A run's figures with their privacy part read from its privacy record (`privacy.json`, their source)."""
    fresh = study_metrics({}, None, privacy["metrics"])
    return {**metrics, **{key: fresh.get(key) for key in privacy_metrics()}}


def older_model_path(recorded: str | None, label: str | None) -> bool:
    """Whether an EvalPlus record's model is the path an older LeakBench wrote for the weights labelled `label`
    (`records.model_label`: the folder's name, then its fingerprint), not a label of its own."""
    if not recorded or not label or recorded == label or ("/" not in recorded and "\\" not in recorded):
        return False
    return label.rsplit("@", 1)[0] == Path(recorded.replace("\\", "/")).name


def _built_run(name: str, role: str, record: dict[str, Any], **extra: Any) -> dict[str, Any]:
    """The run record of a victim or oracle: its name, role, size, seed and build time."""
    return {"model_name": name, "role": role, "method": "none", "parameters": record.get("parameters"),
            "seeds": {role: record.get("seed")}, "wall_times_s": {f"{role}_build": record.get("wall_time_s")},
            **extra}  # fmt: skip


def summarize(row_runs: list[dict[str, Any]]) -> dict[str, Any]:
    """One table row from its runs (seeds): mean metrics and comparisons, their 95% CI half-widths (None with a
    single run; over victims, then unlearning seeds, where the runs name their `victim_seed`: `mean_ci`), and the
    runs themselves."""
    victims = [r.get("victim_seed") for r in row_runs]  # two-level intervals over victims, then unlearning seeds
    metrics, metrics_ci = aggregate([r["metrics"] for r in row_runs], victims)
    found, found_ci = aggregate([r["comparisons"] for r in row_runs], victims)
    if "utility_kept" in found:  # the mark follows the mean, not any single seed
        found["utility_kept_above_100"] = over_kept(found["utility_kept"])
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


def _utility_datasets(cfg: StudyConfig, log: Callable[[str], None]) -> dict[str, str]:
    """The EvalPlus datasets to run, those whose data can be loaded (local files, or EvalPlus's download): name
    (`humaneval-mini`) -> EvalPlus's hash of the data."""

    chosen = {}
    for dataset, mini in parse_datasets(cfg.utility):
        name = dataset_name(dataset, mini)
        try:
            chosen[name] = load_problems(dataset, mini, cfg.evalplus_dir)[1]
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


def study_columns(rows: dict[str, dict[str, Any]]) -> list[Metric]:
    """The metrics the study table shows: every study row of `METRICS`, an optional one (an EvalPlus dataset)
    only when the study measured it."""
    first = next(iter(rows.values()))["metrics"]
    return [m for m in METRICS if m.study and (not m.optional or m.key in first)]


KEPT_MARK = " ↑"  # utility kept above 100% (decided on the row's mean)


def table(rows: dict[str, dict[str, Any]]) -> tuple[list[str], list[list[str]], list[str]]:
    """The study table: columns, one list of cells per model, and the notes that explain its marks (the
    Markdown file and the console print the same). Rows over several seeds show mean ± 95% CI half-width.
    Its columns loop over `leakbench.metrics.METRICS`: each metric's value ("(kept)" relative to the victim for
    utility), then each leak rate's gap to the oracle, the direct-leak reduction, the indirect change and the
    headline utility relative to the oracle."""
    shown = study_columns(rows)
    gaps = [m for m in METRICS if m.oracle_gap]
    headline = metric(HEADLINE_UTILITY)
    columns = ["model", "runs", *(f"{m.label} (kept)" if m.kept else m.label for m in shown),
               *(f"{m.label} vs oracle" for m in gaps), "direct-leak reduction", "indirect change",
               f"{headline.label} vs oracle"]  # fmt: skip
    cells, flagged, undefined, seeded = [], False, [], False
    for label, row in rows.items():
        m, c = row["metrics"], row.get("comparisons") or {}
        mci, cci = row.get("ci95") or {}, row.get("comparisons_ci95") or {}
        seeded |= bool(mci)
        kept_values, gap = c.get("utility_kept") or {}, c.get("vs_oracle") or {}
        kept_ci, gap_ci = cci.get("utility_kept") or {}, cci.get("vs_oracle") or {}
        line = [label, str(row.get("n_runs", 1))]
        for spec in shown:
            text = spec.show(m.get(spec.key), mci.get(spec.key))
            if spec.kept and label != "victim":
                share = kept_values.get(spec.key)
                mark = KEPT_MARK if share is not None and share > 1.0 + 1e-9 else ""
                flagged |= bool(mark)
                text += f" ({_pct(share, kept_ci.get(spec.key))}{mark})"
                if share is None and spec.optional and rows["victim"]["metrics"].get(spec.key) == 0:
                    undefined.append(spec.sources[0][1])
            line.append(text)
        line += [_pts(gap.get(gap_key(g.key)), gap_ci.get(gap_key(g.key))) for g in gaps]
        vs_oracle = _pct(gap.get(vs_oracle_key(HEADLINE_UTILITY)), gap_ci.get(vs_oracle_key(HEADLINE_UTILITY)))
        if label == "victim":
            line += ["", "", vs_oracle]
        else:
            line += [_pct(c.get("direct_leak_reduction"), cci.get("direct_leak_reduction")),
                     _pts(c.get("indirect_leak_change"), cci.get("indirect_leak_change")), vs_oracle]  # fmt: skip
        cells.append(line)
    notes = ["(kept): relative to the victim; vs oracle: minus (leaks) or relative to (utility) the oracle, the "
             "same recipe without the forget set. Kept is measured on code no training step saw (leakbench_code) "
             "and EvalPlus; near-neighbour bits/byte (the forget templates with placeholders) is a diagnostic, "
             "never kept: retain and redaction texts share its templates.",
             "EM, ES: exact memorization and extraction strength of the forget values in their training context; "
             "strongest AUC: the strongest membership attack's, forget vs holdout subjects' values (0.5 = chance); "
             "PrivLeak: MUSE's, that AUC against the oracle's (about -100% = memorized, below -10% under-unlearned, "
             "above +10% over-unlearned); forget quality: KS-test p-value of the truth ratios (one per subject and "
             "field) against the oracle's, with its log10 (log10 FQ; exact where p underflows)."]  # fmt: skip
    if seeded:
        notes.append(
            "x ± y: mean over the row's runs (seeds) ± the 95% confidence half-width (Student t; with "
            "several victims, over the victims' means, which carry their unlearning seeds' spread)."
        )
    if flagged:
        notes.append(f"{KEPT_MARK.strip()}: utility kept above 100% - the model beats the victim there.")
    for dataset in dict.fromkeys(undefined):
        notes.append(f"{dataset}+ pass@1 kept is n/a: the victim's pass@1 is 0, so the ratio is undefined.")
    return columns, cells, notes


HEADLINE_LABELS = {"indirect_leak_rate_direct_probes": "indirect"}  # on the direct probes: said in the notes


def headline_table(rows: dict[str, dict[str, Any]]) -> tuple[list[str], list[list[str]], list[str]]:
    """The console's headline: one row per model with `CONSOLE_HEADLINE`'s figures and the headline utility kept,
    each with its 95% half-width over seeds; narrow enough for a 100-column terminal."""
    shown = [metric(key) for key in CONSOLE_HEADLINE]
    utility = metric(HEADLINE_UTILITY)
    columns = ["model", *(HEADLINE_LABELS.get(m.key, m.label) for m in shown), "code kept"]
    cells = []
    for label, row in rows.items():
        m, ci = row["metrics"], row.get("ci95") or {}
        kept_values = (row.get("comparisons") or {}).get("utility_kept") or {}
        kept_ci = ((row.get("comparisons_ci95") or {}).get("utility_kept")) or {}
        line = [label, *("n/a" if m.get(s.key) is None else s.format(m[s.key], ci.get(s.key)) for s in shown)]
        line.append("" if label == "victim" else _pct(kept_values.get(HEADLINE_UTILITY), kept_ci.get(HEADLINE_UTILITY)))
        cells.append(line)
    notes = ["leak@10: any of 10 samples (temperature 0.8) leaks the value, on the study's probe sample; indirect: "
             "indirect leaks on the same direct probes. PrivLeak: MUSE's, under each model's strongest membership "
             "attack (about -100% = memorized, 0 = the oracle; within ±10% = neither under- nor over-unlearned). "
             f"code kept: {utility.label} relative to the victim. x ± y: mean ± 95% half-width over "
             "seeds."]  # fmt: skip
    return columns, cells, notes


def summary_table(rows: dict[str, dict[str, Any]]) -> str:
    """The study table as Markdown: one row per model, then its notes."""
    columns, cells, notes = table(rows)
    lines = ["| " + " | ".join(columns) + " |", "|" + " --- |" * len(columns)]
    lines += ["| " + " | ".join(row) + " |" for row in cells]
    return "\n".join([*lines, "", *notes]) + "\n"


def read_summary(path: str | Path) -> dict[str, Any]:
    """A study's summary.json (`leakbench.schemas.StudySummary`), one-line errors naming file and field."""
    return StudySummary.read(path).dump()


def merge_summaries(paths: list[str | Path], out: str | Path) -> dict[str, Any]:
    """One summary (OUT/summary.json and summary.md) from studies of the same victim and oracle run side by side
    with different `--methods` (e.g. two `leakbench run`s at once, one thread each): the first study's victim
    and oracle rows, every study's method rows, each study's timings under its own name. `leakbench merge`.
    Each path is a summary.json or the study folder holding it."""
    paths = [Path(p) / StudySummary.FILE if Path(p).is_dir() else Path(p) for p in paths]
    if len(paths) < 2:
        raise UsageError("give at least two study summaries to merge")
    check_output(out, kind="directory")
    check_not_aliased("--out", Path(out) / "summary.json", {f"study {i}": p for i, p in enumerate(paths, 1)})
    studies = [read_summary(p) for p in paths]
    first = studies[0]
    for path, study in zip(paths, studies, strict=True):
        if (study["subset"], study["seeds"], study["victim_seeds"]) != (first["subset"], first["seeds"],
                                                                         first["victim_seeds"]):  # fmt: skip
            raise LeakBenchError(f"{path}: another subset or number of seeds than {paths[0]}; not one study")
        for row in ("victim", "oracle"):
            if row in study["rows"] and study["rows"][row]["metrics"] != first["rows"][row]["metrics"]:
                raise LeakBenchError(f"{path}: its {row} measured differently from {paths[0]}'s; not one study")
    rows = dict(first["rows"])
    for path, study in zip(paths[1:], studies[1:], strict=True):
        for row, found in study["rows"].items():
            if row in ("victim", "oracle"):
                continue
            if row in rows:
                raise LeakBenchError(f"{path}: the method {row} is in another of the studies too; merge studies of "
                                     "different --methods")  # fmt: skip
            rows[row] = found
    parts = [{"methods": s["methods"], "wall_time_s": s["wall_time_s"], "timings_s": s["timings_s"]} for s in studies]
    robustness = {k: v for s in studies for k, v in (s.get("robustness") or {}).items()}
    merged = {**first, "methods": [m for s in studies for m in s["methods"]], "rows": rows, "merged_from": parts,
              "complete": all(s.get("complete", True) for s in studies),  # a study under way keeps the mark
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
    victim); the records join OUT/summary.json and summary.md and the run folders (publish them again).
    `leakbench run --robustness` attacks every run instead, each against its own victim."""

    study = Path(study)
    path = study / StudySummary.FILE
    if not path.exists():
        raise LeakBenchError(f"{path}: no such file; give the --out folder of a finished `leakbench run`")
    summary = read_summary(path)
    if not summary.get("complete", True):
        raise LeakBenchError(f"{path}: the study is under way (complete: false); finish it with the same "
                             "`leakbench run` first, or attack as it goes with "
                             "`leakbench run --robustness`")  # fmt: skip
    rows, subset = summary["rows"], summary["subset"]
    try:
        first = {row: str(found["runs"][0]["label"]) for row, found in rows.items()}  # each row's first run
    except (KeyError, IndexError, TypeError):
        raise LeakBenchError(f"{path}: not a LeakBench study summary (a row without its runs' labels)") from None
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
    labels = {first[m]: m for m in chosen}
    for label in labels:
        if not (study / "models" / label).is_dir():
            raise LeakBenchError(f"{study / 'models' / label}: no such model directory (the study's unlearned model)")
    records = study_stage(study, victim_dir, oracle_dir, labels, cfg, subset=subset, data_dir=data_dir,
                          ner=ner if ner is not None else summary.get("ner", "none"), log=log)  # fmt: skip
    # a run attacked again replaces its whole record (the axes of one run share their settings)
    summary["robustness"] = {**(summary.get("robustness") or {}), **records}
    write_summary(study, summary, rows)
    return summary
