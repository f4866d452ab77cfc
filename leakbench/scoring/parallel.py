"""Scoring on several cores: chunks of generations go to worker processes, each holding one scorer.

Presidio and spaCy run one text at a time per process; a GPU-served model generates far faster than one
core scores, so `leakbench score --workers N` (and `score_chunks` below) spread the work. Results come back
in input order. Workers are started with `spawn` (no fork of a process that may hold threads or torch) and
leave Ctrl-C and SIGTERM to the parent, which stops them and cleans up.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

from leakbench.records import LeakBenchError, signals_deferred
from leakbench.scoring.taxonomy import LeakScorer, ScoreInput, ScoreInputError, Verdict
from leakbench.workers import sigint_blocked

_scorer: LeakScorer | None = None


def _start(world: Sequence[Mapping[str, Any]], ner_model: str | None) -> None:
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    global _scorer
    _scorer = LeakScorer(world, ner_model=ner_model)


def _score(items: list[ScoreInput]) -> list[Verdict | ScoreInputError]:
    assert _scorer is not None
    return _scorer.score_batch(items)


def score_chunks(
    chunks: Iterable[list[ScoreInput]],
    *,
    world: Sequence[Mapping[str, Any]] = (),
    ner_model: str | None = None,
    workers: int = 1,
    scorer: LeakScorer | None = None,
) -> Iterator[list[Verdict | ScoreInputError]]:
    """Verdicts for each chunk, in order. `workers=1` scores here (with `scorer` if given, else a new one);
    more start that many processes, each building its own Presidio engine once."""
    if workers <= 1:
        local = scorer or LeakScorer(world, ner_model=ner_model)
        for chunk in chunks:
            yield local.score_batch(chunk)
        return
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor
    from concurrent.futures.process import BrokenProcessPool


    context = multiprocessing.get_context("spawn")
    pool = ProcessPoolExecutor(workers, mp_context=context, initializer=_start, initargs=(list(world), ner_model))
    try:
        # keep at most 2 chunks per worker in flight: bounded memory, in-order results
        pending = []
        for chunk in chunks:
            if len(pending) < workers:  # this submit may start a worker: never cut its start-up in half
                with signals_deferred(), sigint_blocked():
                    pending.append(pool.submit(_score, chunk))
            else:
                pending.append(pool.submit(_score, chunk))
            if len(pending) >= 2 * workers:
                yield pending.pop(0).result()
        for future in pending:
            yield future.result()
    except BrokenProcessPool:
        raise LeakBenchError(
            "a scoring worker process died (out of memory, or its Presidio engine failed to load); "
            "try fewer --workers, or --workers 1 to see the cause"
        ) from None
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
