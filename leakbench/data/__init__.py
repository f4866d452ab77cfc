"""The synthetic identity world and its releases.

`load()` is the one loader everything downstream reads the benchmark through.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from leakbench.records import DataError, UsageError, os_error_message, sha256_text

RELEASES: dict[str, Path] = {"v1": Path(__file__).resolve().parent / "v1"}
SUBSETS = ("full", "mini")
TABLES = ("subjects", "forget", "retain", "probes")


def release_dir(name: str = "v1", data_dir: str | Path | None = None) -> Path:
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


def read_rows(path: Path) -> list[dict[str, Any]]:
    """All rows of a release JSONL file; a broken line is reported with its number."""
    if path.is_dir():
        raise DataError(f"{path}: is a directory, expected a JSONL file")
    if not path.is_file():
        raise DataError(f"{path}: file is missing")
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
    return rows


def read_table(
    table: str, name: str = "v1", subset: str = "full", data_dir: str | Path | None = None
) -> list[dict[str, Any]]:
    """Plain rows of one table (subjects, forget, retain, probes), filtered to the subset."""
    check_subset(subset)
    if table not in TABLES:
        raise DataError(f"unknown table {table!r}; choose one of: {', '.join(TABLES)}")
    rows = read_rows(release_dir(name, data_dir) / f"{table}.jsonl")
    return [r for r in rows if subset == "full" or r.get("mini")]


def read_manifest(name: str = "v1", data_dir: str | Path | None = None) -> dict[str, Any]:
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


def release_hash(name: str = "v1", data_dir: str | Path | None = None) -> str:
    """One hash naming a release's content: the sha256 over its files' recorded sha256s."""
    files = read_manifest(name, data_dir).get("files", {})
    return sha256_text("".join(f"{f} {files[f]['sha256']}\n" for f in sorted(files)))


def load(name: str = "v1", subset: str = "full", data_dir: str | Path | None = None):  # -> datasets.DatasetDict
    """The release as Hugging Face `datasets`: a DatasetDict with subjects, forget, retain and probes."""
    import datasets

    check_subset(subset)
    root = release_dir(name, data_dir)
    tables = {}
    for table in TABLES:
        path = root / f"{table}.jsonl"
        if not path.is_file():
            raise DataError(f"{path}: file is missing")
        ds = datasets.load_dataset("json", data_files=str(path), split="train")
        tables[table] = ds if subset == "full" else ds.filter(lambda row: row["mini"])
    return datasets.DatasetDict(tables)
