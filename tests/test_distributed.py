"""lm-eval launched as several processes on CPU, and the backend pass-through.

What was measured here (lm-eval 0.4.13, accelerate, torch CPU builds): `accelerate launch --cpu --num_processes 2
-m lm_eval ...` starts ONE process (accelerate's simple launcher serves `--cpu`), and `torchrun --nproc_per_node 2
-m lm_eval ...` starts two, but lm-eval's HFLM shards documents only when it sees more than one GPU
(`lm_eval/models/huggingface.py`: data parallelism under `gpus > 1`), so on CPU each process evaluates every
document as rank 0 of 1. Data-parallel evaluation is therefore a GPU feature of lm-eval; what can be checked on CPU
is that a multi-process launch runs LeakBench's tasks and gives exactly the metrics of a single process.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

LAUNCHER = shutil.which("torchrun")


def _lm_eval(prefix: list[str], model, out, tasks_dir) -> dict:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    cmd = [
        *prefix, "--model", "hf", "--model_args", f"pretrained={model},dtype=float32", "--include_path",
        str(tasks_dir), "--tasks", "leakbench_direct,leakbench_retain", "--device", "cpu", "--limit", "6",
        "--output_path", str(out), "--metadata", json.dumps({"subset": "mini", "ner": "none"}),
    ]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (path,) = out.rglob("results_*.json")
    return json.loads(path.read_text())


@pytest.mark.skipif(LAUNCHER is None, reason="torchrun is not installed")
def test_two_process_launch_gives_the_single_process_metrics(tiny_model_dir, tmp_path):
    from leakbench.harness import tasks_path

    single = _lm_eval([sys.executable, "-m", "lm_eval"], tiny_model_dir, tmp_path / "one", tasks_path())
    double = _lm_eval([LAUNCHER, "--nproc_per_node", "2", "-m", "lm_eval"], tiny_model_dir, tmp_path / "two",
                      tasks_path())  # fmt: skip
    for task in ("leakbench_direct", "leakbench_retain"):
        assert double["results"][task] == single["results"][task]
    assert single["results"]["leakbench_retain"]["bits_per_byte,none"] > 0
    # the backend arguments were passed through unchanged
    assert double["config"]["model_args"] == single["config"]["model_args"]
    assert single["config"]["model_args"]["dtype"] == "float32"


def test_evaluate_passes_backend_arguments_through(tiny_model_dir, tmp_path):
    from leakbench.harness import evaluate

    results = evaluate(tiny_model_dir, tmp_path / "out", ["leakbench_retain"], subset="mini", limit=2,
                       model_args="dtype=float32,max_length=64")  # fmt: skip
    args = results["config"]["model_args"]
    assert args == f"pretrained={tiny_model_dir},dtype=float32,max_length=64" or (
        args["pretrained"] == str(tiny_model_dir) and args["dtype"] == "float32" and args["max_length"] == 64
    )
