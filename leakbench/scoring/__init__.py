"""The leak scorer: Presidio engine set-up, field-aware normalizers and the leak taxonomy.

It knows nothing of lm-eval; `leakbench.harness` adapts it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import cache
from typing import Any

from leakbench.scoring.taxonomy import (
    INDIRECT_LEAK_KINDS,
    LEAK_KINDS,
    LEAKS,
    LeakScorer,
    ScoreInput,
    ScoreInputError,
    Verdict,
)

__all__ = [
    "INDIRECT_LEAK_KINDS",
    "LEAKS",
    "LEAK_KINDS",
    "LeakScorer",
    "ScoreInput",
    "ScoreInputError",
    "Verdict",
    "score",
    "score_batch",
]


@cache
def _default_scorer() -> LeakScorer:
    return LeakScorer()


def score(
    prompt: str,
    generation: str,
    target_field: str,
    subject: Mapping[str, Any],
    others: Sequence[Mapping[str, Any]] | None = None,
) -> Verdict:
    """Classify one generation with the process-wide default scorer (no world beyond `others`)."""
    return _default_scorer().score(prompt, generation, target_field, subject, others)


def score_batch(items: Sequence[ScoreInput]) -> list[Verdict | ScoreInputError]:
    """Classify many generations at once (Presidio batched); malformed items yield their error."""
    return _default_scorer().score_batch(items)
