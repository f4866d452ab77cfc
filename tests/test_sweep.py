"""How `leakbench sweep` picks a method's defaults: the grid it walks and the rule that chooses."""

from __future__ import annotations

from leakbench.sweep import RULES, choose, grid_points
from leakbench.unlearn import METHODS

VICTIM = {"direct_leak_rate": 0.8, "code_edit_similarity": 0.25, "code_bits_per_byte": 2.0}


def point(name: str, leak: float, edit: float, bpb: float) -> dict:
    return {"point": name, "figures": {"direct_leak_rate": leak, "code_edit_similarity": edit,
                                       "code_bits_per_byte": bpb}}  # fmt: skip


def test_grid_is_the_defaults_then_each_other_value_one_at_a_time():
    points = grid_points("span")
    assert points[0] == {}  # the defaults
    values = [v for v in METHODS["span"].grid["lr"] if v != METHODS["span"].defaults["lr"]]
    assert points[1:] == [{"lr": v} for v in values]


def test_the_lowest_leak_that_keeps_99_percent_and_halves_the_leak_wins():
    points = [point("a", 0.3, 0.25, 2.0), point("b", 0.1, 0.2480, 2.0), point("c", 0.0, 0.2, 2.0)]
    chosen, rule = choose(VICTIM, points)
    assert chosen["point"] == "b" and rule == RULES[0]  # c cuts more but keeps 80% of the edit similarity


def test_otherwise_the_lowest_leak_keeping_91_percent():
    # bits/byte is lower-is-better: 2.0 / 2.1 = 95.2% kept; 2.0 / 2.3 = 87% kept
    points = [point("a", 0.7, 0.25, 2.0), point("b", 0.2, 0.25, 2.1), point("c", 0.0, 0.25, 2.3)]
    chosen, rule = choose(VICTIM, points)
    assert chosen["point"] == "b" and rule == RULES[1]


def test_otherwise_the_point_keeping_the_most_utility():
    points = [point("a", 0.1, 0.20, 2.0), point("b", 0.0, 0.1, 2.0)]
    chosen, rule = choose(VICTIM, points)
    assert chosen["point"] == "a" and rule == RULES[2]
