"""Outside packages extend LeakBench through entry points: an unlearning method (`leakbench.methods`), a
robustness attack (`leakbench.attacks`) and a membership attack (`leakbench.membership`), declared by a tiny
plugin that is not pip-installed, only put on the path with its dist-info folder (importlib.metadata finds it
there), and run for real in subprocesses."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path

import pytest
from conftest import run_leakbench

WALKTHROUGH = Path(__file__).resolve().parents[1] / "docs" / "extending.md"


def walkthrough_files() -> dict[str, str]:
    """The code blocks of docs/extending.md, by the file name their first line gives (`# path`)."""
    blocks = re.findall(r"```[a-z]*\n# (\S+)[^\n]*\n(.*?)```", WALKTHROUGH.read_text(encoding="utf-8"), re.S)
    return dict(blocks)


def entry_points_txt(pyproject: str) -> str:
    """The dist-info entry_points.txt that pip would write for the walkthrough's pyproject.toml."""
    groups = tomllib.loads(pyproject)["project"]["entry-points"]
    return "".join(f"[{group}]\n" + "".join(f"{k} = {v}\n" for k, v in eps.items()) + "\n"
                   for group, eps in groups.items())  # fmt: skip


@pytest.fixture(scope="module")
def plugin_env(tmp_path_factory) -> dict[str, str]:
    """The environment of a Python that sees the plugin: its package and dist-info folder on PYTHONPATH."""
    root = tmp_path_factory.mktemp("plugins")
    files = walkthrough_files()
    (root / "toyplug").mkdir()
    for name in ("toyplug/__init__.py", "toyplug/trainer.py", "toyplug/backend.py"):
        (root / name).write_text(files[name])
    info = root / "toyplug-0.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: toyplug\nVersion: 0.0\n")
    # the walkthrough's entry points, and one that cannot load (a broken plugin must cost one line)
    (info / "entry_points.txt").write_text(entry_points_txt(files["pyproject.toml"]).replace(
        "scaled_ga = toyplug:METHOD\n", "scaled_ga = toyplug:METHOD\nbroken = toyplug:NOT_THERE\n"))  # fmt: skip
    path = os.pathsep.join(p for p in (str(root), os.environ.get("PYTHONPATH")) if p)
    return {**os.environ, "PYTHONPATH": path}


def python(code: str, env: dict[str, str]) -> str:
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, env=env,
                          timeout=900)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


def test_the_registries_list_plugins_without_loading_torch(plugin_env):
    out = python("""
        import json, sys
        import leakbench.cli
        from leakbench.membership import ATTACKS as MEMBERSHIP
        from leakbench.robustness import ATTACKS, AXES
        from leakbench.unlearn import METHODS, UnlearnConfig
        UnlearnConfig(method="scaled_ga", params={"ascent_scale": "0.25"})  # declaration loaded and checked
        print(json.dumps({"methods": list(METHODS), "attacks": list(ATTACKS), "axes": list(AXES),
                          "membership": list(MEMBERSHIP), "title": METHODS["scaled_ga"].title,
                          "torch": "torch" in sys.modules}))
    """, plugin_env)
    found = json.loads(out)
    assert found["methods"][-2:] == ["scaled_ga", "broken"] and found["methods"][0] == "ga"
    assert found["attacks"][-1] == "toy_probe" and "toy_probe" not in found["axes"]  # not a default axis
    assert found["membership"][-1] == "toy_max" and found["title"] == "scaled GA (a plugin)"
    assert found["torch"] is False
    help_text = run_leakbench("unlearn", "--help", env=plugin_env).stdout
    assert "scaled_ga" in help_text and "ga_gd" in help_text
    assert "toy_probe" in run_leakbench("robustness", "--help", env=plugin_env).stdout


def test_a_broken_plugin_is_one_line_naming_it(plugin_env, tiny_model_dir, tmp_path):
    proc = run_leakbench("unlearn", "--model", str(tiny_model_dir), "--method", "broken", "--out",
                         str(tmp_path / "o"), env=plugin_env)  # fmt: skip
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert "'broken'" in proc.stderr and "toyplug:NOT_THERE" in proc.stderr and "cannot be loaded" in proc.stderr


def test_a_plugin_membership_attack_is_scored_beside_the_built_in_ones(plugin_env):
    out = python("""
        import json
        from leakbench.privacy import ValueStats, member_auc, membership_scores
        stats = ValueStats(text="ab", logprobs=[-1.0, -3.0, -2.0], correct=[True, False, True],
                           mean=[-1.0, -1.0, -1.0], std=[1.0, 1.0, 1.0])
        # members score high on this attack: the higher scores are told apart as members
        print(json.dumps({"scores": membership_scores(stats, 0.4), "auc": member_auc("toy_max", [0.0], [-1.0])}))
    """, plugin_env)
    found = json.loads(out)
    assert found["scores"]["toy_max"] == -1.0 and set(found["scores"]) >= {"loss", "zlib", "min_k", "min_k_plus_plus"}
    assert found["auc"] == 1.0


def test_a_plugin_method_unlearns_and_a_plugin_attack_attacks_it(plugin_env, tiny_model_dir, tmp_path):
    study = tmp_path / "study"
    model = study / "models" / "scaled"
    proc = run_leakbench("unlearn", "--model", str(tiny_model_dir), "--method", "scaled_ga", "--steps", "1",
                         "--batch-size", "2", "--param", "ascent_scale=0.25", "--out", str(model),
                         env=plugin_env)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    record = json.loads((model / "unlearn.json").read_text())
    assert record["method"] == "scaled_ga" and record["steps"] == 1
    assert record["hyperparameters"]["ascent_scale"] == 0.25 and record["hyperparameters"]["lr"] == 1e-3
    assert record["loss_after"]["forget"] > record["loss_before"]["forget"]

    # the study's robustness stage with the plugin attack alone (its option set), on the method's model
    python(f"""
        from leakbench.robustness import RobustnessConfig, study_stage
        cfg = RobustnessConfig(axes=("toy_probe",), probes=1, eval_batch_size=16, options={{"label": "hello"}})
        study_stage({str(study)!r}, {str(tiny_model_dir)!r}, None, {{"scaled": "scaled_ga"}}, cfg, subset="mini",
                    log=lambda m: None)
    """, plugin_env)
    attacked = json.loads((study / "runs" / "scaled" / "robustness.json").read_text())
    assert attacked["kind"] == "leakbench-robustness" and attacked["method"] == "scaled_ga"
    assert attacked["settings"]["axes"] == ["toy_probe"] and attacked["settings"]["options"] == {"label": "hello"}
    toy = attacked["plugins"]["toy_probe"]  # an outside attack's record, under its name
    assert toy["label"] == "hello" and toy["method"] == "scaled_ga" and toy["subjects"] == 50
    assert 0 <= toy["unlearned"]["direct_leak_rate"] <= 1
    assert not {"relearn", "quantize", "sequential", "scaling"} & set(attacked)


def test_a_plugin_backend_evaluates_through_lm_eval(plugin_env, tiny_model_dir, tmp_path):
    out = python(f"""
        import json
        from leakbench.harness import BACKENDS, evaluate
        results = evaluate({str(tiny_model_dir)!r}, {str(tmp_path / "run")!r}, ["leakbench_direct"], subset="mini",
                           ner="none", limit=2, backend="toy_hf", batch_size=2)
        print(json.dumps({{"backends": list(BACKENDS), "model": results["config"]["model"],
                          "leak": results["results"]["leakbench_direct"]["direct_leak_rate,none"]}}))
    """, plugin_env)
    found = json.loads(out.strip().splitlines()[-1])
    assert found["backends"] == ["hf", "vllm", "toy_hf"] and found["model"] == "toyplug-hf"
    assert 0 <= found["leak"] <= 1
