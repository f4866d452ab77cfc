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
    ks_test,
    measure,
    membership_scores,
    privleak,
    strongest,
    tpr_at_fpr,
    truth_ratio,
    value_stats,
)
from leakbench.records import DataError

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
    assert math.isnan(scores["reference"])  # no reference model scored
    stats.reference_logprobs = [-2.0, -3.0]  # the reference's own tokenization: only the sums compare
    assert membership_scores(stats)["reference"] == 1.0  # -log p = 6 under the model, 5 under the reference


def test_auc_privleak_and_forget_quality_on_known_samples():
    assert auc([0.1, 0.2, 0.3], [0.5, 0.9]) == 1.0  # members score lower: perfectly told apart
    assert auc([0.5, 0.5], [0.5, 0.5]) == 0.5
    assert auc([0.9], [0.1]) == 0.0
    assert auc([0.1, 0.4], [0.3, 0.5]) == 0.75  # 3 of the 4 (member, non-member) pairs ordered
    assert auc([0.1, math.nan], [0.5]) == 1.0 and auc([math.nan], [0.5]) is None  # undefined scores left out
    assert truth_ratio(1.0, [1.0, 1.0]) == 1.0
    assert truth_ratio(0.5, [2.0, 3.0]) == pytest.approx(math.exp(0.5 - 2.5))


def test_privleak_is_muses_number():
    """MUSE / OpenUnlearning (src/evals/metrics/privacy.py): ((1 - AUC) - (1 - AUC_ref)) / (1 - AUC_ref) x 100."""
    assert privleak(0.99, 0.5) == pytest.approx(-98.0)  # a memorizing model: about -100%
    assert privleak(0.75, 0.6) == pytest.approx(-37.5)  # (0.25 - 0.4) / 0.4
    assert privleak(0.3, 0.6) == pytest.approx(75.0)  # (0.7 - 0.4) / 0.4: pushed below the holdout
    assert privleak(0.6, 0.6) == 0.0 and privleak(0.9, 1.0) is None and privleak(None, 0.5) is None
    assert [verdict(x) for x in (-12.0, 10.5, 3.0, None)] == ["under-unlearned", "over-unlearned", "within ±10%", None]


def test_forget_quality_with_its_ks_statistic_and_log10_p():
    assert forget_quality([0.1, 0.5, 0.9], [0.1, 0.5, 0.9]) == 1.0
    apart = ks_test([0.0] * 30, [1.0] * 30)  # D = 1: exactly 2 of the C(60, 30) orderings are as extreme
    assert apart["forget_quality_ks"] == 1.0
    assert apart["forget_quality"] == pytest.approx(2 / math.comb(60, 30), rel=1e-6)
    assert apart["forget_quality_log10_p"] == pytest.approx(math.log10(2 / math.comb(60, 30)), rel=1e-6)
    far = ks_test([0.0] * 3000, [1.0] * 3000)  # p underflows: exact in log space, 2 / C(6000, 3000) again
    assert far["forget_quality"] == 0.0
    assert far["forget_quality_log10_p"] == pytest.approx(math.log10(2) - math.log10(math.comb(6000, 3000)), rel=1e-12)
    # D = 680/720 on 720 rows each (the study's truth ratios; the victim's D is 0.94): 2 C(1440, 40) / C(1440, 720),
    # the one term of the sum, about 1e-360: no float holds p, log10 p is exact
    tail = ks_test(list(range(720)), [x + 680 - 0.5 for x in range(720)])
    exact = math.log10(2 * math.comb(1440, 40)) - math.log10(math.comb(1440, 720))
    assert tail["forget_quality_ks"] == pytest.approx(680 / 720) and tail["forget_quality"] == 0.0
    assert tail["forget_quality_log10_p"] == pytest.approx(exact, rel=1e-12)
    uneven = ks_test([0.0] * 3000, [1.0] * 2000)  # other sizes: the asymptotic law, 2 exp(-2 x^2), x^2 = nm/(n+m)
    assert uneven["forget_quality_log10_p"] == pytest.approx((math.log(2) - 2 * 1200) / math.log(10), rel=1e-9)


def test_forget_quality_compares_truth_ratios_of_one_granularity():
    values = {"subject_ids": ["a", "x"], "member": [True, False], "scores": {a: [0.9, 0.1] for a in ATTACKS}}
    row_level = {"metrics": {f"mia_{a}": 0.9 for a in ATTACKS}, "truth_ratios": [0.1, 0.2, 0.9],
                 "truth_ratio_subjects": ["a", "a", "b"], "truth_ratio_fields": ["email", "phone", "email"],
                 "values": values}  # fmt: skip
    reference = {**row_level, "truth_ratios": [0.8, 0.9, 1.0], "metrics": {f"mia_{a}": 0.5 for a in ATTACKS}}
    got = compare(row_level, reference)  # 2 of 3 rows below every reference row: D = 2/3, exact p = 0.6
    assert got["forget_quality_ks"] == pytest.approx(2 / 3) and got["forget_quality"] == pytest.approx(0.6)
    older = {k: v for k, v in reference.items() if k != "truth_ratio_fields"}  # one ratio per subject
    with pytest.raises(DataError, match="truth ratios at two granularities"):
        compare(dict(row_level), older)


def test_tpr_at_low_fpr_and_the_strongest_attack():
    members, non_members = [0.1, 0.2, 0.3, 0.9], [0.25, 0.5, 0.6, 0.7, 0.8]
    assert tpr_at_fpr(members, non_members, 0.2) == 0.75  # one non-member may be flagged: threshold 0.5
    assert tpr_at_fpr(members, non_members, 0.001) == 0.5  # none may: threshold 0.25
    assert tpr_at_fpr(members, non_members, 1.0) == 1.0
    assert strongest({"loss": 0.6, "zlib": 0.2, "reference": None}) == "zlib"  # 0.3 from chance, either way
    assert strongest({"loss": 0.7, "zlib": 0.3}) == "loss" and strongest({"loss": None}) is None


def test_subject_bootstrap_is_deterministic_and_resamples_subjects():
    from leakbench.intervals import BySubject, bootstrap, subject_draws

    draws = subject_draws(["a", "a", "b"], ["x", "y", "z"], draws=50, seed=3)
    assert draws == subject_draws(["a", "b"], ["z", "y", "x"], draws=50, seed=3)  # by distinct subject
    assert all(len(m) == 2 and len(n) == 3 and set(m) <= {"a", "b"} for m, n in draws)
    assert list(BySubject(["a", "b", "a"]).take(["a", "a", "c"])) == [0, 2, 0, 2]  # twice drawn, twice counted
    separated = bootstrap(lambda m, n: {"auc": auc([0.1] * len(m), [0.9] * len(n))}, ["a", "b"], ["x", "y"])
    assert separated == {"auc": [1.0, 1.0]}
    share = bootstrap(lambda m, n: {"a": m.count("a") / len(m)}, list("abcd"), ["x"], draws=2000)["a"]
    assert 0 <= share[0] < 0.25 < share[1] <= 1


def test_membership_figures_compute_each_auc_once_per_draw(monkeypatch):
    """The headline's figures reuse the AUCs already computed, and PrivLeak's paired interval computes only the
    headline attack's AUC, once per model and draw (five attacks on two models per draw cost 5x)."""
    import leakbench.privacy as privacy
    from leakbench.intervals import DRAWS

    values = {"subject_ids": ["a", "a", "b", "x", "y"], "member": [True, True, True, False, False],
              "scores": {a: [0.1, 0.2, 0.3, 0.8, 0.9] for a in ATTACKS}}  # fmt: skip
    calls = []
    monkeypatch.setattr(privacy, "auc", lambda m, n: calls.append(1) or auc(m, n))
    headline, found, spread = privacy.membership_figures(values)
    assert headline == ATTACKS[0] and found["mia_strongest"] == 1.0 and spread["mia_strongest"] == [1.0, 1.0]
    assert len(calls) == len(ATTACKS) * (1 + DRAWS)
    record = {"metrics": dict(found), "headline_attack": headline, "truth_ratios": [0.5], "values": values}
    calls.clear()
    oracle = {**values, "scores": {a: [0.3, 0.6, 0.9, 0.5, 0.7] for a in ATTACKS}}  # AUC 4/6 on all values
    compare(record, {"metrics": {f"mia_{a}": 4 / 6 for a in ATTACKS}, "truth_ratios": [0.5], "values": oracle})
    assert len(calls) == 2 * DRAWS and len(record["intervals"]["privleak"]) == 2


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
    assert victim["counts"]["truth_ratio_rows"] == len(rows) > 0
    assert victim["counts"]["truth_ratio_subjects"] == len({r["subject_id"] for r in rows})
    # TOFU's one truth ratio per question: here per forget subject and field
    assert victim["truth_ratio_subjects"] == [r["subject_id"] for r in rows]
    assert victim["truth_ratio_fields"] == [r["target_field"] for r in rows]
    assert len(victim["truth_ratios"]) == len(rows)
    assert victim["counts"]["forget_subjects"] == len({o["subject_id"] for d in docs for o in d["occurrences"]})
    assert len(victim["values"]["member"]) == victim["counts"]["forget_values"] + victim["counts"]["holdout_values"]
    for record in toy_records:
        m = record["metrics"]
        assert all(0 <= m[f"mia_{a}"] <= 1 for a in ATTACKS)  # the reference attack's too: the base scored
        assert m["mia_strongest"] == m[f"mia_{record['headline_attack']}"] and record["calibration"].startswith("base@")
        lo, hi = record["intervals"]["mia_strongest"]
        assert lo <= m["mia_strongest"] <= hi and 0 <= m["tpr_at_0_1pct_fpr"] <= m["tpr_at_1pct_fpr"] <= 1
        assert 0 <= m["exact_memorization"] <= 1 and 0 <= m["extraction_strength"] <= 1
        assert record["release"]["name"] == "v3" and "/" not in record["model"]
    assert set(victim["metrics"]) >= {"privleak", "forget_quality", "forget_quality_ks", "forget_quality_log10_p",
                                      *(f"privleak_{a}" for a in ATTACKS)}  # fmt: skip
    assert victim["metrics"]["privleak"] == victim["metrics"][f"privleak_{victim['headline_attack']}"]
    lo, hi = victim["intervals"]["privleak"]
    assert lo <= victim["metrics"]["privleak"] <= hi
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
    assert same["forget_quality"] == 1.0 and same["forget_quality_ks"] == 0.0 and same["forget_quality_log10_p"] == 0


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
