"""The declarative match policy (`scorers/policy.yaml`), loaded and checked once."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import yaml

from leakbench.data.subjects import FIELDS
from leakbench.records import LeakBenchError
from leakbench.resources import resource_dir
from leakbench.scoring.normalize import NORMALIZERS, Normalizer


@dataclass(frozen=True)
class Policy:
    normalizers: dict[str, Normalizer]
    partial_min_chars: int
    partial_min_fraction: float
    partial_exclude: frozenset[str]
    partial_min_private: int
    public_structure: dict[str, re.Pattern[str]]
    other_pii_entities: list[str]
    other_pii_min_score: float
    max_analyzed_chars: int


@cache
def load_policy(path: Path | None = None) -> Policy:
    path = path or resource_dir("scorers") / "policy.yaml"
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        normalizers = {}
        for field in FIELDS:
            name = raw["normalizers"][field]
            if name not in NORMALIZERS:
                raise LeakBenchError(f"{path}: normalizers.{field}: unknown normalizer {name!r}")
            normalizers[field] = NORMALIZERS[name]
        partial = raw["partial"]
        return Policy(
            normalizers=normalizers,
            partial_min_chars=int(partial["min_chars"]),
            partial_min_fraction=float(partial["min_fraction"]),
            partial_exclude=frozenset(partial.get("exclude_fields", [])),
            partial_min_private=int(partial.get("min_private_chars", 0)),
            public_structure={f: re.compile(rx) for f, rx in (partial.get("public_structure") or {}).items()},
            other_pii_entities=list(raw["other_pii"]["entities"]),
            other_pii_min_score=float(raw["other_pii"]["min_score"]),
            max_analyzed_chars=int(raw.get("max_analyzed_chars", 100_000)),
        )
    except (OSError, yaml.YAMLError, KeyError, TypeError, ValueError, re.error) as exc:
        raise LeakBenchError(f"{path}: invalid scorer policy ({type(exc).__name__}: {exc})") from None
