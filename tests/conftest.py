import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

# Tests never touch a hub: every model and dataset is built or read locally.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("PRESIDIO_DEVICE", "cpu")


def run_leakbench(*args: str, cwd: Path | None = None, timeout: float = 600, **kwargs) -> subprocess.CompletedProcess:
    """The real `leakbench` command in a subprocess (what a user runs)."""
    return subprocess.run(
        [sys.executable, "-m", "leakbench", *args], capture_output=True, text=True, cwd=cwd, timeout=timeout, **kwargs
    )


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    """A randomly initialised tiny Llama-style model with its own tokenizer (no victim record)."""
    from leakbench.base import init_model, train_tokenizer
    from leakbench.data import read_table
    from leakbench.training import save_model

    out = tmp_path_factory.mktemp("tiny-model") / "tiny"
    tokenizer = train_tokenizer([d["text"] for d in read_table("retain", subset="mini")], vocab_size=400)
    save_model(init_model(tokenizer, hidden=32, layers=1, heads=2), tokenizer, out)
    return out


TOY_BASE = dict(tokens=24_576, corpus_chars=60_000, vocab_size=512, hidden=32, layers=1, heads=2, block=256,
                batch_size=8, warmup_steps=2)  # fmt: skip


@pytest.fixture(scope="session")
def toy_base(tmp_path_factory) -> Path:
    """The base recipe (`leakbench base build`) at a toy scale: a 12-step pretraining on 60k characters."""
    from leakbench.base import BaseConfig, build

    out = tmp_path_factory.mktemp("toy-base") / "base"
    build(out, BaseConfig(**TOY_BASE), log=lambda msg: None)
    return out


@pytest.fixture(scope="session")
def toy_victims(toy_base, tmp_path_factory) -> dict[str, Path]:
    """A victim and its oracle fine-tuned from the toy base (2 exposures of the mini forget set)."""
    import dataclasses

    from leakbench.victim import VictimConfig, build

    root = tmp_path_factory.mktemp("toy-victims")
    cfg = VictimConfig(subset="mini", base=str(toy_base), epochs=2, replay_chars=20_000, block=256, batch_size=8,
                       mix=0.2)  # fmt: skip
    build(root / "victim", cfg, log=lambda msg: None)
    build(root / "oracle", dataclasses.replace(cfg, oracle=True), log=lambda msg: None)
    return {"victim": root / "victim", "oracle": root / "oracle", "config": cfg}


@pytest.fixture(scope="session")
def lm_eval_run(tiny_model_dir, tmp_path_factory) -> tuple[Path, Path, Path]:
    """The design card's flow, for real: `leakbench unlearn` (GA, one step) on the tiny model, then the `lm_eval`
    CLI (hf backend) with --output_path. Returns (model directory, lm-eval output directory, cwd)."""
    root = tmp_path_factory.mktemp("lm-eval-flow")
    model = root / "models" / "ga-tiny"
    proc = run_leakbench(
        "unlearn", "--model", str(tiny_model_dir), "--method", "ga", "--steps", "1", "--batch-size", "2",
        "--out", str(model), cwd=root,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    tasks = run_leakbench("tasks-path").stdout.strip()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    cmd = [
        sys.executable, "-m", "lm_eval", "--model", "hf", "--model_args", f"pretrained={model}",
        "--include_path", tasks, "--tasks", "leakbench_direct,leakbench_indirect", "--device", "cpu",
        "--limit", "2", "--output_path", "out", "--log_samples",
        "--metadata", json.dumps({"subset": "mini", "ner": "none"}),
    ]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=root, env=env, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return model, root / "out", root
