"""Check a release: hashes, schema and every invariant the data card promises."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import Any

from leakbench.data import SPLIT_TABLES, SPLITS, read_manifest
from leakbench.data.build import HOLDOUT_FRACTION, INDIRECT_KINDS, PROBE_KINDS, RELEASE_FILES, Release, counts
from leakbench.data.subjects import FIELDS, safety_problems
from leakbench.records import DataError, sha256_file

MAX_PROBLEMS = 50

_SCHEMA: dict[str, dict[str, type | tuple[type, ...]]] = {
    "subjects.jsonl": {"subject_id": str, "mini": bool, "derivable": list, **{f: str for f in FIELDS}},
    "forget.jsonl": {
        "doc_id": str,
        "template": str,
        "language": str,
        "path": str,
        "text": str,
        "subject_ids": list,
        "occurrences": list,
        "mini": bool,
    },
    "retain.jsonl": {
        "doc_id": str,
        "template": str,
        "language": str,
        "source": str,
        "text": str,
        "split": str,
        "mini": bool,
    },
    "probes.jsonl": {
        "probe_id": str,
        "kind": str,
        "variant": (str, type(None)),
        "subject_id": str,
        "target_field": str,
        "target_value": str,
        "prompt": str,
        "prompt_fields": list,
        "template": str,
        "language": str,
        "doc_id": (str, type(None)),
        "mini": bool,
    },
}


class Problems(list):
    def add(self, message: str) -> None:
        if len(self) < MAX_PROBLEMS:
            self.append(message)
        elif len(self) == MAX_PROBLEMS:
            self.append("... (further problems not shown)")


def _read(path: Path, problems: Problems) -> list[dict[str, Any]] | None:
    if not path.is_file():
        problems.add(f"{path.name}: file is missing")
        return None
    rows: list[dict[str, Any]] = []
    schema = _SCHEMA[path.name]
    with path.open("rb") as fh:
        for lineno, raw in enumerate(fh, 1):
            try:
                row = json.loads(raw.decode("utf-8"))
            except UnicodeDecodeError as exc:
                bad = f"byte 0x{raw[exc.start]:02x} at column {exc.start + 1}"
                problems.add(f"{path.name}:{lineno}: not UTF-8 text ({bad})")
                continue
            except json.JSONDecodeError as exc:
                problems.add(f"{path.name}:{lineno}: not valid JSON ({exc.msg}); truncated or edited file?")
                continue
            except RecursionError:
                problems.add(f"{path.name}:{lineno}: JSON nested too deeply")
                continue
            if not isinstance(row, dict):
                problems.add(f"{path.name}:{lineno}: expected a JSON object")
                continue
            bad = [k for k, t in schema.items() if not isinstance(row.get(k), t)]
            bad += [k for k, t in schema.items() if t is str and k in row and row[k] == "" and k != "prompt"]
            if path.stem in SPLIT_TABLES and "split" in row and row["split"] not in SPLITS:
                bad.append("split")
            if bad:
                problems.add(f"{path.name}:{lineno}: missing or mistyped field(s): {', '.join(sorted(set(bad)))}")
                continue
            row["_line"] = lineno
            rows.append(row)
    return rows


def verify(root: Path) -> list[str]:
    """All problems found in the release at `root`; an empty list means it is sound."""
    problems = Problems()
    manifest_path = root / "manifest.json"
    if not root.is_dir():
        raise DataError(f"{root}: no such directory")
    if not manifest_path.is_file():
        return [f"{manifest_path}: file is missing"]
    try:
        manifest = read_manifest(data_dir=root)
    except DataError as exc:
        return [str(exc)]
    files = manifest["files"]

    tables: dict[str, list[dict[str, Any]]] = {}
    for name in RELEASE_FILES:
        path = root / name
        entry = files.get(name) if isinstance(files, dict) else None
        if not isinstance(entry, dict):
            problems.add(f"manifest.json: no entry for {name}")
        elif path.is_file() and sha256_file(path) != entry.get("sha256"):
            problems.add(f"{name}: sha256 differs from the manifest (file edited, truncated or replaced)")
        rows = _read(path, problems)
        if rows is None:
            continue
        if isinstance(entry, dict) and entry.get("rows") != len(rows):
            problems.add(f"{name}: {len(rows)} valid rows, the manifest says {entry.get('rows')}")
        tables[name.removesuffix(".jsonl")] = rows
    if len(tables) < len(RELEASE_FILES):
        return list(problems)

    _check_subjects(tables["subjects"], problems)
    subjects = {s["subject_id"]: s for s in tables["subjects"]}
    _check_forget(tables["forget"], subjects, problems)
    _check_retain(tables["retain"], tables["subjects"], problems)
    _check_probes(tables["probes"], subjects, tables["forget"], problems)
    _check_splits(tables, subjects, manifest.get("release"), problems)
    release = Release(tables["subjects"], tables["forget"], tables["retain"], tables["probes"])
    if not problems and manifest.get("counts") != counts(release):
        problems.add("manifest.json: counts do not match the files")
    return list(problems)


def _check_subjects(rows: list[dict[str, Any]], problems: Problems) -> None:
    seen: dict[str, dict[str, str]] = {f: {} for f in FIELDS}
    for row in rows:
        where = f"subjects.jsonl:{row['_line']} ({row['subject_id']})"
        for problem in safety_problems(row):
            problems.add(f"{where}: {problem}")
        for field in FIELDS:
            if field == "date_of_birth":
                continue
            other = seen[field].setdefault(row[field], row["subject_id"])
            if other != row["subject_id"]:
                problems.add(f"{where}: {field} equals that of {other}")
    ids = [r["subject_id"] for r in rows]
    if len(set(ids)) != len(ids):
        problems.add("subjects.jsonl: duplicate subject_id")


def _check_forget(docs: list[dict[str, Any]], subjects: dict[str, dict[str, Any]], problems: Problems) -> None:
    templates_of: dict[str, set[str]] = defaultdict(set)
    docs_of: dict[str, int] = defaultdict(int)
    fields_of: dict[str, set[str]] = defaultdict(set)
    for doc in docs:
        where = f"forget.jsonl:{doc['_line']} ({doc['doc_id']})"
        for sid in doc["subject_ids"]:
            if sid not in subjects:
                problems.add(f"{where}: unknown subject {sid}")
                continue
            templates_of[sid].add(doc["template"])
            docs_of[sid] += 1
            if subjects[sid]["mini"] != doc["mini"]:
                problems.add(f"{where}: mini flag differs from subject {sid}'s")
        for occ in doc["occurrences"]:
            subject = subjects.get(occ.get("subject_id"))
            field = occ.get("field")
            if subject is None or field not in FIELDS or occ.get("subject_id") not in doc["subject_ids"]:
                problems.add(f"{where}: occurrence names an unknown subject or field: {occ}")
                continue
            if doc["text"][occ.get("start", 0) : occ.get("end", 0)] != subject[field]:
                problems.add(f"{where}: offsets {occ.get('start')}..{occ.get('end')} do not hold {field}")
                continue
            fields_of[occ["subject_id"]].add(field)
    for sid in subjects:
        if docs_of[sid] < 3 or len(templates_of[sid]) < 3:
            problems.add(f"subject {sid}: in {len(templates_of[sid])} templates, fewer than 3")
        missing = set(FIELDS) - fields_of[sid]
        if missing:
            problems.add(f"subject {sid}: fields in no forget document: {', '.join(sorted(missing))}")


def _check_retain(docs: list[dict[str, Any]], subjects: list[dict[str, Any]], problems: Problems) -> None:
    retain_text = "\x00".join(d["text"] for d in docs)
    for subject in subjects:
        for field in FIELDS:
            if subject[field] in retain_text:
                doc = next(d for d in docs if subject[field] in d["text"])
                problems.add(
                    f"retain.jsonl:{doc['_line']} ({doc['doc_id']}): contains {subject['subject_id']}'s {field}"
                )
    for doc in docs:
        if doc["split"] not in ("train", "heldout"):
            problems.add(f"retain.jsonl:{doc['_line']}: split must be train or heldout")
    for subset in ("full", "mini"):
        splits = {d["split"] for d in docs if subset == "full" or d["mini"]}
        if splits != {"train", "heldout"}:
            problems.add(f"retain.jsonl: the {subset} subset needs both train and heldout documents")


def _check_probes(
    probes: list[dict[str, Any]], subjects: dict[str, dict[str, Any]], forget: list[dict[str, Any]], problems: Problems
) -> None:
    training_text = "\x00".join(d["text"] for d in forget)
    ids = set()
    for probe in probes:
        where = f"probes.jsonl:{probe['_line']} ({probe['probe_id']})"
        if probe["probe_id"] in ids:
            problems.add(f"{where}: duplicate probe_id")
        ids.add(probe["probe_id"])
        subject = subjects.get(probe["subject_id"])
        if subject is None or probe["target_field"] not in FIELDS or probe["kind"] not in PROBE_KINDS:
            problems.add(f"{where}: unknown subject, target_field or kind")
            continue
        if subject[probe["target_field"]] != probe["target_value"]:
            problems.add(f"{where}: target_value is not the subject's {probe['target_field']}")
        if probe["target_value"] in probe["prompt"]:
            problems.add(f"{where}: the target value occurs in its own prompt")
        if probe["prompt_fields"] != [f for f in FIELDS if subject[f] in probe["prompt"]]:
            problems.add(f"{where}: prompt_fields does not list the subject's fields found in the prompt")
        if probe["mini"] != subject["mini"]:
            problems.add(f"{where}: mini flag differs from the subject's")
        if probe["kind"] in INDIRECT_KINDS and probe["prompt"] in training_text:
            problems.add(f"{where}: an indirect prompt occurs verbatim in the forget documents")


def _check_splits(
    tables: dict[str, list[dict[str, Any]]], subjects: dict[str, dict[str, Any]], release: Any, problems: Problems
) -> None:
    """v2 on: every row says whose it is, documents and probes agree with their subjects, and there are enough
    holdout subjects (HOLDOUT_FRACTION of the forget subjects) in the full set and in mini."""
    marked = [("split" in r) for table in SPLIT_TABLES for r in tables[table]]
    if not any(marked):
        if HOLDOUT_FRACTION.get(release):
            problems.add(f"manifest.json: release {release} needs holdout subjects, but no row has a `split`")
        return
    if not all(marked):
        problems.add("subjects/forget/probes: some rows have a `split` and some do not")
        return
    split_of = {sid: s["split"] for sid, s in subjects.items()}
    for doc in tables["forget"]:
        if any(split_of.get(sid) != doc["split"] for sid in doc["subject_ids"]):
            problems.add(f"forget.jsonl:{doc['_line']} ({doc['doc_id']}): split differs from its subjects'")
    for probe in tables["probes"]:
        if split_of.get(probe["subject_id"]) != probe["split"]:
            problems.add(f"probes.jsonl:{probe['_line']} ({probe['probe_id']}): split differs from its subject's")
    fraction = HOLDOUT_FRACTION["v2"]  # marked rows are the v2 format
    for subset in ("full", "mini"):
        rows = [s for s in subjects.values() if subset == "full" or s["mini"]]
        n_forget = sum(s["split"] == "forget" for s in rows)
        n_holdout = len(rows) - n_forget
        if n_holdout < fraction * n_forget:
            problems.add(
                f"subjects.jsonl: the {subset} subset has {n_holdout} holdout subjects for {n_forget} forget "
                f"subjects; it needs at least {fraction:.0%}"
            )
