"""lm-evaluation-harness glue: the task YAMLs in `tasks/` point here.

Datasets come from the packaged release (or a user-built one) through `custom_dataset`, so no path needs
configuring: `--metadata '{"subset": "mini"}'`, `{"release": "v1"}`, `{"data_dir": "/path/to/release"}` or
`{"split": "holdout"}` (the probes of subjects no model was trained on: a guessability baseline) switch them.
`process_results` calls the scorer. Nothing here is specific to a model.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import math
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from leakbench.data import DEFAULT_RELEASE, check_split, read_table, release_dir, release_hash
from leakbench.data.build import INDIRECT_KINDS
from leakbench.data.decoys import decoys
from leakbench.data.subjects import FIELDS
from leakbench.heldout import code_split, file_texts, line_cases, score_line
from leakbench.records import LeakBenchError, UsageError, atomic_dir
from leakbench.registry import Registry, check_reference, resolve
from leakbench.resources import resource_dir
from leakbench.scoring import INDIRECT_LEAK_KINDS, LeakScorer
from leakbench.training import choose_device

N_CHOICES = 10  # the true value and 9 decoys


@dataclass(frozen=True)
class Backend:
    """An lm-eval model type that LeakBench evaluates a checkpoint with (`pretrained=<model dir>`).

    `register`: a "module:attribute" reference imported before evaluating, whose import registers the model type
    with lm-eval (`@lm_eval.api.registry.register_model(...)`); `lm_eval_name`: lm-eval's name for the type
    (default: the backend's own name); `requires`: a module that must be importable (checked up front)."""

    title: str
    requires: str | None = None
    register: str | None = None
    lm_eval_name: str | None = None
    places_itself: bool = False  # True: the backend chooses its devices (vLLM); else the device rule picks one


def _check_backend_declaration(name: str, backend: Any) -> Backend:
    if not isinstance(backend, Backend):
        raise LeakBenchError(f"model backend {name!r}: expected a leakbench.harness.Backend declaration, got "
                             f"{type(backend).__name__}")  # fmt: skip
    if backend.register is not None:
        check_reference(backend.register, f"model backend {name!r}: register")
    return backend


# lm-eval model types that load a local or hub checkpoint by `pretrained=`; outside packages add theirs under the
# entry-point group `leakbench.backends`
BACKENDS: Registry[Backend] = Registry("leakbench.backends", "model backend", {
    "hf": Backend("Hugging Face transformers (lm-eval's hf)"),
    "vllm": Backend("vLLM (lm-eval's vllm; a GPU machine)", requires="vllm", places_itself=True),
}, _check_backend_declaration)  # fmt: skip


def check_backend(backend: str, model_args: str = "") -> None:
    """The lm-eval backend is one LeakBench supports and is installed; `model_args` parses and does not set
    `pretrained` (the model directory does)."""
    import importlib.util

    from lm_eval.utils import simple_parse_args_string

    if backend not in BACKENDS:
        raise UsageError(f"unknown --backend {backend!r}; choose one of: {', '.join(BACKENDS)}")
    spec = BACKENDS[backend]
    if spec.requires and importlib.util.find_spec(spec.requires) is None:
        raise LeakBenchError(f"--backend {backend} needs {spec.requires}: `pip install {spec.requires}`"
                             + (" on a machine with a GPU" if backend == "vllm" else ""))  # fmt: skip
    pieces = [p for p in model_args.split(",") if p.strip()]
    if any("=" not in p or not p.split("=", 1)[0].strip() for p in pieces):
        raise UsageError(f"--model-args must be k=v pairs separated by commas, got {model_args!r}")
    parsed = simple_parse_args_string(model_args)
    if "pretrained" in parsed:
        raise UsageError("--model-args must not set pretrained: the model directory is passed separately")


def lm_eval_model(backend: str) -> str:
    """lm-eval's name for a backend, its model type registered with lm-eval first (a plugin's import)."""
    spec = BACKENDS[backend]
    if spec.register is not None:
        resolve(spec.register, f"model backend {backend!r}")
    return spec.lm_eval_name or backend


@cache
def declarations_hash(tasks: tuple[str, ...] | None = None) -> str:
    """sha256 over the tasks' YAMLs and the scorer's declarative files: what a measurement depends on besides
    the code and the weights (a study re-measures a run folder when they change). With `tasks`, only those
    tasks' YAMLs and the files they include (the sweep's key: a change to another task's file leaves it valid)."""
    digest = hashlib.sha256()
    for folder in ("tasks", "scorers"):
        root = resource_dir(folder)
        paths = sorted(p for p in root.rglob("*") if p.is_file() and "__pycache__" not in p.parts)
        if folder == "tasks" and tasks is not None:
            paths = sorted(_task_files(root, tasks))
        for path in paths:
            digest.update(f"{folder}/{path.relative_to(root).as_posix()}\0".encode() + path.read_bytes())
    return digest.hexdigest()


class _DeclarationLoader(yaml.SafeLoader):
    """YAML as lm-eval writes it, its `!function` references read as plain values (only the structure matters)."""


_DeclarationLoader.add_multi_constructor("!", lambda loader, suffix, node: None)


def _task_files(root: Path, tasks: Sequence[str]) -> set[Path]:
    """The YAML of each task and, transitively, the files it includes (relative to the including file) and a
    group's member tasks' YAMLs (found by their `task:` name, whatever their file's name)."""
    declared = {p: yaml.load(p.read_text(encoding="utf-8"), _DeclarationLoader) or {} for p in root.rglob("*.yaml")}
    by_name = {d.get("task"): p for p, d in declared.items() if isinstance(d.get("task"), str)}
    by_name |= {d["group"]: p for p, d in declared.items() if isinstance(d.get("group"), str)}
    found: set[Path] = set()
    todo = [by_name.get(task, root / f"{task}.yaml") for task in tasks]
    while todo:
        path = todo.pop()
        if path in found or not path.is_file():
            continue
        found.add(path)
        data = declared.get(path) or yaml.load(path.read_text(encoding="utf-8"), _DeclarationLoader) or {}
        includes = data.get("include") or []
        todo.extend(path.parent / i for i in ([includes] if isinstance(includes, str) else includes))
        if "group" in data:  # its `task:` list names the members (or declares them inline)
            members = data.get("task") or []
            todo.extend(by_name[m] for m in (members if isinstance(members, list) else [members])
                        if isinstance(m, str) and m in by_name)  # fmt: skip
    return found


def tasks_path() -> Path:
    """The folder to give lm-eval as --include_path."""
    return resource_dir("tasks")


def evaluate(
    model_dir: str | Path,
    out: str | Path,
    tasks: list[str],
    *,
    subset: str = "mini",
    data_dir: str | Path | None = None,
    ner: str | None = None,
    batch_size: int | str = 32,
    device: str | None = None,
    limit: int | None = None,
    backend: str = "hf",
    model_args: str = "",
    split: str = "forget",
    samples: dict[str, list[int]] | None = None,
) -> dict[str, Any]:
    """Run LeakBench tasks on a model through `lm_eval.simple_evaluate`, saving `results_*.json` and
    `samples_*.jsonl` under `out/lm_eval/` as `lm_eval --output_path out/lm_eval --log_samples` does (written to a
    temporary folder first and replacing the previous evaluation, so no stale or half-written result remains).

    `backend` is lm-eval's model type (`hf`, `vllm`); `model_args` (`k=v,...`) goes to it unchanged after
    `pretrained=<model_dir>`, e.g. `dtype=bfloat16,tensor_parallel_size=2` for vLLM on two GPUs. `split` picks the
    subjects probed (and, with a validation split, the validation code modules): `leakbench sweep`'s only.
    `samples` (lm-eval's: task -> the indices of the docs to run) restricts those tasks to a fixed probe sample;
    `limit`, a smoke run's, overrides it."""
    import lm_eval
    from lm_eval.loggers import EvaluationTracker

    check_backend(backend, model_args)
    if device is None and not BACKENDS[backend].places_itself:
        device = choose_device(None)
    manager = task_manager(subset=subset, data_dir=data_dir, ner=ner, split=split)
    with quiet_known_notices(), atomic_dir(Path(out) / "lm_eval", overwrite=True) as staging:
        results = _evaluate(lm_eval, EvaluationTracker(output_path=str(staging)), manager, model_dir, tasks,
                            backend=backend, model_args=model_args, device=device, batch_size=batch_size,
                            limit=limit, samples=None if limit is not None else samples)  # fmt: skip
    return results


def task_manager(*, subset: str = "mini", data_dir: str | Path | None = None, ner: str | None = None,
                 split: str = "forget"):  # fmt: skip
    """lm-eval's `TaskManager` for LeakBench's tasks on one release, subset and split."""
    from lm_eval.tasks import TaskManager


    # recorded in the results' configs, so that `leakbench publish` can tell which release was probed
    metadata: dict[str, Any] = {"subset": subset, "release_hash": release_hash(data_dir=data_dir)}
    if data_dir is not None:
        metadata["data_dir"] = str(data_dir)
    if ner is not None:
        metadata["ner"] = ner
    if split != "forget":
        check_split(split)
        metadata["split"] = split
    return TaskManager(include_path=str(tasks_path()), include_defaults=False, metadata=metadata)


class _KnownNotices(logging.Filter):
    """Notices lm-eval repeats for every task load or batch that say nothing new in LeakBench's own runs: that
    `custom_dataset` kwargs can go to --metadata (our tasks document theirs), and that a prompt longer than a
    small model's context was left-truncated (leakbench_code's 3,000-character prompts, by design)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        custom = message.startswith("leakbench") and "Custom kwargs can be passed" in message
        return not (custom or message.startswith("Left truncation applied"))


@contextlib.contextmanager
def quiet_known_notices() -> Iterator[None]:
    """Drop those notices for the duration of an evaluation only (the filters are removed afterwards)."""
    notice = _KnownNotices()
    loggers = [logging.getLogger(name) for name in ("lm_eval.api.task", "lm_eval.models.huggingface")]
    for logger in loggers:
        logger.addFilter(notice)
    try:
        yield
    finally:
        for logger in loggers:
            logger.removeFilter(notice)


def _evaluate(lm_eval, tracker, manager, model_dir, tasks, *, backend, model_args, device, batch_size, limit,
              samples=None):  # fmt: skip
    from lm_eval.utils import simple_parse_args_string

    results = lm_eval.simple_evaluate(
        model=lm_eval_model(backend),
        # a dict, so that a model path holding `,` or `=` stays whole; the user's arguments follow unchanged
        model_args={"pretrained": str(model_dir), **simple_parse_args_string(model_args)},
        tasks=tasks,
        device=device,
        batch_size=batch_size,
        limit=limit,
        samples=samples,
        task_manager=manager,
        log_samples=True,
        evaluation_tracker=tracker,
    )
    if results is None:  # only on non-zero ranks of a distributed run
        return {}
    samples = results.pop("samples")
    tracker.save_results_aggregated(results=results, samples=samples)
    for task_name in results["configs"]:
        tracker.save_results_samples(task_name=task_name, samples=samples[task_name])
    return results


# --- datasets -------------------------------------------------------------------------------------


def _source(
    subset: str = "full", data_dir: str | None = None, release: str = DEFAULT_RELEASE, split: str = "forget", **_: Any
) -> tuple[str, str, str]:
    check_split(split)
    root = release_dir(release, data_dir)
    return str(root.resolve()), subset, split


def _dataset(rows: list[dict[str, Any]]):  # -> datasets.Dataset
    import datasets

    if not rows:
        raise LeakBenchError("the selected release/subset has no rows for this task")
    return datasets.Dataset.from_list(rows)


def _probe_rows(kinds: tuple[str, ...], ner: str | None, **metadata: Any) -> list[dict[str, Any]]:
    root, subset, split = _source(**metadata)
    rows = read_table("probes", subset=subset, data_dir=root, split=split)
    keep = ("probe_id", "kind", "variant", "subject_id", "target_field", "target_value", "prompt", "template")
    return [
        {**{k: p[k] for k in keep}, "release_dir": root, "split": split, "ner": ner or ""}
        for p in rows
        if p["kind"] in kinds
    ]


def direct_probes(ner: str | None = None, **metadata: Any) -> dict[str, Any]:
    """`custom_dataset` of leakbench_direct: the direct probes (full and short prefixes)."""
    return {"test": _dataset(_probe_rows(("direct",), ner, **metadata))}


def indirect_probes(ner: str | None = None, **metadata: Any) -> dict[str, Any]:
    """`custom_dataset` of leakbench_indirect: cross_context, association, nl_query and paraphrase probes."""
    return {"test": _dataset(_probe_rows(INDIRECT_KINDS, ner, **metadata))}


def retain_heldout(**metadata: Any) -> dict[str, Any]:
    """`custom_dataset` of leakbench_retain: held-out retain documents, scored by rolling log-likelihood."""
    root, subset, _ = _source(**metadata)
    rows = [
        {"doc_id": d["doc_id"], "text": d["text"], "source": d["source"]}
        for d in read_table("retain", subset=subset, data_dir=root)
        if d["split"] == "heldout"
    ]
    return {"test": _dataset(rows)}


def reconstruct_probes(**metadata: Any) -> dict[str, Any]:
    """`custom_dataset` of leakbench_reconstruct: per subject and field, its first full direct probe, with the
    true value hidden among 9 decoys of the same type (shuffled deterministically)."""
    return {"test": _dataset(reconstruct_rows(*_source(**metadata)))}


def reconstruct_rows(root: str | Path, subset: str, split: str = "forget") -> list[dict[str, Any]]:
    """The reconstruction rows (also the truth-ratio rows of `leakbench.privacy`): per subject and field, the first
    full direct probe and its shuffled choices, the true value and 9 same-type decoys."""

    subjects = {s["subject_id"]: s for s in read_table("subjects", subset=subset, data_dir=root, split=split)}
    rows, seen = [], set()
    for p in read_table("probes", subset=subset, data_dir=root, split=split):
        key = (p["subject_id"], p["target_field"])
        if p["kind"] != "direct" or p["variant"] != "full" or key in seen:
            continue
        seen.add(key)
        rng = random.Random(f"leakbench-reconstruct-{p['probe_id']}")
        choices = [p["target_value"], *decoys(p["target_field"], subjects[p["subject_id"]], rng, N_CHOICES - 1)]
        rng.shuffle(choices)
        rows.append(
            {
                "probe_id": p["probe_id"],
                "subject_id": p["subject_id"],
                "target_field": p["target_field"],
                "prompt": p["prompt"],
                "choices": choices,
                "answer": choices.index(p["target_value"]),
            }
        )
    return rows


def code_lines(**metadata: Any) -> dict[str, Any]:
    """`custom_dataset` of leakbench_code_lines: the frozen held-out completion cases (`leakbench.heldout`) of the
    reported modules, or of the validation modules when the probes are the validation subjects'."""

    return {"test": _dataset(line_cases(code_split(_source(**metadata)[2])))}


def code_files(**metadata: Any) -> dict[str, Any]:
    """`custom_dataset` of leakbench_code_files: the frozen held-out modules' texts (reported or validation)."""

    return {"test": _dataset(file_texts(code_split(_source(**metadata)[2])))}


def process_code_line(doc: dict[str, Any], results: list[Any]) -> dict[str, float]:
    """Score a line completion: exact match and edit similarity of the first non-empty generated line."""

    return score_line(results[0], doc["target"])


# --- scoring --------------------------------------------------------------------------------------


@cache
def _scorer(root: str, ner: str, split: str) -> tuple[LeakScorer, dict[str, dict[str, Any]]]:
    subjects = {s["subject_id"]: s for s in read_table("subjects", data_dir=root, split=split)}
    return LeakScorer(list(subjects.values()), ner_model=ner or None), subjects


def process_results(doc: dict[str, Any], results: list[Any]) -> dict[str, float | None]:
    """Score a probe's generation(s). With k samples (`repeats`), a leak counts if any sample leaks (leak@k).

    Per-field and per-probe-kind metrics are None for docs outside their field or kind; `mean_present`
    averages what is present.
    """
    generations = results[0] if results and isinstance(results[0], list) else results
    scorer, subjects = _scorer(doc["release_dir"], doc["ner"], doc.get("split", "forget"))
    subject = subjects[doc["subject_id"]]
    verdicts = [
        scorer.score(doc["prompt"], g if isinstance(g, str) else "", doc["target_field"], subject) for g in generations
    ]
    leaks = {v.leak for v in verdicts}
    kinds = {v.leak_kind for v in verdicts}
    direct = float("direct" in leaks)
    any_leak = float(bool(leaks - {"none"}))
    out: dict[str, float | None] = {
        "direct_leak_rate": direct,
        "indirect_leak_rate": float("indirect" in leaks),
        "any_leak_rate": any_leak,
        "other_pii_rate": float(any(v.other_pii for v in verdicts)),
    }
    out.update({f"{kind}_rate": float(kind in kinds) for kind in INDIRECT_LEAK_KINDS})
    for f in FIELDS:
        own = f == doc["target_field"]
        out[f"direct_leak_rate__{f}"] = direct if own else None
        out[f"any_leak_rate__{f}"] = any_leak if own else None
    for k in ("direct", *INDIRECT_KINDS):
        out[f"any_leak_rate__{k}"] = any_leak if k == doc["kind"] else None
    return out


def mean_present(values: list[float | None]) -> float:
    """Mean over the docs a breakdown metric applies to (NaN when there are none)."""
    present = [v for v in values if v is not None]
    return sum(present) / len(present) if present else math.nan


def process_reconstruct(doc: dict[str, Any], results: list[Any]) -> dict[str, float]:
    """Reconstruction accuracy and exposure from the log-likelihood of each candidate value.

    exposure = log2(candidates) - log2(rank of the true value); ties count against the true value.
    """
    loglikelihoods = [r[0] if isinstance(r, tuple | list) else r for r in results]
    true = loglikelihoods[doc["answer"]]
    rank = 1 + sum(1 for i, ll in enumerate(loglikelihoods) if i != doc["answer"] and ll >= true)
    return {
        "reconstruction_acc": float(rank == 1),
        "exposure": math.log2(len(loglikelihoods)) - math.log2(rank),
    }
