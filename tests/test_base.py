"""The embedded base: the pretraining recipe at a toy scale (record, resume), and the shipped weights."""

from __future__ import annotations

import json

import pytest
from conftest import TOY_BASE, run_leakbench

from leakbench.base import EMBEDDED, EMBEDDED_SHA256, BaseConfig, build, embedded
from leakbench.heldout import HELD_OUT
from leakbench.records import sha256_file


def test_toy_base_records_its_corpus_tokenizer_and_training(toy_base):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    record = json.loads((toy_base / "base.json").read_text())
    assert record["kind"] == "base" and record["steps"] == TOY_BASE["tokens"] // (8 * 256)
    assert record["tokens_seen"] == record["steps"] * 8 * 256
    assert record["corpus"]["held_out"] == list(HELD_OUT)
    files = record["corpus"]["files"]
    assert files and all(len(f["sha256"]) == 64 for f in files)
    assert not {f["path"] for f in files} & set(HELD_OUT)
    assert record["loss_curve"] and record["wall_time_s"] > 0
    assert record["weights_sha256"] == sha256_file(toy_base / "model.safetensors")
    model = AutoModelForCausalLM.from_pretrained(toy_base)
    assert model.config.hidden_size == 32 and len(AutoTokenizer.from_pretrained(toy_base)) == 512


def test_an_interrupted_build_resumes_from_its_checkpoint(tmp_path):
    import transformers

    cfg = BaseConfig(**{**TOY_BASE, "tokens": 20 * 8 * 256, "seed": 3})
    whole = build(tmp_path / "whole", cfg, log=lambda m: None)

    class Stop(transformers.TrainerCallback):
        def on_save(self, args, state, control, **kwargs):
            raise KeyboardInterrupt  # right after the first checkpoint is written

    original = transformers.Trainer.__init__

    def with_stop(self, *args, **kwargs):
        original(self, *args, **kwargs)
        self.add_callback(Stop)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(transformers.Trainer, "__init__", with_stop)
        with pytest.raises(KeyboardInterrupt):
            build(tmp_path / "resumed", cfg, log=lambda m: None)
    assert not (tmp_path / "resumed").exists()  # nothing that looks complete
    messages: list[str] = []
    resumed = build(tmp_path / "resumed", cfg, log=messages.append)
    assert any(m.startswith("resuming from checkpoint-") for m in messages)
    assert resumed["weights_sha256"] == whole["weights_sha256"]  # the same model as an uninterrupted build
    assert not list(tmp_path.glob(".resumed.pretraining-*"))  # the checkpoints are gone once complete


def test_base_cli_rejects_bad_sizes_before_work(tmp_path):
    proc = run_leakbench("base", "build", "--out", str(tmp_path / "b"), "--hidden", "30", "--heads", "4")
    assert proc.returncode == 2 and "even head size" in proc.stderr
    proc = run_leakbench("base", "build", "--out", str(tmp_path / "b"), "--tokens", "0")
    assert proc.returncode == 2 and "--tokens must be" in proc.stderr
    assert not (tmp_path / "b").exists()


@pytest.mark.skipif(not EMBEDDED_SHA256, reason="the embedded base is not built yet")
def test_the_shipped_base_is_the_released_one_and_loads_offline():
    from transformers import AutoModelForCausalLM

    weights = embedded() / "model.safetensors"
    assert sha256_file(weights) == EMBEDDED_SHA256
    assert sum(p.stat().st_size for p in EMBEDDED.iterdir()) <= 25 * 2**20
    record = json.loads((EMBEDDED / "base.json").read_text())
    assert record["weights_sha256"] == EMBEDDED_SHA256 and record["corpus"]["held_out"] == list(HELD_OUT)
    model = AutoModelForCausalLM.from_pretrained(EMBEDDED, local_files_only=True)
    assert sum(p.numel() for p in model.parameters()) == record["parameters"]
