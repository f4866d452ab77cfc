"""lm-eval and unlearning launched as several processes on CPU, and the backend pass-through.

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

pytestmark = pytest.mark.distributed

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


# --- unlearning: `accelerate launch` with two CPU processes (gloo) matches one process at the same global batch

# Tolerance on the losses after training: the two runs see the same global batches and the same token-mean
# losses, so only the order of floating-point reductions differs (measured: ~1e-5 relative).
RELATIVE_TOLERANCE = 1e-4


@pytest.mark.skipif(shutil.which("accelerate") is None, reason="the accelerate CLI is not installed")
@pytest.mark.parametrize("method", ["ga_kl", "rmu"])
def test_two_processes_match_one(toy_victims, tmp_path, method):
    victim = toy_victims["victim"]
    args = ["unlearn", "--model", str(victim), "--method", method, "--steps", "3", "--batch-size", "4", "--lr", "3e-3"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    # `--multi_gpu` selects accelerate's torchrun launcher; with no GPU the Trainer runs each process on the CPU
    # with the gloo backend (`--cpu` alone launches a single process unless mpirun is configured).
    two = subprocess.run(
        [shutil.which("accelerate"), "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
         "--mixed_precision", "no", "--dynamo_backend", "no", "-m", "leakbench", *args, "--out", str(tmp_path / "two")],
        capture_output=True, text=True, env=env, timeout=600,
    )  # fmt: skip
    assert two.returncode == 0, two.stderr[-2000:]
    one = subprocess.run([sys.executable, "-m", "leakbench", *args, "--out", str(tmp_path / "one")],
                         capture_output=True, text=True, env=env, timeout=600)  # fmt: skip
    assert one.returncode == 0, one.stderr[-2000:]
    r1, r2 = (json.loads((tmp_path / d / "unlearn.json").read_text()) for d in ("one", "two"))
    assert r2["distributed"]["world_size"] == 2 and r2["distributed"]["per_device_batch"] == 2
    assert r1["distributed"]["world_size"] == 1
    assert r1["distributed"]["global_batch"] == r2["distributed"]["global_batch"] == 4
    assert r1["loss_before"] == r2["loss_before"]
    for side in ("forget", "retain"):
        assert r1["loss_after"][side] != r1["loss_before"][side]  # it trained
        assert r2["loss_after"][side] == pytest.approx(r1["loss_after"][side], rel=RELATIVE_TOLERANCE), side


def test_the_global_batch_must_split_evenly(toy_victims, tmp_path, monkeypatch):
    from leakbench.records import UsageError
    from leakbench.unlearn import UnlearnConfig, unlearn

    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(UsageError, match=r"--batch-size 3 .* multiple of the 2 processes"):
        unlearn(toy_victims["victim"], tmp_path / "o", UnlearnConfig(method="ga", batch_size=3), log=lambda m: None)
    assert not (tmp_path / "o").exists()
