"""`leakbench publish`: turn run directories into validated leaderboard entries, merged idempotently.

A run directory holds one evaluated model: lm-eval outputs (`results_*.json`, `samples_*.jsonl`, found at any
depth), optional LeakBench utility outputs (`utility.json`) and optional `run.json` (written by `leakbench
run`: model name, role, method, baseline). Nothing is written unless every input validates; the leaderboard
and its page are replaced atomically.
"""

from __future__ import annotations

import hashlib
import json
import math
import shutil
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from leakbench import __version__
from leakbench.data import DEFAULT_RELEASE, RELEASES, read_manifest, read_table, release_hash, release_name
from leakbench.data.subjects import FIELDS
from leakbench.harness import tasks_path
from leakbench.leaderboard.page import page_files
from leakbench.leaderboard.schema import (
    MIGRATIONS,
    SCHEMA_VERSION,
    DataRelease,
    DeletionRequest,
    Entry,
    EntryRecord,
    Example,
    ForgetSetSize,
    Leaderboard,
    MethodInfo,
    Metric,
    ModelInfo,
    PrivacyInfo,
    Provenance,
    QuantizationAttack,
    Ratios,
    RelearnAttack,
    Robustness,
    Utility,
    entry_metrics,
    json_schema,
)
from leakbench.metrics import (
    DIRECT,
    DIRECT_SAMPLED,
    INDIRECT,
    NEAR_NEIGHBOUR,
    PRIVACY,
    SUMMARY_METRICS,
    direct_leak_reduction,
    kept,
    leak_change,
    metric,
    oracle_gap,
    over_kept,
    pass_at_1_key,
    privacy_metrics,
    utility_kept,
    verdict,
)
from leakbench.records import (
    LeakBenchError,
    UsageError,
    check_not_aliased,
    check_output,
    dumps_record,
    input_file,
    locked,
    model_fingerprint,
    os_error_message,
    package_version,
    sha256_file,
    write_texts_atomic,
)
from leakbench.schemas import (
    INCOMPLETE,
    PrivacyRecord,
    Release,
    RobustnessRecord,
    RunRecord,
    UtilityRecord,
    check_finite,
    first_error,
    model_record,
)
from leakbench.scoring import LeakScorer

EXAMPLES_PER_TASK = 5
M = TypeVar("M", bound=BaseModel)
# what publish reads in a run
RUN_FILES = ("results_*.json", "samples_*.jsonl", *(r.FILE for r in (UtilityRecord, RunRecord, PrivacyRecord,
                                                                  RobustnessRecord, EntryRecord)))  # fmt: skip
# the records an entry.json is made from (robustness.json is read afresh: attacks come after the measurement)
ENTRY_SOURCES = (RunRecord.FILE, PrivacyRecord.FILE, UtilityRecord.FILE)
SAMPLES = "samples_leakbench_*.jsonl"  # lm-eval's logged samples of LeakBench's tasks


def has_samples(run_dir: str | Path) -> bool:
    """Whether a run folder still holds its lm-eval samples (its entry can be made again from them)."""
    return any(Path(run_dir).rglob(SAMPLES))


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_bytes().decode("utf-8"))
    except json.JSONDecodeError as exc:
        raise LeakBenchError(f"{path}: corrupt or truncated JSON ({exc.msg} at line {exc.lineno})") from None
    except UnicodeDecodeError:
        raise LeakBenchError(f"{path}: not UTF-8 text (a JSON file was expected)") from None
    except RecursionError:
        raise LeakBenchError(f"{path}: JSON nested too deeply") from None
    except OSError as exc:
        raise LeakBenchError(f"cannot read {os_error_message(exc, path)}") from None


def _record_file(path: Path, what: str) -> bool:
    """Whether the run folder holds the record `path`; something else under its name is refused, not skipped."""
    if not path.exists() and not path.is_symlink():
        return False
    if not path.is_file():
        raise LeakBenchError(f"{path}: {'is a directory' if path.is_dir() else 'not a regular file'}, expected {what}")
    return True


def _task_versions() -> dict[str, Any]:
    import yaml


    versions = {}
    for path in tasks_path().glob("leakbench*.yaml"):
        text = path.read_text()
        data = yaml.safe_load(text.replace("!function", "")) or {}
        if isinstance(data.get("task"), str):
            include = data.get("include")
            meta = data.get("metadata") or {}
            if "version" not in meta and include:
                base = yaml.safe_load((tasks_path() / include).read_text().replace("!function", ""))
                meta = base.get("metadata") or {}
            versions[data["task"]] = meta.get("version")
    return versions


def _lm_eval_results(run_dir: Path) -> tuple[dict[str, Any], list[Path]]:
    """Merged lm-eval results of the LeakBench tasks in `run_dir` (the newest file wins per task)."""
    files = sorted(run_dir.rglob("results_*.json"), key=lambda p: p.name)
    if not files:
        raise LeakBenchError(f"{run_dir}: no lm-eval results_*.json (run lm_eval with --output_path)")
    merged: dict[str, Any] = {"results": {}, "versions": {}, "configs": {}, "n-samples": {}}
    expected = _task_versions()
    for path in files:
        data = _read_json(path)
        if not isinstance(data, dict) or not isinstance(data.get("results"), dict):
            raise LeakBenchError(f"{path}: not an lm-eval results file (no `results` object)")
        for key in merged:
            table = data.get(key) or {}
            if not isinstance(table, dict) or (
                key in ("results", "configs")
                and not all(isinstance(v, dict) for t, v in table.items() if t.startswith("leakbench"))
            ):
                raise LeakBenchError(f"{path}: not an lm-eval results file (`{key}` is not an object of objects)")
        for task, version in (data.get("versions") or {}).items():
            if task in expected and version != expected[task]:
                raise LeakBenchError(
                    f"{path}: task {task} is version {version}, this LeakBench has version {expected[task]}; "
                    "re-run the evaluation"
                )
        for key in merged:
            merged[key].update({t: v for t, v in (data.get(key) or {}).items() if t.startswith("leakbench")})
        for key in ("config", "lm_eval_version", "git_hash", "date", "model_name"):
            if key in data:
                merged[key] = data[key]
    if not merged["results"]:
        raise LeakBenchError(f"{run_dir}: the lm-eval results hold no LeakBench task")
    return merged, files


METADATA_KEYS = ("subset", "data_dir", "release_hash", "release", "split")  # the task metadata publish reads


def _release(results: dict[str, Any], path_hint: Path) -> DataRelease:
    """The release the tasks ran on: a user-built one (`data_dir`), or the packaged release named in the metadata
    or, failing that, the one whose hash the metadata recorded (results of v1 keep publishing as v1)."""

    metas = [c.get("metadata") or {} for c in results["configs"].values()]
    if not all(isinstance(m, dict) for m in metas) or not all(
        isinstance(m.get(k), str | None) for m in metas for k in METADATA_KEYS
    ):
        raise LeakBenchError(f"{path_hint}: task metadata is malformed ({', '.join(METADATA_KEYS)})")
    subsets = {m.get("subset", "full") for m in metas}
    splits = {m.get("split", "forget") for m in metas}
    data_dirs = {m.get("data_dir") for m in metas}
    recorded = {m.get("release_hash") for m in metas} - {None}
    names = {m.get("release") for m in metas} - {None}
    if len(subsets) > 1 or len(data_dirs) > 1 or len(names) > 1 or len(splits) > 1:
        mixed = subsets | data_dirs | names | splits
        raise LeakBenchError(f"{path_hint}: tasks were run on different subsets or releases: {mixed}")
    data_dir = data_dirs.pop()
    if data_dir and Path(data_dir).exists():
        current, name = release_hash(data_dir=data_dir), str(read_manifest(data_dir=data_dir).get("release", "v1"))
    else:
        known = sorted({release_name(h) for h in recorded} - {None})
        name = names.pop() if names else known[0] if known else None if recorded else _sampled_release(path_hint)
        if name not in RELEASES:
            what = name if name else f"{next(iter(recorded))[:12]}…"
            raise LeakBenchError(
                f"{path_hint}: results were computed on data release {what}, which this LeakBench does not ship "
                f"(it ships {', '.join(RELEASES)}); re-run the evaluation"
            )
        current = release_hash(name)
    if recorded - {current}:
        raise LeakBenchError(
            f"{path_hint}: results were computed on data release {sorted(recorded - {current})[0][:12]}…, not on "
            f"release {name} as this LeakBench ships it ({current[:12]}…); re-run the evaluation"
        )
    split = splits.pop()
    if split not in ("forget", "holdout"):
        raise LeakBenchError(f"{path_hint}: task metadata split is {split!r}; expected forget or holdout (the "
                             "validation subjects and code are `leakbench sweep`'s, never published)")
    return DataRelease(name=name, hash=current, subset=subsets.pop(), split=split)


def _sampled_release(results_file: Path) -> str:
    """The packaged release a plain `lm_eval` run (which records no release in its metadata) read its probes from:
    the folder its logged samples name; the default release when no sample says."""

    for samples in sorted(results_file.parent.glob(SAMPLES)):
        try:
            with samples.open("rb") as fh:
                doc = json.loads(fh.readline().decode("utf-8")).get("doc") or {}
        except (OSError, UnicodeDecodeError, json.JSONDecodeError, AttributeError):
            continue
        folder = Path(str(doc.get("release_dir", ""))).name
        if folder in RELEASES:
            return folder
    return DEFAULT_RELEASE


def _metrics(results: dict[str, Any]) -> dict[str, Metric]:
    out = {}
    for task, metrics in sorted(results["results"].items()):
        for key, value in sorted(metrics.items()):
            if "," not in key or "_stderr," in key:
                continue
            name, filt = key.split(",", 1)
            stderr = metrics.get(f"{name}_stderr,{filt}")
            label = f"{task}/{name}" if filt == "none" else f"{task}/{name},{filt}"

            def num(x: Any) -> float | None:
                return float(x) if isinstance(x, int | float) and math.isfinite(x) else None  # NaN, inf -> None

            out[label] = Metric(value=num(value), stderr=num(stderr))
    return out


def _sample_rows(run_dir: Path) -> dict[str, list[dict[str, Any]]]:
    """The logged lm-eval samples of the probe tasks, by task (each row checked; a bad line is named)."""
    found: dict[str, list[dict[str, Any]]] = {}
    for path in sorted(run_dir.rglob(SAMPLES)):
        task = path.name.removeprefix("samples_").rsplit("_", 1)[0]
        if task not in (DIRECT, INDIRECT, DIRECT_SAMPLED):
            continue
        rows = found.setdefault(task, [])
        for lineno, raw in enumerate(path.read_bytes().splitlines(), 1):
            try:
                row = json.loads(raw.decode("utf-8"))
            except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
                raise LeakBenchError(f"{path}:{lineno}: corrupt samples line ({getattr(exc, 'msg', exc)})") from None
            leak = row.get("any_leak_rate") if isinstance(row, dict) else None
            if (
                not isinstance(row, dict)
                or not isinstance(row.get("doc") or {}, dict)
                or not (leak is None or isinstance(leak, int | float))
            ):
                raise LeakBenchError(f"{path}:{lineno}: not an lm-eval samples row")
            rows.append(row)
    return found


def _leak_intervals(samples: dict[str, list[dict[str, Any]]]) -> dict[str, list[float]]:
    """Per leak rate of the probe tasks (`task/metric[,filter]`, as `_metrics` names them), its 95% interval when
    the probed subjects are resampled (`leakbench.intervals.subject_rate`)."""
    from leakbench.intervals import subject_rate

    out: dict[str, list[float]] = {}
    for task, rows in samples.items():
        by_filter: dict[str, list[dict[str, Any]]] = {}
        for row in rows:
            by_filter.setdefault(str(row.get("filter") or "none"), []).append(row)
        for filt, group in by_filter.items():
            for name in SUMMARY_METRICS:
                scored = [(str((r.get("doc") or {}).get("subject_id")), float(r[name])) for r in group
                          if isinstance(r.get(name), int | float)]  # fmt: skip
                found = subject_rate([s for s, _ in scored], [x for _, x in scored])
                if found is not None:
                    out[f"{task}/{name}" if filt == "none" else f"{task}/{name},{filt}"] = found
    return out


def _examples(samples: dict[str, list[dict[str, Any]]], release: DataRelease) -> list[Example]:
    """A few logged generations per probe task (leaks first), with non-forget-set PII redacted."""
    if not any(task in samples for task in (DIRECT, INDIRECT)):
        return []
    subjects = {s["subject_id"]: s for s in read_table("subjects", release.name, split=release.split)}
    scorer = LeakScorer(list(subjects.values()), ner_model=None)
    # every other subject's values (holdout, substitute, validation): never republished, even when a model
    # happens to write one where the scorer sees no PII (the oracle memorized the validation subjects too)
    unreported = [{"text": value, "entity_type": field} for value, field in sorted(
        {(str(s[f]), f) for s in read_table("subjects", release.name, split=None)
         if s["subject_id"] not in subjects for f in FIELDS if s.get(f)})]  # fmt: skip
    examples: list[Example] = []
    for task in (DIRECT, INDIRECT):
        rows = sorted(samples.get(task, []), key=lambda r: (-float(r.get("any_leak_rate") or 0),
                                                             str(r.get("doc_id", 0))))  # fmt: skip
        for row in rows[:EXAMPLES_PER_TASK]:
            doc = row.get("doc") or {}
            resp = row.get("filtered_resps") or row.get("resps") or [""]
            while isinstance(resp, list):
                resp = resp[0] if resp else ""
            subject = subjects.get(doc.get("subject_id"))
            if subject is None or doc.get("target_field") is None:
                continue
            verdict = scorer.score(doc.get("prompt", ""), str(resp), doc["target_field"], subject)
            examples.append(Example(
                task=task, probe_id=str(doc.get("probe_id")), target_field=doc["target_field"],
                prompt_tail=doc.get("prompt", "")[-120:],
                generation=redact(str(resp), verdict.other_pii + unreported),
                leak=verdict.leak, leak_kind=verdict.leak_kind,
            ))  # fmt: skip
    return examples


def redact(text: str, findings: list[dict[str, str]]) -> str:
    """Replace every finding's text with its entity type: what a leaderboard must never republish."""
    for finding in sorted(findings, key=lambda f: -len(f["text"])):
        text = text.replace(finding["text"], f"<{finding['entity_type']}>")
    return text


def _utilities(run_dir: Path) -> list[Utility]:
    return [project(Utility, UtilityRecord.read(path)) for path in sorted(run_dir.rglob(UtilityRecord.FILE))]


def project(model: type[M], record: BaseModel | dict[str, Any]) -> M:
    """The part of a record an entry republishes: the fields the entry's model declares, taken by name (the
    model says what is kept; no key list is typed twice)."""
    data = record.model_dump(mode="json") if isinstance(record, BaseModel) else record
    return model.model_validate({k: data[k] for k in model.model_fields if k in data})


def _model_args(results: dict[str, Any], path_hint: Path) -> dict[str, Any]:
    """lm-eval's `model_args`: a dict in the results of lm-eval 0.4.13 (CLI and `simple_evaluate` alike), a
    `k=v,k=v` string in older ones; parsed with lm-eval's own parser."""
    raw = (results.get("config") or {}).get("model_args") or {}
    if isinstance(raw, dict):
        return raw
    if isinstance(raw, str):
        from lm_eval.utils import simple_parse_args_string

        try:
            return simple_parse_args_string(raw)
        except ValueError as exc:
            raise LeakBenchError(f"{path_hint}: cannot parse lm-eval model_args {raw!r} ({exc})") from None
    raise LeakBenchError(f"{path_hint}: lm-eval model_args is neither a dict nor a string")


def _model_ref(args: dict[str, Any], results: dict[str, Any]) -> str:
    """The model as the user named it to lm-eval: `pretrained` (hf, vllm) or `model` (API backends)."""
    for key in ("pretrained", "model"):
        if isinstance(args.get(key), str) and args[key].strip():
            return args[key].strip()
    name = results.get("model_name")
    return name if isinstance(name, str) and name else "unknown"


def _is_absolute(ref: str) -> bool:
    return ref.startswith(("/", "~", "\\")) or (len(ref) > 2 and ref[1] == ":")


def _local_dir(ref: str, run_dir: Path) -> Path | None:
    """The local model directory `ref` names, if it is one: as given, or relative to where lm-eval most likely
    ran (the folder holding its --output_path, or the run directory itself)."""
    path = Path(ref).expanduser()
    candidates = [path] if path.is_absolute() else [path, run_dir.parent / path, run_dir / path]
    return next((c for c in candidates if c.is_dir()), None)


def model_info(ref: str, run: dict[str, Any], run_dir: Path) -> tuple[ModelInfo, dict[str, Any]]:
    """The published model: a name and a portable source, never the local file-system layout.

    A hub id is its own source. A local directory publishes as `local:<folder>@<fingerprint>` (the sha256 of its
    files: two different models in folders of the same name stay two entries; the same model copied elsewhere is
    the same one), or `local:<folder>` when it is no longer there. Its LeakBench record (victim.json /
    unlearn.json), when present, gives the role and method. A `run.json` (from `leakbench run`) names the model
    itself; an absolute path in an old one is published by folder name only. Returns the model and its record."""
    record: dict[str, Any] = {}
    local = _local_dir(ref, run_dir)
    if local is not None:
        name, source = local.name, f"local:{local.name}@{model_fingerprint(local)[:12]}"
        record = model_record(local)
    elif _is_absolute(ref) or ref.startswith("."):
        name = Path(ref).name or "model"
        source = f"local:{name}"
    else:
        name = source = ref
    given = run.get("model_source")
    if isinstance(given, str) and _is_absolute(given):  # written by an older `leakbench run`
        given = f"local:{Path(given).name}"
    role = {"unlearn": "unlearned", "victim": record.get("victim")}.get(record.get("kind"))
    model = ModelInfo(
        name=run.get("model_name") or name,
        source=given or source,
        parameters=run.get("parameters") or record.get("parameters"),
        role=run.get("role") or role or "external",
    )
    return model, record


def entry_identity(model: ModelInfo, method: str, release: DataRelease, *, named_by_run: bool) -> str:
    """The stable id of an entry. A model that `leakbench run` named (its name carries the victim's
    configuration key) is identified by name, as in schema 1.0, so a re-run replaces its rows; any other model
    by name and source, so two different models in folders of the same name stay two entries."""
    parts = [model.name, method, release.hash, release.subset]
    if release.split != "forget":  # (forget entries keep the ids they had before splits existed)
        parts.append(release.split)
    if not named_by_run:
        parts[1:1] = [model.source]
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:16]


def collect(run_dir: str | Path, *, examples: bool = True) -> tuple[Entry, dict[str, Any]]:
    """One leaderboard entry from a run directory, and the run's own record (run.json, or {})."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise LeakBenchError(f"{run_dir}: {'is not a directory' if run_dir.exists() else 'no such run directory'}")
    if (run_dir / INCOMPLETE).exists():
        raise LeakBenchError(
            f"{run_dir}: its evaluation was stopped half-way ({INCOMPLETE} is there), so its lm-eval results, "
            "run.json and privacy.json may come from different runs; re-run the study to finish it"
        )
    has_run = _record_file(run_dir / RunRecord.FILE, "a LeakBench run record")
    run = RunRecord.read(run_dir / RunRecord.FILE).dump() if has_run else {}
    if (run_dir / EntryRecord.FILE).is_file() and not has_samples(run_dir):
        return _kept_entry_with_robustness(run_dir), run
    results, files = _lm_eval_results(run_dir)
    release = _release(results, files[-1])

    prov = run.get("provenance") or {}
    privacy, privacy_metrics = _privacy(run_dir, release)
    samples = _sample_rows(run_dir)
    leak_metrics = _metrics(results)
    for label, interval in _leak_intervals(samples).items():
        if label in leak_metrics:
            leak_metrics[label] = leak_metrics[label].model_copy(update={"interval": interval})
    try:
        model, record = model_info(_model_ref(_model_args(results, files[-1]), results), run, run_dir)
        hyper = run.get("hyperparameters") or record.get("hyperparameters") or "none"
        method = MethodInfo(name=run.get("method") or record.get("method") or "none", hyperparameters=hyper)
        entry_id = entry_identity(model, method.name, release, named_by_run=bool(run.get("model_name")))
        entry = Entry(
            entry_id=entry_id,
            model=model,
            method=method,
            data=release,
            leak_metrics={**leak_metrics, **privacy_metrics},
            privacy=privacy,
            group=run.get("group"),
            utility=_utilities(run_dir),
            examples=_examples(samples, release) if examples else [],
            robustness=_robustness(run_dir, release),
            provenance=Provenance(
                versions={"leakbench": prov.get("leakbench", __version__), **(prov.get("versions") or {
                    "lm_eval": results.get("lm_eval_version"),
                    **{p: package_version(p) for p in ("evalplus", "transformers", "torch")},
                })},
                git_commit=prov.get("git_commit") or results.get("git_hash"),
                date=prov.get("date") or str(results.get("date", "")),
                hardware=prov.get("hardware") or {},
                seeds=run.get("seeds") or {},
                wall_times_s=run.get("wall_times_s") or {},
                lm_eval_task_versions=results["versions"],
            ),
        )  # fmt: skip
    except ValidationError as exc:
        raise LeakBenchError(f"{run_dir}: cannot make a leaderboard entry: {first_error(exc)}") from None
    return entry, run


def _made_from(run_dir: Path) -> dict[str, str]:
    """The sha256 of each record an entry of `run_dir` is made from, by its path in the folder."""
    found = (p for p in sorted(run_dir.rglob("*.json")) if p.name in ENTRY_SOURCES)
    return {p.relative_to(run_dir).as_posix(): sha256_file(p) for p in found}


def kept_files(run_dir: str | Path) -> list[Path]:
    """What a measured folder publishes from once its lm-eval samples are gone: its entry.json and the records
    the entry was made from (what git keeps of a reference run)."""
    run_dir = Path(run_dir)
    return [run_dir / EntryRecord.FILE, *(run_dir / name for name in _made_from(run_dir))]


def copy_kept(run_dir: str | Path, to: str | Path) -> None:
    """Copy `kept_files(run_dir)` into the folder `to`, in the same places."""
    for path in kept_files(run_dir):
        (Path(to) / path.relative_to(run_dir)).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, Path(to) / path.relative_to(run_dir))


def keep_entry(run_dir: str | Path) -> Path:
    """Write `entry.json` into a measured run folder: its entry, made now from its lm-eval samples, and what it
    was made from. The folder then publishes without its samples (`collect`) for as long as its records stay."""
    run_dir = Path(run_dir)
    entry, _ = collect(run_dir)
    return EntryRecord(made_from=_made_from(run_dir), entry=entry).write(run_dir)


def kept_entry_is_current(run_dir: str | Path) -> bool:
    """Whether `run_dir` holds an entry.json made from the records it holds now (`kept_entry` would return it)."""
    try:
        kept_entry(run_dir)
    except LeakBenchError:
        return False
    return True


def kept_entry(run_dir: str | Path) -> Entry:
    """The entry.json of a run folder kept without its lm-eval samples, checked against the records it holds."""
    run_dir = Path(run_dir)
    record = EntryRecord.read(run_dir / EntryRecord.FILE)
    if record.made_from != _made_from(run_dir):
        raise LeakBenchError(
            f"{run_dir / EntryRecord.FILE}: made from other records than the folder holds now (its lm-eval samples "
            "are gone, so no entry can be made again); re-run the study to measure the model again"
        )
    return record.entry


def entry_before_change(run_dir: str | Path) -> Entry | None:
    """What `keep_entry_again` needs of a folder whose records are about to be rewritten: its kept entry when its
    samples are gone (checked current), else None (the entry is made again from the samples)."""
    return None if has_samples(run_dir) else kept_entry(run_dir)


def keep_entry_again(run_dir: str | Path, kept: Entry | None, *, privacy: bool = False) -> Path:
    """`entry.json` after some of the folder's records were rewritten (`kept`: `entry_before_change`): made again
    from the samples, or, the samples gone, `kept` with the privacy figures of the folder's privacy record now
    (`privacy`: measured again on the same weights) or as it was (`privacy` False: the records changed only in
    fields no entry reads, such as an evaluation key's form or a model named by path), made from the records the
    folder holds now."""
    run_dir = Path(run_dir)
    if kept is None:
        return keep_entry(run_dir)
    if privacy:
        figures, privacy_metrics = _privacy(run_dir, kept.data)
        leak = {k: v for k, v in kept.leak_metrics.items() if not k.startswith(f"{PRIVACY}/")}
        kept = kept.model_copy(update={"leak_metrics": {**leak, **privacy_metrics}, "privacy": figures})
    return EntryRecord(made_from=_made_from(run_dir), entry=kept).write(run_dir)


def _kept_entry_with_robustness(run_dir: Path) -> Entry:
    """The entry.json of a run folder kept without its lm-eval samples, with the folder's robustness record."""
    entry = kept_entry(run_dir)
    return entry.model_copy(update={"robustness": _robustness(run_dir, entry.data)})


def _privacy(run_dir: Path, release: DataRelease) -> tuple[PrivacyInfo | None, dict[str, Metric]]:
    """`leakbench privacy`'s record in the run folder (privacy.json), if any, checked against the release the
    lm-eval tasks ran on, as entry metrics under `leakbench_privacy/`."""
    path = run_dir / PrivacyRecord.FILE
    if not _record_file(path, "a LeakBench privacy record"):
        return None, {}
    record = PrivacyRecord.read(path)
    _check_release(path, record.release, release)
    metrics = {f"{PRIVACY}/{name}": Metric(value=float(value), stderr=None, interval=record.intervals.get(name))
               for name in privacy_metrics() if (value := record.metrics.get(name)) is not None}  # fmt: skip
    info = PrivacyInfo(k=record.k, headline_attack=record.headline_attack, calibration=record.calibration,
                       reference_model=record.reference, counts=record.counts,
                       verdict=verdict(record.metrics.get("privleak")))  # fmt: skip
    return info, metrics


def _robustness(run_dir: Path, release: DataRelease) -> Robustness | None:
    """`leakbench robustness`'s record in the run folder (robustness.json), if any, checked against the release
    the lm-eval tasks ran on, as the entry holds it."""
    path = run_dir / RobustnessRecord.FILE
    if not _record_file(path, "a LeakBench robustness record"):
        return None
    record = RobustnessRecord.read(path)
    _check_release(path, record.release, release)
    q = record.quantize or {}
    try:
        return Robustness(
            settings=record.settings,
            relearn=project(RelearnAttack, record.relearn) if record.relearn else None,
            quantized=[QuantizationAttack(bits=int(bits), scheme=scheme, model=q[f"{bits}bit"],
                                          unquantized=q["unlearned"], victim=q[f"victim_{bits}bit"])
                       for bits, scheme in q.get("schemes", {}).items()],
            sequential=[project(DeletionRequest, point) for point in record.sequential or ()],
            scaling=[project(ForgetSetSize, point) for point in record.scaling or ()],
        )  # fmt: skip
    except (ValidationError, KeyError, ValueError) as exc:
        reason = first_error(exc) if isinstance(exc, ValidationError) else f"quantize: missing or malformed {exc}"
        raise LeakBenchError(f"{path}: not a LeakBench robustness record ({reason})") from None


def _check_release(path: Path, measured: Release, release: DataRelease) -> None:
    """A record beside lm-eval's results must have been measured on the same release and subset."""
    if measured.hash != release.hash or measured.subset != release.subset:
        raise LeakBenchError(
            f"{path}: measured on release {measured.name}/{measured.subset}, but the lm-eval tasks ran "
            f"on {release.name}/{release.subset}; measure both on the same release and subset"
        )


def with_ratios(entry: Entry, baseline: Entry | None, oracle: Entry | None = None) -> Entry:
    """The entry with its comparisons to the victim it was unlearned from and to the oracle (None: no baseline)."""
    if baseline is None or baseline.entry_id == entry.entry_id:
        return entry.model_copy(update={"ratios": None})
    before, after = entry_metrics(baseline), entry_metrics(entry)
    kept_values = utility_kept(before, after)
    use_oracle = oracle is not None and oracle.entry_id != entry.entry_id
    return entry.model_copy(update={"ratios": Ratios(
        baseline_entry_id=baseline.entry_id,
        direct_leak_reduction=direct_leak_reduction(before["direct_leak_rate"], after["direct_leak_rate"]),
        indirect_leak_change=leak_change(before["indirect_leak_rate"], after["indirect_leak_rate"]),
        retain_utility_retained=kept(before.get(NEAR_NEIGHBOUR), after.get(NEAR_NEIGHBOUR),
                                     lower_is_better=metric(NEAR_NEIGHBOUR).lower_is_better),
        code_utility_retained={u.dataset: kept_values.get(pass_at_1_key(u.dataset)) for u in entry.utility},
        utility_kept=kept_values,
        utility_kept_above_100=over_kept(kept_values),
        oracle_entry_id=oracle.entry_id if use_oracle else None,
        oracle_gap=oracle_gap(entry_metrics(oracle), after) if use_oracle else {},
    )})  # fmt: skip


def load_leaderboard(path: Path) -> Leaderboard:
    """The leaderboard at `path` (empty when absent), migrated from a known older schema; refuses unknown
    schema versions, invalid content and duplicated entries rather than rewriting them."""
    if not path.exists():
        return Leaderboard()
    data = check_finite(_read_json(input_file(path, "leaderboard file")), str(path))
    if not isinstance(data, dict):
        raise LeakBenchError(f"{path}: not a LeakBench leaderboard (expected a JSON object)")
    version = data.get("schema_version")
    if version != SCHEMA_VERSION:
        if not isinstance(version, str) or version not in MIGRATIONS:
            known = ", ".join([*MIGRATIONS, SCHEMA_VERSION])
            raise LeakBenchError(
                f"{path}: unknown leaderboard schema_version {version!r} (this LeakBench reads {known}); "
                "upgrade leakbench or publish into a new file"
            )
        data = MIGRATIONS[version](data)
    try:
        board = Leaderboard.model_validate(data)
    except ValidationError as exc:
        raise LeakBenchError(f"{path}: invalid leaderboard at {first_error(exc)} (fix or remove the file)") from None
    seen: dict[str, int] = {}
    for i, entry in enumerate(board.entries):
        if entry.entry_id in seen:
            raise LeakBenchError(
                f"{path}: entry {entry.entry_id} appears twice (entries[{seen[entry.entry_id]}] and entries[{i}]); "
                "remove one of them"
            )
        seen[entry.entry_id] = i
    return board


def _merge(board: Leaderboard, collected: list[tuple[Entry, dict[str, Any]]]) -> tuple[Leaderboard, dict[str, int]]:
    """Add or replace the collected entries (same run: unchanged; changed run: replaced) and recompute ratios
    against each entry's baseline (the victim it was unlearned from)."""
    by_id = {e.entry_id: e for e in board.entries}
    order = [e.entry_id for e in board.entries]
    for entry, _ in collected:
        if entry.entry_id not in by_id:
            order.append(entry.entry_id)
        by_id[entry.entry_id] = entry
    baselines = {run.get("model_name"): run.get("baseline_model_name") for _, run in collected}
    oracles = {run.get("model_name"): run.get("oracle_model_name") for _, run in collected}
    sources = {e.model.name: e for e in by_id.values()}

    def named(entry_id: str | None) -> str | None:
        return next((e.model.name for e in by_id.values() if e.entry_id == entry_id), None)

    for eid, entry in list(by_id.items()):
        base_name, oracle_name = baselines.get(entry.model.name), oracles.get(entry.model.name)
        if base_name is None and entry.ratios is not None:  # published earlier: keep its comparisons' targets
            base_name, oracle_name = named(entry.ratios.baseline_entry_id), named(entry.ratios.oracle_entry_id)
        baseline = sources.get(base_name) if base_name else None
        by_id[eid] = with_ratios(entry, baseline, sources.get(oracle_name) if oracle_name else None)
    counts = {"added": 0, "replaced": 0, "unchanged": 0}
    old = {e.entry_id: e.content_hash() for e in board.entries}
    for eid in order:
        if eid not in old:
            counts["added"] += 1
        elif old[eid] != by_id[eid].content_hash():
            counts["replaced"] += 1
        else:
            counts["unchanged"] += 1
    return Leaderboard(entries=[by_id[eid] for eid in order]), counts


def _check_outputs(leaderboard: Path, html: Path | None, run_dirs: list[Path]) -> dict[str, Path]:
    """Every file publish writes, checked before any work: writable kinds, pairwise distinct, and none of them
    an input (a run directory's files)."""
    outputs = {"--leaderboard": leaderboard, "the schema file": leaderboard.with_name("leaderboard.schema.json")}
    if html is not None:
        outputs.update({"--html": html, "the plot file": html.with_name("tradeoff.svg")})
    inputs = {str(p): p for d in run_dirs if d.is_dir() for pattern in RUN_FILES for p in d.rglob(pattern)}
    _check_schema_file(outputs["the schema file"])
    resolved: dict[Path, str] = {}
    for option, path in outputs.items():
        check_output(path, kind="file")
        check_not_aliased(option, path, inputs)
        key = path.resolve()
        if key in resolved:
            raise UsageError(f"{option} {path} is also {resolved[key]}: each output needs its own file")
        resolved[key] = f"{option} {path}" if option.startswith("--") else option
    return outputs


SCHEMA_TITLE = "LeakBench leaderboard"  # how the JSON Schema publish writes beside the leaderboard begins its title


def _check_schema_file(path: Path) -> None:
    """publish rewrites `leaderboard.schema.json` beside the leaderboard, but never a file of that name that
    LeakBench did not write (a user's own schema): refused before any work."""
    if not path.exists() and not path.is_symlink():
        return
    try:
        title = json.loads(path.read_bytes().decode("utf-8")).get("title")
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError, AttributeError):
        title = None
    if not (isinstance(title, str) and title.startswith(SCHEMA_TITLE)):
        raise LeakBenchError(
            f"{path}: exists and is not a schema LeakBench wrote (its title does not begin with {SCHEMA_TITLE!r}); "
            "publish would replace it: move it away or publish the leaderboard into another folder"
        )


def publish(
    run_dirs: list[str | Path], leaderboard: str | Path, html: str | Path | None = None, *, examples: bool = True
) -> dict[str, int]:
    """Validate every run, merge into the leaderboard (same run: unchanged; changed run: replaced), and write
    the leaderboard, its JSON Schema and the HTML page atomically, holding the leaderboard's lock from read to
    write so that concurrent publishes never lose a row. Returns counts of added/replaced/unchanged."""
    path = Path(leaderboard)
    html = Path(html) if html is not None else None
    dirs = [Path(d) for d in run_dirs]
    _check_outputs(path, html, dirs)
    load_leaderboard(path)  # refuse a damaged leaderboard before the (slow) collection
    collected = [collect(d, examples=examples) for d in dirs]
    with locked(path):
        new_board, counts = _merge(load_leaderboard(path), collected)  # re-read: another publish may have landed
        # every text first, then all of them staged and renamed together, the leaderboard last: a page or schema
        # that cannot be written leaves the leaderboard (and every other file) as it was
        texts = {path.with_name("leaderboard.schema.json"): dumps_record(json_schema())}
        if html is not None:
            texts.update(page_files(new_board, html))
        texts[path] = json.dumps(new_board.model_dump(mode="json"), indent=2, sort_keys=False) + "\n"
        _check_schema_file(path.with_name("leaderboard.schema.json"))  # (again: it may have appeared meanwhile)
        write_texts_atomic({target: text for target, text in texts.items()
                            if not target.is_file() or target.read_text(encoding="utf-8", errors="replace") != text})
    return counts
