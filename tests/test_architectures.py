"""Every common code-model architecture end to end on CPU: tiny, randomly initialised models of the families
users bring (CodeLlama/Llama, GPT-2, StarCoder/GPTBigCode, Qwen2.5-Coder/Qwen2, Mistral), each with a locally
trained tokenizer in its family's conventions (BOS or not, a pad token or none, left or right padding, a short
position limit), through every LeakBench stage: `victim build --base` (full and LoRA), every unlearning method,
the lm-eval tasks, EvalPlus generation and `leakbench publish`.

Slow (about a minute a family): run alone with `pytest -m architectures`.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from leakbench.benchmarks.architectures import FAMILIES, build_family

pytestmark = pytest.mark.architectures

EVALPLUS = Path(__file__).resolve().parents[2] / "shared" / "evalplus"


@pytest.fixture(scope="module", params=FAMILIES)
def family(request, tmp_path_factory) -> tuple[str, Path]:
    """A tiny model of the family, a victim fine-tuned from it, and that victim unlearned with GA."""
    from leakbench.unlearn import UnlearnConfig, unlearn
    from leakbench.victim import VictimConfig, build

    root = tmp_path_factory.mktemp(request.param)
    base = build_family(request.param, root / "base")
    build(root / "victim", VictimConfig(base=str(base), epochs=1, batch_size=8), log=lambda m: None)
    unlearn(root / "victim", root / "ga", UnlearnConfig(method="ga", steps=2, batch_size=2), log=lambda m: None)
    return request.param, root


def test_victims_and_every_unlearning_method(family):
    from transformers import AutoConfig

    from leakbench.schemas import model_record
    from leakbench.unlearn import METHODS, UnlearnConfig, unlearn
    from leakbench.victim import VictimConfig, build

    name, root = family
    assert AutoConfig.from_pretrained(root / "victim").model_type == name
    assert model_record(root / "victim")["steps"] >= 1
    build(root / "victim-lora", VictimConfig(base=str(root / "base"), epochs=1, batch_size=8, lora=True),
          log=lambda m: None)  # fmt: skip
    assert not (root / "victim-lora" / "adapter_config.json").exists()  # merged into a plain model directory
    for method in METHODS:
        done = unlearn(root / "victim", root / f"u-{method}", UnlearnConfig(method=method, steps=2, batch_size=2),
                       log=lambda m: None)  # fmt: skip
        assert all(v == v for v in (*done["loss_before"].values(), *done["loss_after"].values()))  # no NaN
    unlearn(root / "victim", root / "npo-lora", UnlearnConfig(method="npo", steps=2, batch_size=2, lora=True),
            log=lambda m: None)  # fmt: skip


def test_lm_eval_tasks_and_publish(family):
    from leakbench.harness import evaluate
    from leakbench.leaderboard import publish

    _, root = family
    run = root / "run"
    tasks = ["leakbench_direct", "leakbench_indirect", "leakbench_retain", "leakbench_reconstruct",
             "leakbench_direct_sampled"]  # fmt: skip
    results = evaluate(root / "ga", run, tasks, subset="mini", ner="none", limit=2, batch_size=2)
    assert 0 <= results["results"]["leakbench_direct"]["direct_leak_rate,none"] <= 1
    assert 0 <= results["results"]["leakbench_direct_sampled"]["direct_leak_rate,leak@5"] <= 1
    assert results["results"]["leakbench_retain"]["bits_per_byte,none"] > 0
    board = root / "leaderboard.json"
    assert publish([run], board, None, examples=True)["added"] == 1
    (entry,) = json.loads(board.read_text())["entries"]
    assert (entry["model"]["name"], entry["model"]["role"], entry["method"]["name"]) == ("ga", "unlearned", "ga")


@pytest.mark.skipif(not (EVALPLUS / "HumanEvalPlus-Mini-v0.1.10.jsonl.gz").is_file(),
                    reason="the official EvalPlus files are not beside the checkout (../shared/evalplus)")
def test_evalplus_generation(family):
    from leakbench.utility import run_utility

    _, root = family
    utility = run_utility(root / "utility", "humaneval", model_dir=root / "ga", mini=True, data_dir=EVALPLUS,
                          limit=2, max_new_tokens=16, batch_size=2)  # fmt: skip
    assert utility["n_tasks"] == 2 and set(utility["pass@1"]) == {"base", "plus"}
