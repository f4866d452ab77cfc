"""Typed records: one pydantic model for every JSON file LeakBench writes, with its file name, its kind and its
schema version declared once. Writers build the model and call `write`; readers call `read`, which names the
file and the field that is wrong in one line, and brings a file written before its record was typed (schema
version "0": the same content without `schema_version`) up to date through an explicit migration.

The leaderboard's own schema (entries, the page's source) is `leakbench.leaderboard.schema`; the parts of a
robustness record that an entry republishes are declared here and reused there.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model

from leakbench.metrics import METRICS
from leakbench.records import LeakBenchError, dumps_record, input_file, os_error_message, write_text_atomic

R = TypeVar("R", bound="Record")


def first_error(exc: ValidationError) -> str:
    """`field.path: what is wrong`, for a one-line message."""
    first = exc.errors()[0]
    return f"{'.'.join(str(x) for x in first['loc']) or 'top level'}: {first['msg']}"


def _not_finite(data: Any, where: str = "") -> tuple[str, float] | None:
    """The path and value of the first number in `data` that is not finite (Infinity, NaN), or None: Python's json
    reads and writes them, and they would reach the leaderboard's arithmetic."""
    if isinstance(data, float) and not math.isfinite(data):
        return where or "the record", data
    if isinstance(data, dict):
        return next((p for k, v in data.items() if (p := _not_finite(v, f"{where}.{k}" if where else str(k)))), None)
    if isinstance(data, list):
        return next((p for i, v in enumerate(data) if (p := _not_finite(v, f"{where}[{i}]"))), None)
    return None


def check_finite(data: Any, where: str) -> Any:
    """`data` (read from `where`) unchanged when every number in it is finite; else a one-line error."""
    if (bad := _not_finite(data)) is not None:
        raise LeakBenchError(f"{where}: {bad[0]} is {json.dumps(bad[1])}, not a finite number; re-measure or fix "
                             "the file")  # fmt: skip
    return data


class Part(BaseModel):
    """A nested part of a record: strict, so a misspelt or unknown field is named rather than ignored."""

    model_config = ConfigDict(extra="forbid", protected_namespaces=())


class Record(Part):
    """What every record carries: its kind and schema version, and the provenance of `records.provenance`."""

    FILE: ClassVar[str]  # the file name in its folder (a model dir, a run dir, a study dir)
    KIND: ClassVar[str]
    TITLE: ClassVar[str]  # what errors call it: "not a LeakBench <TITLE>"
    SORTED: ClassVar[bool] = True  # keys sorted on disk (stable diffs); False where their order means something
    VERSION: ClassVar[str] = "1"
    # earlier schema versions and how each becomes the next; "0" is the untyped file of the same content
    MIGRATIONS: ClassVar[dict[str, Callable[[dict[str, Any]], dict[str, Any]]]] = {}

    schema_version: str = "1"
    kind: str
    leakbench: str | None = None
    versions: dict[str, str | None] = Field(default_factory=dict)
    git_commit: str | None = None
    date: str | None = None
    hardware: dict[str, Any] = Field(default_factory=dict)

    @classmethod
    def migrate(cls, data: dict[str, Any], where: str) -> dict[str, Any]:
        """`data` brought to `VERSION` through the declared migrations (an unknown version is refused)."""
        version = str(data.get("schema_version", "0"))
        while version != cls.VERSION:
            step = cls.MIGRATIONS.get(version, _untyped if version == "0" else None)
            if step is None:
                known = ", ".join(sorted({"0", *cls.MIGRATIONS, cls.VERSION}))
                raise LeakBenchError(f"{where}: unknown {cls.TITLE} schema_version {version!r} (this LeakBench reads "
                                     f"{known}); upgrade leakbench")  # fmt: skip
            data = step(data)
            version = str(data["schema_version"])
        return data

    @classmethod
    def parse(cls: type[R], data: Any, where: str) -> R:
        """A record from its JSON content: migrated, checked (kind, finite numbers, every field) and typed."""
        if not isinstance(data, dict):
            raise LeakBenchError(f"{where}: not a LeakBench {cls.TITLE} (expected a JSON object)")
        check_finite(data, where)
        data = cls.migrate(data, where)
        if data.get("kind") != cls.KIND:
            raise LeakBenchError(f"{where}: not a LeakBench {cls.TITLE} (kind {data.get('kind')!r}, expected "
                                 f"{cls.KIND!r})")  # fmt: skip
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            raise LeakBenchError(f"{where}: not a LeakBench {cls.TITLE} ({first_error(exc)})") from None

    @classmethod
    def read(cls: type[R], path: str | os.PathLike[str]) -> R:
        """The record in the file `path` (or `path/FILE` for a folder), one-line errors naming file and field."""
        path = Path(path)
        if path.is_dir() and path.name != cls.FILE:
            path = path / cls.FILE
        try:
            raw = input_file(path, cls.TITLE).read_bytes().decode("utf-8")
            data = json.loads(raw)
        except UnicodeDecodeError:
            raise LeakBenchError(f"{path}: not UTF-8 text (a JSON record was expected)") from None
        except json.JSONDecodeError as exc:
            raise LeakBenchError(f"{path}: corrupt or truncated JSON, not a LeakBench {cls.TITLE} ({exc.msg} at "
                                 f"line {exc.lineno})") from None
        except RecursionError:
            raise LeakBenchError(f"{path}: JSON nested too deeply") from None
        except OSError as exc:
            raise LeakBenchError(f"cannot read {os_error_message(exc, path)}") from None
        return cls.parse(data, str(path))

    @classmethod
    def find(cls: type[R], folder: str | os.PathLike[str]) -> R | None:
        """The record in `folder`, or None when it has none."""
        path = Path(folder) / cls.FILE
        return cls.read(path) if path.exists() or path.is_symlink() else None

    def dump(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True, exclude_none=False)

    def write(self, folder: str | os.PathLike[str]) -> Path:
        """Write the record atomically as `folder/FILE`."""
        return self.write_file(Path(folder) / self.FILE)

    def write_file(self, path: str | os.PathLike[str]) -> Path:
        """Write the record atomically to exactly `path` (a user's --out)."""
        dumped = self.dump()
        text = dumps_record(dumped) if self.SORTED else json.dumps(dumped, ensure_ascii=False, indent=2) + "\n"
        write_text_atomic(path, text)
        return Path(path)


def _untyped(data: dict[str, Any]) -> dict[str, Any]:
    """Schema "0" -> "1": the files written before records were typed hold the same fields."""
    return {**data, "schema_version": "1"}


# --- models ---------------------------------------------------------------------------------------------------


class BaseModelRecord(Record):
    """`base.json` beside the embedded base model's weights (`leakbench base build`)."""

    FILE: ClassVar[str] = "base.json"
    TITLE: ClassVar[str] = "base record"
    KIND: ClassVar[str] = "base"
    kind: Literal["base"] = "base"
    config: dict[str, Any]
    config_key: str
    parameters: int
    architecture: dict[str, Any]
    tokenizer: dict[str, Any]
    corpus: dict[str, Any]
    tokens_seen: int
    steps: int
    loss_curve: list[dict[str, float]]
    wall_time_s: float
    weights_sha256: str


class VictimRecord(Record):
    """`victim.json` beside a victim's or an oracle's weights (`leakbench victim build`)."""

    FILE: ClassVar[str] = "victim.json"
    TITLE: ClassVar[str] = "victim record"
    KIND: ClassVar[str] = "victim"
    kind: Literal["victim"] = "victim"
    victim: Literal["victim", "oracle"]
    base: str
    config: dict[str, Any]
    config_key: str
    subset: str
    data_release_hash: str
    parameters: int
    training_tokens: int
    steps: int
    wall_time_s: float
    seed: int
    weights_sha256: str | None = None  # model.safetensors' (built since the prebuilt victim shipped)


class Losses(Part):
    forget: float
    values: float
    retain: float


class UnlearnRecord(Record):
    """`unlearn.json` beside an unlearned model's weights (`leakbench unlearn`). Besides these fields it keeps
    what the method itself adds (`ForgetSource.record`, e.g. PLUM's `on_policy_rounds`)."""

    model_config = ConfigDict(extra="allow", protected_namespaces=())

    FILE: ClassVar[str] = "unlearn.json"
    TITLE: ClassVar[str] = "unlearning record"
    KIND: ClassVar[str] = "unlearn"
    kind: Literal["unlearn"] = "unlearn"
    method: str
    hyperparameters: dict[str, Any]
    defaults_chosen_by: str
    steps: int
    wall_time_s: float
    seed: int
    subset: str
    data_release_hash: str
    source_model: str = Field(description="the model unlearned from: a hub id, or a local folder's name (never "
                                          "its path)")
    source_model_label: str | None = Field(default=None, description="the model unlearned from, by folder name and "
                                           "content fingerprint (records.model_label)")
    victim: str | dict[str, Any] = Field(description="what the model unlearned from says it is (its record's `victim`)")
    distributed: dict[str, Any] | None
    early_stopping: None = None
    loss_before: Losses
    loss_after: Losses
    on_policy_rounds: list[dict[str, Any]] | None = None


class PassAtK(Part):
    base: float
    plus: float


class UtilityRecord(Record):
    """`utility.json` in a utility folder (`leakbench utility`: EvalPlus)."""

    FILE: ClassVar[str] = "utility.json"
    TITLE: ClassVar[str] = "utility.json"
    KIND: ClassVar[str] = "utility"
    model_config = ConfigDict(extra="forbid", protected_namespaces=(), populate_by_name=True)
    kind: Literal["utility"] = "utility"
    dataset: Literal["humaneval", "mbpp"]
    mini: bool = False
    dataset_hash: str
    n_tasks: int
    n_tasks_in_dataset: int
    n_samples: int
    temperature: float
    source: dict[str, str]
    time_limits: dict[str, float]
    max_new_tokens: int | None
    wall_time_s: dict[str, float]
    task_status: dict[str, list[dict[str, str]]]
    pass_at_1: PassAtK = Field(alias="pass@1")
    pass_at_10: PassAtK | None = Field(default=None, alias="pass@10", description="with at least 10 samples a task")
    pass_at_100: PassAtK | None = Field(default=None, alias="pass@100")

    def dump(self) -> dict[str, Any]:
        unmeasured = {k for k in ("pass_at_10", "pass_at_100") if getattr(self, k) is None}
        return self.model_dump(mode="json", by_alias=True, exclude=unmeasured)


class Release(Part):
    name: str
    hash: str
    subset: str


class ValueScores(Part):
    """Every scored value occurrence of a privacy record: its subject, member or not, each built-in attack's score
    as computed (None where undefined). What the subject bootstrap and a paired PrivLeak interval resample."""

    subject_ids: list[str]
    member: list[bool]
    scores: dict[str, list[float | None]]


class PrivacyRecord(Record):
    """`privacy.json` in a run folder (`leakbench privacy`)."""

    FILE: ClassVar[str] = "privacy.json"
    TITLE: ClassVar[str] = "privacy record"
    KIND: ClassVar[str] = "leakbench-privacy"
    kind: Literal["leakbench-privacy"] = "leakbench-privacy"
    model: str
    device: str
    release: Release
    k: float
    headline_attack: str | None = Field(description="the strongest attack for this model (AUC furthest from 0.5): "
                                        "`mia_strongest`, the TPRs and `privleak` are its")
    calibration: str | None = Field(default=None, description="the reference attack's reference model")
    context: str
    max_length: int
    counts: dict[str, int]
    metrics: dict[str, float | None]
    intervals: dict[str, list[float]] = Field(
        default_factory=dict, description="95% subject-bootstrap intervals [low, high] by metric")
    extra_metrics: dict[str, float | None] | None = Field(
        default=None, description="outside membership attacks' AUCs (`mia_<name>`), only when a plugin adds one")
    truth_ratios: list[float] = Field(description="one per forget subject and field (TOFU's one per question)")
    truth_ratio_subjects: list[str] | None = Field(default=None, description="the subject of each truth ratio")
    truth_ratio_fields: list[str] | None = Field(
        default=None, description="the field of each truth ratio (absent: an older record, one ratio per subject)")
    values: ValueScores | None = None
    reference: str | None = None
    wall_time_s: float


# Leak figures on a set of forget subjects (leakbench.robustness): the metric table's robustness rows.
LeakRates = create_model(
    "LeakRates", __base__=Part, __doc__="Leak figures on a set of forget subjects (the robustness metrics).",
    **{m.key: (float | None, Field(description=m.title)) for m in METRICS if m.robustness},  # type: ignore[call-overload]
)  # fmt: skip


class RelearnAxis(Part):
    slice_subjects: int = Field(description="forget subjects whose documents the attack fine-tunes on")
    slice_documents: int
    evaluated_subjects: int = Field(description="the other forget subjects, which every figure here is measured on")
    steps: int
    lr: float
    victim: LeakRates  # type: ignore[valid-type]
    oracle: LeakRates | None  # type: ignore[valid-type]
    oracle_attacked: LeakRates | None = Field(description="the oracle under the same attack: the reference")  # type: ignore[valid-type]
    unlearned: LeakRates  # type: ignore[valid-type]
    attacked: LeakRates  # type: ignore[valid-type]
    benign: LeakRates = Field(description="the same fine-tuning on retain documents only")  # type: ignore[valid-type]
    slice_attacked: LeakRates  # type: ignore[valid-type]
    oracle_attacked_slice: LeakRates | None  # type: ignore[valid-type]
    unlearned_share_of_victim: float | None
    attacked_share_of_victim: float | None
    benign_share_of_victim: float | None
    oracle_attacked_share_of_victim: float | None
    recovered: float | None = Field(description="the attacked direct leak rate / the victim's")


class DeletionRequestPoint(Part):
    request: int = Field(description="1-based: requests are served one after another, each from the last result")
    subjects: int
    steps: int
    served_subjects: int
    pending_subjects: int
    served: LeakRates = Field(description="the subjects of every request served so far")  # type: ignore[valid-type]
    pending: LeakRates | None = Field(description="the subjects not yet served (must keep leaking)")  # type: ignore[valid-type]
    victim_served: LeakRates = Field(description="the victim on the served subjects")  # type: ignore[valid-type]
    victim_pending: LeakRates | None = Field(description="the victim on the pending subjects")  # type: ignore[valid-type]
    code_bits_per_byte: float | None
    utility_kept: float | None = Field(description="held-out code bits/byte: the victim's / this model's")


class ForgetSetSizePoint(Part):
    fraction: float
    subjects: int
    documents: int
    steps: int
    victim: LeakRates  # type: ignore[valid-type]
    unlearned: LeakRates = Field(description="on the subjects forgotten")  # type: ignore[valid-type]
    leak_reduction: float | None = Field(description="1 - direct leak rate / the victim's, on those subjects")
    code_bits_per_byte: float | None
    utility_kept: float | None = Field(description="held-out code bits/byte: the victim's / this model's")


class RobustnessRecord(Record):
    """`robustness.json` in a run folder (`leakbench robustness`): every attack on one unlearned model."""

    FILE: ClassVar[str] = "robustness.json"
    TITLE: ClassVar[str] = "robustness record"
    KIND: ClassVar[str] = "leakbench-robustness"
    kind: Literal["leakbench-robustness"] = "leakbench-robustness"
    method: str
    release: Release
    settings: dict[str, Any]
    subjects: dict[str, int]
    measured_with: dict[str, str]
    all_subjects: dict[str, Any]
    relearn: RelearnAxis | None = None
    quantize: dict[str, Any] | None = Field(default=None, description="schemes, the unlearned model and the "
                                            "victim at each bit width (`<bits>bit`, `victim_<bits>bit`)")
    sequential: list[DeletionRequestPoint] | None = None
    scaling: list[ForgetSetSizePoint] | None = None
    plugins: dict[str, Any] = Field(default_factory=dict, description="attacks from outside packages, by name")
    wall_time_s: float

    def dump(self) -> dict[str, Any]:
        """Only the attacks that ran (an axis not selected is absent, as it always was)."""
        absent = {k for k in ("relearn", "quantize", "sequential", "scaling") if getattr(self, k) is None}
        return self.model_dump(mode="json", exclude=absent | ({"plugins"} if not self.plugins else set()))


class RunRecord(Record):
    """`run.json`, written by `leakbench run` beside each model's lm-eval outputs; `publish` validates it."""

    FILE: ClassVar[str] = "run.json"
    TITLE: ClassVar[str] = "run record"
    KIND: ClassVar[str] = "run"
    kind: Literal["run"] = "run"
    model_name: str
    role: Literal["victim", "oracle", "control", "unlearned", "external"]
    method: str = "none"
    hyperparameters: dict[str, Any] | Literal["none"] | None = None
    baseline_model_name: str | None = Field(default=None, description="the victim this model is compared with")
    oracle_model_name: str | None = Field(default=None, description="the oracle this model is compared with")
    group: str | None = Field(default=None, description="runs of one configuration that differ only in seeds")
    parameters: int | None = None
    model_source: str | None = None
    seeds: dict[str, int | None] = Field(default_factory=dict)
    wall_times_s: dict[str, Any] = Field(default_factory=dict)
    metrics: dict[str, float | None] = Field(default_factory=dict, description="one per leakbench.metrics.METRICS row")
    evaluation: dict[str, Any] | None = Field(
        default=None, description="what the figures depend on (the weights' label, the reference, the settings): "
        "`leakbench run` reuses a folder measured with the same")
    provenance: dict[str, Any] = Field(default_factory=dict)


    def dump(self) -> dict[str, Any]:
        """As run.json has always read: the provenance nested under `provenance`, no null fields."""
        nested = {"leakbench", "versions", "git_commit", "date", "hardware"}
        return self.model_dump(mode="json", exclude_none=True, exclude=nested)


def _run_0_to_1(data: dict[str, Any]) -> dict[str, Any]:
    """Untyped run.json files carried neither a kind nor a version."""
    return {**data, "kind": "run", "schema_version": "1"}


RunRecord.MIGRATIONS = {"0": _run_0_to_1}


class StudyRow(Part):
    metrics: dict[str, float | None]
    comparisons: dict[str, Any]
    n_runs: int
    # only over several runs (`pipeline.summarize`): absent, not null, for a single one
    ci95: dict[str, float | None] | None = Field(default=None, exclude_if=lambda v: v is None)
    comparisons_ci95: dict[str, Any] | None = Field(default=None, exclude_if=lambda v: v is None)
    runs: list[dict[str, Any]]


class StudySummary(Record):
    """`summary.json` of a study (`leakbench run`, `leakbench merge`, `leakbench robustness`)."""

    FILE: ClassVar[str] = "summary.json"
    TITLE: ClassVar[str] = "study summary"
    SORTED: ClassVar[bool] = False  # the rows' order is the table's
    KIND: ClassVar[str] = "study"
    kind: Literal["study"] = "study"
    subset: str
    methods: list[str]
    seeds: int
    victim_seeds: int
    # False while `leakbench run` is under way: the rows hold the victim seeds measured so far (written after
    # each, so that a run split across sessions shows what it has)
    complete: bool = True
    jobs: int | None = None  # models measured at once (worker processes)
    ner: str | None = None
    utility: list[str] = Field(default_factory=list)
    rows: dict[str, StudyRow]
    published: dict[str, int] | None = None
    robustness: dict[str, RobustnessRecord] | None = None
    merged_from: list[dict[str, Any]] | None = None
    timings_s: dict[str, float]
    wall_time_s: float


class SweepRecord(Record):
    """`sweep.json` (`leakbench sweep`): every point tried per method and the one chosen."""

    FILE: ClassVar[str] = "sweep.json"
    TITLE: ClassVar[str] = "sweep record"
    KIND: ClassVar[str] = "sweep"
    kind: Literal["sweep"] = "sweep"
    key: dict[str, Any]  # what every run depends on (victim, release, code): a sweep under another key starts over
    subset: str
    split: str  # the subjects unlearned and probed (validation_forget), and with them the validation code modules
    seeds: int  # unlearning seeds per point
    grid_points: int  # points per method: the same budget for every method
    tasks: list[str]
    rules: list[str]
    complete: bool  # False while runs are missing (a partial record, resumed by the next `leakbench sweep`)
    victim: dict[str, Any]
    methods: dict[str, dict[str, Any]]  # per finished method: its points (means over seeds), front, chosen, rule
    runs: dict[str, dict[str, Any]]  # every run: method, point, seed, hyper-parameters, figures
    wall_time_s: float


Cells = dict[str, tuple[float, int]]  # value -> [leaks, probes]: a rate is their ratio


class FailureLeaks(Part):
    """Greedy direct leaks of the validation probes, by each dimension of the breakdown (its fields, in order)."""

    field: Cells
    template: Cells
    variant: Cells  # the document up to the value (full) or its last line (short)
    position: Cells  # the third of the document where the value starts
    mention: Cells  # the value's first appearance in its document, or a repeat


class SpanAUC(Part):
    auc: float | None  # None where a side has no span of this kind
    members: int
    non_members: int


class FailureSpans(Part):
    """The LOSS attack's AUC on each kind of span of a value occurrence (its fields, in order)."""

    value: SpanAUC  # the value's own tokens
    key: SpanAUC  # the text of its line before it (`DB_PASSWORD=`)
    tail: SpanAUC  # the rest of its line after it


class FailureRelearning(Part):
    slice: list[str]  # the subjects whose documents the attack fine-tunes on
    evaluated: list[str]  # the other subjects, whose full probes are measured
    steps: dict[str, Cells]  # relearning steps ("0": before) -> direct leaks by field


class FailureModel(Part):
    direct_leak_rate: float | None
    leaks: FailureLeaks
    spans: FailureSpans
    relearning: FailureRelearning
    hyperparameters: dict[str, Any] | None  # None for the victim


class FailureRecord(Record):
    """`failure.json` (`python -m leakbench.failure`): where unlearning fails, on the validation subjects."""

    FILE: ClassVar[str] = "failure.json"
    TITLE: ClassVar[str] = "failure study record"
    KIND: ClassVar[str] = "leakbench-failure"
    SORTED: ClassVar[bool] = False  # the models' order is the tables'
    kind: Literal["leakbench-failure"] = "leakbench-failure"
    key: dict[str, Any]  # what the figures depend on (`leakbench.failure.study_key`): a run made otherwise is refused
    models: dict[str, FailureModel]


MODEL_RECORDS = (VictimRecord, UnlearnRecord)  # what LeakBench writes beside the weights it trains

# In a run folder while `leakbench run` (re)evaluates it, removed once its run.json is written: a folder still holding
# it was stopped half-way (new lm-eval results beside old records), and publish refuses it.
INCOMPLETE = "run.incomplete"

def model_record(model_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """What a LeakBench model directory says about how it was made (its victim.json or unlearn.json, read
    through its model), or {} for any other model."""
    for kind in MODEL_RECORDS:
        found = kind.find(model_dir)
        if found is not None:
            return found.dump()
    return {}


def check_release(record: dict[str, Any], release_hash: str, model_dir: str | os.PathLike[str]) -> None:
    """A model trained on one data release is only unlearned or measured against that release's forget set."""
    recorded = record.get("data_release_hash")
    if recorded and recorded != release_hash:
        raise LeakBenchError(
            f"{model_dir} was trained on data release {recorded[:12]}…, but the forget set given has hash "
            f"{release_hash[:12]}…: pass the matching --data-dir"
        )


RECORDS: tuple[type[Record], ...] = (BaseModelRecord, VictimRecord, UnlearnRecord, UtilityRecord, PrivacyRecord,
                                     RobustnessRecord, RunRecord, StudySummary, SweepRecord, FailureRecord)  # fmt: skip
