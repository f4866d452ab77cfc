"""Counts of a release by field, template, language and probe kind."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from leakbench.data import ROLES, read_rows, role_of
from leakbench.records import DataError


def release_stats(root: Path, subset: str = "full") -> dict[str, dict[str, int]]:
    try:
        return _stats(root, subset)
    except (KeyError, TypeError, AttributeError) as exc:
        raise DataError(
            f"{root}: rows lack the release's fields ({exc.__class__.__name__}: {exc}); "
            f"run `leakbench data verify {root}` to see which"
        ) from None


def _stats(root: Path, subset: str) -> dict[str, dict[str, int]]:
    def rows(table: str) -> list[dict[str, Any]]:
        return [r for r in read_rows(root / f"{table}.jsonl") if subset == "full" or r["mini"]]

    subjects, forget, retain, probes = rows("subjects"), rows("forget"), rows("retain"), rows("probes")
    by_whom = (("subjects", subjects), ("documents", forget), ("probes", probes))
    if any("role" in s for s in subjects):  # v3
        split_title = "by role (forget: victim; substitute: oracle; validation_*: tuning only; holdout: never trained)"
        split_counts = {
            f"{table} {role}": sum(role_of(r) == role for r in table_rows)
            for table, table_rows in by_whom
            for role in ROLES
        }
    else:
        split_title = "by split (forget: trained on; holdout: never)"
        split_counts = {
            f"{table} {split}": sum(r.get("split", "forget") == split for r in table_rows)
            for table, table_rows in by_whom
            for split in ("forget", "holdout")
        }
    return {
        "totals": {
            "subjects": len(subjects),
            "forget documents": len(forget),
            "retain documents": len(retain),
            "probes": len(probes),
        },
        split_title: split_counts,
        "forget occurrences by field": dict(Counter(o["field"] for d in forget for o in d["occurrences"])),
        "forget documents by template": dict(Counter(d["template"] for d in forget)),
        "forget documents by language": dict(Counter(d["language"] for d in forget)),
        "retain documents by source/split": dict(Counter(f"{d['source']}/{d['split']}" for d in retain)),
        "probes by kind": dict(Counter(p["kind"] for p in probes)),
        "probes by target field": dict(Counter(p["target_field"] for p in probes)),
        "probes by language": dict(Counter(p["language"] for p in probes)),
    }
