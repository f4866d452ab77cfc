"""Check a release: hashes, schema and every invariant the data card promises."""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

from leakbench.data import ROLES, SPLIT_TABLES, read_manifest
from leakbench.data.build import (
    ANSWERABILITY_RULE,
    HOLDOUT_FRACTION,
    INDIRECT_KINDS,
    PROBE_KINDS,
    RELEASE_FILES,
    Release,
    answerable,
    counts,
)
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
            if path.stem in SPLIT_TABLES and "split" in row and row["split"] not in ("forget", "holdout"):
                bad.append("split")
            if path.stem in SPLIT_TABLES and "role" in row and row["role"] not in ROLES:
                bad.append("role")
            if "substitute_of" in row and not isinstance(row["substitute_of"], (str, type(None))):
                bad.append("substitute_of")
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
    _check_roles(tables, subjects, manifest.get("release"), problems)
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


def _check_roles(
    tables: dict[str, list[dict[str, Any]]], subjects: dict[str, dict[str, Any]], release: Any, problems: Problems
) -> None:
    """v3 on: every subject has exactly one role (its `role`), documents and probes agree with their subjects, each
    forget subject has one substitute whose documents are its documents' twins (same template, path, fillers and
    occurrences; only the values differ), the role sizes hold in full and mini, and every probe is answerable."""
    marked = [("role" in r) for table in SPLIT_TABLES for r in tables[table]]
    if not any(marked):
        if release == "v3":
            problems.add("manifest.json: release v3 needs subject roles, but no row has a `role`")
        return
    if not all(marked):
        problems.add("subjects/forget/probes: some rows have a `role` and some do not")
        return
    role_of = {sid: s["role"] for sid, s in subjects.items()}
    for doc in tables["forget"]:
        if any(role_of.get(sid) != doc["role"] for sid in doc["subject_ids"]):
            problems.add(f"forget.jsonl:{doc['_line']} ({doc['doc_id']}): role differs from its subjects'")
    for probe in tables["probes"]:
        where = f"probes.jsonl:{probe['_line']} ({probe['probe_id']})"
        if role_of.get(probe["subject_id"]) != probe["role"]:
            problems.add(f"{where}: role differs from its subject's")
        elif probe["role"] == "substitute":
            problems.add(f"{where}: a probe of substitute subject {probe['subject_id']} (substitutes have none)")
    _check_pairing(tables, subjects, problems)
    for subset in ("full", "mini"):
        n = {role: sum(s["role"] == role for s in subjects.values() if subset == "full" or s["mini"]) for role in ROLES}
        if n["substitute"] != n["forget"] or n["holdout"] < n["forget"]:
            problems.add(
                f"subjects.jsonl: the {subset} subset has {n['forget']} forget, {n['substitute']} substitute and "
                f"{n['holdout']} holdout subjects; it needs one substitute per forget subject and at least as many "
                "holdout subjects"
            )
        if not n["validation_forget"] or not n["validation_holdout"]:
            problems.add(f"subjects.jsonl: the {subset} subset needs validation_forget and validation_holdout subjects")
    _, clashing = answerable(tables["probes"])
    first: dict[tuple[str, str], dict[str, Any]] = {}
    for probe in clashing:
        other = first.setdefault((probe["prompt"], probe["target_field"]), probe)
        if other is not probe:
            problems.add(
                f"probes.jsonl:{probe['_line']} ({probe['probe_id']}): its prompt for {probe['target_field']} is "
                f"also {other['subject_id']}'s ({other['probe_id']}), so it cannot be answered ({ANSWERABILITY_RULE})"
            )


def _check_pairing(
    tables: dict[str, list[dict[str, Any]]], subjects: dict[str, dict[str, Any]], problems: Problems
) -> None:
    """Substitutes pair 1:1 with forget subjects, and substitute documents 1:1 with forget documents."""
    partner: dict[str, str] = {}  # forget subject -> its substitute
    for sid, s in subjects.items():
        where = f"subjects.jsonl:{s['_line']} ({sid})"
        target = s.get("substitute_of")
        if s["role"] != "substitute":
            if target is not None:
                problems.add(f"{where}: substitute_of is set, but the subject is {s['role']}, not a substitute")
            continue
        if target not in subjects or subjects[target]["role"] != "forget":
            problems.add(f"{where}: substitute_of {target!r} is not a forget subject")
        elif target in partner:
            problems.add(f"{where}: {target} already has substitute {partner[target]} (pairing must be 1:1)")
        elif subjects[target]["mini"] != s["mini"]:
            problems.add(f"{where}: mini flag differs from that of {target}, whose substitute it is")
        else:
            partner[target] = sid
    for sid, s in subjects.items():
        if s["role"] == "forget" and sid not in partner:
            problems.add(f"subjects.jsonl:{s['_line']} ({sid}): forget subject without a substitute")

    docs = {d["doc_id"]: d for d in tables["forget"]}
    twin_of: dict[str, str] = {}  # forget document -> its substitute twin
    for doc in tables["forget"]:
        where = f"forget.jsonl:{doc['_line']} ({doc['doc_id']})"
        target = doc.get("substitute_of")
        if doc["role"] != "substitute":
            if target is not None:
                problems.add(f"{where}: substitute_of is set on a {doc['role']} document")
            continue
        original = docs.get(target) if isinstance(target, str) else None
        if original is None or original["role"] != "forget":
            problems.add(f"{where}: substitute_of {target!r} is not a forget document")
            continue
        if target in twin_of:
            problems.add(f"{where}: {target} already has substitute document {twin_of[target]} (pairing must be 1:1)")
            continue
        twin_of[target] = doc["doc_id"]
        mismatch = _twin_mismatch(original, doc, partner)
        if mismatch:
            problems.add(f"{where}: not the substitute twin of {target}: {mismatch}")
    for doc in tables["forget"]:
        if doc["role"] == "forget" and doc["doc_id"] not in twin_of:
            problems.add(f"forget.jsonl:{doc['_line']} ({doc['doc_id']}): forget document without a substitute twin")

    def tally(role: str) -> dict[str, Counter]:
        out: dict[str, Counter] = defaultdict(Counter)
        for doc in tables["forget"]:
            if doc["role"] == role:
                for sid in set(doc["subject_ids"]):
                    out[sid][(doc["template"], "documents")] += 1
                for occ in doc["occurrences"]:
                    out[occ.get("subject_id")][(doc["template"], occ.get("field"))] += 1
        return out

    forget_tally, substitute_tally = tally("forget"), tally("substitute")
    for forget_id, substitute_id in partner.items():
        if forget_tally[forget_id] != substitute_tally[substitute_id]:
            problems.add(
                f"subjects.jsonl:{subjects[substitute_id]['_line']} ({substitute_id}): its documents per template and "
                f"value occurrences per field differ from those of {forget_id}, whose substitute it is"
            )


def _twin_mismatch(original: dict[str, Any], twin: dict[str, Any], partner: dict[str, str]) -> str:
    """How a substitute document differs from its forget document other than in the subjects' values ('' if not)."""
    if (twin["template"], twin["path"], twin["mini"]) != (original["template"], original["path"], original["mini"]):
        return "template, path or mini flag differs"
    if twin["subject_ids"] != [partner.get(sid) for sid in original["subject_ids"]]:
        return "its subjects are not the substitutes of the original's, in order"
    mapped = [(partner.get(o.get("subject_id")), o.get("field")) for o in original["occurrences"]]
    if [(o.get("subject_id"), o.get("field")) for o in twin["occurrences"]] != mapped:
        return "value occurrences (subject and field, in order) differ"

    def skeleton(doc: dict[str, Any]) -> list[str]:  # the text between the values
        cuts = [0, *(x for o in doc["occurrences"] for x in (o.get("start", 0), o.get("end", 0))), len(doc["text"])]
        return [doc["text"][a:b] for a, b in zip(cuts[::2], cuts[1::2], strict=True)]

    return "" if skeleton(twin) == skeleton(original) else "the text around the values differs"
