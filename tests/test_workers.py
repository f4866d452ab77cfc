"""Worker processes: errors come back as themselves, a stopped pool leaves no worker and no half-written folder."""

from __future__ import annotations

import multiprocessing
import os
import shutil
import signal
import time
from pathlib import Path

import pytest

from leakbench.records import LeakBenchError, atomic_dir
from leakbench.workers import Inline, Pool, output_to, workers_for


def _fails(path: str) -> None:
    raise LeakBenchError(f"{path}: no such model directory")


def _writes_slowly(folder: str) -> int:
    with atomic_dir(Path(folder)) as staging:
        (staging / "part").write_text("half")
        time.sleep(60)
    return os.getpid()


def _threads() -> int:
    import torch

    return torch.get_num_threads()


def _start_method() -> str:
    return multiprocessing.get_start_method()


def test_a_workers_own_children_start_the_platforms_way():
    """EvalPlus starts a process per test: in a spawned worker they must not be spawned too (7x slower)."""
    with workers_for(2, threads=1) as pool:
        assert pool.submit(_start_method).result() == multiprocessing.get_context().get_start_method()


def test_an_error_in_a_worker_is_the_same_error_here():
    with workers_for(2, threads=1) as pool:
        assert isinstance(pool, Pool)
        future = pool.submit(_fails, "m")
        with pytest.raises(LeakBenchError, match=r"^m: no such model directory$"):
            future.result()
        assert pool.submit(_threads).result() == 1  # each worker has the threads it was given


def test_one_worker_runs_here_and_keeps_the_error_in_its_future():
    pool = workers_for(1)
    assert isinstance(pool, Inline)
    future = pool.submit(_fails, "m")
    assert isinstance(future.exception(), LeakBenchError)
    assert pool.submit(os.getpid).result() == os.getpid()


def test_leaving_a_pool_by_an_error_stops_its_workers_and_they_clean_up(tmp_path):
    target = tmp_path / "out"
    with pytest.raises(KeyboardInterrupt), workers_for(2, threads=1) as pool:
        pool.submit(_writes_slowly, str(target))
        deadline = time.monotonic() + 60
        while not list(tmp_path.glob(".out.*.tmp")) and time.monotonic() < deadline:
            time.sleep(0.2)  # the worker has started writing
        assert list(tmp_path.glob(".out.*.tmp"))
        raise KeyboardInterrupt
    assert not multiprocessing.active_children()
    assert list(tmp_path.iterdir()) == []  # SIGTERM unwound the worker's atomic writer


def test_a_writer_killed_outright_leaves_nothing_that_outlives_the_next_writer(tmp_path):
    """SIGKILL runs no handler: the staging folder stays until the next writer of the same folder removes it."""
    target, neighbour = tmp_path / "out", tmp_path / ".out.b.abcdefgh.tmp"  # "out.b"'s: not ours to remove
    neighbour.mkdir()
    writer = multiprocessing.get_context("spawn").Process(target=_writes_slowly, args=(str(target),))
    writer.start()
    deadline = time.monotonic() + 60
    while not list(tmp_path.glob(".out.????????.tmp")) and time.monotonic() < deadline:
        time.sleep(0.2)
    os.kill(writer.pid, signal.SIGKILL)
    writer.join()
    assert [p.name for p in tmp_path.glob(".out.????????.tmp")] and not target.exists()
    with atomic_dir(target) as staging:
        (staging / "part").write_text("whole")
    assert sorted(p.name for p in tmp_path.iterdir()) == [neighbour.name, "out"]
    assert (target / "part").read_text() == "whole"


def test_a_swap_killed_halfway_puts_the_folder_back_as_it_was(tmp_path):
    """Killed between moving the old folder aside and renaming the new one in: the old one is put back."""
    target = tmp_path / "out"
    (tmp_path / ".out.abcdefgh.old").mkdir()
    (tmp_path / ".out.abcdefgh.old" / "part").write_text("before")
    (tmp_path / ".out.ijklmno_.tmp").mkdir()
    (tmp_path / ".out.ijklmno_.tmp" / "part").write_text("after")
    with pytest.raises(LeakBenchError, match=r"out: directory exists and is not empty"), atomic_dir(target):
        pass
    assert [p.name for p in tmp_path.iterdir()] == ["out"] and (target / "part").read_text() == "before"
    (tmp_path / ".out.abcdefgh.old").mkdir()  # killed after the swap: the old folder is only removed
    with atomic_dir(target, overwrite=True) as staging:
        (staging / "part").write_text("again")
    assert [p.name for p in tmp_path.iterdir()] == ["out"] and (target / "part").read_text() == "again"
    shutil.rmtree(target)  # ... also when the user removed the folder since: it may be half gone
    (tmp_path / ".out.abcdefgh.old").mkdir()
    (tmp_path / ".out.abcdefgh.old" / "half").write_text("")
    with atomic_dir(target) as staging:
        (staging / "part").write_text("new")
    assert [p.name for p in tmp_path.iterdir()] == ["out"] and os.listdir(target) == ["part"]


def test_output_goes_to_the_log_file_for_the_block(tmp_path, capfd):
    with output_to(tmp_path / "logs" / "a.log"):
        print("inside", flush=True)
        os.system("echo from-a-subprocess")
    print("outside", flush=True)
    assert (tmp_path / "logs" / "a.log").read_text() == "inside\nfrom-a-subprocess\n"
    assert "outside" in capfd.readouterr().out
