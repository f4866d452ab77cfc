"""Worker processes: several pieces of work on one machine at once (texts scored, models measured).

A small model's forward pass on the CPU is dominated by per-operation overhead that a second thread barely
shortens: two one-thread lm-eval jobs side by side did in 92 s what one two-thread job does in 73 s each
(1.6x the throughput, 2 cores; docs/study.md). Workers are started with `spawn` (never a fork of a process that
may hold torch's threads), ignore Ctrl-C (the parent receives it and stops them) and turn SIGTERM into
`Interrupted`, so that their atomic writers remove what they had half-written before the worker exits.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Executor, Future, wait
from pathlib import Path
from typing import Any, TypeVar

from leakbench.records import Interrupted, defer_signal, signals_deferred

T = TypeVar("T")
R = TypeVar("R")


def default_workers() -> int:
    """One worker per core the process may use (at least 1)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


@contextlib.contextmanager
def sigint_blocked() -> Iterator[None]:
    """Block SIGINT while a worker starts: a spawned worker inherits the mask, so a Ctrl-C at the terminal (sent to
    the whole process group) never interrupts it mid-import; the parent receives the signal when the block ends
    and stops the pool itself."""
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def _stop(signum: int, frame: object) -> None:
    if defer_signal(signum):  # mid-commit: raised when the commit is done
        return
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise Interrupted(signum)


def _start(threads: int | None, init: Callable[..., None] | None, initargs: tuple[Any, ...]) -> None:
    import multiprocessing

    # A spawned process inherits `spawn` as its own children's start method; EvalPlus starts a process per test,
    # and a spawned one imports everything again (HumanEval+ Mini: 150 s instead of 20 s). The platform's default.
    multiprocessing.set_start_method(None, force=True)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _stop)
    if threads is not None:
        import torch

        torch.set_num_threads(threads)
    if init is not None:
        init(*initargs)


class Inline(Executor):
    """`workers=1`: each submitted call runs at once, here, and its future is already done (the same code path
    as a pool, with the caller's own output and signal handling)."""

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future:  # type: ignore[override]
        future: Future = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except Exception as exc:  # an error is the job's result; Ctrl-C and SIGTERM stop the caller
            future.set_exception(exc)
        return future


class Pool(Executor):
    """`workers` spawned processes with `threads` torch threads each; `submit` never lets a Ctrl-C cut a worker's
    start in half. Leaving the block by an exception or a signal stops the workers (SIGTERM: they clean up)."""

    def __init__(self, workers: int, *, threads: int | None = None, initializer: Callable[..., None] | None = None,
                 initargs: tuple[Any, ...] = ()) -> None:  # fmt: skip
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        self.workers = workers
        self._pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"),
                                         initializer=_start, initargs=(threads, initializer, initargs))  # fmt: skip

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future:  # type: ignore[override]
        with signals_deferred(), sigint_blocked():  # this submit may start a worker
            return self._pool.submit(fn, *args, **kwargs)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        self._pool.shutdown(wait=wait, cancel_futures=cancel_futures)

    def __exit__(self, kind: Any, exc: Any, tb: Any) -> None:  # type: ignore[override]
        if exc is not None:
            self.stop()
        self.shutdown(wait=True, cancel_futures=True)

    def stop(self) -> None:
        """SIGTERM to every worker: each unwinds its job (removing its temporary files) and exits."""
        import multiprocessing

        for child in multiprocessing.active_children():
            child.terminate()


def workers_for(workers: int, *, threads: int | None = None, initializer: Callable[..., None] | None = None,
                initargs: tuple[Any, ...] = ()) -> Executor:  # fmt: skip
    """An `Inline` executor for one worker, a `Pool` for more (use it as a context manager)."""
    if workers <= 1:
        if initializer is not None:
            initializer(*initargs)
        return Inline()
    return Pool(workers, threads=threads, initializer=initializer, initargs=initargs)


@contextlib.contextmanager
def output_to(path: Path) -> Iterator[None]:
    """Send this process's stdout and stderr (file descriptors 1 and 2: progress bars and subprocesses too) to
    `path` for the block: a worker's log, so that two workers' progress bars do not overwrite each other."""
    path.parent.mkdir(parents=True, exist_ok=True)
    sys.stdout.flush()
    sys.stderr.flush()
    target = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666)
    saved, streams = (os.dup(1), os.dup(2)), (sys.stdout, sys.stderr)
    try:
        os.dup2(target, 1)
        os.dup2(target, 2)
        # Python's own writes too, wherever sys.stdout pointed; never closed: a logging handler made during the
        # block keeps its stream, which afterwards writes to the restored descriptor
        sys.stdout = open(1, "w", buffering=1, encoding="utf-8", errors="replace", closefd=False)  # noqa: SIM115
        sys.stderr = open(2, "w", buffering=1, encoding="utf-8", errors="replace", closefd=False)  # noqa: SIM115
        yield
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        sys.stdout, sys.stderr = streams
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in (target, *saved):
            os.close(fd)


def run_each(pool: Executor, width: int, jobs: Sequence[T], work: Callable[[T], R], done: Callable[[T, R], None],
             start: Callable[[T], None] | None = None) -> None:  # fmt: skip
    """`work(job)` for every job, in order, at most `width` at a time in `pool` (`work` must be picklable: a
    module-level function, or a `functools.partial` of one). Here, `start(job)` runs before a job is handed out
    and `done(job, result)` as each one finishes. After a failure no new job starts; those running finish (and
    are `done`), then the first error is raised."""
    queue, running, error = list(jobs), {}, None
    while queue or running:
        while queue and len(running) < width and error is None:
            job = queue.pop(0)
            if start is not None:
                start(job)
            running[pool.submit(work, job)] = job
        if not running:
            break
        finished, _ = wait(running, return_when=FIRST_COMPLETED)
        for future in finished:
            job = running.pop(future)
            try:
                result = future.result()
            except Exception as exc:
                error = error or exc
                continue
            done(job, result)
    if error is not None:
        raise error
