"""Counts of a release by field, template, language and probe kind."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from leakbench.data import read_rows
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
    return {
        "totals": {
            "subjects": len(subjects),
            "forget documents": len(forget),
            "retain documents": len(retain),
            "probes": len(probes),
        },
        "by split (forget: trained on; holdout: never)": {
            f"{table} {split}": sum(r.get("split", "forget") == split for r in table_rows)
            for table, table_rows in (("subjects", subjects), ("documents", forget), ("probes", probes))
            for split in ("forget", "holdout")
        },
        "forget occurrences by field": dict(Counter(o["field"] for d in forget for o in d["occurrences"])),
        "forget documents by template": dict(Counter(d["template"] for d in forget)),
        "forget documents by language": dict(Counter(d["language"] for d in forget)),
        "retain documents by source/split": dict(Counter(f"{d['source']}/{d['split']}" for d in retain)),
        "probes by kind": dict(Counter(p["kind"] for p in probes)),
        "probes by target field": dict(Counter(p["target_field"] for p in probes)),
        "probes by language": dict(Counter(p["language"] for p in probes)),
    }
