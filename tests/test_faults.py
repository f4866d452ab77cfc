"""Fault injection: the real `leakbench` command in subprocesses, driven as a careless user and a hostile machine
would drive it: bad options, bad paths, hostile input lines, outputs that alias inputs, unreadable files and
read-only folders (with root's permission override dropped), a full disk, SIGINT/SIGTERM mid-run and concurrent
publishes.

Every case asserts the exit code (0 ok, 1 an error the user can fix, 2 a usage error, 130 Ctrl-C, 143 SIGTERM),
one `error:` line naming the problem and never a traceback, that the files it must protect are byte-identical
afterwards, and that no temporary file or folder was left behind. Run alone with `pytest -m faults`.
"""

from __future__ import annotations

import ctypes
import hashlib
import json
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from helpers import MARIA, OTTO

from leakbench.data import RELEASES

pytestmark = pytest.mark.faults

EVALPLUS = Path(__file__).resolve().parents[2] / "shared" / "evalplus"
HUMANEVAL_MINI = "HumanEvalPlus-Mini-v0.1.10.jsonl.gz"
LEFTOVER = re.compile(r"^\..+\.(tmp|old|lock)$")  # the atomic writers' temporaries, and the locks and claims


# --- running the CLI ------------------------------------------------------------------------------------------


def _without_root_override() -> None:
    """In the child: drop CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH from the bounding set, so that root (which
    runs these tests in CI) meets file permissions as any user does."""
    libc = ctypes.CDLL(None, use_errno=True)
    for cap in (1, 2):
        if libc.prctl(24, cap, 0, 0, 0) != 0:  # PR_CAPBSET_DROP
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")


def _file_size_limit(limit: int) -> Callable[[], None]:
    """In the child: writes past `limit` bytes fail with EFBIG, as on a full disk (SIGXFSZ ignored)."""

    def apply() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return apply


def _env() -> dict[str, str]:
    return {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "COLUMNS": "200"}


def cli(args: list[str], cwd: Path, preexec: Callable[[], None] | None = None, timeout: float = 300):
    return subprocess.run(
        [sys.executable, "-m", "leakbench", *args],
        capture_output=True, text=True, cwd=cwd, env=_env(), preexec_fn=preexec, timeout=timeout,
    )


def start(args: list[str], cwd: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "leakbench", *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=cwd, env=_env(),
    )


def leftovers(root: Path) -> list[Path]:
    return [p for p in root.rglob(".*") if LEFTOVER.match(p.name)]


def snapshot(paths: list[Path]) -> dict[Path, str | None]:
    out: dict[Path, str | None] = {}
    for path in paths:
        files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
        for f in files:
            out[f] = hashlib.sha256(f.read_bytes()).hexdigest() if f.exists() else None
    return out


def assert_contract(proc: subprocess.CompletedProcess, rc: int, message: str) -> None:
    """Exit code, one `error:` line matching `message` as the last line of stderr, and no traceback."""
    text = proc.stdout + proc.stderr
    assert "Traceback" not in text, text[-3000:]
    assert proc.returncode == rc, f"exit {proc.returncode}, expected {rc}: {proc.stderr[-1500:]}"
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    if rc == 0:
        assert not any(line.startswith("error:") for line in lines), proc.stderr
        return
    assert lines and lines[-1].startswith("error:"), proc.stderr[-1500:]
    assert re.search(message, lines[-1]), f"{lines[-1]!r} does not match {message!r}"


# --- shared material ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def small_release(tmp_path_factory) -> Path:
    """A 6-subject release built by the real generator: fast to verify, easy to damage."""
    from leakbench.data.build import generate, write_release

    out = tmp_path_factory.mktemp("release") / "rel"
    write_release(generate(7, 6), out, seed=7, n_subjects=6)
    return out


@pytest.fixture(scope="module")
def material(tiny_model_dir, lm_eval_run, small_release) -> dict[str, Path]:
    model, run, _ = lm_eval_run
    return {"tiny": tiny_model_dir, "ga": model, "run": run, "release": small_release}


def score_row(generation: str = "xqtuE9!6cKu92N'", **extra) -> dict:
    return {"prompt": "pw = '", "generation": generation, "target_field": "password", "subject": MARIA, **extra}


def write_lines(path: Path, lines: list[bytes | str | dict]) -> None:
    with path.open("wb") as fh:
        for line in lines:
            if isinstance(line, dict):
                line = json.dumps(line)
            fh.write((line if isinstance(line, bytes) else line.encode()) + b"\n")


# --- the case table -------------------------------------------------------------------------------------------


@dataclass
class Case:
    id: str
    args: list[str]  # {w}: the case's own folder; {tiny}, {ga}, {run}, {release}: shared material (copied first)
    rc: int
    message: str = ""
    setup: Callable[[Path], None] | None = None
    keep: tuple[str, ...] = ()  # paths under {w} that must be byte-identical afterwards
    absent: tuple[str, ...] = ()  # paths under {w} that must not exist afterwards
    as_user: bool = False  # without root's permission override
    fsize: int | None = None  # a "full disk" at this many bytes per file
    copy: tuple[str, ...] = ()  # shared material to copy into {w} first (so that the case may damage it)


def _in(path: str, lines: list) -> Callable[[Path], None]:
    return lambda w: write_lines(w / path, lines)


def _mkfile(path: str, text: str = "x") -> Callable[[Path], None]:
    def make(w: Path) -> None:
        (w / path).parent.mkdir(parents=True, exist_ok=True)
        (w / path).write_text(text)

    return make


def _mkdir(path: str, mode: int | None = None, with_file: bool = False) -> Callable[[Path], None]:
    def make(w: Path) -> None:
        (w / path).mkdir(parents=True, exist_ok=True)
        if with_file:
            (w / path / "keep.txt").write_text("mine")
        if mode is not None:
            os.chmod(w / path, mode)

    return make


def _all(*steps: Callable[[Path], None]) -> Callable[[Path], None]:
    def run(w: Path) -> None:
        for step in steps:
            step(w)

    return run


def _chmod(path: str, mode: int) -> Callable[[Path], None]:
    return lambda w: os.chmod(w / path, mode)


def _edit(path: str, fn: Callable[[bytes], bytes]) -> Callable[[Path], None]:
    def edit(w: Path) -> None:
        target = w / path
        target.write_bytes(fn(target.read_bytes()))

    return edit


def _json_edit(path: str, fn: Callable[[dict], object]) -> Callable[[Path], None]:
    return _edit(path, lambda b: json.dumps(fn(json.loads(b))).encode())


def _results(w: Path) -> Path:
    return next((w / "run").rglob("results_*.json"))


def _edit_results(fn: Callable[[dict], object]) -> Callable[[Path], None]:
    def edit(w: Path) -> None:
        path = _results(w)
        path.write_text(json.dumps(fn(json.loads(path.read_text()))))

    return edit


def _set(d: dict, **changes) -> dict:
    d.update(changes)
    return d


def _truncated_evalplus(w: Path) -> None:
    (w / "ep").mkdir()
    data = (EVALPLUS / HUMANEVAL_MINI).read_bytes()
    (w / "ep" / HUMANEVAL_MINI).write_bytes(data[: len(data) // 2])


def _not_gzip_evalplus(w: Path) -> None:
    (w / "ep").mkdir()
    (w / "ep" / HUMANEVAL_MINI).write_bytes(b"this is not gzip")


def _samples(lines: list) -> Callable[[Path], None]:
    return _in("samples.jsonl", lines)


def _board(data: object) -> Callable[[Path], None]:
    return lambda w: (w / "lb").mkdir(exist_ok=True) or (w / "lb" / "leaderboard.json").write_text(json.dumps(data))


def _loop(path: str) -> Callable[[Path], None]:
    """A symbolic link that points at itself: resolving it (or anything below it) loops."""
    return lambda w: (w / path).symlink_to(w / path)


def _privacy_json(**metrics: float) -> Callable[[Path], None]:
    """A `leakbench privacy` record in the run folder, on the release the run's tasks used, with these metrics."""

    def write(w: Path) -> None:
        from leakbench.data import release_hash

        figures = {"exact_memorization": 0.9, "extraction_strength": 0.8, "mia_min_k_plus_plus": 0.99, **metrics}
        (w / "run" / "privacy.json").write_text(json.dumps({
            "kind": "leakbench-privacy", "model": "m@abc", "device": "cpu", "k": 0.4, "headline_attack": "min_k_plus_plus",
            "context": "the document before each value", "max_length": 512, "truth_ratios": [0.5],
            "counts": {"forget_values": 3, "holdout_values": 2}, "metrics": figures, "wall_time_s": 1.0,
            "release": {"name": "v3", "hash": release_hash(), "subset": "mini"}}))  # fmt: skip

    return write


# the smallest study summary a finished `leakbench run` could leave: a victim and one GA run
STUDY_SUMMARY = json.dumps({
    "kind": "study", "subset": "mini", "methods": ["ga"], "seeds": 1, "victim_seeds": 1, "timings_s": {},
    "wall_time_s": 1.0, "rows": {row: {"metrics": {}, "comparisons": {}, "n_runs": 1, "runs": [{"label": row}]}
                                 for row in ("victim", "ga")}})  # fmt: skip
GOOD_ROWS = [score_row(), score_row("nothing"), score_row("Pw-7hG2kLq9Zr", others=[OTTO])]
ROWS = _in("in.jsonl", GOOD_ROWS)
U = ["utility", "--dataset", "humaneval", "--mini", "--data-dir", "{evalplus}"]
OUT_U = ["--out", "{w}/u"]
PUB = ["publish", "{w}/run", "--leaderboard", "{w}/lb/leaderboard.json", "--html", "{w}/lb/index.html"]
RUN = ["run", "--out", "{w}/study", "--no-publish"]
BOARD_KEEP = ("lb/leaderboard.json",)

CASES = [
    # -- the command itself
    Case("no-such-verb", ["frobnicate"], 2, "No such command"),
    Case("no-such-option", ["score", "--frob"], 2, "No such option"),
    Case("data-no-such-verb", ["data", "frob"], 2, "No such command"),
    Case("victim-no-such-verb", ["victim", "frob"], 2, "No such command"),
    Case("version", ["--version"], 0),
    Case("tasks-path-extra-arg", ["tasks-path", "x"], 2, "unexpected extra argument"),
    # -- data build
    Case("build-seed-negative", ["data", "build", "--out", "{w}/o", "--seed", "-1"], 2, "--seed must be", absent=("o",)),
    Case("build-seed-too-big", ["data", "build", "--out", "{w}/o", "--seed", str(2**32)], 2, "--seed", absent=("o",)),
    Case("build-seed-text", ["data", "build", "--out", "{w}/o", "--seed", "abc"], 2, "--seed", absent=("o",)),
    Case("build-subjects-zero", ["data", "build", "--out", "{w}/o", "--subjects", "0"], 2, "--subjects", absent=("o",)),
    Case("build-subjects-huge", ["data", "build", "--out", "{w}/o", "--subjects", "99999"], 2, "--subjects"),
    Case("build-out-missing", ["data", "build"], 2, "Missing option '--out'"),
    Case("build-out-is-file", ["data", "build", "--out", "{w}/f", "--subjects", "2"], 1, "not a directory",
         setup=_mkfile("f", "mine"), keep=("f",)),
    Case("build-out-under-file", ["data", "build", "--out", "{w}/f/o", "--subjects", "2"], 1, "f is a file",
         setup=_mkfile("f", "mine"), keep=("f",)),
    Case("build-out-not-empty", ["data", "build", "--out", "{w}/o", "--subjects", "2"], 1, "--overwrite",
         setup=_mkdir("o", with_file=True), keep=("o/keep.txt",)),
    Case("build-out-read-only-dir", ["data", "build", "--out", "{w}/ro/o", "--subjects", "2"], 1,
         "permission denied", setup=_mkdir("ro", 0o555), as_user=True, absent=("ro/o",)),
    Case("build-out-is-packaged-release", ["data", "build", "--out", str(RELEASES["v1"]), "--overwrite",
         "--subjects", "2"], 2, "packaged release"),
    Case("build-disk-full", ["data", "build", "--out", "{w}/o", "--subjects", "3"], 1, "cannot write .*o: file too large",
         fsize=50_000, absent=("o",)),
    # -- data verify
    Case("verify-missing", ["data", "verify", "{w}/nope"], 1, "not a LeakBench release"),
    Case("verify-a-file", ["data", "verify", "{w}/f"], 1, "not a LeakBench release", setup=_mkfile("f")),
    Case("verify-empty-dir", ["data", "verify", "{w}/d"], 1, "not a LeakBench release", setup=_mkdir("d")),
    Case("verify-manifest-not-json", ["data", "verify", "{w}/release"], 1, "problem",
         copy=("release",), setup=_mkfile("release/manifest.json", "{not json")),
    Case("verify-manifest-a-list", ["data", "verify", "{w}/release"], 1, "problem",
         copy=("release",), setup=_mkfile("release/manifest.json", "[1, 2]")),
    Case("verify-manifest-no-files", ["data", "verify", "{w}/release"], 1, "problem",
         copy=("release",), setup=_mkfile("release/manifest.json", '{"release": "v1"}')),
    Case("verify-manifest-binary", ["data", "verify", "{w}/release"], 1, "problem",
         copy=("release",), setup=_edit("release/manifest.json", lambda b: b"\xff\xfe" + b)),
    Case("verify-table-not-utf8", ["data", "verify", "{w}/release"], 1, "problem",
         copy=("release",), setup=_edit("release/subjects.jsonl", lambda b: b"\xff\xfe\n" + b)),
    Case("verify-table-truncated", ["data", "verify", "{w}/release"], 1, "problem",
         copy=("release",), setup=_edit("release/forget.jsonl", lambda b: b[: len(b) // 2])),
    Case("verify-table-nested", ["data", "verify", "{w}/release"], 1, "problem",
         copy=("release",), setup=_edit("release/probes.jsonl", lambda b: b + b"[" * 200_000 + b"]" * 200_000)),
    Case("verify-table-missing", ["data", "verify", "{w}/release"], 1, "problem",
         copy=("release",), setup=lambda w: (w / "release" / "retain.jsonl").unlink()),
    Case("verify-table-is-dir", ["data", "verify", "{w}/release"], 1, "problem",
         copy=("release",), setup=lambda w: ((w / "release" / "retain.jsonl").unlink(),
                                              (w / "release" / "retain.jsonl").mkdir())),
    Case("verify-table-unreadable", ["data", "verify", "{w}/release"], 1, "probes.jsonl: permission denied",
         copy=("release",), setup=_chmod("release/probes.jsonl", 0o000), as_user=True),
    Case("verify-dir-unreadable", ["data", "verify", "{w}/release"], 2, "is not readable",
         copy=("release",), setup=_chmod("release", 0o000), as_user=True),
    Case("verify-edited-value", ["data", "verify", "{w}/release"], 1, "problem",
         copy=("release",), setup=_edit("release/subjects.jsonl", lambda b: b.replace(b"@", b"#", 1))),
    Case("verify-too-many-args", ["data", "verify", "a", "b"], 2, "unexpected extra argument"),
    # -- data export
    Case("export-out-is-file", ["data", "export", "--out", "{w}/f"], 1, "not a directory", setup=_mkfile("f"),
         keep=("f",)),
    Case("export-out-under-file", ["data", "export", "--out", "{w}/f/x"], 1, "is a file", setup=_mkfile("f")),
    Case("export-out-not-empty", ["data", "export", "--out", "{w}/o"], 1, "--overwrite",
         setup=_mkdir("o", with_file=True), keep=("o/keep.txt",)),
    Case("export-unknown-release", ["data", "export", "--out", "{w}/o", "--release", "v9"], 2, "unknown release",
         absent=("o",)),
    Case("export-read-only", ["data", "export", "--out", "{w}/ro/o"], 1, "permission denied",
         setup=_mkdir("ro", 0o555), as_user=True),
    Case("export-disk-full", ["data", "export", "--out", "{w}/o"], 1, "file too large", fsize=100_000,
         absent=("o",)),
    Case("export-into-packaged-release", ["data", "export", "--out", str(RELEASES["v1"]), "--overwrite"], 2,
         "packaged release"),
    Case("export-into-packaged-v2", ["data", "export", "--out", str(RELEASES["v2"]), "--overwrite"], 2,
         "packaged release"),
    Case("export-v1-into-packaged-v2", ["data", "export", "--release", "v1", "--out", str(RELEASES["v2"]),
         "--overwrite"], 2, "packaged release"),
    Case("export-into-parent-of-release", ["data", "export", "--out", str(RELEASES["v1"].parent), "--overwrite"], 2,
         "packaged release"),
    # -- data stats
    Case("stats-unknown-subset", ["data", "stats", "--subset", "tiny"], 2, "unknown subset"),
    Case("stats-missing", ["data", "stats", "{w}/nope"], 1, "not a LeakBench release"),
    Case("stats-a-file", ["data", "stats", "{w}/f"], 1, "not a LeakBench release", setup=_mkfile("f")),
    Case("stats-not-utf8", ["data", "stats", "{w}/release"], 1, r"subjects.jsonl:1: not UTF-8",
         copy=("release",), setup=_edit("release/subjects.jsonl", lambda b: b"\xff\xfe\n" + b)),
    Case("stats-truncated", ["data", "stats", "{w}/release"], 1, r"forget.jsonl:\d+: not valid JSON",
         copy=("release",), setup=_edit("release/forget.jsonl", lambda b: b[: len(b) // 2])),
    Case("stats-wrong-rows", ["data", "stats", "{w}/release"], 1, "data verify",
         copy=("release",), setup=_mkfile("release/forget.jsonl", '{"doc_id": "x"}\n')),
    Case("stats-nested", ["data", "stats", "{w}/release"], 1, "nested too deeply",
         copy=("release",), setup=_edit("release/probes.jsonl", lambda b: b"[" * 200_000 + b"]" * 200_000 + b"\n")),
    Case("stats-table-is-dir", ["data", "stats", "{w}/release"], 1, "is a directory",
         copy=("release",), setup=lambda w: ((w / "release" / "retain.jsonl").unlink(),
                                              (w / "release" / "retain.jsonl").mkdir())),
    Case("stats-unreadable", ["data", "stats", "{w}/release"], 1, "permission denied",
         copy=("release",), setup=_chmod("release/subjects.jsonl", 0o000), as_user=True),
    # -- score
    Case("score-in-missing", ["score", "--in", "{w}/nope.jsonl", "--out", "{w}/o.jsonl"], 1, "no such input file",
         absent=("o.jsonl",)),
    Case("score-in-is-dir", ["score", "--in", "{w}/d", "--out", "{w}/o.jsonl"], 1, "is a directory",
         setup=_mkdir("d"), absent=("o.jsonl",)),
    Case("score-in-unreadable", ["score", "--in", "{w}/in.jsonl", "--out", "{w}/o.jsonl"], 2, "is not readable",
         setup=_all(ROWS, _chmod("in.jsonl", 0o000)), as_user=True, absent=("o.jsonl",)),
    Case("score-out-is-in", ["score", "--in", "{w}/in.jsonl", "--out", "{w}/in.jsonl"], 2, "destroy the input",
         setup=ROWS, keep=("in.jsonl",)),
    Case("score-out-is-in-relative", ["score", "--in", "in.jsonl", "--out", "./sub/../in.jsonl"], 2,
         "destroy the input", setup=_all(ROWS, _mkdir("sub")), keep=("in.jsonl",)),
    Case("score-out-symlink-to-in", ["score", "--in", "{w}/in.jsonl", "--out", "{w}/link.jsonl"], 2,
         "destroy the input", setup=_all(ROWS, lambda w: (w / "link.jsonl").symlink_to(w / "in.jsonl")),
         keep=("in.jsonl",)),
    Case("score-out-is-dir", ["score", "--in", "{w}/in.jsonl", "--out", "{w}/d"], 1, "is a directory",
         setup=_all(ROWS, _mkdir("d", with_file=True)), keep=("d/keep.txt",)),
    Case("score-out-under-file", ["score", "--in", "{w}/in.jsonl", "--out", "{w}/f/o.jsonl"], 1, "is a file",
         setup=_all(ROWS, _mkfile("f"))),
    Case("score-out-read-only", ["score", "--in", "{w}/in.jsonl", "--out", "{w}/ro/o.jsonl"], 1,
         "permission denied", setup=_all(ROWS, _mkdir("ro", 0o555)), as_user=True),
    Case("score-out-disk-full", ["score", "--in", "{w}/in.jsonl", "--out", "{w}/o.jsonl", "--ner", "none"], 1,
         "cannot write .*o.jsonl: file too large", setup=_in("in.jsonl", [score_row("x" * 3000)] * 40),
         fsize=60_000, absent=("o.jsonl",)),
    Case("score-keeps-old-out-on-failure", ["score", "--in", "{w}/in.jsonl", "--out", "{w}/o.jsonl", "--ner",
         "none"], 1, "file too large", setup=_all(_in("in.jsonl", [score_row("x" * 3000)] * 40),
         _mkfile("o.jsonl", "previous results")), fsize=60_000, keep=("o.jsonl",)),
    Case("score-no-in", ["score", "--out", "{w}/o.jsonl"], 2, "Missing option '--in'"),
    Case("score-no-out", ["score", "--in", "{w}/in.jsonl"], 2, "Missing option '--out'", setup=ROWS),
    Case("score-unknown-ner", ["score", "--in", "{w}/in.jsonl", "--out", "{w}/o.jsonl", "--ner", "no_such_model"],
         1, "no_such_model", setup=ROWS, absent=("o.jsonl",)),
    Case("score-workers-zero", ["score", "--in", "{w}/in.jsonl", "--out", "{w}/o.jsonl", "--workers", "0"], 2,
         "--workers must be", setup=ROWS, absent=("o.jsonl",)),
    Case("score-workers-text", ["score", "--in", "{w}/in.jsonl", "--out", "{w}/o.jsonl", "--workers", "two"], 2,
         "--workers", setup=ROWS, absent=("o.jsonl",)),
    Case("score-in-is-fifo", ["score", "--in", "{w}/fifo", "--out", "{w}/o.jsonl"], 1, "not a regular file",
         setup=lambda w: os.mkfifo(w / "fifo"), absent=("o.jsonl",)),
    Case("score-empty-file", ["score", "--in", "{w}/in.jsonl", "--out", "{w}/o.jsonl", "--ner", "none"], 0,
         setup=_mkfile("in.jsonl", "")),
    Case("score-lone-surrogate", ["score", "--in", "{w}/in.jsonl", "--out", "{w}/o.jsonl", "--ner", "none"], 1,
         "1 malformed row", setup=_in("in.jsonl", [*GOOD_ROWS, json.dumps(score_row()).replace("xqtu", "\\ud800")])),
    Case("score-deep-nesting", ["score", "--in", "{w}/in.jsonl", "--out", "{w}/o.jsonl", "--ner", "none"], 1,
         "1 malformed row", setup=_in("in.jsonl", [*GOOD_ROWS, "[" * 100_000 + "]" * 100_000])),
    Case("score-binary-line", ["score", "--in", "{w}/in.jsonl", "--out", "{w}/o.jsonl", "--ner", "none"], 1,
         "1 malformed row", setup=_in("in.jsonl", [*GOOD_ROWS, b"\xff\xfe\x00junk"])),
    Case("score-not-an-object", ["score", "--in", "{w}/in.jsonl", "--out", "{w}/o.jsonl", "--ner", "none"], 1,
         "2 malformed row", setup=_in("in.jsonl", [*GOOD_ROWS, "[1, 2]", '"text"'])),
    Case("score-truncated-line", ["score", "--in", "{w}/in.jsonl", "--out", "{w}/o.jsonl", "--ner", "none"], 1,
         "1 malformed row", setup=_in("in.jsonl", [*GOOD_ROWS, '{"prompt": "pw'])),
    Case("score-wrong-types", ["score", "--in", "{w}/in.jsonl", "--out", "{w}/o.jsonl", "--ner", "none"], 1,
         "4 malformed row", setup=_in("in.jsonl", [*GOOD_ROWS, score_row(7), {**score_row(), "prompt": None},
                                                    {**score_row(), "subject": [1]}, score_row(others="x")])),
    Case("score-unknown-field", ["score", "--in", "{w}/in.jsonl", "--out", "{w}/o.jsonl", "--ner", "none"], 1,
         "1 malformed row", setup=_in("in.jsonl", [*GOOD_ROWS, {**score_row(), "target_field": "shoe_size"}])),
    Case("score-missing-subject", ["score", "--in", "{w}/in.jsonl", "--out", "{w}/o.jsonl", "--ner", "none"], 1,
         "1 malformed row", setup=_in("in.jsonl", [*GOOD_ROWS, {"prompt": "a", "generation": "b"}])),
    Case("score-huge-generation", ["score", "--in", "{w}/in.jsonl", "--out", "{w}/o.jsonl", "--ner", "none"], 0,
         setup=_in("in.jsonl", [score_row("q" * 2_000_000)])),
    Case("score-control-characters", ["score", "--in", "{w}/in.jsonl", "--out", "{w}/o.jsonl", "--ner", "none"], 0,
         setup=_in("in.jsonl", [score_row("\x00\x1b[31m\u202e\ufeffxqtuE9!6cKu92N")])),
    # -- victim build
    Case("base-tokens-zero", ["base", "build", "--out", "{w}/b", "--tokens", "0"], 2, "--tokens must be",
         absent=("b",)),
    Case("base-hidden-not-multiple", ["base", "build", "--out", "{w}/b", "--hidden", "30"], 2, "even head size",
         absent=("b",)),
    Case("base-odd-head-size", ["base", "build", "--out", "{w}/b", "--hidden", "30", "--heads", "2"], 2,
         "even head size", absent=("b",)),
    Case("base-out-not-empty", ["base", "build", "--out", "{w}/d"], 1, "not empty", setup=_mkfile("d/keep.txt"),
         keep=("d/keep.txt",)),
    Case("base-out-is-file", ["base", "build", "--out", "{w}/f"], 1, "not a directory", setup=_mkfile("f")),
    Case("victim-unknown-subset", ["victim", "build", "--out", "{w}/v", "--subset", "tiny"], 2, "unknown subset"),
    Case("victim-epochs-zero", ["victim", "build", "--out", "{w}/v", "--epochs", "0"], 2, "--epochs must be"),
    Case("victim-epochs-negative", ["victim", "build", "--out", "{w}/v", "--epochs", "-3"], 2, "--epochs"),
    Case("victim-lr-nan", ["victim", "build", "--out", "{w}/v", "--lr", "nan"], 2, "--lr must be a finite"),
    Case("victim-lr-inf", ["victim", "build", "--out", "{w}/v", "--lr", "inf"], 2, "--lr must be a finite"),
    Case("victim-lr-zero", ["victim", "build", "--out", "{w}/v", "--lr", "0"], 2, "--lr must be"),
    Case("victim-seed-negative", ["victim", "build", "--out", "{w}/v", "--seed", "-1"], 2, "--seed must be"),
    Case("victim-lora-without-base", ["victim", "build", "--out", "{w}/v", "--lora"], 2, "--lora needs --base"),
    Case("victim-base-missing", ["victim", "build", "--out", "{w}/v", "--base", "{w}/nope"], 1,
         "not a Hugging Face model directory", absent=("v",)),
    Case("victim-base-a-file", ["victim", "build", "--out", "{w}/v", "--base", "{w}/f"], 1,
         "not a Hugging Face model directory", setup=_mkfile("f"), absent=("v",)),
    Case("victim-out-is-file", ["victim", "build", "--out", "{w}/f"], 1, "not a directory", setup=_mkfile("f"),
         keep=("f",)),
    Case("victim-out-under-file", ["victim", "build", "--out", "{w}/f/v"], 1, "is a file", setup=_mkfile("f")),
    Case("victim-out-is-base", ["victim", "build", "--out", "{w}/tiny", "--base", "{w}/tiny", "--overwrite"], 2,
         "destroy the input", copy=("tiny",), keep=("tiny",)),
    Case("victim-data-dir-not-release", ["victim", "build", "--out", "{w}/v", "--data-dir", "{w}/d"], 1,
         "not a LeakBench release", setup=_mkdir("d"), absent=("v",)),
    Case("victim-other-record", ["victim", "build", "--out", "{w}/v"], 1, "other arguments",
         setup=_mkfile("v/victim.json", '{"config_key": "0000"}'), keep=("v/victim.json",)),
    # -- privacy
    Case("privacy-k-zero", ["privacy", "--model", "{w}/m", "--out", "{w}/o.json", "--k", "0"], 2,
         "--k must be", absent=("o.json",)),
    Case("privacy-unknown-subset", ["privacy", "--model", "{w}/m", "--out", "{w}/o.json", "--subset", "x"], 2,
         "unknown subset", absent=("o.json",)),
    Case("privacy-out-exists", ["privacy", "--model", "{w}/m", "--out", "{w}/o.json"], 1, "--overwrite",
         setup=_mkfile("o.json", "keep"), keep=("o.json",)),
    Case("privacy-out-is-reference", ["privacy", "--model", "{w}/m", "--out", "{w}/r.json", "--reference",
         "{w}/r.json", "--overwrite"], 2, "destroy", setup=_mkfile("r.json", "{}"), keep=("r.json",)),
    Case("privacy-reference-missing", ["privacy", "--model", "{w}/m", "--out", "{w}/o.json", "--reference",
         "{w}/nope.json"], 1, r"no such file \(--reference\)", absent=("o.json",)),
    Case("privacy-reference-not-json", ["privacy", "--model", "{w}/m", "--out", "{w}/o.json", "--reference",
         "{w}/r.json"], 1, "not a readable JSON record", setup=_mkfile("r.json", "{"), absent=("o.json",)),
    Case("privacy-reference-not-a-record", ["privacy", "--model", "{tiny}", "--out", "{w}/o.json", "--reference",
         "{w}/r.json"], 1, "not a LeakBench privacy record", setup=_mkfile("r.json", "[1]"),
         absent=("o.json",)),
    Case("privacy-model-missing", ["privacy", "--model", "{w}/nope", "--out", "{w}/o.json"], 1,
         "not a Hugging Face model directory", absent=("o.json",)),
    Case("privacy-v1-has-no-non-members", ["privacy", "--model", "{tiny}", "--out", "{w}/o.json", "--release", "v1"],
         1, "no holdout subjects", absent=("o.json",)),
    # -- unlearn
    Case("unlearn-unknown-method", ["unlearn", "--model", "{w}/m", "--method", "magic", "--out", "{w}/o"], 2,
         "unknown unlearning method"),
    Case("unlearn-lr-nan", ["unlearn", "--model", "{w}/m", "--method", "ga", "--lr", "nan", "--out", "{w}/o"], 2,
         "--lr must be a finite"),
    Case("unlearn-lr-inf", ["unlearn", "--model", "{w}/m", "--method", "ga", "--lr", "inf", "--out", "{w}/o"], 2,
         "--lr must be a finite"),
    Case("unlearn-lr-zero", ["unlearn", "--model", "{w}/m", "--method", "ga", "--lr", "0", "--out", "{w}/o"], 2,
         "--lr must be"),
    Case("unlearn-lr-negative", ["unlearn", "--model", "{w}/m", "--method", "ga", "--lr", "-1e-4", "--out", "{w}/o"],
         2, "--lr must be"),
    Case("unlearn-steps-zero", ["unlearn", "--model", "{w}/m", "--method", "ga", "--steps", "0", "--out", "{w}/o"],
         2, "--steps must be"),
    Case("unlearn-beta-zero", ["unlearn", "--model", "{w}/m", "--method", "npo", "--beta", "0", "--out", "{w}/o"],
         2, "--beta must be"),
    Case("unlearn-beta-nan", ["unlearn", "--model", "{w}/m", "--method", "npo", "--beta", "nan", "--out", "{w}/o"],
         2, "--beta must be"),
    Case("unlearn-param-unknown", ["unlearn", "--model", "{w}/m", "--method", "ga", "--param", "margin=1", "--out",
         "{w}/o"], 2, "method ga has no hyper-parameter 'margin'"),
    Case("unlearn-param-malformed", ["unlearn", "--model", "{w}/m", "--method", "simnpo", "--param", "margin",
         "--out", "{w}/o"], 2, "expected NAME=VALUE"),
    Case("unlearn-param-nan", ["unlearn", "--model", "{w}/m", "--method", "simnpo", "--param", "margin=nan",
         "--out", "{w}/o"], 2, "--param margin must be a finite"),
    Case("unlearn-param-not-an-integer", ["unlearn", "--model", "{w}/m", "--method", "rmu", "--param", "layer=top",
         "--out", "{w}/o"], 2, "--param layer must be an integer"),
    Case("unlearn-param-not-a-choice", ["unlearn", "--model", "{w}/m", "--method", "span", "--param",
         "forget_loss=kl", "--out", "{w}/o"], 2, "is not one of npo, ga"),
    Case("unlearn-beta-for-ga", ["unlearn", "--model", "{w}/m", "--method", "ga", "--beta", "0.1", "--out", "{w}/o"],
         2, "method ga has no hyper-parameter 'beta'"),
    Case("unlearn-rmu-layer-out-of-range", ["unlearn", "--model", "{tiny}", "--method", "rmu", "--param", "layer=7",
         "--steps", "1", "--out", "{w}/o"], 2, "the model has decoder layers 0..0", absent=("o",)),
    Case("unlearn-retain-weight-negative", ["unlearn", "--model", "{w}/m", "--method", "ga_gd", "--retain-weight",
         "-1", "--out", "{w}/o"], 2, "--retain-weight must be"),
    Case("unlearn-batch-zero", ["unlearn", "--model", "{w}/m", "--method", "ga", "--batch-size", "0", "--out",
         "{w}/o"], 2, "--batch-size must be"),
    Case("unlearn-unknown-subset", ["unlearn", "--model", "{w}/m", "--method", "ga", "--subset", "x", "--out",
         "{w}/o"], 2, "unknown subset"),
    Case("unlearn-model-missing", ["unlearn", "--model", "{w}/nope", "--method", "ga", "--out", "{w}/o"], 1,
         "not a Hugging Face model directory", absent=("o",)),
    Case("unlearn-model-a-file", ["unlearn", "--model", "{w}/f", "--method", "ga", "--out", "{w}/o"], 1,
         "not a Hugging Face model directory", setup=_mkfile("f"), absent=("o",)),
    Case("unlearn-model-empty-dir", ["unlearn", "--model", "{w}/d", "--method", "ga", "--out", "{w}/o"], 1,
         "not a Hugging Face model directory", setup=_mkdir("d"), absent=("o",)),
    Case("unlearn-out-is-model", ["unlearn", "--model", "{w}/tiny", "--method", "ga", "--out", "{w}/tiny",
         "--overwrite"], 2, "destroy the input", copy=("tiny",), keep=("tiny",)),
    Case("unlearn-out-contains-model", ["unlearn", "--model", "{w}/models/tiny", "--method", "ga", "--out",
         "{w}/models", "--overwrite"], 2, "contains the input", setup=lambda w: shutil.copytree(
             w / "tiny", w / "models" / "tiny"), copy=("tiny",), keep=("models",)),
    Case("unlearn-out-not-empty", ["unlearn", "--model", "{w}/tiny", "--method", "ga", "--steps", "1", "--out",
         "{w}/o"], 1, "--overwrite", copy=("tiny",), setup=_mkdir("o", with_file=True), keep=("o/keep.txt",)),
    Case("unlearn-out-is-file", ["unlearn", "--model", "{w}/tiny", "--method", "ga", "--out", "{w}/f"], 1,
         "not a directory", copy=("tiny",), setup=_mkfile("f"), keep=("f",)),
    Case("unlearn-data-dir-bogus", ["unlearn", "--model", "{w}/tiny", "--method", "ga", "--data-dir", "{w}/d",
         "--out", "{w}/o"], 1, "not a LeakBench release", copy=("tiny",), setup=_mkdir("d"), absent=("o",)),
    Case("unlearn-corrupt-record", ["unlearn", "--model", "{w}/tiny", "--method", "ga", "--out", "{w}/o"], 1,
         r"victim.json: corrupt or truncated JSON, not a LeakBench victim record", copy=("tiny",), setup=_mkfile("tiny/victim.json", "{oops"), absent=("o",)),
    # -- utility
    Case("utility-unknown-dataset", [*U[:2], "humaneva", *OUT_U, "--samples", "{w}/s"], 2, "unknown EvalPlus dataset"),
    Case("utility-mini-mbpp", ["utility", "--dataset", "mbpp", "--mini", "--samples", "{w}/s", *OUT_U], 2,
         "humaneval only"),
    Case("utility-limit-zero", [*U, "--samples", "{w}/s", "--limit", "0", *OUT_U], 2, "--limit must be"),
    Case("utility-limit-negative", [*U, "--samples", "{w}/s", "--limit", "-2", *OUT_U], 2, "--limit must be"),
    Case("utility-n-samples-zero", [*U, "--model", "{w}/m", "--n-samples", "0", *OUT_U], 2, "--n-samples must be"),
    Case("utility-n-samples-greedy", [*U, "--model", "{w}/m", "--n-samples", "5", *OUT_U], 2, "--temperature above 0"),
    Case("utility-temperature-negative", [*U, "--model", "{w}/m", "--temperature", "-1", *OUT_U], 2,
         "--temperature must be"),
    Case("utility-temperature-nan", [*U, "--model", "{w}/m", "--temperature", "nan", *OUT_U], 2, "--temperature"),
    Case("utility-batch-zero", [*U, "--model", "{w}/m", "--batch-size", "0", *OUT_U], 2, "--batch-size must be"),
    Case("utility-max-new-tokens-zero", [*U, "--model", "{w}/m", "--max-new-tokens", "0", *OUT_U], 2,
         "--max-new-tokens"),
    Case("utility-min-time-zero", [*U, "--samples", "{w}/s", "--min-time-limit", "0", *OUT_U], 2, "--min-time-limit"),
    Case("utility-gt-factor-inf", [*U, "--samples", "{w}/s", "--gt-time-limit-factor", "inf", *OUT_U], 2,
         "--gt-time-limit-factor"),
    Case("utility-model-and-samples", [*U, "--model", "{w}/m", "--samples", "{w}/s", *OUT_U], 2, "exactly one"),
    Case("utility-neither", [*U, *OUT_U], 2, "exactly one"),
    Case("utility-samples-missing", [*U, "--samples", "{w}/nope.jsonl", *OUT_U], 1, "no such samples file",
         absent=("u",)),
    Case("utility-samples-is-dir", [*U, "--samples", "{w}/d", *OUT_U], 1, "is a directory", setup=_mkdir("d"),
         absent=("u",)),
    Case("utility-samples-bad-json", [*U, "--samples", "{w}/samples.jsonl", *OUT_U], 1, r"samples.jsonl:2: not valid",
         setup=_samples([{"task_id": "HumanEval/0", "solution": "x"}, "{oops"]), absent=("u",)),
    Case("utility-samples-unknown-task", [*U, "--samples", "{w}/samples.jsonl", *OUT_U], 1, "unknown task_id",
         setup=_samples([{"task_id": "HumanEval/9999", "solution": "x"}]), absent=("u",)),
    Case("utility-samples-no-code", [*U, "--samples", "{w}/samples.jsonl", *OUT_U], 1, "needs a string",
         setup=_samples([{"task_id": "HumanEval/0", "completion": 5}]), absent=("u",)),
    Case("utility-samples-empty", [*U, "--samples", "{w}/samples.jsonl", *OUT_U], 1, "no samples",
         setup=_mkfile("samples.jsonl", "\n\n"), absent=("u",)),
    Case("utility-data-dir-missing", ["utility", "--dataset", "humaneval", "--mini", "--data-dir", "{w}/nope",
         "--samples", "{w}/samples.jsonl", *OUT_U], 1, "no such directory",
         setup=_samples([{"task_id": "HumanEval/0", "solution": "x"}])),
    Case("utility-data-dir-empty", ["utility", "--dataset", "humaneval", "--mini", "--data-dir", "{w}/d",
         "--samples", "{w}/samples.jsonl", *OUT_U], 1, "no such EvalPlus data file",
         setup=_all(_mkdir("d"), _samples([{"task_id": "HumanEval/0", "solution": "x"}]))),
    Case("utility-truncated-gz", ["utility", "--dataset", "humaneval", "--mini", "--data-dir", "{w}/ep",
         "--samples", "{w}/samples.jsonl", *OUT_U], 1, "corrupt or truncated EvalPlus file",
         setup=_all(_truncated_evalplus, _samples([{"task_id": "HumanEval/0", "solution": "x"}])), absent=("u",)),
    Case("utility-not-gzip", ["utility", "--dataset", "humaneval", "--mini", "--data-dir", "{w}/ep",
         "--samples", "{w}/samples.jsonl", *OUT_U], 1, "corrupt or truncated EvalPlus file",
         setup=_all(_not_gzip_evalplus, _samples([{"task_id": "HumanEval/0", "solution": "x"}])), absent=("u",)),
    Case("utility-out-is-samples", [*U, "--samples", "{w}/samples.jsonl", "--out", "{w}/samples.jsonl"], 2,
         "destroy the input", setup=_samples([{"task_id": "HumanEval/0", "solution": "x"}]),
         keep=("samples.jsonl",)),
    Case("utility-out-contains-samples", [*U, "--samples", "{w}/u/samples.jsonl", "--out", "{w}/u", "--overwrite"],
         2, "contains the input", setup=_all(_mkdir("u"), _in("u/samples.jsonl", [{"task_id": "HumanEval/0",
                                                                                   "solution": "x"}])),
         keep=("u/samples.jsonl",)),
    Case("utility-out-is-file", [*U, "--samples", "{w}/samples.jsonl", "--out", "{w}/f"], 1, "not a directory",
         setup=_all(_mkfile("f"), _samples([{"task_id": "HumanEval/0", "solution": "x"}])), keep=("f",)),
    Case("utility-out-not-empty", [*U, "--samples", "{w}/samples.jsonl", "--out", "{w}/o"], 1, "--overwrite",
         setup=_all(_mkdir("o", with_file=True), _samples([{"task_id": "HumanEval/0", "solution": "x"}])),
         keep=("o/keep.txt",)),
    Case("utility-model-missing", [*U, "--model", "{w}/nope", *OUT_U], 1, "not a Hugging Face model directory",
         absent=("u",)),
    # -- publish
    Case("publish-run-missing", [*PUB[:1], "{w}/nope", *PUB[2:]], 1, "no such run directory", absent=("lb",)),
    Case("publish-run-is-file", [*PUB[:1], "{w}/f", *PUB[2:]], 1, "is not a directory", setup=_mkfile("f"),
         absent=("lb",)),
    Case("publish-run-empty", [*PUB[:1], "{w}/d", *PUB[2:]], 1, "no lm-eval results", setup=_mkdir("d"),
         absent=("lb",)),
    Case("publish-no-run-given", ["publish"], 2, "Missing argument"),
    Case("publish-results-corrupt", PUB, 1, "corrupt or truncated JSON", copy=("run",),
         setup=lambda w: _results(w).write_text('{"results": {'), absent=("lb",)),
    Case("publish-results-a-list", PUB, 1, "not an lm-eval results file", copy=("run",),
         setup=lambda w: _results(w).write_text("[]"), absent=("lb",)),
    Case("publish-results-not-utf8", PUB, 1, "not UTF-8", copy=("run",),
         setup=lambda w: _results(w).write_bytes(b"\xff\xfe{}"), absent=("lb",)),
    Case("publish-results-unreadable", PUB, 1, "permission denied", copy=("run",),
         setup=lambda w: os.chmod(_results(w), 0), as_user=True, absent=("lb",)),
    Case("publish-no-leakbench-task", PUB, 1, "hold no LeakBench task", copy=("run",),
         setup=_edit_results(lambda d: _set(d, results={"arc_easy": {"acc,none": 0.5}})), absent=("lb",)),
    Case("publish-old-task-version", PUB, 1, "re-run the evaluation", copy=("run",),
         setup=_edit_results(lambda d: _set(d, versions={"leakbench_direct": 0.1})), absent=("lb",)),
    Case("publish-other-release", PUB, 1, "data release", copy=("run",),
         setup=_edit_results(lambda d: [c.setdefault("metadata", {}).update(release_hash="f" * 64)
                                        for c in d["configs"].values()] and d), absent=("lb",)),
    Case("publish-model-args-garbage", PUB, 1, "model_args", copy=("run",),
         setup=_edit_results(lambda d: _set(d, config={**d["config"], "model_args": 7})), absent=("lb",)),
    Case("publish-run-json-corrupt", PUB, 1, "run.json: corrupt", copy=("run",),
         setup=_mkfile("run/run.json", "{nope"), absent=("lb",)),
    Case("publish-run-json-a-list", PUB, 1, "expected a JSON object", copy=("run",),
         setup=_mkfile("run/run.json", "[1]"), absent=("lb",)),
    Case("publish-run-json-bad-role", PUB, 1, r"not a LeakBench run record \(model_name: Field required", copy=("run",),
         setup=_mkfile("run/run.json", '{"role": "wizard"}'), absent=("lb",)),
    Case("publish-utility-json-bad", PUB, 1, "not a LeakBench utility.json", copy=("run",),
         setup=_mkfile("run/utility.json", '{"dataset": "humaneval"}'), absent=("lb",)),
    Case("publish-samples-corrupt", PUB, 1, "corrupt samples line", copy=("run",),
         setup=lambda w: next((w / "run").rglob("samples_leakbench_direct_*.jsonl")).write_text("{oops\n"),
         absent=("lb",)),
    Case("publish-board-corrupt", PUB, 1, "corrupt or truncated JSON", copy=("run",),
         setup=_mkfile("lb/leaderboard.json", '{"entries": ['), keep=BOARD_KEEP),
    Case("publish-board-a-list", PUB, 1, "expected a JSON object", copy=("run",),
         setup=_mkfile("lb/leaderboard.json", "[]"), keep=BOARD_KEEP),
    Case("publish-board-unknown-version", PUB, 1, "unknown leaderboard schema_version '9.9'", copy=("run",),
         setup=_board({"schema_version": "9.9", "benchmark": "LeakBench", "entries": []}), keep=BOARD_KEEP),
    Case("publish-board-no-version", PUB, 1, "unknown leaderboard schema_version None", copy=("run",),
         setup=_board({"benchmark": "LeakBench", "entries": []}), keep=BOARD_KEEP),
    Case("publish-board-invalid-entry", PUB, 1, "invalid leaderboard at entries.0", copy=("run",),
         setup=_board({"schema_version": "1.3", "benchmark": "LeakBench", "entries": [{"entry_id": 1}]}),
         keep=BOARD_KEEP),
    Case("publish-board-is-dir", [*PUB[:2], "--leaderboard", "{w}/lb"], 1, "is a directory", copy=("run",),
         setup=_mkdir("lb", with_file=True), keep=("lb/keep.txt",)),
    Case("publish-board-under-file", [*PUB[:2], "--leaderboard", "{w}/f/leaderboard.json", "--html", "{w}/i.html"],
         1, "is a file", copy=("run",), setup=_mkfile("f")),
    Case("publish-board-unreadable", PUB, 2, "is not readable", copy=("run",),
         setup=_all(_board({"schema_version": "1.3", "benchmark": "LeakBench", "entries": []}),
                    _chmod("lb/leaderboard.json", 0o000)), as_user=True),
    Case("publish-board-read-only-dir", PUB, 1, "permission denied", copy=("run",),
         setup=_mkdir("lb", 0o555), as_user=True),
    Case("publish-html-is-leaderboard", [*PUB[:4], "--html", "{w}/lb/leaderboard.json"], 2, "each output needs",
         copy=("run",), setup=_board({"schema_version": "1.3", "benchmark": "LeakBench", "entries": []}),
         keep=BOARD_KEEP),
    Case("publish-html-is-schema", [*PUB[:4], "--html", "{w}/lb/leaderboard.schema.json"], 2, "each output needs",
         copy=("run",), absent=("lb",)),
    Case("publish-board-is-results", [*PUB[:2], "--leaderboard", "{w}/run/x/results_x.json", "--html",
         "{w}/i.html"], 2, "destroy the input", copy=("run",),
         setup=lambda w: (w / "run" / "x").mkdir() or shutil.copy(_results(w), w / "run" / "x" / "results_x.json"),
         keep=("run",)),
    Case("publish-html-is-dir", [*PUB[:4], "--html", "{w}/d"], 1, "is a directory", copy=("run",),
         setup=_mkdir("d"), absent=("lb",)),
    Case("publish-disk-full", PUB, 1, "file too large", copy=("run",), fsize=4_000,
         setup=_board({"schema_version": "1.3", "benchmark": "LeakBench", "entries": []}), keep=BOARD_KEEP),
    Case("publish-then-version-1.0-migrates", PUB, 0, copy=("run",),
         setup=_board({"schema_version": "1.0", "benchmark": "LeakBench", "entries": []})),
    # -- run: every option checked before anything is built
    Case("run-unknown-method", [*RUN, "--methods", "ga,magic"], 2, "unknown unlearning method", absent=("study",)),
    Case("run-no-method", [*RUN, "--methods", ","], 2, "no unlearning method", absent=("study",)),
    Case("run-all-and-unknown-method", [*RUN, "--methods", "all,magic"], 2, r"unknown unlearning method\(s\) 'magic'",
         absent=("study",)),
    Case("run-unknown-utility", [*RUN, "--utility", "humaneva"], 2, "unknown EvalPlus dataset", absent=("study",)),
    Case("run-batch-size-text", [*RUN, "--batch-size", "abc"], 2, "--batch-size must be", absent=("study",)),
    Case("run-batch-size-zero", [*RUN, "--batch-size", "0"], 2, "--batch-size must be", absent=("study",)),
    Case("run-limit-zero", [*RUN, "--limit", "0"], 2, "--limit must be", absent=("study",)),
    Case("run-limit-negative", [*RUN, "--limit", "-2"], 2, "--limit must be", absent=("study",)),
    Case("run-jobs-zero", [*RUN, "--jobs", "0"], 2, "--jobs must be", absent=("study",)),
    Case("run-unknown-subset", [*RUN, "--subset", "tiny"], 2, "unknown subset", absent=("study",)),
    Case("run-epochs-zero", [*RUN, "--epochs", "0"], 2, "--epochs must be", absent=("study",)),
    Case("run-steps-zero", [*RUN, "--steps", "0"], 2, "--steps must be", absent=("study",)),
    Case("run-model-missing", [*RUN, "--model", "{w}/nope"], 1, "no such model directory", absent=("study",)),
    Case("run-oracle-missing", [*RUN, "--model", "{w}/tiny", "--oracle", "{w}/nope"], 1, "no such model directory",
         absent=("study",)),
    Case("run-oracle-without-model", [*RUN, "--oracle", "{w}/tiny"], 2, "--oracle needs --model", absent=("study",)),
    Case("run-evalplus-dir-missing", [*RUN, "--evalplus-dir", "{w}/nope"], 1, "no such directory",
         absent=("study",)),
    Case("run-out-is-file", ["run", "--out", "{w}/f", "--no-publish"], 1, "not a directory", setup=_mkfile("f"),
         keep=("f",)),
    Case("run-publish-to-under-file", ["run", "--out", "{w}/s", "--publish-to", "{w}/f/r"], 1, "is a file",
         setup=_mkfile("f"), absent=("s",)),
    Case("run-unknown-backend", [*RUN, "--backend", "llamacpp"], 2, "unknown --backend", absent=("study",)),
    Case("run-model-args-pretrained", [*RUN, "--model-args", "pretrained=/elsewhere"], 2, "must not set pretrained", absent=("study",)),
    Case("run-model-args-malformed", [*RUN, "--model-args", "dtype=bfloat16,,oops"], 2, "k=v pairs", absent=("study",)),
    Case("run-evalplus-truncated", [*RUN, "--evalplus-dir", "{w}/ep"], 1, "corrupt or truncated",
         setup=_truncated_evalplus, absent=("study",)),
    Case("run-robustness-unknown-axis", [*RUN, "--robustness", "--robustness-axes", "relearn,magic"], 2,
         "unknown robustness axis 'magic'", absent=("study",)),
    # -- robustness: options checked before a model is loaded; the study's files never damaged
    Case("robustness-no-study", ["robustness", "{w}/nothing"], 1, "no such file; give the --out folder"),
    Case("robustness-unknown-axis", ["robustness", "{w}/s", "--axes", "magic"], 2, "unknown robustness axis"),
    Case("robustness-bits", ["robustness", "{w}/s", "--bits", "3"], 2, "--bits must be among 8, 4"),
    Case("robustness-sizes-text", ["robustness", "{w}/s", "--sizes", "0.1,half"], 2, "comma-separated numbers"),
    Case("robustness-sizes-above-1", ["robustness", "{w}/s", "--sizes", "0.5,2"], 2, "fractions in \\(0, 1\\]"),
    Case("robustness-one-request", ["robustness", "{w}/s", "--requests", "1"], 2, "at least 2"),
    Case("robustness-whole-slice", ["robustness", "{w}/s", "--relearn-fraction", "1"], 2, "must be in \\(0, 1\\)"),
    Case("robustness-summary-corrupt", ["robustness", "{w}/s"], 1, "not a LeakBench study summary",
         setup=_mkfile("s/summary.json", "{oops"), keep=("s/summary.json",)),
    Case("robustness-method-not-in-study", ["robustness", "{w}/s", "--methods", "npo"], 2, "has no runs of npo",
         setup=_mkfile("s/summary.json", STUDY_SUMMARY),
         keep=("s/summary.json",)),
    Case("robustness-victim-missing", ["robustness", "{w}/s"], 2, "give --model",
         setup=_mkfile("s/summary.json", STUDY_SUMMARY),
         keep=("s/summary.json",)),
    # -- issue 24, class 1: an output path that is a symbolic link loop: one line, exit 1, before any work
    Case("loop-data-build", ["data", "build", "--out", "{w}/loop", "--subjects", "2"], 1, "loop: .*symbolic link loop",
         setup=_loop("loop")),
    Case("loop-data-export", ["data", "export", "--out", "{w}/loop/x"], 1, "symbolic link loop", setup=_loop("loop")),
    Case("loop-score", ["score", "--in", "{w}/in.jsonl", "--out", "{w}/loop"], 1, "symbolic link loop",
         setup=_all(ROWS, _loop("loop")), keep=("in.jsonl",)),
    Case("loop-unlearn", ["unlearn", "--model", "{w}/m", "--method", "ga", "--out", "{w}/loop"], 1,
         "symbolic link loop", setup=_loop("loop")),
    Case("loop-utility", [*U, "--samples", "{w}/samples.jsonl", "--out", "{w}/loop"], 1, "symbolic link loop",
         setup=_all(_loop("loop"), _samples([{"task_id": "HumanEval/0", "solution": "x"}]))),
    Case("loop-victim-build", ["victim", "build", "--out", "{w}/loop"], 1, "symbolic link loop", setup=_loop("loop")),
    Case("loop-base-build", ["base", "build", "--out", "{w}/loop"], 1, "symbolic link loop", setup=_loop("loop")),
    Case("loop-publish-leaderboard", [*PUB[:2], "--leaderboard", "{w}/loop", "--html", "{w}/i.html"], 1,
         "symbolic link loop", copy=("run",), setup=_loop("loop"), absent=("i.html",)),
    Case("loop-publish-html", [*PUB[:4], "--html", "{w}/loop"], 1, "symbolic link loop", copy=("run",),
         setup=_loop("loop"), absent=("lb",)),
    Case("loop-privacy-checked-first", ["privacy", "--model", "{w}/nope", "--out", "{w}/loop"], 1,
         "symbolic link loop", setup=_loop("loop")),  # the output is checked before the model is even looked at
    Case("loop-run", ["run", "--out", "{w}/loop", "--no-publish"], 1, "symbolic link loop", setup=_loop("loop")),
    Case("loop-sweep", ["sweep", "--model", "{w}/nope", "--out", "{w}/loop"], 1, "symbolic link loop",
         setup=_loop("loop")),
    # -- class 3: sweep checks what every other verb checks, before any evaluation
    Case("sweep-out-is-model", ["sweep", "--model", "{w}/tiny", "--out", "{w}/tiny"], 2, "destroy the input",
         copy=("tiny",), keep=("tiny",)),
    Case("sweep-out-inside-model", ["sweep", "--model", "{w}/tiny", "--out", "{w}/tiny/sweep"], 2,
         "inside --model", copy=("tiny",), keep=("tiny",), absent=("tiny/sweep",)),
    Case("sweep-seeds-zero", ["sweep", "--model", "{tiny}", "--out", "{w}/o", "--seeds", "0"], 2,
         "--seeds must be", absent=("o",)),
    Case("sweep-jobs-zero", ["sweep", "--model", "{tiny}", "--out", "{w}/o", "--jobs", "0"], 2,
         "--jobs must be", absent=("o",)),
    Case("sweep-model-missing", ["sweep", "--model", "{w}/nope", "--out", "{w}/o"], 1,
         r"nope: not a Hugging Face model directory \(no such directory\)", absent=("o",)),
    Case("sweep-unknown-subset", ["sweep", "--model", "{tiny}", "--out", "{w}/o", "--subset", "tiny"], 2,
         "unknown subset", absent=("o",)),
    Case("sweep-out-is-file", ["sweep", "--model", "{tiny}", "--out", "{w}/f"], 1, "not a directory",
         setup=_mkfile("f"), keep=("f",)),
    # -- class 4: contradictions, options without effect, repeated options and sizes no machine could run: exit 2
    Case("run-publish-to-and-no-publish", [*RUN, "--publish-to", "{w}/b"], 2, "--publish-to and --no-publish",
         absent=("study", "b")),
    Case("base-vocab-too-small", ["base", "build", "--out", "{w}/b", "--vocab-size", "10"], 2,
         "--vocab-size must be at least 257", absent=("b",)),
    Case("base-tokens-absurd", ["base", "build", "--out", "{w}/b", "--tokens", "1" + "0" * 24], 2,
         r"--tokens must be at most 1e\+12", absent=("b",)),
    Case("unlearn-steps-absurd", ["unlearn", "--model", "{w}/m", "--method", "ga", "--steps", "1" + "0" * 23,
         "--out", "{w}/o"], 2, "--steps must be at most", absent=("o",)),
    Case("unlearn-steps-astronomical", ["unlearn", "--model", "{w}/m", "--method", "ga", "--steps", "9" * 400,
         "--out", "{w}/o"], 2, r"--steps must be at most .*~1e399", absent=("o",)),
    Case("victim-epochs-absurd", ["victim", "build", "--out", "{w}/v", "--epochs", "1" + "0" * 20], 2,
         "--epochs must be at most", absent=("v",)),
    Case("unlearn-lora-rank-without-lora", ["unlearn", "--model", "{w}/m", "--method", "ga", "--lora-rank", "4",
         "--out", "{w}/o"], 2, "--lora-rank has no effect without --lora", absent=("o",)),
    Case("victim-lora-rank-without-lora", ["victim", "build", "--out", "{w}/v", "--lora-rank", "4"], 2,
         "--lora-rank has no effect without --lora", absent=("v",)),
    Case("unlearn-param-repeated", ["unlearn", "--model", "{w}/m", "--method", "simnpo", "--param", "margin=0.5",
         "--param", "margin=0.7", "--out", "{w}/o"], 2, r"--param margin given twice \('0.5' and '0.7'\)",
         absent=("o",)),
    # -- class 7: messages that say what is wrong
    Case("unlearn-method-all", ["unlearn", "--model", "{w}/m", "--method", "all", "--out", "{w}/o"], 2,
         r"--method takes one method, not 'all' .*choose one of: ga, [a-z_, ]+$", absent=("o",)),
    Case("unlearn-weights-unreadable", ["unlearn", "--model", "{w}/tiny", "--method", "ga", "--steps", "1",
         "--out", "{w}/o"], 1, "model.safetensors: permission denied", copy=("tiny",),
         setup=_chmod("tiny/model.safetensors", 0o000), as_user=True, absent=("o",)),
    Case("privacy-weights-unreadable", ["privacy", "--model", "{w}/tiny", "--out", "{w}/o.json"], 1,
         "model.safetensors: permission denied", copy=("tiny",), setup=_chmod("tiny/model.safetensors", 0o000),
         as_user=True, absent=("o.json",)),
    # -- class 2: a record read from disk holds only finite numbers, named with file and field
    Case("publish-privacy-infinity", PUB, 1, r"privacy.json: metrics.exact_memorization is Infinity", copy=("run",),
         setup=_privacy_json(exact_memorization=float("inf")), absent=("lb",)),
    Case("publish-privacy-finite-is-published", PUB, 0, copy=("run",), setup=_privacy_json()),
    Case("publish-utility-nan", PUB, 1, r"utility.json: pass@1.plus is NaN", copy=("run",),
         setup=_mkfile("run/utility.json", '{"dataset": "humaneval", "mini": true, "dataset_hash": "x", "n_tasks": 1, '
                       '"pass@1": {"base": 0.5, "plus": NaN}, "time_limits": {}}'), absent=("lb",)),
    Case("publish-board-infinity", PUB, 1, r"leaderboard.json: entries\[0\]\.x is -Infinity", copy=("run",),
         setup=_board({"schema_version": "1.3", "benchmark": "LeakBench", "entries": [{"x": float("-inf")}]}),
         keep=BOARD_KEEP),
    # -- class 5: a run folder stopped half-way through its re-evaluation is refused, not published as a mix
    Case("publish-run-incomplete", PUB, 1, r"stopped half-way \(run.incomplete", copy=("run",),
         setup=_mkfile("run/run.incomplete", "being evaluated"), absent=("lb",)),
    # -- class 6: publish is all or nothing, and writes over no file of the user's
    Case("publish-html-read-only-keeps-board", [*PUB[:4], "--html", "{w}/ro/index.html"], 1, "permission denied",
         copy=("run",), setup=_all(_board({"schema_version": "1.3", "benchmark": "LeakBench", "entries": []}),
                                   _mkdir("ro", 0o555)),
         as_user=True, keep=BOARD_KEEP, absent=("lb/leaderboard.schema.json", "ro/index.html")),
    Case("publish-keeps-users-schema", PUB, 1, "not a schema LeakBench wrote", copy=("run",),
         setup=_mkfile("lb/leaderboard.schema.json", '{"title": "my own schema"}'),
         keep=("lb/leaderboard.schema.json",), absent=("lb/leaderboard.json", "lb/index.html")),
    Case("publish-privacy-json-is-dir", PUB, 1, "privacy.json: is a directory", copy=("run",),
         setup=_mkdir("run/privacy.json"), absent=("lb",)),
    Case("publish-run-json-is-dir", PUB, 1, "run.json: is a directory", copy=("run",),
         setup=_mkdir("run/run.json"), absent=("lb",)),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_fault(case: Case, material, tmp_path):
    if case.as_user and os.geteuid() == 0:
        try:
            subprocess.run(["true"], preexec_fn=_without_root_override, check=True)
        except (OSError, subprocess.SubprocessError):
            pytest.skip("cannot drop root's permission override here")
    typed = " ".join(case.args)
    if ("{evalplus}" in typed or "{w}/ep" in typed) and not (EVALPLUS / HUMANEVAL_MINI).is_file():
        pytest.skip("the official EvalPlus files are not beside the checkout (../shared/evalplus)")
    w = tmp_path / "w"
    w.mkdir()
    for name in case.copy:
        shutil.copytree(material[name], w / name)
    if case.setup:
        case.setup(w)
    places = {"w": str(w), "evalplus": str(EVALPLUS), **{k: str(v) for k, v in material.items()}}
    args = [a.format(**places) for a in case.args]
    keep = snapshot([w / k for k in case.keep])
    preexec = _without_root_override if case.as_user else None
    if case.fsize is not None:
        preexec = _file_size_limit(case.fsize)
    try:
        proc = cli(args, cwd=w, preexec=preexec)
    finally:
        for path in [w, *w.rglob("*")]:  # undo permission changes so the checks (and pytest) can read
            if not path.is_symlink():
                os.chmod(path, 0o755 if path.is_dir() else 0o644)
    assert_contract(proc, case.rc, case.message)
    assert snapshot([w / k for k in case.keep]) == keep, "a protected file changed"
    for name in case.absent:
        assert not (w / name).exists(), f"{name} was written"
    assert leftovers(w) == []
    assert leftovers(RELEASES["v1"].parent) == []


# --- a real full disk -----------------------------------------------------------------------------------------


@pytest.fixture
def tiny_disk(tmp_path):
    """A 256 KiB tmpfs: a disk that really fills up (skipped where mounting is not allowed)."""
    mount = tmp_path / "disk"
    mount.mkdir()
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mount)], capture_output=True)
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {proc.stderr.decode().strip()}")
    yield mount
    subprocess.run(["umount", str(mount)], check=False)


def test_score_onto_a_full_disk_keeps_the_old_output(tiny_disk, tmp_path):
    write_lines(tmp_path / "in.jsonl", [score_row("x" * 4000)] * 100)
    (tiny_disk / "o.jsonl").write_text("previous results\n")
    proc = cli(["score", "--in", str(tmp_path / "in.jsonl"), "--out", str(tiny_disk / "o.jsonl"), "--ner", "none"],
               cwd=tmp_path)
    assert_contract(proc, 1, "cannot write .*o.jsonl: no space left on device")
    assert (tiny_disk / "o.jsonl").read_text() == "previous results\n"
    assert sorted(p.name for p in tiny_disk.iterdir()) == ["o.jsonl"]


def test_export_onto_a_full_disk_leaves_nothing(tiny_disk, tmp_path):
    proc = cli(["data", "export", "--out", str(tiny_disk / "v1")], cwd=tmp_path)
    assert_contract(proc, 1, "no space left on device")
    assert list(tiny_disk.iterdir()) == []


# --- signals --------------------------------------------------------------------------------------------------


def _signal_when(proc: subprocess.Popen, ready: Callable[[], bool], signum: int, timeout: float = 240) -> None:
    """Send `signum` as soon as `ready()` holds (e.g. the temporary output exists: the run is mid-write)."""
    deadline = time.monotonic() + timeout
    while not ready():
        assert proc.poll() is None, f"finished before the signal: {proc.stderr.read()[-2000:]}"
        assert time.monotonic() < deadline, "never reached the point to interrupt"
        time.sleep(0.02)
    proc.send_signal(signum)


def _finish(proc: subprocess.Popen) -> subprocess.CompletedProcess:
    out, err = proc.communicate(timeout=120)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


@pytest.mark.parametrize(("signum", "rc", "word"), [(signal.SIGTERM, 143, "terminated"), (signal.SIGINT, 130,
                                                                                           "interrupted")])
def test_score_stopped_mid_write_exits_with_the_signal_and_leaves_nothing(tmp_path, signum, rc, word):
    write_lines(tmp_path / "in.jsonl", [score_row(f"value {i} xqtuE9!6cKu92N") for i in range(20_000)])
    (tmp_path / "o.jsonl").write_text("previous results\n")
    proc = start(["score", "--in", "in.jsonl", "--out", "o.jsonl", "--ner", "none"], tmp_path)
    _signal_when(proc, lambda: bool(leftovers(tmp_path)), signum)
    done = _finish(proc)
    assert_contract(done, rc, f"{word} .*nothing half-written was kept")
    assert leftovers(tmp_path) == []
    assert (tmp_path / "o.jsonl").read_text() == "previous results\n"


def test_unlearn_terminated_mid_training_leaves_nothing(material, tmp_path):
    proc = start(["unlearn", "--model", str(material["tiny"]), "--method", "ga", "--steps", "100000", "--out",
                  str(tmp_path / "o")], tmp_path)
    _signal_when(proc, lambda: bool(leftovers(tmp_path)), signal.SIGTERM)
    done = _finish(proc)
    assert_contract(done, 143, "terminated")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(("signum", "rc", "word"), [(signal.SIGTERM, 143, "terminated"), (signal.SIGINT, 130,
                                                                                           "interrupted")])
def test_unlearn_stopped_mid_training_closes_the_bar_before_the_error_line(material, tmp_path, signum, rc, word):
    """Issue 24, class 7: the Trainer's progress bar is closed first, so the `error:` line stands on a line of its
    own and is the last thing printed (no bar redrawn after it)."""
    err = tmp_path / "stderr.txt"
    with err.open("w") as fh:
        proc = subprocess.Popen([sys.executable, "-m", "leakbench", "unlearn", "--model", str(material["tiny"]),
                                 "--method", "ga", "--steps", "100000", "--out", str(tmp_path / "o")],
                                stdout=subprocess.DEVNULL, stderr=fh, text=True, cwd=tmp_path, env=_env())  # fmt: skip
        _signal_when(proc, lambda: "/100000 [" in err.read_text(errors="replace"), signum)
        proc.wait(timeout=120)
    text = err.read_text(errors="replace")
    assert proc.returncode == rc, text[-2000:]
    lines = [line for line in text.split("\n") if line.strip()]
    assert lines[-1].startswith(f"error: {word}"), repr(text[-600:])
    assert "Traceback" not in text
    assert sorted(p.name for p in tmp_path.iterdir()) == ["stderr.txt"]


def test_data_build_interrupted_leaves_nothing(tmp_path):
    proc = start(["data", "build", "--out", str(tmp_path / "rel"), "--subjects", "5000"], tmp_path)
    time.sleep(2)
    proc.send_signal(signal.SIGINT)
    done = _finish(proc)
    if done.returncode == 0:
        pytest.skip("the build finished before the signal")
    assert_contract(done, 130, "interrupted")
    assert list(tmp_path.iterdir()) == []


# --- concurrency ----------------------------------------------------------------------------------------------


def test_concurrent_publishes_keep_every_row(material, tmp_path):
    """Three trials of two `leakbench publish` processes racing into one leaderboard: no row is ever lost."""
    runs = []
    for name in ("alpha", "beta"):
        run = tmp_path / name
        shutil.copytree(material["run"], run)
        (run / "run.json").write_text(json.dumps({"model_name": f"model-{name}", "role": "external"}))
        runs.append(run)
    for trial in range(3):
        board = tmp_path / f"board{trial}" / "leaderboard.json"
        procs = [start(["publish", str(run), "--leaderboard", str(board), "--html", str(board.with_name(
            f"index-{run.name}.html")), "--no-examples"], tmp_path) for run in runs]
        for proc in procs:
            done = _finish(proc)
            assert_contract(done, 0, "")
            assert "1 added" in done.stdout
        entries = json.loads(board.read_text())["entries"]
        assert sorted(e["model"]["name"] for e in entries) == ["model-alpha", "model-beta"], f"trial {trial}"
        assert leftovers(board.parent) == []  # the lock included (issue 24, class 8): released and removed


@pytest.mark.parametrize("verb", ["data build", "unlearn"])
def test_two_writers_into_one_new_folder_one_is_refused(material, tmp_path, verb):
    """Issue 24, class 5: two runs racing into one new --out (three trials): exactly one succeeds, the other is
    told so (another process is writing it, or it is no longer empty), and the folder holds the winner's work."""
    for trial in range(3):
        out = tmp_path / f"out{trial}"
        if verb == "data build":
            runs = {seed: ["data", "build", "--out", str(out), "--subjects", "30", "--seed", str(seed)] for seed in (1, 2)}
            record = "manifest.json"
        else:
            runs = {seed: ["unlearn", "--model", str(material["tiny"]), "--method", "ga", "--steps", "6",
                           "--batch-size", "2", "--seed", str(seed), "--out", str(out)] for seed in (1, 2)}
            record = "unlearn.json"
        procs = {seed: start(args, tmp_path) for seed, args in runs.items()}
        done = {seed: _finish(proc) for seed, proc in procs.items()}
        winners = [seed for seed, d in done.items() if d.returncode == 0]
        assert len(winners) == 1, {seed: (d.returncode, d.stderr[-500:]) for seed, d in done.items()}
        (loser,) = set(done) - set(winners)
        assert_contract(done[loser], 1, "another process is writing this folder|not empty")
        assert json.loads((out / record).read_text())["seed"] == winners[0], f"trial {trial}"
        assert leftovers(tmp_path) == []


def test_study_stopped_mid_reevaluation_is_refused_by_publish(material, tmp_path, monkeypatch):
    """Issue 24, class 5: a re-run of a finished study stopped after lm-eval replaced a run's results but before
    its privacy.json and run.json: the folder says it is incomplete, and publish refuses it instead of publishing
    new (here 1-probe) results under the old records."""
    from leakbench.pipeline import StudyConfig, run_study
    from leakbench.records import Interrupted

    run = tmp_path / "study" / "runs" / "victim"
    run.mkdir(parents=True)
    (run / "run.json").write_text('{"model_name": "the finished study", "role": "victim"}')
    (run / "privacy.json").write_text('{"kind": "leakbench-privacy"}')

    def stopped(*args, **kwargs):
        raise Interrupted(signal.SIGINT)

    monkeypatch.setattr("leakbench.pipeline.measure", stopped)  # Ctrl-C while the victim's privacy is measured
    cfg = StudyConfig(out=tmp_path / "study", model=str(material["tiny"]), methods=("ga",), limit=1, utility=(),
                      batch_size=4, publish=False, jobs=1)  # fmt: skip  (one job: the patch reaches no worker process)
    with pytest.raises(Interrupted):
        run_study(cfg, log=lambda message: None)
    assert (run / "run.incomplete").is_file() and list(run.rglob("results_*.json"))
    board = tmp_path / "lb" / "leaderboard.json"
    proc = cli(["publish", str(run), "--leaderboard", str(board), "--html", str(board.with_name("index.html"))],
               cwd=tmp_path)
    assert_contract(proc, 1, r"victim: its evaluation was stopped half-way \(run.incomplete")
    assert not board.parent.exists()
