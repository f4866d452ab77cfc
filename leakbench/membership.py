"""Membership attacks: a registry of score functions over one value's token statistics (`ValueStats`).

Each attack maps (stats, k) to a number; `members_score` says which way members lean ("low": lower = more
likely a member, OpenUnlearning's orientation, as for every built-in; "high": the opposite). The built-in five
(LOSS, zlib, Min-K%, Min-K%++ and the reference-calibrated likelihood ratio) are the published `mia_<attack>`
figures (`BUILTIN`, `leakbench.metrics.ATTACKS`); outside packages add attacks through the entry-point group
`leakbench.membership`, reported beside them. Light: no torch.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from leakbench.records import LeakBenchError
from leakbench.registry import Registry, check_reference, resolve


@dataclass
class ValueStats:
    """Per token of one scored value: log p(token | prefix), whether it is the argmax, and the mean and standard
    deviation of log p(. | prefix) under p (Min-K%++'s standardization)."""

    text: str
    logprobs: list[float]
    correct: list[bool]
    mean: list[float]
    std: list[float]
    # log p(token | prefix) of the same value under a reference model that never saw any subject (the reference
    # attack's calibration; its own tokenization, so only the sum is comparable); None when none was scored
    reference_logprobs: list[float] | None = None


@dataclass(frozen=True)
class MembershipAttack:
    """A membership attack's declaration: `score(stats, k) -> float` (a callable or "module:function")."""

    score: Any
    title: str
    members_score: str = "low"  # "low" or "high": where members' scores lie

    def __call__(self, stats: ValueStats, k: float) -> float:
        return float(resolve(self.score, f"membership attack {self.title}")(stats, k))

    def oriented(self, score: float) -> float:
        """The score turned so that lower means member (what `leakbench.privacy.auc` expects)."""
        return score if self.members_score == "low" else -score


def _lowest_mean(values: Sequence[float], k: float) -> float:
    n = max(1, int(len(values) * k))
    return sum(sorted(values)[:n]) / n


def loss(stats: ValueStats, k: float) -> float:
    """LOSS: the mean token negative log-likelihood."""
    return -sum(stats.logprobs) / len(stats.logprobs)


def zlib_ratio(stats: ValueStats, k: float) -> float:
    """zlib: LOSS / the zlib-compressed byte length of the value."""
    return loss(stats, k) / len(zlib.compress(stats.text.encode("utf-8")))


def min_k(stats: ValueStats, k: float) -> float:
    """Min-K%: minus the mean of the lowest k of the token log-probabilities."""
    return -_lowest_mean(stats.logprobs, k)


def min_k_plus_plus(stats: ValueStats, k: float) -> float:
    """Min-K%++: Min-K% on log-probabilities standardized by the mean and deviation of log p(. | prefix)."""
    standardized = [(lp - mu) / sd if sd > 0 else 0.0
                    for lp, mu, sd in zip(stats.logprobs, stats.mean, stats.std, strict=True)]  # fmt: skip
    return -_lowest_mean(standardized, k)


def reference_ratio(stats: ValueStats, k: float) -> float:
    """Reference (Carlini et al. 2021, OpenUnlearning's `mia_reference`): -log p(value | context) under the model
    minus the same under the reference model, in nats over the whole value (a difference of sums, so the two
    tokenizers need not agree); NaN when no reference was scored."""
    if stats.reference_logprobs is None:
        return math.nan
    return sum(stats.reference_logprobs) - sum(stats.logprobs)


def _check(name: str, attack: Any) -> MembershipAttack:
    if not isinstance(attack, MembershipAttack):
        raise LeakBenchError(f"membership attack {name!r}: expected a leakbench.membership.MembershipAttack "
                             f"declaration, got {type(attack).__name__}")  # fmt: skip
    check_reference(attack.score, f"membership attack {name!r}: score")
    if attack.members_score not in ("low", "high"):
        raise LeakBenchError(f"membership attack {name!r}: members_score must be 'low' or 'high', "
                             f"got {attack.members_score!r}")  # fmt: skip
    return attack


ATTACKS: Registry[MembershipAttack] = Registry("leakbench.membership", "membership attack", {
    "loss": MembershipAttack(loss, "LOSS"),
    "zlib": MembershipAttack(zlib_ratio, "zlib"),
    "min_k": MembershipAttack(min_k, "Min-K%"),
    "min_k_plus_plus": MembershipAttack(min_k_plus_plus, "Min-K%++"),
    "reference": MembershipAttack(reference_ratio, "Reference"),
}, _check)  # fmt: skip
BUILTIN: tuple[str, ...] = ATTACKS.builtin  # the published ones: `mia_<attack>` of every record


def scores(stats: ValueStats, k: float, names: Sequence[str] | None = None) -> dict[str, float]:
    """The scores of one value by the attacks `names` (default: every registered one), as computed (not
    oriented)."""
    return {name: ATTACKS[name](stats, k) for name in (ATTACKS if names is None else names)}


def plugins() -> tuple[str, ...]:
    """The attacks outside packages add (entry points): reported beside the built-in ones."""
    return tuple(n for n in ATTACKS if n not in BUILTIN)

