"""The headline ratios, defined once in leakbench.metrics, on inputs whose answers are known."""

from __future__ import annotations

import math

import pytest

from leakbench.metrics import direct_leak_reduction, kept, leak_change
from leakbench.pipeline import ratios


def test_direct_leak_reduction():
    assert direct_leak_reduction(0.8, 0.2) == pytest.approx(0.75)
    assert direct_leak_reduction(0.5, 0.5) == 0.0
    assert direct_leak_reduction(0.4, 0.6) == pytest.approx(-0.5)  # more leakage: negative
    assert direct_leak_reduction(0.0, 0.1) is None  # a victim that leaks nothing: undefined
    assert direct_leak_reduction(None, 0.1) is None and direct_leak_reduction(0.5, math.nan) is None


def test_leak_change_and_utility_kept():
    assert leak_change(0.15, 0.20) == pytest.approx(0.05)
    assert leak_change(math.nan, 0.2) is None
    assert kept(0.5, 0.4) == pytest.approx(0.8)  # higher is better: model / victim
    assert kept(1.2, 1.5, lower_is_better=True) == pytest.approx(0.8)  # bits per byte: victim / model
    assert kept(0.0, 0.3) is None and kept(0.4, None) is None


def test_the_study_uses_the_same_definitions_and_never_nan():
    before = {"direct_leak_rate": 0.0, "indirect_leak_rate": 0.1, "retain_bits_per_byte": 1.2}
    after = {"direct_leak_rate": 0.0, "indirect_leak_rate": 0.25, "retain_bits_per_byte": 1.5}
    out = ratios(before, after)
    assert out["direct_leak_reduction"] is None
    assert out["indirect_leak_change"] == pytest.approx(0.15)
    assert out["retain_utility_retained"] == pytest.approx(0.8)
