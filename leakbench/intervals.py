"""Uncertainty at the level the data vary: subjects, not values.

A model's membership figures are computed on value occurrences, but values of one subject are not independent
draws (one subject's fifteen values share a document, a name, a template). The bootstrap here resamples
*subjects*, each side on its own (member subjects and non-member subjects, with replacement, as many as there
are), and takes every value of a drawn subject; a figure comparing two models (PrivLeak) is recomputed on the
same draw for both, so the interval is a paired one. Percentile intervals, a fixed seed: the same record gives
the same interval. Light: numpy only.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

DRAWS = 1000
SEED = 0
LEVEL = 0.95


def subject_draws(members: Sequence[str], non_members: Sequence[str], *, draws: int = DRAWS, seed: int = SEED,
                  ) -> list[tuple[list[str], list[str]]]:  # fmt: skip
    """`draws` resamples: (member subjects, non-member subjects), each drawn with replacement from the distinct
    subjects of its side, as many as that side has."""
    rng = np.random.default_rng(seed)
    ours, theirs = sorted(set(members)), sorted(set(non_members))
    return [([ours[i] for i in rng.integers(0, len(ours), len(ours))],
             [theirs[i] for i in rng.integers(0, len(theirs), len(theirs))]) for _ in range(draws)]  # fmt: skip


class BySubject:
    """The positions of each subject's values in a list of values (a subject drawn twice counts twice)."""

    def __init__(self, subjects: Sequence[str]) -> None:
        found: dict[str, list[int]] = {}
        for i, subject in enumerate(subjects):
            found.setdefault(subject, []).append(i)
        self.positions = {s: np.array(p, dtype=np.int64) for s, p in found.items()}

    def take(self, drawn: Sequence[str]) -> np.ndarray:
        parts = [self.positions[s] for s in drawn if s in self.positions]
        return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)


def percentile_interval(samples: Sequence[float | None], level: float = LEVEL) -> list[float] | None:
    """The central `level` interval of the bootstrap samples (the undefined ones left out); None with none."""
    finite = np.array([x for x in samples if x is not None and np.isfinite(x)], dtype=float)
    if finite.size == 0:
        return None
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(finite, [tail, 100 - tail])
    return [float(low), float(high)]


def bootstrap(figures: Callable[[list[str], list[str]], dict[str, float | None]], members: Sequence[str],
              non_members: Sequence[str], *, draws: int = DRAWS, seed: int = SEED
              ) -> dict[str, list[float] | None]:  # fmt: skip
    """Per figure, its percentile interval over subject resamples: `figures(member subjects, non-member
    subjects)` computes every figure of one resample (so they all share the draw)."""
    samples: dict[str, list[float | None]] = {}
    for drawn_members, drawn_non_members in subject_draws(members, non_members, draws=draws, seed=seed):
        for key, value in figures(drawn_members, drawn_non_members).items():
            samples.setdefault(key, []).append(value)
    return {key: percentile_interval(values) for key, values in samples.items()}


def subject_rate(subjects: Sequence[str], hits: Sequence[float], *, draws: int = DRAWS, seed: int = SEED
                 ) -> list[float] | None:  # fmt: skip
    """The percentile interval of a rate over probes (`hits`: 1 leaked, 0 not; one per probe) when the subjects
    are resampled with replacement, each bringing all of its probes; None without probes."""
    ids = sorted(set(subjects))
    if not ids:
        return None
    where = np.searchsorted(ids, subjects)  # each probe's subject, as its place among the sorted subjects
    sums = np.bincount(where, weights=np.asarray(hits, dtype=float), minlength=len(ids))
    counts = np.bincount(where, minlength=len(ids)).astype(float)
    picks = np.random.default_rng(seed).integers(0, len(ids), (draws, len(ids)))
    return percentile_interval(list(sums[picks].sum(axis=1) / counts[picks].sum(axis=1)))
