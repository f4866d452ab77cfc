"""The headline ratios, defined once in leakbench.metrics, on inputs whose answers are known."""

from __future__ import annotations

import math

import pytest

from leakbench.metrics import direct_leak_reduction, kept, leak_change, oracle_gap, over_kept
from leakbench.pipeline import comparisons


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
    before = {"direct_leak_rate": 0.0, "indirect_leak_rate": 0.1, "near_neighbour_bits_per_byte": 1.2,
              "code_edit_similarity": 0.4, "code_exact_match": 0.0, "code_bits_per_byte": 1.6,
              "humaneval_plus_pass_at_1": 0.0}  # fmt: skip
    after = {"direct_leak_rate": 0.0, "indirect_leak_rate": 0.25, "near_neighbour_bits_per_byte": 1.5,
             "code_edit_similarity": 0.3, "code_exact_match": 0.01, "code_bits_per_byte": 2.0,
             "humaneval_plus_pass_at_1": 0.0}  # fmt: skip
    out = comparisons(before, after, None)
    assert out["direct_leak_reduction"] is None
    assert out["indirect_leak_change"] == pytest.approx(0.15)
    assert out["utility_kept"] == {
        "code_edit_similarity": pytest.approx(0.75), "code_exact_match": None, "code_bits_per_byte": pytest.approx(0.8),
        "near_neighbour_bits_per_byte": pytest.approx(0.8), "humaneval_plus_pass_at_1": None,
    }  # fmt: skip
    assert out["utility_kept_above_100"] == [] and out["vs_oracle"] is None


def test_oracle_gap_and_over_kept():
    oracle = {"direct_leak_rate": 0.02, "indirect_leak_rate": 0.05, "code_edit_similarity": 0.5,
              "code_exact_match": 0.02, "code_bits_per_byte": 1.5, "near_neighbour_bits_per_byte": 1.0}  # fmt: skip
    model = {"direct_leak_rate": 0.12, "indirect_leak_rate": 0.05, "code_edit_similarity": 0.45,
             "code_exact_match": 0.03, "code_bits_per_byte": 2.0, "near_neighbour_bits_per_byte": 0.5}  # fmt: skip
    gap = oracle_gap(oracle, model)
    assert gap["direct_leak_rate_gap"] == pytest.approx(0.10) and gap["indirect_leak_rate_gap"] == 0.0
    assert gap["code_edit_similarity_vs_oracle"] == pytest.approx(0.9)
    assert gap["code_exact_match_vs_oracle"] == pytest.approx(1.5)
    assert gap["code_bits_per_byte_vs_oracle"] == pytest.approx(0.75)
    assert gap["near_neighbour_bits_per_byte_vs_oracle"] == pytest.approx(2.0)
    assert over_kept({"a": 1.0, "b": 1.2, "c": None, "d": 0.9}) == ["b"]
