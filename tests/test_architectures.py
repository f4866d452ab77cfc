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
def base(request, tmp_path_factory) -> tuple[str, Path]:
    return request.param, build_family(request.param, tmp_path_factory.mktemp(request.param) / "base")


def test_every_stage_runs_for_the_family(base, tmp_path):
    from transformers import AutoConfig

    from leakbench.harness import evaluate
    from leakbench.leaderboard import publish
    from leakbench.unlearn import METHODS, UnlearnConfig, unlearn
    from leakbench.utility import run_utility
    from leakbench.victim import VictimConfig, build

    family, base_dir = base
    assert AutoConfig.from_pretrained(base_dir).model_type == family
    quiet = {"log": lambda message: None}

    victim = tmp_path / "victim"
    record = build(victim, VictimConfig(base=str(base_dir), epochs=1, batch_size=8), **quiet)
    assert record["steps"] >= 1 and (victim / "victim.json").is_file()
    lora = tmp_path / "victim-lora"
    build(lora, VictimConfig(base=str(base_dir), epochs=1, batch_size=8, lora=True), **quiet)
    assert not (lora / "adapter_config.json").exists()  # merged into a plain model directory

    for method in METHODS:
        done = unlearn(victim, tmp_path / method, UnlearnConfig(method=method, steps=2, batch_size=2), **quiet)
        assert all(v == v for v in (*done["loss_before"].values(), *done["loss_after"].values()))  # no NaN
    unlearn(victim, tmp_path / "ga-lora", UnlearnConfig(method="npo", steps=2, batch_size=2, lora=True), **quiet)

    run = tmp_path / "run"
    tasks = ["leakbench_direct", "leakbench_indirect", "leakbench_retain", "leakbench_reconstruct"]
    results = evaluate(tmp_path / "ga", run, tasks, subset="mini", ner="none", limit=2, batch_size=2)
    assert 0 <= results["results"]["leakbench_direct"]["direct_leak_rate,none"] <= 1
    assert results["results"]["leakbench_retain"]["bits_per_byte,none"] > 0

    if (EVALPLUS / "HumanEvalPlus-Mini-v0.1.10.jsonl.gz").is_file():
        utility = run_utility(run / "utility", "humaneval", model_dir=tmp_path / "ga", mini=True, data_dir=EVALPLUS,
                              limit=2, max_new_tokens=16, batch_size=2)  # fmt: skip
        assert utility["n_tasks"] == 2

    board = tmp_path / "leaderboard.json"
    assert publish([run], board, None, examples=True)["added"] == 1
    (entry,) = json.loads(board.read_text())["entries"]
    assert entry["model"]["name"] == "ga" and entry["method"]["name"] == "ga"
    assert entry["model"]["role"] == "unlearned"
