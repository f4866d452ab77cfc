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

from leakbench.data import read_table

pytestmark = pytest.mark.architectures

EVALPLUS = Path(__file__).resolve().parents[2] / "shared" / "evalplus"
FAMILIES = ("llama", "gpt2", "gpt_bigcode", "qwen2", "mistral")
POSITIONS = {"gpt2": 128}  # GPT-2's short position limit (the real one is 1024): prompts must be cut to fit


def _tokenizer(family: str, positions: int):
    """A byte-level BPE trained here, wrapped the way the family's hub tokenizer behaves."""
    from tokenizers import ByteLevelBPETokenizer, processors
    from transformers import PreTrainedTokenizerFast

    llama_like = family in ("llama", "mistral")
    specials = ["<unk>", "<s>", "</s>"] if llama_like else ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    bpe = ByteLevelBPETokenizer()
    texts = [d["text"] for d in read_table("retain", subset="mini")]
    bpe.train_from_iterator(texts, vocab_size=400, min_frequency=2, special_tokens=specials, show_progress=False)
    raw = bpe._tokenizer
    if llama_like:  # a BOS token before every sequence, no pad token (CodeLlama, Mistral)
        raw.post_processor = processors.TemplateProcessing(
            single="<s> $A", pair="<s> $A <s> $B", special_tokens=[("<s>", raw.token_to_id("<s>"))]
        )
        conventions = {"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>", "padding_side": "left"}
    elif family == "qwen2":  # no BOS; pad is the end-of-text token; right padding
        conventions = {"eos_token": "<|endoftext|>", "pad_token": "<|endoftext|>", "padding_side": "right"}
    else:  # GPT-2, StarCoder: BOS = EOS = <|endoftext|>, no pad token
        conventions = {"bos_token": "<|endoftext|>", "eos_token": "<|endoftext|>", "unk_token": "<|endoftext|>"}
    return PreTrainedTokenizerFast(tokenizer_object=raw, model_max_length=positions, **conventions)


def _model(family: str, tokenizer, positions: int):
    import torch
    from transformers import (
        AutoModelForCausalLM,
        GPT2Config,
        GPTBigCodeConfig,
        LlamaConfig,
        MistralConfig,
        Qwen2Config,
    )

    torch.manual_seed(0)
    ids = {"bos_token_id": tokenizer.bos_token_id, "eos_token_id": tokenizer.eos_token_id,
           "pad_token_id": tokenizer.pad_token_id, "vocab_size": len(tokenizer)}  # fmt: skip
    small = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1, "num_attention_heads": 2,
             "max_position_embeddings": positions}  # fmt: skip
    config = {
        "llama": lambda: LlamaConfig(**small, **ids),
        "mistral": lambda: MistralConfig(**small, num_key_value_heads=1, sliding_window=64, **ids),
        "qwen2": lambda: Qwen2Config(**small, num_key_value_heads=1, **ids),
        "gpt2": lambda: GPT2Config(n_embd=32, n_layer=1, n_head=2, n_positions=positions, **ids),
        "gpt_bigcode": lambda: GPTBigCodeConfig(
            n_embd=32, n_layer=1, n_head=2, n_positions=positions, multi_query=True, **ids
        ),
    }[family]()
    return AutoModelForCausalLM.from_config(config)


@pytest.fixture(scope="module", params=FAMILIES)
def base(request, tmp_path_factory) -> tuple[str, Path]:
    family = request.param
    positions = POSITIONS.get(family, 256)
    out = tmp_path_factory.mktemp(family) / "base"
    tokenizer = _tokenizer(family, positions)
    model = _model(family, tokenizer, positions)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return family, out


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
