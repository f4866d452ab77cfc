"""The leaderboard's schema: one entry per evaluated model, versioned, exported as JSON Schema."""

from __future__ import annotations

import hashlib
import json
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from leakbench.metrics import PRIVACY, flat_metrics, verdict
from leakbench.schemas import LeakRates, Record

SCHEMA_VERSION = "1.5"
# 1.1: `model.source` is portable (a hub id, `local:<folder>@<fingerprint>`, or the study's relative path),
#      never a machine's absolute path; the entry identity includes it.
# 1.2: role `oracle`; ratios gain utility kept per metric (held-out code first), the oracle and the gap to it.
#      Additive: a 1.1 board is valid 1.2 content.
# 1.3: privacy metrics (`leakbench_privacy/*`, `privacy`). Additive.
# 1.4: `robustness` (relearning and quantization attacks, sequential requests, forget-set scaling). Additive.
# 1.5: PrivLeak in MUSE's orientation (a memorizing model reads about -100%; `migrate_1_4` converts older entries
#      exactly from their AUC); `privacy.headline_attack` is the entry's strongest attack; metrics may carry a
#      95% subject-bootstrap `interval`.


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Metric(_Strict):
    value: float | None = Field(description="metric value (null when lm-eval gave NaN)")
    stderr: float | None = Field(default=None, description="standard error, when lm-eval computed one")
    interval: list[float] | None = Field(
        default=None, exclude_if=lambda v: v is None,
        description="95% subject-bootstrap interval [low, high] (privacy metrics, the probe tasks' leak rates)")


class ModelInfo(_Strict):
    name: str
    source: str = Field(
        description="where the weights came from, portably: a hub id, 'local:<folder>@<sha256 prefix of its files>', "
        "or 'study:<path inside the leakbench run folder>'; never an absolute local path"
    )
    parameters: int | None = None
    role: Literal["victim", "oracle", "control", "unlearned", "external"]  # control: entries published before 1.2


class MethodInfo(_Strict):
    name: str = Field(description="unlearning method, or 'none'")
    hyperparameters: dict[str, Any] | Literal["none"] = "none"


class DataRelease(_Strict):
    name: str = "v1"
    hash: str = Field(description="leakbench.data.release_hash of the release the probes came from")
    subset: Literal["full", "mini"]
    split: Literal["forget", "holdout"] = Field(
        default="forget", description="whose probes: the forget subjects, or v2's holdout subjects (never trained on)"
    )


class Utility(_Strict):
    dataset: Literal["humaneval", "mbpp"]
    mini: bool = False
    dataset_hash: str = Field(description="EvalPlus's own dataset hash")
    n_tasks: int
    pass_at_1: dict[Literal["base", "plus"], float]
    time_limits: dict[str, float]


class Ratios(_Strict):
    baseline_entry_id: str
    direct_leak_reduction: float | None = Field(description="1 - direct_leak_rate / baseline's")
    indirect_leak_change: float | None = Field(description="indirect_leak_rate minus baseline's")
    retain_utility_retained: float | None = Field(
        description="baseline retain bits/byte / this one's (a diagnostic: not in utility_kept)")
    code_utility_retained: dict[str, float | None] = Field(
        default_factory=dict, description="pass@1 (plus) / baseline's, per EvalPlus dataset"
    )
    utility_kept: dict[str, float | None] = Field(
        default_factory=dict,
        description="each utility metric relative to the baseline (leakbench.metrics.utility_kept); "
        "code_edit_similarity is the headline",
    )
    utility_kept_above_100: list[str] = Field(default_factory=list, description="metrics kept above 100% (flagged)")
    oracle_entry_id: str | None = Field(default=None, description="the oracle: same recipe without the forget set")
    oracle_gap: dict[str, float | None] = Field(
        default_factory=dict, description="leak rates minus the oracle's, utility relative to the oracle's"
    )


class PrivacyInfo(_Strict):
    """How the entry's `leakbench_privacy/*` metrics were measured (`leakbench privacy`, leakbench.privacy)."""

    k: float = Field(description="Min-K% / Min-K%++ fraction of lowest-scoring tokens")
    headline_attack: str | None = Field(
        description="the entry's strongest attack (AUC furthest from 0.5): `mia_strongest`, the TPRs and `privleak`")
    calibration: str | None = Field(default=None, description="the reference attack's reference model")
    reference_model: str | None = Field(description="the model PrivLeak and forget quality compare with (oracle)")
    counts: dict[str, int] = Field(description="forget (member) and holdout (non-member) values and subjects, "
                                   "truth-ratio rows and subjects")
    verdict: Literal["under-unlearned", "over-unlearned", "within ±10%"] | None = Field(
        description="what PrivLeak says in MUSE's orientation: below -10% under-unlearned, above +10% over-unlearned"
    )


class RelearnAttack(_Strict):
    slice_subjects: int = Field(description="forget subjects whose documents the attack fine-tunes on")
    evaluated_subjects: int = Field(description="the other forget subjects, which every figure here is measured on")
    steps: int
    lr: float
    victim: LeakRates
    oracle_attacked: LeakRates | None = Field(description="the oracle under the same attack: the reference")
    unlearned: LeakRates
    attacked: LeakRates
    benign: LeakRates = Field(description="the same fine-tuning on retain documents only")
    recovered: float | None = Field(description="the attacked direct leak rate / the victim's")


class QuantizationAttack(_Strict):
    bits: int
    scheme: str
    model: LeakRates = Field(description="the unlearned model quantized, on every forget subject")
    unquantized: LeakRates = Field(description="the unlearned model in full precision, on the same subjects")
    victim: LeakRates = Field(description="the victim quantized alike")


class DeletionRequest(_Strict):
    request: int = Field(description="1-based: requests are served one after another, each from the last result")
    subjects: int
    steps: int
    served: LeakRates = Field(description="the subjects of every request served so far")
    pending: LeakRates | None = Field(description="the subjects not yet served (must keep leaking)")
    victim_served: LeakRates = Field(description="the victim on the served subjects")
    victim_pending: LeakRates | None = Field(description="the victim on the pending subjects")
    utility_kept: float | None = Field(description="held-out code bits/byte: the victim's / this model's")


class ForgetSetSize(_Strict):
    fraction: float
    subjects: int
    documents: int
    steps: int
    victim: LeakRates
    unlearned: LeakRates = Field(description="on the subjects forgotten")
    leak_reduction: float | None = Field(description="1 - direct leak rate / the victim's, on those subjects")
    utility_kept: float | None = Field(description="held-out code bits/byte: the victim's / this model's")


class Robustness(_Strict):
    """How the entry's model holds up (leakbench.robustness; measured on a probe sample, see `settings`)."""

    settings: dict[str, Any]
    relearn: RelearnAttack | None = None
    quantized: list[QuantizationAttack] = Field(default_factory=list)
    sequential: list[DeletionRequest] = Field(default_factory=list)
    scaling: list[ForgetSetSize] = Field(default_factory=list)


class Example(_Strict):
    task: str
    probe_id: str
    target_field: str
    prompt_tail: str
    generation: str = Field(description="the model's output, with non-forget-set PII redacted by Presidio")
    leak: str | None = None
    leak_kind: str | None = None


class Provenance(_Strict):
    versions: dict[str, str | None] = Field(description="leakbench, lm_eval, evalplus, transformers, torch, ...")
    git_commit: str | None
    date: str
    hardware: dict[str, Any]
    seeds: dict[str, int | None]
    wall_times_s: dict[str, Any]
    lm_eval_task_versions: dict[str, Any] = Field(default_factory=dict)


class Entry(_Strict):
    entry_id: str = Field(description="stable identity: model source, method and data release")
    model: ModelInfo
    method: MethodInfo
    data: DataRelease
    leak_metrics: dict[str, Metric] = Field(
        description="'<task>/<metric>' from lm-eval's results; 'leakbench_privacy/<metric>' from `leakbench privacy`"
    )
    privacy: PrivacyInfo | None = None
    group: str | None = Field(default=None, description="entries of one configuration that differ only in seeds")
    utility: list[Utility] = Field(default_factory=list)
    ratios: Ratios | None = None
    examples: list[Example] = Field(default_factory=list)
    robustness: Robustness | None = None
    provenance: Provenance

    def content_hash(self) -> str:
        blob = json.dumps(self.model_dump(mode="json"), sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()


class EntryRecord(Record):
    """`entry.json` in a measured run folder: the entry publish made of it while its lm-eval samples were there,
    and the sha256 of the records it was made from. A run folder kept without its samples and weights (git keeps
    only a reference run's records, so that it resumes on another machine) publishes from it; once those records
    change it is stale and refused."""

    FILE: ClassVar[str] = "entry.json"
    TITLE: ClassVar[str] = "entry record"
    KIND: ClassVar[str] = "entry"
    kind: Literal["entry"] = "entry"
    made_from: dict[str, str] = Field(description="each record file of the run folder (relative path) -> sha256")
    entry: Entry


def entry_metrics(entry: Entry) -> dict[str, float | None]:
    """An entry's flat figures, by the names the study uses (one per row of `leakbench.metrics.METRICS`)."""

    def lookup(task: str, metric: str) -> float | None:
        found = entry.leak_metrics.get(f"{task}/{metric}")
        return found.value if found else None

    return flat_metrics(lookup, {u.dataset: u.pass_at_1["plus"] for u in entry.utility})


class Leaderboard(_Strict):
    schema_version: Literal[SCHEMA_VERSION] = SCHEMA_VERSION  # type: ignore[valid-type]
    benchmark: str = "LeakBench"
    entries: list[Entry] = Field(default_factory=list)


def _portable_1_0_source(source: str) -> str:
    """1.0 entries recorded the machine's absolute model path: keep only the folder name."""
    if source.startswith("/") or (len(source) > 2 and source[1] == ":"):
        return f"local:{source.replace(chr(92), '/').rstrip('/').rsplit('/', 1)[-1]}"
    return source


def migrate_1_0(data: dict[str, Any]) -> dict[str, Any]:
    """1.0 -> 1.1: portable model sources. Entry ids are kept: they name entries already published."""
    if not isinstance(data.get("entries"), list):
        return {**data, "schema_version": SCHEMA_VERSION}  # nothing to migrate: validation names what is wrong
    entries = []
    for entry in data["entries"]:
        if isinstance(entry, dict) and isinstance(entry.get("model"), dict):
            model = entry["model"]
            if isinstance(model.get("source"), str):
                entry = {**entry, "model": {**model, "source": _portable_1_0_source(model["source"])}}
        entries.append(entry)
    return migrate_1_4({**data, "entries": entries})


def migrate_additive(data: dict[str, Any]) -> dict[str, Any]:
    """1.1 -> 1.2 (oracle comparisons), 1.2 -> 1.3 (privacy metrics), 1.3 -> 1.4 (robustness): only additions, so
    the content stays; then 1.4 -> 1.5."""
    return migrate_1_4(data)


def muse_privleak(old: float, auc: float) -> float | None:
    """A pre-1.5 PrivLeak, (AUC - AUC_ref) / AUC_ref x 100, in MUSE's orientation: AUC_ref is recovered from the
    entry's own AUC, then ((1 - AUC) - (1 - AUC_ref)) / (1 - AUC_ref) x 100."""
    reference = auc / (1 + old / 100) if old != -100 else None
    return None if reference is None or reference == 1 else (reference - auc) / (1 - reference) * 100


def migrate_1_4(data: dict[str, Any]) -> dict[str, Any]:
    """1.4 -> 1.5: PrivLeak turned to MUSE's orientation, exactly (with its reading); the rest is additive."""
    if not isinstance(data.get("entries"), list):
        return {**data, "schema_version": SCHEMA_VERSION}
    entries = []
    for entry in data["entries"]:
        privacy, metrics = (entry.get("privacy"), entry.get("leak_metrics")) if isinstance(entry, dict) else ({}, {})
        if isinstance(privacy, dict) and isinstance(metrics, dict):
            old = (metrics.get(f"{PRIVACY}/privleak") or {}).get("value")
            auc = (metrics.get(f"{PRIVACY}/mia_{privacy.get('headline_attack')}") or {}).get("value")
            if isinstance(old, int | float) and isinstance(auc, int | float):
                new = muse_privleak(float(old), float(auc))
                metrics = {**metrics, f"{PRIVACY}/privleak": {**metrics[f"{PRIVACY}/privleak"], "value": new}}
                entry = {**entry, "leak_metrics": metrics, "privacy": {**privacy, "verdict": verdict(new)}}
        entries.append(entry)
    return {**data, "schema_version": SCHEMA_VERSION, "entries": entries}


# Known older schema versions and how to bring them to SCHEMA_VERSION; any other version is refused.
MIGRATIONS = {"1.0": migrate_1_0, "1.1": migrate_additive, "1.2": migrate_additive, "1.3": migrate_additive,
              "1.4": migrate_1_4}  # fmt: skip


def json_schema() -> dict[str, Any]:
    schema = Leaderboard.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = f"LeakBench leaderboard, schema {SCHEMA_VERSION}"
    return schema
