"""The small shared base: the error type users see, atomic writes, hashes and provenance records.

Nothing here imports the rest of leakbench.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import platform
import shutil
import subprocess
import tempfile
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


class LeakBenchError(Exception):
    """An error the user can act on; the CLI prints it as one line and exits non-zero."""


class DataError(LeakBenchError):
    """A release file or a data request is wrong (missing, corrupt, unknown name...)."""


def dumps_row(row: dict[str, Any]) -> str:
    """One JSONL line, in the canonical form the release hashes depend on."""
    return json.dumps(row, ensure_ascii=False, sort_keys=False, separators=(",", ":"))


def dumps_record(record: Any) -> str:
    """A JSON record (manifest, run record), human-readable and stable."""
    return json.dumps(record, ensure_ascii=False, indent=2, sort_keys=True) + "\n"


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside `path`; on success it replaces `path`, on failure it vanishes."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.chmod(tmp_path, 0o666 & ~_umask())  # mkstemp makes 0600 files; results are for sharing
        os.replace(tmp_path, path)
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise


def write_text_atomic(path: str | os.PathLike[str], text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_jsonl_atomic(path: str | os.PathLike[str], rows: Iterable[dict[str, Any]]) -> None:
    with atomic_path(path) as tmp, tmp.open("w", encoding="utf-8", newline="\n") as fh:
        for row in rows:
            fh.write(dumps_row(row) + "\n")


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike[str], *, overwrite: bool = False) -> Iterator[Path]:
    """Yield a fresh temporary directory beside `path`; on success it becomes `path`.

    An interrupted run leaves no directory that looks complete: only a hidden `.name.*.tmp` folder,
    which is removed on the way out.
    """
    path = Path(path)
    if path.exists() and not overwrite and any(path.iterdir()):
        raise LeakBenchError(f"{path}: directory exists and is not empty (pass --overwrite to replace it)")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    try:
        yield tmp
        os.chmod(tmp, 0o777 & ~_umask())
        if path.exists():
            old = path.with_name(f".{path.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(path, old)
            os.replace(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def sha256_file(path: str | os.PathLike[str]) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def package_version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def git_commit(cwd: str | os.PathLike[str] | None = None) -> str | None:
    """The commit of the checkout leakbench runs from, when there is one."""
    cwd = Path(cwd) if cwd else Path(__file__).resolve().parent
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, timeout=5, check=True
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def provenance(**extra: Any) -> dict[str, Any]:
    """Versions, commit, date and machine: attached to every artefact leakbench writes."""
    from leakbench import __version__

    record: dict[str, Any] = {
        "leakbench": __version__,
        "versions": {
            name: package_version(name)
            for name in ("lm_eval", "evalplus", "transformers", "torch", "datasets", "presidio_analyzer", "faker")
        },
        "git_commit": git_commit(),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "hardware": {
            "machine": platform.machine(),
            "processor": platform.processor() or None,
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
        },
    }
    record.update(extra)
    return record
