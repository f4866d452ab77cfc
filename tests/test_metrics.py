"""The headline ratios, defined once in leakbench.metrics, on inputs whose answers are known."""

from __future__ import annotations

import math
from pathlib import Path

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
        "code_edit_similarity": pytest.approx(0.75), "code_bits_per_byte": pytest.approx(0.8),
        "humaneval_plus_pass_at_1": None,
    }  # fmt: skip  (near-neighbour bits/byte is a diagnostic and exact match too small a count: never kept)
    assert out["utility_kept_above_100"] == [] and out["vs_oracle"] is None


def test_oracle_gap_and_over_kept():
    oracle = {"direct_leak_rate": 0.02, "indirect_leak_rate": 0.05, "code_edit_similarity": 0.5,
              "code_exact_match": 0.02, "code_bits_per_byte": 1.5, "near_neighbour_bits_per_byte": 1.0}  # fmt: skip
    model = {"direct_leak_rate": 0.12, "indirect_leak_rate": 0.05, "code_edit_similarity": 0.45,
             "code_exact_match": 0.03, "code_bits_per_byte": 2.0, "near_neighbour_bits_per_byte": 0.5}  # fmt: skip
    gap = oracle_gap(oracle, model)
    assert gap["direct_leak_rate_gap"] == pytest.approx(0.10) and gap["indirect_leak_rate_gap"] == 0.0
    assert gap["code_edit_similarity_vs_oracle"] == pytest.approx(0.9)
    assert "code_exact_match_vs_oracle" not in gap  # reported, not a ratio: a few lines of 300
    assert gap["code_bits_per_byte_vs_oracle"] == pytest.approx(0.75)
    assert "near_neighbour_bits_per_byte_vs_oracle" not in gap
    assert over_kept({"a": 1.0, "b": 1.2, "c": None, "d": 0.9}) == ["b"]


def test_a_metric_added_to_the_table_reaches_every_view(request):
    """One row in `METRICS`, and the flat figures, the comparisons, the study table (summary.md and the
    console), the page and its seeds table all carry it."""
    import re

    from leakbench.leaderboard.page import columns, page_files
    from leakbench.leaderboard.publish import load_leaderboard
    from leakbench.metrics import DIRECT, METRICS, Metric, flat_metrics
    from leakbench.pipeline import table

    # the row docs/extending.md walks through, as written there
    doc = (Path(__file__).resolve().parents[1] / "docs" / "extending.md").read_text(encoding="utf-8")
    row = re.search(r"```python\n# leakbench/metrics.py: a row of METRICS\n(.*?)```", doc, re.S).group(1)
    emails = eval(row, {"Metric": Metric, "DIRECT": DIRECT})
    METRICS.append(emails)  # what adding a row to the table in leakbench/metrics.py does
    request.addfinalizer(lambda: METRICS.remove(emails))

    found = {(DIRECT, "any_leak_rate__email"): 0.25, (DIRECT, "direct_leak_rate"): 0.5}
    flat = flat_metrics(lambda task, name: found.get((task, name)))
    assert flat["email_leak_rate"] == 0.25 and flat["direct_leak_rate"] == 0.5
    oracle = {**flat, "email_leak_rate": 0.05}
    assert comparisons(flat, flat, oracle)["vs_oracle"]["email_leak_rate_gap"] == pytest.approx(0.20)

    rows = {"victim": {"metrics": flat, "comparisons": comparisons(flat, flat, oracle)}}
    columns_md, cells, _ = table(rows)
    assert dict(zip(columns_md, cells[0], strict=True))["email leak"] == "25.0%"
    assert dict(zip(columns_md, cells[0], strict=True))["email leak vs oracle"] == "+20.0 pts"

    assert ("email_leak_rate", "Email leak ↓") in columns()
    board = load_leaderboard(Path(__file__).resolve().parents[1] / "results" / "leaderboard.json")
    victim = next(e for e in board.entries if e.model.role == "victim")
    value = victim.leak_metrics["leakbench_direct/any_leak_rate__email"].value
    page = next(iter(page_files(board, Path("index.html")).values()))
    assert "Email leak ↓</th>" in page and f'<td data-v="{value:.6f}" class="num">{100 * value:.1f}%</td>' in page
    seeds = page[page.index('<table id="seeds">'):]
    assert "<th>Email leak ↓</th>" in seeds[: seeds.index("</thead>")]


def test_the_committed_study_and_page_are_what_their_records_render():
    """results/: summary.md is the table of summary.json, whose rows are the mean of their stored runs; the page
    and its plot are the rendering of leaderboard.json."""
    import json

    from leakbench.leaderboard.page import page_files
    from leakbench.leaderboard.publish import load_leaderboard
    from leakbench.pipeline import summarize, summary_markdown

    results = Path(__file__).resolve().parents[1] / "results"
    summary = json.loads((results / "summary.json").read_text())
    for name, row in summary["rows"].items():
        again = json.loads(json.dumps(summarize(row["runs"])))
        assert _close(again, row), name
    assert (results / "summary.md").read_text() == summary_markdown(summary)
    board = load_leaderboard(results / "leaderboard.json")
    for path, text in page_files(board, results / "index.html").items():
        assert path.read_text() == text, path.name


def _close(a, b) -> bool:
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_close(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return isinstance(b, list) and len(a) == len(b) and all(_close(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float) and isinstance(b, float):
        return math.isclose(a, b, rel_tol=1e-12, abs_tol=1e-15)
    return a == b


def test_the_console_headline_fits_100_columns_and_says_where_the_full_table_is():
    """Issue 22: the study's console headline (model, direct leak, indirect on the direct probes, strongest-attack
    AUC, PrivLeak, code kept; each with its interval) is at most 100 columns wide on the committed 11-row study,
    and with the widest leak@10 a study can print."""
    import json

    from rich.console import Console

    from leakbench.cli import headline
    from leakbench.pipeline import headline_table

    rows = json.loads((Path(__file__).resolve().parents[1] / "results" / "summary.json").read_text())["rows"]
    assert Console(width=1000).measure(headline(rows)).maximum <= 100
    columns, cells, _ = headline_table(rows)
    assert columns == ["model", "direct leak", "leak@10", "indirect", "strongest AUC", "PrivLeak", "code kept"]
    span = dict(zip(columns, cells[[c[0] for c in cells].index("span")], strict=True))
    assert span == {"model": "span", "direct leak": "3.5% ± 3.2", "leak@10": "n/a", "indirect": "13.5% ± 13.8",
                    "strongest AUC": "0.958 ± 0.033", "PrivLeak": "-91.5 ± 6.8%", "code kept": "99.4% ± 8.3"}
    for row in rows.values():  # the widest figures a study can print in the column the committed one lacks
        row["metrics"]["leak_at_10"] = 1.0
        row.setdefault("ci95", {})["leak_at_10"] = 0.999
    assert Console(width=1000).measure(headline(rows)).maximum <= 100
