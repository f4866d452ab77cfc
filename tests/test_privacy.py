"""Privacy metrics: each one on inputs whose answer is known by hand, then the verb on the toy victim/oracle."""

from __future__ import annotations

import json
import math
import zlib

import pytest

from leakbench.cli import main
from leakbench.metrics import ATTACKS, verdict
from leakbench.privacy import (
    PrivacyConfig,
    ValueStats,
    auc,
    compare,
    exact_memorization,
    extraction_strength,
    forget_quality,
    measure,
    membership_scores,
    privleak,
    truth_ratio,
    value_stats,
)

# --- the formulas ---------------------------------------------------------------------------------------------


def test_exact_memorization_and_extraction_strength_by_hand():
    assert exact_memorization([True, False, True, True]) == 0.75
    assert extraction_strength([True, True, True]) == 1.0  # greedy reproduces the whole value
    assert extraction_strength([False, True, True]) == pytest.approx(2 / 3)  # from offset 1 on
    assert extraction_strength([True, False, True]) == pytest.approx(1 / 3)  # only the last token
    assert extraction_strength([True, True, False]) == 0.0  # not even the last token


def test_membership_scores_by_hand():
    stats = ValueStats(text="ab", logprobs=[-1.0, -3.0, -2.0], correct=[True, False, True],
                       mean=[-1.5, -1.0, -2.0], std=[0.5, 1.0, 0.0])  # fmt: skip
    scores = membership_scores(stats, k=0.4)  # 40% of 3 tokens: the single lowest one
    assert scores["loss"] == 2.0
    assert scores["zlib"] == 2.0 / len(zlib.compress(b"ab"))
    assert scores["min_k"] == 3.0
    # standardized: (-1+1.5)/0.5 = 1, (-3+1)/1 = -2, zero deviation -> 0; lowest is -2
    assert scores["min_k_plus_plus"] == 2.0
    assert membership_scores(stats, k=1.0)["min_k_plus_plus"] == pytest.approx(1 / 3)  # -(1 - 2 + 0) / 3


def test_auc_privleak_and_forget_quality_on_known_samples():
    assert auc([0.1, 0.2, 0.3], [0.5, 0.9]) == 1.0  # members score lower: perfectly told apart
    assert auc([0.5, 0.5], [0.5, 0.5]) == 0.5
    assert auc([0.9], [0.1]) == 0.0
    assert privleak(0.75, 0.5) == 50.0 and privleak(0.5, 0.5) == 0.0 and privleak(0.25, 0.5) == -50.0
    assert forget_quality([0.1, 0.5, 0.9], [0.1, 0.5, 0.9]) == 1.0
    assert forget_quality([0.0] * 30, [1.0] * 30) < 1e-10
    assert truth_ratio(1.0, [1.0, 1.0]) == 1.0
    assert truth_ratio(0.5, [2.0, 3.0]) == pytest.approx(math.exp(0.5 - 2.5))
    assert [verdict(x) for x in (12.0, -10.5, 3.0, None)] == ["under-unlearned", "over-unlearned", "within ±10%", None]


# --- token statistics from a hand-built model ------------------------------------------------------------------


class _Letters:
    """Character tokenizer over a, b, c, d (ids 0..3) with offsets, as a fast tokenizer returns them."""

    pad_token_id = 0

    def __call__(self, text, **_):
        return {"input_ids": [ord(c) - 97 for c in text], "offset_mapping": [(i, i + 1) for i in range(len(text))]}


class _NextLetter:
    """Predicts letter x + 1 after x with probability 1/2 (logit ln 3 against 0 for the three others)."""

    def __init__(self):
        import torch

        self.weight = torch.nn.Parameter(torch.zeros(1))

    def parameters(self):
        return iter([self.weight])

    def __call__(self, input_ids, attention_mask):
        import torch

        logits = torch.zeros(*input_ids.shape, 4)
        logits.scatter_(2, ((input_ids + 1) % 4)[..., None], math.log(3))
        return type("Out", (), {"logits": logits})


def test_value_stats_on_a_model_with_known_probabilities():
    # "abcab", value "cab": c after b is predicted (1/2), a after c is not (1/6), b after a is (1/2)
    [[stats]] = value_stats(_NextLetter(), _Letters(), [("abcab", [(2, 5)])], max_length=16)
    assert stats.text == "cab"
    assert stats.correct == [True, False, True]
    assert stats.logprobs == pytest.approx([math.log(1 / 2), math.log(1 / 6), math.log(1 / 2)])
    mean = 0.5 * math.log(0.5) + 3 * (1 / 6) * math.log(1 / 6)
    second = 0.5 * math.log(0.5) ** 2 + 3 * (1 / 6) * math.log(1 / 6) ** 2
    assert stats.mean == pytest.approx([mean] * 3)
    assert stats.std == pytest.approx([math.sqrt(second - mean**2)] * 3, rel=1e-4)
    assert exact_memorization(stats.correct) == pytest.approx(2 / 3)
    assert extraction_strength(stats.correct) == pytest.approx(1 / 3)


def test_value_stats_windows_a_long_text_to_end_at_each_value():
    # 3 positions: the window for "cab" is "cab" itself, and its first token has no prediction
    [[stats, start]] = value_stats(_NextLetter(), _Letters(), [("abcab", [(2, 5), (0, 1)])], max_length=3)
    assert stats.correct == [False, True] and stats.text == "cab"
    assert start is None  # a value that starts the text cannot be scored


# --- the verb on the toy victim and oracle ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def toy_records(toy_victims):
    cfg = PrivacyConfig(subset="mini", batch_size=8)
    oracle = measure(toy_victims["oracle"], cfg)
    return oracle, measure(toy_victims["victim"], cfg, reference=oracle)


def test_privacy_record_of_the_toy_models(toy_records):
    oracle, victim = toy_records
    from leakbench.data import read_table, release_dir
    from leakbench.harness import reconstruct_rows

    docs = read_table("forget", subset="mini")
    held = read_table("forget", subset="mini", split="holdout")
    assert victim["counts"]["forget_values"] == sum(len(d["occurrences"]) for d in docs)
    assert victim["counts"]["holdout_values"] == sum(len(d["occurrences"]) for d in held)
    rows = reconstruct_rows(release_dir(), "mini")
    assert victim["counts"]["truth_ratio_rows"] == len(victim["truth_ratios"]) == len(rows) > 0
    for record in toy_records:
        m = record["metrics"]
        assert all(0 <= m[f"mia_{a}"] <= 1 for a in ATTACKS)
        assert 0 <= m["exact_memorization"] <= 1 and 0 <= m["extraction_strength"] <= 1
        assert record["release"]["name"] == "v3" and "/" not in record["model"]
    assert set(victim["metrics"]) >= {"privleak", "forget_quality", *(f"privleak_{a}" for a in ATTACKS)}
    assert victim["reference"] == oracle["model"]


def test_shared_prefix_choice_losses_equal_whole_sequence_scoring(toy_victims):
    """The truth ratio's cached prompt gives the same per-choice losses as scoring each prompt + choice whole."""
    from leakbench.data import release_dir
    from leakbench.harness import reconstruct_rows
    from leakbench.privacy import choice_losses
    from leakbench.training import load_causal_lm

    model, tokenizer = load_causal_lm(toy_victims["victim"])
    rows = reconstruct_rows(release_dir(), "mini")[:6]
    cached = choice_losses(model.eval(), tokenizer, rows, max_length=256)
    requests = [(r["prompt"] + c, [(len(r["prompt"]), len(r["prompt"] + c))]) for r in rows for c in r["choices"]]
    whole = value_stats(model, tokenizer, requests, max_length=256)
    flat = [-sum(s.logprobs) / len(s.logprobs) for [s] in whole]
    # float32: the cached and whole-sequence sums differ in the last digits (3e-5 relative on v3's longer prompts)
    assert [x for row in cached for x in row] == pytest.approx(flat, rel=1e-4, abs=1e-4)


def test_privleak_of_the_oracle_against_itself_is_zero(toy_records):
    oracle, _ = toy_records
    same = compare(oracle, oracle)
    assert all(same[f"privleak_{a}"] == 0.0 for a in ATTACKS) and same["privleak"] == 0.0
    assert same["forget_quality"] == 1.0


def test_privacy_cli_writes_the_record_and_refuses_bad_input(toy_victims, toy_records, tmp_path, capsys):
    oracle, _ = toy_records
    ref = tmp_path / "oracle.json"
    ref.write_text(json.dumps(oracle))
    out = tmp_path / "victim.json"
    assert main(["privacy", "--model", str(toy_victims["victim"]), "--out", str(out), "--reference", str(ref)]) == 0
    assert "PrivLeak" in capsys.readouterr().out
    assert json.loads(out.read_text())["metrics"]["privleak"] is not None
    assert main(["privacy", "--model", str(toy_victims["victim"]), "--out", str(out)]) == 1  # exists: --overwrite
    assert "--overwrite" in capsys.readouterr().err
    bad = tmp_path / "bad.json"
    bad.write_text('{"kind": "something else"}')
    assert main(["privacy", "--model", str(toy_victims["victim"]), "--out", str(tmp_path / "x.json"),
                 "--reference", str(bad)]) == 1  # fmt: skip
    err = capsys.readouterr().err
    assert "not a LeakBench privacy record" in err and not (tmp_path / "x.json").exists()
    assert main(["privacy", "--model", str(toy_victims["victim"]), "--out", str(tmp_path / "y.json"),
                 "--k", "1.5"]) == 2  # fmt: skip
    assert "--k must be a fraction" in capsys.readouterr().err
    other = {**oracle, "release": {**oracle["release"], "subset": "full"}}
    ref.write_text(json.dumps(other))
    assert main(["privacy", "--model", str(toy_victims["victim"]), "--out", str(tmp_path / "z.json"),
                 "--reference", str(ref)]) == 1  # fmt: skip
    assert "measured on another release, subset or k" in capsys.readouterr().err


def test_v1_has_no_non_members(toy_victims):
    from leakbench.records import DataError

    with pytest.raises(DataError, match="no holdout subjects"):
        measure(toy_victims["victim"], PrivacyConfig(release="v1"))
