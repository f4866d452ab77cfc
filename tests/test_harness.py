"""The lm-eval tasks end to end: a scripted model with known answers, a tiny real model, and the CLI."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from leakbench.data.subjects import FIELDS
from leakbench.harness import process_results, tasks_path

LIMIT = 24


class _Loader(yaml.SafeLoader):
    pass


_Loader.add_constructor("!function", lambda loader, node: loader.construct_scalar(node))


def _task_yaml(name: str) -> dict:
    data = yaml.load((tasks_path() / f"{name}.yaml").read_text(), Loader=_Loader)
    if "include" in data:
        base = yaml.load((tasks_path() / data["include"]).read_text(), Loader=_Loader)
        data = {**base, **data}
    return data


def test_every_metric_process_results_returns_is_declared():
    from leakbench.data import read_table

    probe = next(p for p in read_table("probes", subset="mini") if p["kind"] == "paraphrase")
    doc = {**probe, "release_dir": str(Path(tasks_path()).parent), "ner": "none"}
    from leakbench.data import release_dir

    doc["release_dir"] = str(release_dir())
    returned = set(process_results(doc, ["nothing"]))
    for task in ("leakbench_direct", "leakbench_indirect", "leakbench_direct_sampled"):
        declared = {m["metric"] for m in _task_yaml(task)["metric_list"]}
        assert returned == declared, task
    assert {f"direct_leak_rate__{f}" for f in FIELDS} <= returned


def _task_manager(**metadata):
    from lm_eval.tasks import TaskManager

    return TaskManager(
        include_path=str(tasks_path()), include_defaults=False, metadata={"subset": "mini", "ner": "none", **metadata}
    )


def _scripted_lm():
    from lm_eval.api.model import LM

    class ScriptedLM(LM):
        """Answers each probe with an output chosen by its position, so every metric is known in advance."""

        def generate_until(self, requests, disable_tqdm: bool = False):
            from leakbench.data import read_table

            outsider = read_table("subjects")[-1]  # not in the mini subset: never in a mini prompt
            out = []
            for req in requests:
                doc, i = req.doc, req.doc_id
                out.append(
                    [
                        doc["target_value"] + "'",  # direct / verbatim
                        "token " + outsider["github_token"],  # indirect / cross_subject
                        "nothing to see",  # none
                        "write to bob.smith@gmail.com",  # none, with other PII
                    ][i % 4]
                )
            return out

        def loglikelihood(self, requests, disable_tqdm: bool = False):
            out = []
            for req in requests:
                doc, i = req.doc, req.doc_id
                is_true = req.args[1].strip() == doc["choices"][doc["answer"]].strip()
                if i % 2 == 0:  # memorized: the true value ranks first
                    out.append((0.0 if is_true else -1.0, is_true))
                else:  # the true value ranks last
                    out.append((-5.0 if is_true else -1.0, False))
            return out

        def loglikelihood_rolling(self, requests, disable_tqdm: bool = False):
            # exactly one bit per byte
            return [-len(req.args[0].encode()) * math.log(2) for req in requests]

    return ScriptedLM()


def test_scripted_model_gives_exactly_the_expected_metrics():
    import lm_eval

    out = lm_eval.simple_evaluate(
        model=_scripted_lm(),
        tasks=["leakbench", "leakbench_reconstruct", "leakbench_retain"],
        limit=LIMIT,
        task_manager=_task_manager(),
    )
    r = out["results"]
    for task in ("leakbench_direct", "leakbench_indirect"):
        m = r[task]
        assert m["direct_leak_rate,none"] == 0.25
        assert m["indirect_leak_rate,none"] == 0.25
        assert m["cross_subject_rate,none"] == 0.25
        assert m["any_leak_rate,none"] == 0.5
        assert m["other_pii_rate,none"] == 0.25
        assert m["reformatted_rate,none"] == m["partial_rate,none"] == m["cross_attribute_rate,none"] == 0.0
    assert r["leakbench"]["direct_leak_rate,none"] == 0.25
    assert r["leakbench"]["any_leak_rate,none"] == 0.5
    assert r["leakbench_reconstruct"]["reconstruction_acc,none"] == 0.5
    assert r["leakbench_reconstruct"]["exposure,none"] == pytest.approx(math.log2(10) / 2)
    assert r["leakbench_retain"]["bits_per_byte,none"] == pytest.approx(1.0)


def test_breakdowns_average_only_over_their_own_probes():
    import lm_eval

    out = lm_eval.simple_evaluate(
        model=_scripted_lm(), tasks=["leakbench_indirect"], limit=LIMIT, task_manager=_task_manager(), log_samples=True
    )
    samples = out["samples"]["leakbench_indirect"]
    m = out["results"]["leakbench_indirect"]
    for kind in ("cross_context", "association", "nl_query", "paraphrase"):
        mine = [s for s in samples if s["doc"]["kind"] == kind]
        key = f"any_leak_rate__{kind},none"
        if mine:
            expected = sum(s["doc_id"] % 4 in (0, 1) for s in mine) / len(mine)
            assert m[key] == pytest.approx(expected)
        else:
            assert math.isnan(m[key])


def _tiny_model(tmp_path_factory):
    from leakbench.base import init_model, train_tokenizer
    from leakbench.data import read_table
    from leakbench.training import save_model

    out = tmp_path_factory.mktemp("tiny")
    texts = [d["text"] for d in read_table("retain", subset="mini")]
    tokenizer = train_tokenizer(texts, vocab_size=512)
    save_model(init_model(tokenizer, hidden=32, layers=1, heads=2), tokenizer, out)
    return out


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    return _tiny_model(tmp_path_factory)


def test_tiny_hf_model_runs_every_task(tiny_model):
    import lm_eval

    out = lm_eval.simple_evaluate(
        model="hf",
        model_args=f"pretrained={tiny_model}",
        tasks=["leakbench", "leakbench_retain", "leakbench_reconstruct"],
        limit=6,
        device="cpu",
        batch_size=8,
        task_manager=_task_manager(),
    )
    r = out["results"]
    for task in ("leakbench_direct", "leakbench_indirect"):
        for metric in ("direct_leak_rate", "indirect_leak_rate", "any_leak_rate", "other_pii_rate"):
            assert 0.0 <= r[task][f"{metric},none"] <= 1.0
    assert r["leakbench_retain"]["bits_per_byte,none"] > 0
    assert 0 <= r["leakbench_reconstruct"]["exposure,none"] <= math.log2(10)


def test_lm_eval_cli_from_any_directory(tiny_model, tmp_path):
    tasks = subprocess.run(
        [sys.executable, "-m", "leakbench", "tasks-path"], capture_output=True, text=True, check=True, cwd=tmp_path
    ).stdout.strip()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    cmd = [
        sys.executable,
        "-m",
        "lm_eval",
        "--model",
        "hf",
        "--model_args",
        f"pretrained={tiny_model}",
        "--include_path",
        tasks,
        "--tasks",
        "leakbench_direct,leakbench_indirect",
        "--device",
        "cpu",
        "--limit",
        "3",
        "--output_path",
        str(tmp_path / "out"),
        "--log_samples",
        "--metadata",
        json.dumps({"subset": "mini", "ner": "none"}),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = list((tmp_path / "out").rglob("results_*.json"))
    assert len(results) == 1
    data = json.loads(results[0].read_text())
    assert "direct_leak_rate,none" in data["results"]["leakbench_direct"]
    assert list((tmp_path / "out").rglob("samples_leakbench_direct_*.jsonl"))


def test_probe_metric_list_is_generated_from_the_vocabulary():
    from leakbench.metrics import PROBE_METRICS, template_is_current

    assert template_is_current(tasks_path()), "run: python -m leakbench.metrics --write"
    declared = [m["metric"] for m in _task_yaml("leakbench_direct")["metric_list"]]
    assert declared == list(PROBE_METRICS) and len(PROBE_METRICS) == 8 + 2 * 15 + 5  # summary, per field, per kind


def test_holdout_probes_are_a_separate_split_scored_against_their_own_subjects():
    """`--metadata '{"split": "holdout"}'` gives the holdout subjects' probes (the guessability baseline), scored
    against those subjects; the default and `release: v1` give the forget subjects' probes only."""
    from leakbench.data import read_table
    from leakbench.harness import direct_probes, indirect_probes

    holdout_ids = {s["subject_id"] for s in read_table("subjects", subset="mini", split="holdout")}
    held = direct_probes(ner="none", subset="mini", split="holdout")["test"]
    assert set(held["subject_id"]) == holdout_ids and set(held["split"]) == {"holdout"}
    forget = direct_probes(ner="none", subset="mini")["test"]
    assert not set(forget["subject_id"]) & holdout_ids and forget.num_rows == 2674  # v3's 50 mini forget subjects
    v2 = direct_probes(ner="none", subset="mini", release="v2")["test"]
    assert direct_probes(ner="none", subset="mini", release="v1")["test"]["probe_id"] == v2["probe_id"]
    assert v2.num_rows == 2899
    assert indirect_probes(ner="none", subset="mini", split="holdout")["test"].num_rows == 500  # 50 subjects x 10
    doc = held[0]
    scores = process_results(doc, [doc["target_value"]])  # a generation that is the holdout value: a direct leak
    assert scores["direct_leak_rate"] == 1.0
