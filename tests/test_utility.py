"""EvalPlus utility: canonical solutions must pass, samples files are checked, generation runs end to end."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from leakbench.cli import main

SHARED = Path(__file__).resolve().parents[2] / "shared" / "evalplus"
needs_data = pytest.mark.skipif(not SHARED.is_dir(), reason="official EvalPlus files not beside the checkout")


def _canonical_samples(name: str, out: Path) -> Path:
    with gzip.open(SHARED / name, "rt") as fh:
        problems = [json.loads(line) for line in fh]
    out.write_text(
        "".join(
            json.dumps({"task_id": p["task_id"], "solution": p["prompt"] + p["canonical_solution"]}) + "\n"
            for p in problems
        )
    )
    return out


@needs_data
@pytest.mark.parametrize(
    ("dataset", "mini", "file", "n_tasks"),
    [("humaneval", True, "HumanEvalPlus-Mini-v0.1.10.jsonl.gz", 164), ("mbpp", False, "MbppPlus-v0.2.0.jsonl.gz", 378)],
)
def test_canonical_solutions_score_at_least_099(tmp_path, capsys, dataset, mini, file, n_tasks):
    samples = _canonical_samples(file, tmp_path / "s.jsonl")
    rc = main(
        [
            "utility",
            "--dataset",
            dataset,
            *(["--mini"] if mini else []),
            "--samples",
            str(samples),
            "--data-dir",
            str(SHARED),
            "--out",
            str(tmp_path / "out"),
        ]
    )
    assert rc == 0, capsys.readouterr().err
    record = json.loads((tmp_path / "out" / "utility.json").read_text())
    assert record["n_tasks"] == n_tasks
    # MBPP+'s recursion-heavy plus inputs (Mbpp/84, /301, /389, /392) fail or time out on some 2-core machines
    # (plus 0.987-0.989 here, 0.997 on another): the plus bar leaves room for 5 of them; base must stay >= 0.99
    assert record["pass@1"]["base"] >= 0.99 and record["pass@1"]["plus"] >= (0.985 if dataset == "mbpp" else 0.99)
    assert record["dataset_hash"] and record["time_limits"]["gt_time_limit_factor"] == 8.0
    # The output is also EvalPlus's own eval_results.json format.
    ev = json.loads((tmp_path / "out" / "eval_results.json").read_text())
    assert ev["hash"] == record["dataset_hash"] and len(ev["eval"]) == n_tasks
    first = next(iter(ev["eval"].values()))[0]
    assert {"task_id", "solution", "base_status", "plus_status"} <= first.keys()


@needs_data
def test_bad_samples_files_are_named(tmp_path, capsys):
    bad = tmp_path / "bad.jsonl"
    args = ["utility", "--dataset", "humaneval", "--mini", "--samples", str(bad), "--data-dir", str(SHARED),
            "--out", str(tmp_path / "o")]  # fmt: skip
    bad.write_text('{"task_id": "HumanEval/0", "solution": "def f(): pass"}\n{"task_id": "HumanEval/9999"}\n')
    assert main(args) == 1
    assert "bad.jsonl:2: unknown task_id 'HumanEval/9999'" in capsys.readouterr().err
    bad.write_text('{"task_id": "HumanEval/0", "sol')
    assert main(args) == 1
    assert "bad.jsonl:1: not valid JSON" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_missing_data_says_how_to_provide_it(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "x.jsonl").write_text('{"task_id": "Mbpp/2", "solution": "pass"}\n')
    rc = main(
        [
            "utility",
            "--dataset",
            "mbpp",
            "--samples",
            "x.jsonl",
            "--data-dir",
            str(tmp_path),
            "--out",
            str(tmp_path / "o"),
        ]
    )
    assert rc == 1 and "MbppPlus-v0.2.0.jsonl.gz: no such EvalPlus data file" in capsys.readouterr().err
    rc = main(["utility", "--dataset", "mbpp", "--mini", "--samples", "x.jsonl", "--out", str(tmp_path / "o")])
    assert rc == 2 and "--mini exists for humaneval only" in capsys.readouterr().err


@needs_data
def test_generation_with_a_tiny_model_writes_a_complete_record(tmp_path):
    from leakbench.base import init_model, train_tokenizer
    from leakbench.data import read_table
    from leakbench.training import save_model
    from leakbench.utility import run_utility

    tok = train_tokenizer([d["text"] for d in read_table("retain", subset="mini")], vocab_size=400)
    save_model(init_model(tok, hidden=32, layers=1, heads=2), tok, tmp_path / "m")
    record = run_utility(
        tmp_path / "u",
        "humaneval",
        model_dir=tmp_path / "m",
        mini=True,
        data_dir=SHARED,
        limit=3,
        max_new_tokens=8,
        batch_size=3,
    )
    assert record["n_tasks"] == 3 and 0.0 <= record["pass@1"]["plus"] <= 1.0
    assert set(record["task_status"]) == {"HumanEval/0", "HumanEval/1", "HumanEval/2"}
    lines = (tmp_path / "u" / "samples.jsonl").read_text().splitlines()
    assert len(lines) == 3 and all(json.loads(x)["task_id"].startswith("HumanEval/") for x in lines)
