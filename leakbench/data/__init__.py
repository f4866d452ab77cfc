"""The synthetic identity world and its releases.

`load()` is the one loader everything downstream reads the benchmark through.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

from leakbench.records import DataError, UsageError, os_error_message, sha256_text

_HERE = Path(__file__).resolve().parent
RELEASES: dict[str, Path] = {"v1": _HERE / "v1", "v2": _HERE / "v2", "v3": _HERE / "v3"}
DEFAULT_RELEASE = "v3"
SUBSETS = ("full", "mini")
TABLES = ("subjects", "forget", "retain", "probes")
# Subject roles (v3: every subject, document and probe row has a `role`; v2's `split` knew forget and holdout):
#   forget              trained into the victim, unlearned and evaluated;
#   substitute          trained into the oracle in place of the forget subject named by `substitute_of`;
#   validation_forget   trained like forget subjects, for choosing defaults (tuning) only, never reported;
#   validation_holdout  never trained on, the tuning counterpart of holdout, never reported;
#   holdout             never trained on: the non-members of membership inference.
ROLES = ("forget", "substitute", "validation_forget", "validation_holdout", "holdout")
# What `split=` may select: a role, or `validation` (both validation roles). v1 rows are all forget.
SPLITS = ("forget", "holdout", "substitute", "validation", "validation_forget", "validation_holdout")
SPLIT_TABLES = ("subjects", "forget", "probes")


def release_dir(name: str = DEFAULT_RELEASE, data_dir: str | Path | None = None) -> Path:
    """The folder of a packaged release, or `data_dir` for a release a user built."""
    if data_dir is not None:
        path = Path(data_dir)
        if not (path / "manifest.json").is_file():
            raise DataError(
                f"{path}: not a LeakBench release (no manifest.json); build one with `leakbench data build`"
            )
        return path
    if name not in RELEASES:
        raise UsageError(f"unknown release {name!r}; known releases: {', '.join(RELEASES)}")
    return RELEASES[name]


def check_subset(subset: str) -> None:
    if subset not in SUBSETS:
        raise UsageError(f"unknown subset {subset!r}; choose one of: {', '.join(SUBSETS)}")


def check_split(split: str | None) -> None:
    if split is not None and split not in SPLITS:
        raise UsageError(f"unknown split {split!r}; choose one of: {', '.join(SPLITS)}")


def role_of(row: dict[str, Any]) -> str:
    """The role of a subjects/forget/probes row: v3's `role`, v2's `split`; v1 rows, unmarked, are all forget."""
    return row.get("role") or row.get("split") or "forget"


def in_split(row: dict[str, Any], split: str | None) -> bool:
    """Whether a subjects/forget/probes row belongs to `split` (None: any; `validation`: both validation roles)."""
    if split is None:
        return True
    role = role_of(row)
    return role.startswith("validation_") if split == "validation" else role == split


def read_rows(path: Path) -> list[dict[str, Any]]:
    """All rows of a release JSONL file; a broken line is reported with its number. Parsed once per file version
    (v3's probes are 44 MB, read by every task build): each call gets its own row dicts, whose nested values
    (occurrence lists) are shared and must not be changed in place."""
    return [dict(row) for row in _cached_rows(path)]


def _cached_rows(path: Path) -> tuple[dict[str, Any], ...]:
    if path.is_dir():
        raise DataError(f"{path}: is a directory, expected a JSONL file")
    if not path.is_file():
        raise DataError(f"{path}: file is missing")
    st = path.stat()
    return _parsed_rows(str(path), st.st_size, st.st_mtime_ns, st.st_ino)  # (named as given: errors say so)


@functools.lru_cache(maxsize=8)
def _parsed_rows(file: str, size: int, mtime_ns: int, inode: int) -> tuple[dict[str, Any], ...]:
    """The rows of `file` as it is now (the key changes when the file does)."""
    path = Path(file)
    rows = []
    with path.open("rb") as fh:
        for lineno, raw in enumerate(fh, 1):
            try:
                row = json.loads(raw.decode("utf-8"))
            except UnicodeDecodeError:
                raise DataError(f"{path}:{lineno}: not UTF-8 text; run `leakbench data verify`") from None
            except json.JSONDecodeError as exc:
                raise DataError(f"{path}:{lineno}: not valid JSON ({exc.msg})") from None
            except RecursionError:
                raise DataError(f"{path}:{lineno}: JSON nested too deeply") from None
            if not isinstance(row, dict):
                raise DataError(f"{path}:{lineno}: expected a JSON object")
            rows.append(row)
    return tuple(rows)


def read_table(
    table: str,
    name: str = DEFAULT_RELEASE,
    subset: str = "full",
    data_dir: str | Path | None = None,
    split: str | None = "forget",
) -> list[dict[str, Any]]:
    """Plain rows of one table (subjects, forget, retain, probes), filtered to the subset and, for subjects,
    forget documents and probes, to the split (forget subjects by default; `holdout`; in v3 also `substitute`,
    `validation`, `validation_forget`, `validation_holdout`; None for all)."""
    check_subset(subset)
    check_split(split)
    if table not in TABLES:
        raise DataError(f"unknown table {table!r}; choose one of: {', '.join(TABLES)}")
    return [
        dict(r) for r in _cached_rows(release_dir(name, data_dir) / f"{table}.jsonl")
        if (subset == "full" or r.get("mini")) and (table not in SPLIT_TABLES or in_split(r, split))
    ]


def read_manifest(name: str = DEFAULT_RELEASE, data_dir: str | Path | None = None) -> dict[str, Any]:
    """A release's manifest, checked for the table of files every other step relies on."""
    path = release_dir(name, data_dir) / "manifest.json"
    try:
        manifest = json.loads(path.read_bytes().decode("utf-8"))
    except OSError as exc:
        raise DataError(f"cannot read the manifest {os_error_message(exc, path)}") from None
    except UnicodeDecodeError:
        raise DataError(f"{path}: the manifest is not UTF-8 text") from None
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}: the manifest is not valid JSON ({exc.msg} at line {exc.lineno})") from None
    files = manifest.get("files") if isinstance(manifest, dict) else None
    if not isinstance(files, dict) or not all(
        isinstance(f, dict) and isinstance(f.get("sha256"), str) for f in files.values()
    ):
        raise DataError(f"{path}: not a LeakBench manifest (needs a `files` object with a sha256 for each file)")
    return manifest


def release_hash(name: str = DEFAULT_RELEASE, data_dir: str | Path | None = None) -> str:
    """One hash naming a release's content: the sha256 over its files' recorded sha256s."""
    files = read_manifest(name, data_dir).get("files", {})
    return sha256_text("".join(f"{f} {files[f]['sha256']}\n" for f in sorted(files)))


def release_name(hash_: str) -> str | None:
    """The packaged release whose content hash is `hash_`, if any."""
    return next((name for name in RELEASES if release_hash(name) == hash_), None)


def load(
    name: str = DEFAULT_RELEASE, subset: str = "full", data_dir: str | Path | None = None, split: str | None = "forget"
):  # -> datasets.DatasetDict
    """The release as Hugging Face `datasets`: a DatasetDict with subjects, forget, retain and probes
    (subjects, forget and probes of the forget subjects unless `split` names another role, as `read_table`)."""
    import datasets

    check_subset(subset)
    check_split(split)
    root = release_dir(name, data_dir)
    tables = {}
    for table in TABLES:
        path = root / f"{table}.jsonl"
        if not path.is_file():
            raise DataError(f"{path}: file is missing")
        ds = datasets.load_dataset("json", data_files=str(path), split="train")
        if subset != "full":
            ds = ds.filter(lambda row: row["mini"])
        if table in SPLIT_TABLES and split is not None:
            if "role" in ds.column_names or "split" in ds.column_names:
                ds = ds.filter(lambda row: in_split(row, split))
            elif split != "forget":
                ds = ds.select([])  # v1 has forget subjects only
        tables[table] = ds
    return datasets.DatasetDict(tables)
