"""The small shared base: the error type users see, atomic writes, hashes and provenance records.

Nothing here imports the rest of leakbench.
"""

from __future__ import annotations

import contextlib
import errno
import glob
import hashlib
import json
import os
import platform
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from leakbench import __version__

PACKAGE = Path(__file__).resolve().parent  # the package's code: what a record's commit vouches for


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


class LeakBenchError(Exception):
    """An error the user can act on; the CLI prints it as one line and exits with `exit_code`."""

    exit_code = 1


class UsageError(LeakBenchError):
    """An option or argument is out of range or malformed; found before any work starts."""

    exit_code = 2


class DataError(LeakBenchError):
    """A release file or a data request is wrong (missing, corrupt, unknown name...)."""


class Interrupted(BaseException):
    """SIGINT or SIGTERM arrived: raised from the signal handler so that every `finally` and atomic helper
    unwinds and removes what it had half-written. The CLI exits 128 + signal number."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum
        self.exit_code = 128 + signum


MAX_COUNT = 10**12  # no count (steps, tokens, epochs, sizes, seeds...) above this could ever run


def check_number(
    option: str, value: float | None, *, integer: bool = False, allow_zero: bool = False, maximum: float | None = None
) -> None:
    """A numeric option must be finite and positive (or >= 0 with `allow_zero`); None means "the default". An
    integer is a count, at most `maximum` (default `MAX_COUNT`: a size no machine could run is a typing error)."""
    import math

    if value is None:
        return
    if integer and maximum is None:
        maximum = MAX_COUNT
    low = ">= 0" if allow_zero else "> 0"
    whole = isinstance(value, int) or (isinstance(value, float) and value.is_integer())
    if isinstance(value, bool) or not isinstance(value, int | float) or (integer and not whole):
        raise UsageError(f"{option} must be {'an integer' if integer else 'a number'} {low}, got {value!r}")
    if (isinstance(value, float) and not math.isfinite(value)) or value < 0 or (value == 0 and not allow_zero):
        raise UsageError(f"{option} must be a finite {'integer' if integer else 'number'} {low}, got {value}")
    if maximum is not None and value > maximum:
        digits = str(value)
        shown = f"{value:g}" if isinstance(value, float) else digits if len(digits) <= 15 else f"~1e{len(digits) - 1}"
        raise UsageError(f"{option} must be at most {maximum:g} (no machine could run more), got {shown}")


def os_error_message(exc: OSError, path: str | os.PathLike[str] | None = None) -> str:
    """`PATH: problem` for a file-system error, naming the file the user knows (not a hidden temporary)."""
    where = path if path is not None else exc.filename
    problem = exc.strerror[0].lower() + exc.strerror[1:] if exc.strerror else str(exc) or exc.__class__.__name__
    return f"{where}: {problem}" if where is not None else problem


def input_file(path: str | os.PathLike[str], what: str = "file") -> Path:
    """`path` as an input file that exists, is a file and is readable; otherwise a one-line error."""
    path = Path(path)
    if path.is_dir():
        raise LeakBenchError(f"{path}: is a directory, expected a {what}")
    if not path.exists():
        raise LeakBenchError(f"{path}: no such {what}")
    if not path.is_file():  # a pipe or a device: read twice (count, then score), it would come back empty
        raise LeakBenchError(f"{path}: not a regular file; save the input to a file first")
    if not os.access(path, os.R_OK):
        raise LeakBenchError(f"{path}: permission denied (cannot read the {what})")
    return path


MODEL_RECORD_FILES = ("victim.json", "unlearn.json")  # beside trained weights (leakbench.schemas: their models)


def model_fingerprint(model_dir: str | os.PathLike[str]) -> str:
    """sha256 over the model directory's files (names, sizes, contents), skipping LeakBench's own records.
    Beyond 1 GiB each file is sampled (1 MiB in every 64 MiB), so a 7B checkpoint takes well under a second."""
    model_dir = Path(model_dir)
    digest = hashlib.sha256()
    files = sorted(p for p in model_dir.rglob("*") if p.is_file() and p.name not in MODEL_RECORD_FILES)
    sample = sum(p.stat().st_size for p in files) > (1 << 30)
    for path in files:
        size = path.stat().st_size
        digest.update(f"{path.relative_to(model_dir).as_posix()}\0{size}\0".encode())
        with path.open("rb") as fh:
            if not sample:
                for block in iter(lambda fh=fh: fh.read(1 << 20), b""):
                    digest.update(block)
                continue
            for offset in range(0, size, 64 << 20):
                fh.seek(offset)
                digest.update(fh.read(1 << 20))
    return digest.hexdigest()


def has_weights(model_dir: str | os.PathLike[str]) -> bool:
    """Whether a local model folder holds a loadable model (its config.json), not only LeakBench's records."""
    return (Path(model_dir) / "config.json").is_file()


def model_name(model_dir: str | os.PathLike[str]) -> str:
    """A model as records name it: a local folder by its name (never its path: records get published), a hub id
    as given."""
    path = Path(model_dir)
    return path.resolve().name if path.is_dir() else str(model_dir)


def model_label(model_dir: str | os.PathLike[str]) -> str:
    """A portable name for the measured model: `model_name` and, for a local folder, its content fingerprint."""
    path = Path(model_dir)
    return f"{model_name(path)}@{model_fingerprint(path)[:12]}" if path.is_dir() else str(model_dir)


def resolved(path: str | os.PathLike[str]) -> Path:
    """`path` made absolute with every symbolic link followed; a link loop (or a path the system refuses to
    resolve) is a one-line error naming the path, not a traceback. Every path comparison goes through here."""
    try:
        return Path(path).resolve()
    except RuntimeError:  # Python < 3.13: "Symlink loop from ..."
        problem = "a symbolic link loop"
    except OSError as exc:
        problem = "a symbolic link loop" if exc.errno == errno.ELOOP else os_error_message(exc, path)
    raise LeakBenchError(f"{path}: cannot be resolved ({problem}); remove or fix the link")


def _blocking_ancestor(path: Path) -> Path | None:
    """The first existing ancestor of `path` that is not a directory (so nothing can be created below it)."""
    for parent in reversed(path.absolute().parents):
        if parent.exists() and not parent.is_dir():
            return parent
    return None


def check_output(path: str | os.PathLike[str], *, kind: str = "file") -> Path:
    """Refuse an output path that can never be written: under a regular file, or of the wrong kind."""
    path = Path(path)
    resolved(path)  # a symbolic link loop: refused here, before any work
    blocker = _blocking_ancestor(path)
    if blocker is not None:
        raise LeakBenchError(f"{path}: cannot be created, {blocker} is a file, not a directory")
    if kind == "file" and path.is_dir():
        raise LeakBenchError(f"{path}: is a directory; give a file name to write")
    if kind == "directory" and path.exists() and not path.is_dir():
        raise LeakBenchError(f"{path}: exists and is not a directory")
    return path


def _same_or_inside(inner: Path, outer: Path) -> bool:
    inner, outer = resolved(inner), resolved(outer)
    return inner == outer or outer in inner.parents


def check_not_aliased(output_option: str, output: str | os.PathLike[str], inputs: dict[str, Any]) -> None:
    """Refuse an output that is, or (for a directory to be replaced) contains, one of the inputs: writing it
    would destroy what is being read. `inputs` maps option names (as the user typed them) to paths."""
    out = Path(output)
    for option, value in inputs.items():
        if value is None or not Path(value).exists():
            continue
        src = Path(value)
        if _same_or_inside(src, out):
            relation = "is" if resolved(src) == resolved(out) else "contains"
            raise UsageError(
                f"{output_option} {out} {relation} the input {option} {src}: writing it would destroy the input; "
                "choose another output"
            )


def dumps_row(row: dict[str, Any]) -> str:
    """One JSONL line, in the canonical form the release hashes depend on."""
    return json.dumps(row, ensure_ascii=False, sort_keys=False, separators=(",", ":"))


def dumps_record(record: Any) -> str:
    """A JSON record (manifest, run record), human-readable and stable."""
    return json.dumps(record, ensure_ascii=False, indent=2, sort_keys=True) + "\n"


_deferral: dict[str, Any] = {"depth": 0, "pending": None}


@contextlib.contextmanager
def signals_deferred() -> Iterator[None]:
    """Hold SIGINT and SIGTERM until the block ends (a commit that must not be cut in half). The CLI's handler
    asks `defer_signal` first; a signal that arrives meanwhile, on any thread, is raised when the block ends."""
    _deferral["depth"] += 1
    try:
        yield
    finally:
        _deferral["depth"] -= 1
    if _deferral["depth"] == 0 and _deferral["pending"] is not None:
        signum, _deferral["pending"] = _deferral["pending"], None
        raise Interrupted(signum)


def defer_signal(signum: int) -> bool:
    """Called by a signal handler: inside `signals_deferred`, remember the signal and return True."""
    if _deferral["depth"] > 0:
        _deferral["pending"] = _deferral["pending"] or signum
        return True
    return False


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside `path`; on success it replaces `path`, on failure it vanishes."""
    path = check_output(path, kind="file")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise LeakBenchError(f"cannot write {os_error_message(exc, path)}") from None
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.chmod(tmp_path, 0o666 & ~_umask())  # mkstemp makes 0600 files; results are for sharing
        os.replace(tmp_path, path)
    except OSError as exc:
        tmp_path.unlink(missing_ok=True)
        if exc.filename not in (None, str(tmp_path)):
            raise  # an input's error: it names its own file
        raise LeakBenchError(f"cannot write {os_error_message(exc, path)}") from None
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise


def write_text_atomic(path: str | os.PathLike[str], text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_texts_atomic(texts: dict[Path, str]) -> None:
    """Write several files all or nothing: every text staged beside its target first (any failure removes them
    all and leaves every target as it was), then renamed into place in the order given, with signals held."""
    staged: list[tuple[Path, Path]] = []
    try:
        with contextlib.ExitStack() as stack:
            for target, text in texts.items():
                tmp = stack.enter_context(_staged(target))
                tmp.write_text(text, encoding="utf-8")
                staged.append((tmp, target))
            with signals_deferred():
                for tmp, target in staged:
                    try:
                        os.replace(tmp, target)
                    except OSError as exc:
                        raise LeakBenchError(f"cannot write {os_error_message(exc, target)}") from None
    finally:
        for tmp, _ in staged:
            tmp.unlink(missing_ok=True)


@contextlib.contextmanager
def _staged(path: Path) -> Iterator[Path]:
    """A temporary file beside `path`, readable as results are (removed by the caller once renamed or not)."""
    path = check_output(path, kind="file")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        os.close(fd)
        os.chmod(tmp, 0o666 & ~_umask())
    except OSError as exc:
        raise LeakBenchError(f"cannot write {os_error_message(exc, path)}") from None
    try:
        yield Path(tmp)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise LeakBenchError(f"cannot write {os_error_message(exc, path)}") from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_jsonl_atomic(path: str | os.PathLike[str], rows: Iterable[dict[str, Any]]) -> None:
    with atomic_path(path) as tmp, tmp.open("w", encoding="utf-8", newline="\n") as fh:
        for row in rows:
            fh.write(dumps_row(row) + "\n")


def _lock_file(path: Path) -> Path:
    return path.with_name(f".{path.name}.lock")


@contextlib.contextmanager
def _holding(lock: Path, timeout_s: float) -> Iterator[bool]:
    """Hold an exclusive `flock` on the file `lock` (created if needed) for the block: yields True, or False when
    another process held it for `timeout_s`. The file is removed when let go, so nothing is left behind.

    Removing it is safe because a waiter that wins the lock checks that the name still leads to the file it
    locked: if the holder removed it meanwhile, the waiter's lock guards nothing and it starts again on the new
    file. The kernel drops the lock of a process that dies, so a killed run never blocks the next one (its empty
    file is reused). Each attempt runs with signals held, so a Ctrl-C never leaves a lock taken but not released."""
    import fcntl

    deadline = time.monotonic() + timeout_s
    fd: int | None = None
    try:
        while True:
            with signals_deferred():
                fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o666 & ~_umask())
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    try:
                        current: os.stat_result | None = os.stat(lock)
                    except FileNotFoundError:
                        current = None
                    if current is None or not os.path.samestat(os.fstat(fd), current):
                        os.close(fd)  # removed by the previous holder after our open: try the new file
                        fd = None
                        continue
                except BlockingIOError:
                    os.close(fd)
                    fd = None
            if fd is not None:
                break
            if time.monotonic() >= deadline:
                yield False
                return
            time.sleep(0.05)
        yield True
    finally:
        if fd is not None:
            with signals_deferred():
                with contextlib.suppress(OSError):
                    lock.unlink()  # while still holding it: see above
                os.close(fd)


@contextlib.contextmanager
def _lock_beside(path: Path, timeout_s: float, busy: str, verb: str) -> Iterator[None]:
    """Hold `path`'s lock (`.NAME.lock` beside it) for the block; `busy` is the error when another process holds
    it past `timeout_s`, and a file-system error while taking it names `path` ("cannot VERB PATH: ...")."""
    entered = False
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with _holding(_lock_file(path), timeout_s) as held:
            entered = True
            if not held:
                raise LeakBenchError(busy)
            yield
    except OSError as exc:
        if entered:
            raise  # the block's own error
        raise LeakBenchError(f"cannot {verb} {os_error_message(exc, path)}") from None


@contextlib.contextmanager
def locked(path: str | os.PathLike[str], timeout_s: float = 600.0) -> Iterator[None]:
    """Hold an exclusive lock on `path` (a hidden `.NAME.lock` file beside it, removed when released) for a
    read-modify-write: atomic renames prevent torn files, this prevents lost updates between concurrent
    processes."""
    path = check_output(path, kind="file")
    with _lock_beside(path, timeout_s, f"{path}: still locked by another process after {timeout_s:.0f}s", "write"):
        yield


def _claimed(path: Path) -> contextlib.AbstractContextManager[None]:
    """Claim the output folder `path` for this process (its `.NAME.lock` beside it) until the block ends: a
    second writer into the same folder gets a clear error instead of silently replacing the first one's work."""
    busy = f"{path}: another process is writing this folder right now; wait for it to finish or choose another output"
    return _lock_beside(path, 0, busy, "create")


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike[str], *, overwrite: bool = False) -> Iterator[Path]:
    """Yield a fresh temporary directory beside `path`; on success it becomes `path`.

    An interrupted run leaves no directory that looks complete: only a hidden `.name.*.tmp` folder,
    which is removed on the way out, or by the next writer of `path` if the process was killed outright.
    """
    path = check_output(path, kind="directory")
    with _claimed(path):  # held from the emptiness check to the final rename: one writer per folder
        _settle_killed_writer(path)
        if path.exists() and not overwrite and any(path.iterdir()):
            raise LeakBenchError(f"{path}: directory exists and is not empty (pass --overwrite to replace it)")
        tmp: Path | None = None
        try:
            with signals_deferred():  # a signal cannot fall between creating the folder and knowing its name
                tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
        except OSError as exc:
            raise LeakBenchError(f"cannot create {os_error_message(exc, path)}") from None
        except BaseException:
            if tmp is not None:
                shutil.rmtree(tmp, ignore_errors=True)
            raise
        with _replacing(path, tmp) as staged:
            yield staged


def _settle_killed_writer(path: Path) -> None:
    """What a writer of `path` killed outright (SIGKILL, a lost machine: no handler runs) left beside it, put
    right under `path`'s claim, so no live writer owns it: its staging folder (`.NAME.XXXXXXXX.tmp`, complete only
    once renamed) is removed, which for model weights can be gigabytes; the folder it had moved aside to replace
    (`.NAME.XXXXXXXX.old`) is put back when it died between the two renames (`path` missing, its staging folder
    still there), else removed (it died removing it: it may be half gone). Each writer settles its predecessor's
    leftovers first, so they are one writer's."""
    staged = re.compile(rf"\.{re.escape(path.name)}\.[a-z0-9_]{{8}}\.(tmp|old)")  # `tempfile`'s names, exactly
    left = sorted((p for p in path.parent.glob(f".{glob.escape(path.name)}.*") if staged.fullmatch(p.name)),
                  key=lambda p: p.stat().st_mtime_ns)  # fmt: skip
    moved_aside = [p for p in left if p.suffix == ".old"]
    with signals_deferred():
        if moved_aside and len(moved_aside) < len(left) and not path.exists():
            try:
                os.replace(moved_aside.pop(), path)  # the newest: the folder as it was before the unfinished swap
            except OSError as exc:
                raise LeakBenchError(f"cannot write {os_error_message(exc, path)}") from None
        for leftover in left:
            if leftover.exists():
                shutil.rmtree(leftover, ignore_errors=True)


@contextlib.contextmanager
def _replacing(path: Path, tmp: Path) -> Iterator[Path]:
    try:
        yield tmp
        os.chmod(tmp, 0o777 & ~_umask())
        with signals_deferred():  # never stop between moving the old directory aside and removing it
            if path.exists():
                old = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".old", dir=path.parent))
                os.replace(path, old)  # a directory replaces an empty one in a single rename
                try:
                    os.replace(tmp, path)
                except OSError:
                    os.replace(old, path)
                    raise
                shutil.rmtree(old, ignore_errors=True)
            else:
                os.replace(tmp, path)
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        if exc.filename is not None and not str(exc.filename).startswith(str(tmp)):
            raise  # an input's error: it names its own file
        raise LeakBenchError(f"cannot write {os_error_message(exc, path)}") from None
    except LeakBenchError as exc:  # e.g. a file written inside: name the folder the user asked for
        shutil.rmtree(tmp, ignore_errors=True)
        if str(tmp) not in str(exc):
            raise
        raise type(exc)(re.sub(re.escape(str(tmp)) + r"[^:]*", str(path), str(exc))) from None
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
    """The commit of the checkout leakbench runs from, when there is one, with "+dirty" when the code there
    differs from that commit (the files under `cwd`; by default the package and the checkout's `tasks/` and
    `scorers/` beside it): the record then says so."""
    code = [Path(cwd)] if cwd else [PACKAGE, *(p for p in (PACKAGE.parent / "tasks", PACKAGE.parent / "scorers")
                                               if p.is_dir())]  # fmt: skip

    def git(*args: str) -> str:
        # --no-optional-locks: a status taken during a long run must not hold the index lock a commit needs
        return subprocess.run(["git", "--no-optional-locks", *args], cwd=code[0], capture_output=True, text=True,
                              timeout=5, check=True).stdout.strip()  # fmt: skip

    try:
        head = git("rev-parse", "HEAD")
        changed = git("status", "--porcelain", "--", *map(str, code))
    except (OSError, subprocess.SubprocessError):
        return None
    if not head:
        return None
    return f"{head}+dirty" if changed else head


def provenance(**extra: Any) -> dict[str, Any]:
    """Versions, commit, date and machine: attached to every artefact leakbench writes."""

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
