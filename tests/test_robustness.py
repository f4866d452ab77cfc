"""The robustness axes' plumbing: subject splits, the cheap measurement, the attacks on tiny models, the stage in
a study, its leaderboard fields and page."""

import itertools
import json

import pytest

from leakbench.data import read_table
from leakbench.records import LeakBenchError, UsageError
from leakbench.robustness import (
    Measurement,
    RobustnessConfig,
    documents_of,
    load_quantized,
    nested_subsets,
    probe_indices,
    relearn,
    relearn_split,
    request_split,
    robustness_table,
    scaled_steps,
    subject_groups,
)
from leakbench.unlearn import UnlearnConfig, requested_documents


@pytest.fixture(scope="module")
def docs():
    return read_table("forget", subset="mini")


@pytest.fixture(scope="module")
def groups(docs):
    return subject_groups(docs, seed=0)


def _values(docs, subjects):
    return {d["text"][o["start"] : o["end"]] for d in docs for o in d["occurrences"] if o["subject_id"] in subjects}


def test_groups_partition_the_subjects_and_keep_shared_documents_together(docs, groups):
    subjects = [s for g in groups for s in g]
    assert sorted(subjects) == sorted({s for d in docs for s in d["subject_ids"]}) and len(subjects) == 50
    where = {s: i for i, g in enumerate(groups) for s in g}
    assert all(len({where[s] for s in d["subject_ids"]}) == 1 for d in docs)  # no document spans two groups
    assert any(len(g) > 1 for g in groups)  # the mini set has documents about several subjects
    assert subject_groups(docs, seed=0) == groups and subject_groups(docs, seed=1) != groups


def test_the_relearning_slice_and_the_evaluated_subjects_are_disjoint(docs, groups):
    sliced, evaluated = relearn_split(groups, 0.1)
    assert set(sliced).isdisjoint(evaluated) and len(sliced) + len(evaluated) == 50
    assert 5 <= len(sliced) < 10  # at least 10%, whole groups
    slice_docs = documents_of(docs, sliced)
    assert slice_docs and all(set(d["subject_ids"]) <= set(sliced) for d in slice_docs)
    # no value of an evaluated subject is in what the attack trains on
    trained = "".join(d["text"] for d in slice_docs)
    assert not [v for v in _values(docs, evaluated) if v in trained and v not in _values(docs, sliced)]
    # every document of the slice's subjects is used: nothing they said is left out
    assert len(slice_docs) == len([d for d in docs if set(d["subject_ids"]) & set(sliced)])


def test_sequential_requests_cover_every_subject_once(docs, groups):
    requests = request_split(groups, 3)
    assert len(requests) == 3 and all(requests)
    flat = [s for r in requests for s in r]
    assert sorted(flat) == sorted(s for g in groups for s in g) and len(flat) == len(set(flat))
    assert max(map(len, requests)) - min(map(len, requests)) <= max(map(len, groups))
    per_request = [documents_of(docs, r) for r in requests]
    assert sum(map(len, per_request)) == len(docs)  # the requests' documents partition the forget set
    with pytest.raises(UsageError, match=r"only \d+ groups"):
        request_split(groups, len(groups) + 1)


def test_scaling_subsets_are_nested_and_reach_each_size(groups):
    sizes = (0.1, 0.25, 0.5, 1.0)
    subsets = nested_subsets(groups, sizes)
    for smaller, larger in itertools.pairwise(subsets):
        assert set(smaller) < set(larger)
    assert [len(s) >= size * 50 for s, size in zip(subsets, sizes, strict=True)] == [True] * 4
    assert len(subsets[-1]) == 50


def test_steps_scale_with_the_documents_unlearned():
    assert scaled_steps(40, 23, 229) == 5  # ceil(4.02)
    assert scaled_steps(40, 229, 229) == 40
    assert scaled_steps(40, 1, 1000) == 1


def test_measurement_on_a_set_of_subjects():
    m = Measurement(
        leaks={"A": [1.0, 0.0], "B": [1.0, 1.0]},
        memorization={"A": [0.5], "B": [1.0, 0.0]},
        members={"A": [0.1], "B": [0.2, 3.0]},  # lower = more likely a member
        non_members=[1.0, 2.0],
        code_bits_per_byte=2.0,
    )
    assert m.on(["A"]) == {"direct_leak_rate": 0.5, "exact_memorization": 0.5, "mia_min_k_plus_plus": 1.0}
    both = m.on(["A", "B"])
    assert both["direct_leak_rate"] == 0.75 and both["exact_memorization"] == 0.5
    assert both["mia_min_k_plus_plus"] == pytest.approx(4 / 6)  # 3.0 ranks above both non-members
    assert m.on(["C"]) == {"direct_leak_rate": None, "exact_memorization": None, "mia_min_k_plus_plus": None}


def test_probe_sample_takes_distinct_fields_first():
    probes = [p for p in read_table("probes", subset="mini", split="forget") if p["kind"] == "direct"]
    picked = [probes[i] for i in probe_indices("mini", None, 4)]
    assert all(p["variant"] == "full" for p in picked)
    by_subject: dict[str, list[str]] = {}
    for p in picked:
        by_subject.setdefault(p["subject_id"], []).append(p["target_field"])
    assert len(by_subject) == 50 and all(len(f) <= 4 for f in by_subject.values())
    for subject, fields in by_subject.items():
        available = {p["target_field"] for p in probes if p["subject_id"] == subject and p["variant"] == "full"}
        assert len(set(fields)) == min(len(fields), len(available))  # no field twice while another is unused


def test_options_are_checked():
    with pytest.raises(UsageError, match="unknown robustness axis 'x'"):
        RobustnessConfig(axes=("relearn", "x"))
    with pytest.raises(UsageError, match="--bits"):
        RobustnessConfig(bits=(2,))
    with pytest.raises(UsageError, match="--sizes"):
        RobustnessConfig(sizes=(0.0, 0.5))
    assert RobustnessConfig(sizes=(1.0, 0.5, 0.5), bits=(4, 8)).sizes == (0.5, 1.0)


def test_unlearning_a_request_takes_only_its_documents(docs):
    one = requested_documents(docs, ("S0001",))
    assert one and all("S0001" in d["subject_ids"] for d in one)
    assert requested_documents(docs, None) is docs
    with pytest.raises(UsageError, match="not forget subjects"):
        requested_documents(docs, ("S9999",))
    with pytest.raises(UsageError, match="empty list of subjects"):
        UnlearnConfig(method="ga", subjects=())


@pytest.mark.parametrize("bits, layer", [(8, "Linear8bitLt"), (4, "Linear4bit")])
def test_quantized_models_load_and_generate(tiny_model_dir, bits, layer):
    import torch

    model, tokenizer = load_quantized(tiny_model_dir, bits)
    kinds = {type(m).__name__ for m in model.modules()}
    assert layer in kinds
    ids = tokenizer("def main():\n    x = ", return_tensors="pt")
    out = model.generate(**ids, max_new_tokens=5, do_sample=False, pad_token_id=tokenizer.pad_token_id)
    assert out.shape[1] == ids["input_ids"].shape[1] + 5
    with torch.no_grad():
        assert torch.isfinite(model(**ids).logits).all()


def test_relearning_fits_the_documents_it_is_given(tiny_model_dir, docs):
    import torch

    from leakbench.corpus import encode_documents
    from leakbench.training import load_causal_lm

    model, tokenizer = load_causal_lm(tiny_model_dir)
    chosen = documents_of(docs, ["S0001"])

    def loss() -> float:
        with torch.no_grad():
            ex = encode_documents(tokenizer, chosen, max_length=256)
            ids = torch.tensor([ex[0].input_ids])
            return float(model(input_ids=ids, labels=ids).loss)

    before = loss()
    wall = relearn(model, tokenizer, chosen, steps=4, lr=1e-2, batch_size=2, seed=0)
    assert wall > 0 and loss() < before - 0.1


def test_the_study_attacks_each_method_and_publishes_the_table(toy_victims, tmp_path):
    from leakbench.leaderboard.publish import load_leaderboard
    from leakbench.pipeline import StudyConfig, add_robustness, run_study

    out = tmp_path / "study"
    options = {"probes": 1, "relearn_steps": 2, "requests": 2, "sizes": (0.5, 1.0), "bits": (4,), "eval_batch_size": 16}
    cfg = StudyConfig(out=out, model=str(toy_victims["victim"]), oracle=str(toy_victims["oracle"]), methods=("ga",),
                      unlearn={"steps": 2, "batch_size": 2}, limit=2, utility=(), batch_size=8, robustness=True,
                      robustness_options=options)  # fmt: skip
    summary = run_study(cfg, log=lambda m: None)
    record = summary["robustness"]["ga"]
    relearned = record["relearn"]
    assert relearned["slice_subjects"] + relearned["evaluated_subjects"] == 50
    assert all(relearned[k]["direct_leak_rate"] is not None for k in ("victim", "unlearned", "attacked", "benign"))
    assert relearned["oracle_attacked"] is not None
    assert [q for q in record["quantize"] if q.endswith("bit")] == ["4bit", "victim_4bit"]
    sequential = record["sequential"]
    assert [p["request"] for p in sequential] == [1, 2] and sequential[-1]["pending"] is None
    assert sequential[0]["served_subjects"] + sequential[0]["pending_subjects"] == 50
    scaling = record["scaling"]
    assert [p["fraction"] for p in scaling] == [0.5, 1.0] and scaling[0]["subjects"] < scaling[1]["subjects"] == 50
    assert scaling[0]["steps"] == scaled_steps(2, scaling[0]["documents"], 229) and scaling[1]["steps"] == 2
    assert json.loads((out / "runs" / "ga" / "robustness.json").read_text())["kind"] == "leakbench-robustness"
    assert "## Robustness" in (out / "summary.md").read_text()
    assert not list(out.glob(".robustness-*"))  # the sequential and scaling models were removed
    board = load_leaderboard(out / "leaderboard.json")
    attacked = [e for e in board.entries if e.robustness is not None]
    assert [e.method.name for e in attacked] == ["ga"]
    assert attacked[0].robustness.quantized[0].bits == 4 and "NF4" in attacked[0].robustness.quantized[0].scheme
    page = (out / "index.html").read_text()
    assert "Robustness: is it really forgotten?" in page and page.count('class="small"') == 2
    table = robustness_table(summary["robustness"])
    assert table.startswith("| method |") and "| ga |" in table
    assert "{" not in table and "(the victim quantized alike: n/a / " in table  # 4-bit only here
    assert json.loads((out / "summary.json").read_text())["ner"] == "none"

    # the verb on the finished study: one axis again, which replaces the method's record
    again = add_robustness(out, RobustnessConfig(axes=("quantize",), bits=(8,), probes=1), model=toy_victims["victim"],
                           oracle=toy_victims["oracle"], log=lambda m: None)  # fmt: skip
    assert "8bit" in again["robustness"]["ga"]["quantize"] and "relearn" not in again["robustness"]["ga"]
    with pytest.raises(LeakBenchError, match="no runs of npo"):
        add_robustness(out, RobustnessConfig(), methods=("npo",), log=lambda m: None)


def _relearned(attacked: float, method: str = "ga") -> dict:
    leak = {"direct_leak_rate": attacked}
    return {"method": method, "settings": {"probes": 4}, "relearn": {
        "unlearned": {"direct_leak_rate": 0.0}, "attacked": leak, "benign": leak, "oracle_attacked": None,
        "recovered": attacked / 0.5, "victim": {"direct_leak_rate": 0.5}, "steps": 24, "lr": 1e-4,
        "slice_subjects": 5, "evaluated_subjects": 45}}  # fmt: skip


def test_the_table_gives_a_method_attacked_at_several_seeds_its_mean_and_interval():
    one = robustness_table({"ga": _relearned(0.2)})
    assert "| ga | 0.0% | 20.0% | 20.0% | n/a | 40.0% | n/a | n/a | n/a | n/a | n/a | n/a | n/a |" in one
    assert "several runs" not in one
    # two unlearning seeds of one victim: Student t with 1 degree of freedom, 12.706 * sd / sqrt(2) = 12.706 * 0.1
    two = robustness_table({"ga-s0": _relearned(0.2), "ga-s1": _relearned(0.4), "npo-s0": _relearned(0.1, "npo")})
    assert "| ga (2 runs) | 0.0% ± 0.0 | 30.0% ± 127.1 | 30.0% ± 127.1 | n/a | 60.0% ± 254.1 |" in two
    assert "| npo | 0.0% | 10.0% |" in two and "several runs (seeds)" in two
    # two victims with two seeds each: the interval over the victims' means (0.2 and 0.6), 12.706 * 0.2
    cells = zip(itertools.product((0, 1), (0, 1)), (0.1, 0.3, 0.5, 0.7), strict=True)
    four = {f"ga-v{v}-s{s}": _relearned(x) for (v, s), x in cells}
    table = robustness_table(four, {label: int(label[4]) for label in four})
    assert "| ga (4 runs) | 0.0% ± 0.0 | 40.0% ± 254.1 |" in table


def test_the_study_attacks_every_seed_and_a_resumed_study_keeps_the_records(toy_victims, tmp_path):
    from leakbench.pipeline import StudyConfig, run_study

    out = tmp_path / "study"
    cfg = StudyConfig(out=out, model=str(toy_victims["victim"]), oracle=str(toy_victims["oracle"]), methods=("ga",),
                      seeds=2, unlearn={"steps": 2, "batch_size": 2}, limit=2, utility=(), batch_size=8,
                      robustness=True, publish=False,
                      robustness_options={"axes": ("relearn",), "probes": 1, "relearn_steps": 2,
                                          "eval_batch_size": 16})  # fmt: skip
    summary = run_study(cfg, log=lambda m: None)
    assert sorted(summary["robustness"]) == ["ga-s0", "ga-s1"]
    made = {label: (out / "runs" / label / "robustness.json").stat().st_mtime_ns for label in ("ga-s0", "ga-s1")}
    assert all(summary["robustness"][label]["relearn"]["steps"] == 2 for label in made)
    assert "| ga (2 runs) |" in (out / "summary.md").read_text()

    logged: list[str] = []
    again = run_study(cfg, log=logged.append)
    assert again["robustness"] == summary["robustness"]
    assert {label: (out / "runs" / label / "robustness.json").stat().st_mtime_ns for label in made} == made
    assert any("attacked already with these settings (reused)" in line for line in logged)


def test_a_1_3_leaderboard_without_robustness_stays_valid(tmp_path):
    from pathlib import Path

    from leakbench.leaderboard.publish import load_leaderboard
    from leakbench.leaderboard.schema import SCHEMA_VERSION

    data = json.loads((Path(__file__).parents[1] / "results" / "leaderboard.json").read_text())
    old = {**data, "schema_version": "1.3", "entries": [
        {k: v for k, v in e.items() if k != "robustness"} for e in data["entries"]]}  # fmt: skip
    (tmp_path / "leaderboard.json").write_text(json.dumps(old))
    board = load_leaderboard(tmp_path / "leaderboard.json")
    assert board.schema_version == SCHEMA_VERSION
    assert len(board.entries) == len(data["entries"]) and all(e.robustness is None for e in board.entries)


@pytest.mark.parametrize("family", ["gpt2", "qwen2"])
def test_4_bit_loading_keeps_each_family_s_output_layer_and_generates(family, tmp_path):
    from leakbench.benchmarks.architectures import build_family
    from leakbench.robustness import full_precision_layers

    model_dir = build_family(family, tmp_path / family, hidden=64, heads=2)
    kept = full_precision_layers(model_dir)
    assert kept == ["lm_head"]  # every other linear (GPT-2: Conv1D) layer has whole blocks of 64 inputs
    model, tokenizer = load_quantized(model_dir, 4)
    quantized = [n for n, m in model.named_modules() if type(m).__name__ == "Linear4bit"]
    assert quantized and "lm_head" not in quantized
    ids = tokenizer("def f():\n    return ", return_tensors="pt")
    out = model.generate(**ids, max_new_tokens=3, do_sample=False, pad_token_id=tokenizer.pad_token_id)
    assert out.shape[1] == ids["input_ids"].shape[1] + 3
