"""Publishing: schema, idempotent merge, bad input that never damages the leaderboard, and the page in a
real headless browser."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from leakbench.cli import main
from leakbench.leaderboard import SCHEMA_VERSION, json_schema, load_leaderboard, publish
from leakbench.leaderboard.page import columns
from leakbench.leaderboard.publish import redact
from leakbench.records import LeakBenchError


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Two run directories from real lm-eval runs of a tiny model: a 'victim' and an 'unlearned' one."""
    from leakbench.base import init_model, train_tokenizer
    from leakbench.data import read_table
    from leakbench.harness import evaluate
    from leakbench.training import save_model

    root = tmp_path_factory.mktemp("runs")
    tok = train_tokenizer([d["text"] for d in read_table("retain", subset="mini")], vocab_size=400)
    save_model(init_model(tok, hidden=32, layers=1, heads=2), tok, root / "model")
    tasks = ["leakbench_direct", "leakbench_indirect", "leakbench_retain", "leakbench_code"]
    evaluate(root / "model", root / "victim", tasks, subset="mini", ner="none", limit=4, batch_size=4)
    shutil.copytree(root / "victim", root / "ga")
    (root / "victim" / "run.json").write_text(json.dumps({"model_name": "tiny", "role": "victim", "method": "none"}))
    (root / "ga" / "run.json").write_text(
        json.dumps(
            {
                "model_name": "tiny/ga",
                "role": "unlearned",
                "method": "ga",
                "hyperparameters": {"lr": 0.001},
                "baseline_model_name": "tiny",
            }
        )
    )
    return root


def test_publish_is_idempotent_and_replaces_changed_runs(runs, tmp_path):
    board, page = tmp_path / "leaderboard.json", tmp_path / "index.html"
    assert publish([runs / "victim", runs / "ga"], board, page) == {"added": 2, "replaced": 0, "unchanged": 0}
    first = board.read_bytes()
    assert publish([runs / "victim", runs / "ga"], board, page) == {"added": 0, "replaced": 0, "unchanged": 2}
    assert board.read_bytes() == first
    data = load_leaderboard(board)
    victim, ga = data.entries
    assert victim.method.name == "none" and ga.method.name == "ga"
    assert ga.ratios is not None and ga.ratios.baseline_entry_id == victim.entry_id
    assert ga.ratios.retain_utility_retained == pytest.approx(1.0)  # same weights: nothing lost
    assert "leakbench_direct/direct_leak_rate" in victim.leak_metrics
    for label in ("leakbench_direct/direct_leak_rate", "leakbench_direct/indirect_leak_rate",
                  "leakbench_indirect/indirect_leak_rate"):  # fmt: skip
        found = victim.leak_metrics[label]  # the probed subjects resampled: the interval holds the rate
        assert found.interval is not None and found.interval[0] <= found.value <= found.interval[1], label
    assert victim.provenance.versions["lm_eval"] and victim.data.subset == "mini"
    # a changed run replaces its row
    results = next((runs / "ga").rglob("results_*.json"))
    data = json.loads(results.read_text())
    data["results"]["leakbench_direct"]["direct_leak_rate,none"] = 0.5
    changed = tmp_path / "ga-changed"
    shutil.copytree(runs / "ga", changed)
    (next(changed.rglob("results_*.json"))).write_text(json.dumps(data))
    assert publish([changed], board, page) == {"added": 0, "replaced": 1, "unchanged": 1}
    assert load_leaderboard(board).entries[1].leak_metrics["leakbench_direct/direct_leak_rate"].value == 0.5
    schema = json.loads((tmp_path / "leaderboard.schema.json").read_text())
    assert schema == json.loads(json.dumps(json_schema())) and "Entry" in schema["$defs"]


def _board_with_one_entry(runs, tmp_path):
    board = tmp_path / "leaderboard.json"
    publish([runs / "victim"], board, None)
    return board, board.read_bytes()


def test_a_damaged_leaderboard_is_refused_and_left_alone(runs, tmp_path, capsys):
    board, _ = _board_with_one_entry(runs, tmp_path)
    data = json.loads(board.read_text())
    data["entries"][0]["model"]["role"] = "boss"
    board.write_text(json.dumps(data))
    edited = board.read_bytes()
    rc = main(["publish", str(runs / "ga"), "--leaderboard", str(board), "--html", str(tmp_path / "i.html")])
    err = capsys.readouterr().err
    assert rc == 1 and "leaderboard.json: invalid leaderboard at entries.0.model.role" in err
    assert board.read_bytes() == edited and not (tmp_path / "i.html").exists()
    board.write_text('{"entries": [')
    rc = main(["publish", str(runs / "ga"), "--leaderboard", str(board)])
    assert rc == 1 and "corrupt or truncated JSON" in capsys.readouterr().err


def test_bad_results_files_are_named_and_nothing_is_written(runs, tmp_path, capsys):
    board, before = _board_with_one_entry(runs, tmp_path)
    bad = tmp_path / "bad"
    shutil.copytree(runs / "ga", bad)
    results = next(bad.rglob("results_*.json"))
    text = results.read_text()
    results.write_text(text[: len(text) // 2])
    rc = main(["publish", str(bad), "--leaderboard", str(board)])
    assert rc == 1 and f"{results.name}: corrupt or truncated JSON" in capsys.readouterr().err
    data = json.loads(text)
    data["versions"]["leakbench_direct"] = 0.5
    results.write_text(json.dumps(data))
    rc = main(["publish", str(bad), "--leaderboard", str(board)])
    assert rc == 1 and "task leakbench_direct is version 0.5" in capsys.readouterr().err
    data = json.loads(text)
    data["configs"]["leakbench_direct"]["metadata"]["release_hash"] = "f" * 64
    results.write_text(json.dumps(data))
    rc = main(["publish", str(bad), "--leaderboard", str(board)])
    assert rc == 1 and "data release ffffffffffff" in capsys.readouterr().err
    assert board.read_bytes() == before
    (tmp_path / "empty").mkdir()
    with pytest.raises(LeakBenchError, match="no lm-eval results"):
        publish([tmp_path / "empty"], board)


def test_redaction_of_other_pii():
    text = "ping bob.smith@gmail.com at 8.8.8.8"
    findings = [
        {"entity_type": "EMAIL_ADDRESS", "text": "bob.smith@gmail.com"},
        {"entity_type": "IP_ADDRESS", "text": "8.8.8.8"},
    ]
    assert redact(text, findings) == "ping <EMAIL_ADDRESS> at <IP_ADDRESS>"


def test_examples_never_republish_a_subject_the_evaluation_does_not_report():
    """A model may write another subject's value where the scorer sees no PII (the oracle memorized the
    validation subjects too): the example shows the field, never the value."""
    from leakbench.data import read_table
    from leakbench.leaderboard.publish import _examples
    from leakbench.leaderboard.schema import DataRelease

    probe = read_table("probes", "v3", subset="mini")[0]
    validation = read_table("subjects", "v3", split="validation")[0]
    row = {"doc": probe, "resps": [[f"{validation['email']}> and {validation['username']}"]], "any_leak_rate": 0}
    release = DataRelease(name="v3", hash="x", subset="mini")
    (example,) = _examples({"leakbench_indirect": [row]}, release)
    assert example.generation in ("<email>> and <username>", "<EMAIL_ADDRESS>> and <username>")  # Presidio's or ours


def _browser():
    pytest.importorskip("selenium")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    chromium, driver = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
    if not (chromium.exists() and driver.exists()):
        pytest.skip("Debian's chromium and chromium-driver are not installed (.ci/run installs them)")
    options = webdriver.ChromeOptions()
    options.binary_location = str(chromium)
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--no-first-run",
        "--window-size=1366,900",  # a common laptop screen: the page must not scroll sideways
    ):
        options.add_argument(flag)
    return webdriver.Chrome(service=Service(str(driver)), options=options)


def test_page_in_a_real_headless_browser(runs, tmp_path):
    from selenium.webdriver.common.by import By

    board, page = tmp_path / "leaderboard.json", tmp_path / "index.html"
    changed = tmp_path / "ga"
    shutil.copytree(runs / "ga", changed)
    results = next(changed.rglob("results_*.json"))
    data = json.loads(results.read_text())
    data["results"]["leakbench_direct"]["direct_leak_rate,none"] = 0.75  # so that sorting has work to do
    results.write_text(json.dumps(data))
    publish([runs / "victim", changed], board, page)
    browser = _browser()
    try:
        browser.get(page.as_uri())
        assert browser.title == "LeakBench leaderboard"
        # the page opens on the headline and its legend, with no sideways scrolling; the full table is one click away
        headline = browser.find_elements(By.CSS_SELECTOR, "#headline tbody tr")
        assert [r.find_elements(By.TAG_NAME, "td")[0].text for r in headline] == ["victim", "ga"]
        assert headline[1].find_elements(By.TAG_NAME, "td")[2].text.startswith("75.0%")  # (its samples say 0)
        terms = [t.text for t in browser.find_elements(By.CSS_SELECTOR, "#legend dt")]
        assert {"↓ / ↑", "[low, high]", "PrivLeak", "Yellow cell, ↑ after a kept figure"} <= set(terms)
        assert [r.find_element(By.TAG_NAME, "th").text for r in browser.find_elements(
            By.CSS_SELECTOR, "#fields tbody tr")] == ["victim", "ga"]  # fmt: skip
        assert "Red cells" in terms
        width = browser.execute_script("return [document.documentElement.scrollWidth, window.innerWidth]")
        assert width[0] <= width[1], width
        assert not browser.find_element(By.ID, "board").is_displayed()
        browser.find_element(By.CSS_SELECTOR, "#full summary").click()
        assert browser.find_element(By.ID, "board").is_displayed()
        rows = browser.find_elements(By.CSS_SELECTOR, "#board tbody tr")
        column = {key: i for i, key in enumerate(k for k, _ in columns())}
        assert [r.find_elements(By.TAG_NAME, "td")[column["method"]].text for r in rows] == ["none", "ga"]
        header = browser.find_element(By.CSS_SELECTOR, 'th[data-key="direct_leak_rate"]')
        header.click()  # ascending
        header.click()  # descending: the 75% row first
        rows = browser.find_elements(By.CSS_SELECTOR, "#board tbody tr")
        assert rows[0].find_elements(By.TAG_NAME, "td")[column["method"]].text == "ga"
        assert rows[0].find_elements(By.TAG_NAME, "td")[column["direct_leak_rate"]].text == "75.0%"
        plot = browser.find_element(By.ID, "plot")
        assert plot.is_displayed() and plot.size["width"] > 300 and plot.size["height"] > 200
        # the victim is a square, the unlearned model a dot; each labelled once, labels apart
        assert len(browser.find_elements(By.CSS_SELECTOR, "#plot rect.point")) == 1
        assert len(browser.find_elements(By.CSS_SELECTOR, "#plot circle.point")) == 1
        labels = browser.find_elements(By.CSS_SELECTOR, "#plot text.label")
        assert sorted(label.text for label in labels) == ["ga", "victim"]
        boxes = [label.rect for label in labels]
        assert abs(boxes[0]["y"] - boxes[1]["y"]) >= boxes[0]["height"] * 0.9  # no overlap
        browser.save_screenshot(str(tmp_path / "leaderboard.png"))
        assert (tmp_path / "leaderboard.png").stat().st_size > 10_000
    finally:
        browser.quit()


# --- the documented flow: `lm_eval ... --output_path out`, then `leakbench publish out` ---------------------------


def _entries(board: Path) -> list[dict]:
    return json.loads(board.read_text())["entries"]


def _run_with(out: Path, run: Path, **config) -> Path:
    """A copy of the lm-eval output `out` at `run`, with its results' `config` changed."""
    shutil.copytree(out, run)
    results = next(run.rglob("results_*.json"))
    data = json.loads(results.read_text())
    data["config"].update(config)
    results.write_text(json.dumps(data))
    return run


def test_lm_eval_cli_output_publishes_the_right_entry(lm_eval_run, tmp_path):
    from conftest import run_leakbench

    from leakbench.data import release_hash
    from leakbench.records import model_fingerprint

    model, out, cwd = lm_eval_run
    board = tmp_path / "lb" / "leaderboard.json"
    proc = run_leakbench("publish", str(out), "--leaderboard", str(board), "--html", str(tmp_path / "lb" / "i.html"))
    assert proc.returncode == 0, proc.stderr
    (entry,) = _entries(board)
    assert (
        entry["model"]
        == {
            "name": "ga-tiny",  # the model folder's name, as lm-eval was given it
            "source": f"local:ga-tiny@{model_fingerprint(model)[:12]}",  # portable: no local path
            "parameters": None,
            "role": "unlearned",  # from the model's own unlearn.json
        }
    )
    assert entry["method"]["name"] == "ga" and entry["method"]["hyperparameters"]["steps"] == 1
    assert entry["data"] == {"name": "v3", "hash": release_hash(), "subset": "mini", "split": "forget"}
    results = json.loads(next(out.rglob("results_*.json")).read_text())
    expected = {
        f"{task}/{key.split(',')[0]}": value
        for task in ("leakbench_direct", "leakbench_indirect")
        for key, value in results["results"][task].items()
        if key.endswith(",none") and "_stderr" not in key and isinstance(value, float) and value == value
    }
    assert expected and {k: entry["leak_metrics"][k]["value"] for k in expected} == expected
    text = board.read_text()
    assert str(cwd) not in text and str(model) not in text and "/tmp" not in text


def test_vllm_results_and_string_model_args_publish_the_same_model(lm_eval_run, tmp_path):
    model, out, _ = lm_eval_run
    args = f"pretrained={model},tensor_parallel_size=2,dtype=bfloat16"
    run = _run_with(out, tmp_path / "vllm-run", model="vllm", model_args=args)
    board = tmp_path / "leaderboard.json"
    publish([out], board, None, examples=False)
    assert publish([run], board, None, examples=False) == {"added": 0, "replaced": 0, "unchanged": 1}
    (entry,) = _entries(board)
    assert entry["model"]["name"] == "ga-tiny" and entry["method"]["name"] == "ga"


def _with_metadata(out: Path, run: Path, **metadata) -> Path:
    """A copy of the lm-eval output `out` at `run`, with `metadata` added to every task config."""
    shutil.copytree(out, run)
    for results in run.rglob("results_*.json"):
        data = json.loads(results.read_text())
        for config in data["configs"].values():
            config["metadata"] = {**(config.get("metadata") or {}), **metadata}
        results.write_text(json.dumps(data))
    return run


def test_v1_results_still_publish_as_v1(lm_eval_run, tmp_path, capsys):
    """Results computed on release v1 (recorded by hash, or named with --metadata '{"release": "v1"}') publish
    as v1 now that v3 is the default; an unknown release hash is refused by name."""
    from leakbench.data import release_hash

    _, out, _ = lm_eval_run
    by_hash = _with_metadata(out, tmp_path / "by-hash", release_hash=release_hash("v1"))
    by_name = _with_metadata(out, tmp_path / "by-name", release="v1")
    board = tmp_path / "leaderboard.json"
    publish([by_hash, by_name], board, None, examples=False)
    assert [e["data"]["name"] for e in _entries(board)] == ["v1"]  # one entry: the same model, method and release
    assert _entries(board)[0]["data"]["hash"] == release_hash("v1")
    holdout = _with_metadata(out, tmp_path / "holdout", split="holdout")  # the guessability baseline: its own entry
    publish([holdout], board, None, examples=False)
    assert [e["data"].get("split", "forget") for e in _entries(board)] == ["forget", "holdout"]
    unknown = _with_metadata(out, tmp_path / "unknown", release_hash="0" * 64)
    with pytest.raises(LeakBenchError, match="which this LeakBench does not ship"):
        publish([unknown], board, None, examples=False)


def _privacy_record(**release) -> dict:
    from leakbench.data import release_hash

    metrics = {"exact_memorization": 0.9, "extraction_strength": 0.8, "mia_loss": 0.97, "mia_zlib": 0.96,
               "mia_min_k": 0.95, "mia_min_k_plus_plus": 0.99, "privleak": -98.0, "forget_quality": 1e-12}  # fmt: skip
    return {"kind": "leakbench-privacy", "model": "victim@abc", "reference": "oracle@def", "k": 0.4,
            "headline_attack": "min_k_plus_plus", "counts": {"forget_values": 3, "holdout_values": 2},
            "release": {"name": "v3", "hash": release_hash(), "subset": "mini", **release},
            "metrics": metrics, "intervals": {"mia_min_k_plus_plus": [0.98, 1.0]}, "truth_ratios": [0.1],
            "device": "cpu", "max_length": 512, "wall_time_s": 1.0,
            "context": "each value occurrence given its document before it"}  # fmt: skip


def test_privacy_record_merges_into_the_entry_and_a_mismatched_one_is_refused(runs, tmp_path):
    run = tmp_path / "victim"
    shutil.copytree(runs / "victim", run)
    (run / "privacy.json").write_text(json.dumps(_privacy_record()))
    board = tmp_path / "leaderboard.json"
    publish([run], board, None, examples=False)
    (entry,) = _entries(board)
    assert entry["leak_metrics"]["leakbench_privacy/mia_min_k_plus_plus"] == {
        "value": 0.99,
        "stderr": None,
        "interval": [0.98, 1.0],
    }
    assert entry["privacy"]["verdict"] == "under-unlearned" and entry["privacy"]["reference_model"] == "oracle@def"
    (run / "privacy.json").write_text(json.dumps(_privacy_record(subset="full")))
    with pytest.raises(LeakBenchError, match=r"privacy\.json: measured on release v3/full, but the lm-eval tasks ran"):
        publish([run], board, None, examples=False)
    (run / "privacy.json").write_text('{"kind": "x"}')
    with pytest.raises(LeakBenchError, match="not a LeakBench privacy record"):
        publish([run], board, None, examples=False)
    assert len(_entries(board)) == 1


def test_two_models_in_folders_of_the_same_name_stay_two_entries(lm_eval_run, tiny_model_dir, tmp_path):
    _, out, _ = lm_eval_run
    other = tmp_path / "elsewhere" / "ga-tiny"
    shutil.copytree(tiny_model_dir, other)  # different weights, same folder name
    run = _run_with(out, tmp_path / "other-run", model_args={"pretrained": str(other)})
    board = tmp_path / "leaderboard.json"
    assert publish([out, run], board, None, examples=False) == {"added": 2, "replaced": 0, "unchanged": 0}
    first, second = _entries(board)
    assert first["model"]["name"] == second["model"]["name"] == "ga-tiny"
    assert first["model"]["source"] != second["model"]["source"]
    assert (first["model"]["role"], second["model"]["role"]) == ("unlearned", "external")


def test_a_model_no_longer_on_disk_publishes_by_folder_name(lm_eval_run, tmp_path):
    _, out, _ = lm_eval_run
    run = _run_with(out, tmp_path / "moved", model_args={"pretrained": "/home/someone/models/victim"})
    board = tmp_path / "leaderboard.json"
    publish([run], board, None, examples=False)
    (entry,) = _entries(board)
    assert entry["model"]["name"] == "victim" and entry["model"]["source"] == "local:victim"
    assert "/home/someone" not in board.read_text()


def test_a_hub_id_is_its_own_portable_source(lm_eval_run, tmp_path):
    _, out, _ = lm_eval_run
    run = _run_with(out, tmp_path / "hub", model_args="pretrained=Qwen/Qwen2.5-Coder-7B,dtype=bfloat16")
    board = tmp_path / "leaderboard.json"
    publish([run], board, None, examples=False)
    (entry,) = _entries(board)
    assert entry["model"]["name"] == entry["model"]["source"] == "Qwen/Qwen2.5-Coder-7B"


def test_leaderboard_versions_duplicates_and_migration(runs, tmp_path):
    board, _ = _board_with_one_entry(runs, tmp_path)
    data = json.loads(board.read_text())
    data["entries"].append(data["entries"][0])
    board.write_text(json.dumps(data))
    with pytest.raises(LeakBenchError, match=r"appears twice \(entries\[0\] and entries\[1\]\)"):
        load_leaderboard(board)
    data["entries"].pop()
    board.write_text(json.dumps({**data, "schema_version": "9.9"}))
    with pytest.raises(LeakBenchError, match=r"unknown leaderboard schema_version '9\.9'"):
        load_leaderboard(board)
    # a 1.0 leaderboard recorded absolute model paths: migrated to the folder name, its entry id kept
    old = {**data, "schema_version": "1.0"}
    old["entries"][0]["model"]["source"] = "/work/someone/runs/study/models/victim"
    board.write_text(json.dumps(old))
    migrated = load_leaderboard(board)
    assert migrated.schema_version == SCHEMA_VERSION
    assert migrated.entries[0].model.source == "local:victim"
    assert migrated.entries[0].entry_id == data["entries"][0]["entry_id"]


def test_a_1_4_privleak_is_turned_to_muses_orientation_exactly():
    """Before 1.5, PrivLeak was (AUC - AUC_ref) / AUC_ref x 100: +98% at AUC 0.99 against an oracle at 0.5. MUSE's
    number for the same pair is ((1 - 0.99) - (1 - 0.5)) / (1 - 0.5) x 100 = -98%, read under-unlearned."""
    from leakbench.leaderboard.schema import migrate_1_4, muse_privleak

    assert muse_privleak(98.0, 0.99) == pytest.approx(-98.0)
    assert muse_privleak(-50.0, 0.3) == pytest.approx(75.0)  # reference 0.6: (0.7 - 0.4) / 0.4, over-unlearned
    entry = {"privacy": {"headline_attack": "min_k_plus_plus", "verdict": "under-unlearned"},
             "leak_metrics": {"leakbench_privacy/privleak": {"value": 98.0, "stderr": None},
                              "leakbench_privacy/mia_min_k_plus_plus": {"value": 0.99, "stderr": None}}}  # fmt: skip
    (new,) = migrate_1_4({"schema_version": "1.4", "entries": [entry]})["entries"]
    assert new["leak_metrics"]["leakbench_privacy/privleak"]["value"] == pytest.approx(-98.0)
    assert new["privacy"]["verdict"] == "under-unlearned"


def test_the_committed_leaderboard_loads_and_holds_no_local_path():
    import re

    board = Path(__file__).resolve().parents[1] / "results" / "leaderboard.json"
    text = board.read_text()
    assert json.loads(text)["schema_version"] == SCHEMA_VERSION
    load_leaderboard(board)
    for entry in json.loads(text)["entries"]:
        assert not re.match(r"(/|~|[A-Za-z]:\\\\)", entry["model"]["source"]), entry["model"]
    assert not re.search(r'"(/|[A-Za-z]:\\\\)(home|root|tmp|work|Users|mnt|var|opt)\b', text), "a local path"


def test_no_committed_record_holds_a_local_path():
    """Every JSON record git keeps under results/ and beside the shipped models (the reference run's records, the
    shipped measurements) names models by label or folder name and EvalPlus's data by hash, never by a path."""
    import re
    import subprocess

    root = Path(__file__).resolve().parents[1]
    listed = subprocess.run(["git", "-C", str(root), "ls-files", "-z", "results", "leakbench/models"],
                            capture_output=True, check=True).stdout.decode().split("\0")  # fmt: skip
    records = [root / name for name in listed if name.endswith(".json")]
    assert len(records) > 100  # the reference run's records are among them
    local = re.compile(r'"(/|[A-Za-z]:\\\\)(home|root|tmp|work|Users|mnt|var|opt)\b')
    assert [str(p.relative_to(root)) for p in records if local.search(p.read_text(encoding="utf-8"))] == []


def test_the_plots_front_and_intervals_on_known_points():
    from leakbench.leaderboard.page import _clipped, pareto

    # (code ability, leak): B leaks least, A beats C on both, D has the most ability
    assert pareto([(0.30, 0.10), (0.20, 0.05), (0.25, 0.20), (0.35, 0.30)]) == [1, 0, 3]
    assert pareto([(0.3, 0.1), (0.3, 0.1)]) == [0, 1]  # equal points beat neither
    assert _clipped("direct_leak_rate", -0.07, 0.26) == [0.0, 0.26]
    assert _clipped("mia_strongest", 0.95, 1.02) == [0.95, 1.0]
    assert _clipped("privleak", -103.9, -90.4) == [-100.0, -90.4]
    assert _clipped("code_edit_similarity:kept", -0.1, 1.2) == [0.0, 1.2]
    assert _clipped("code_bits_per_byte", 1.4, 1.6) == [1.4, 1.6]


def test_the_field_heat_map_averages_seeds_and_shades_by_rate():
    from types import SimpleNamespace

    from leakbench.leaderboard.page import field_rates, heatmap_table

    def entry(**rates):
        return SimpleNamespace(leak_metrics={f"leakbench_direct/direct_leak_rate__{f}": SimpleNamespace(value=v)
                                             for f, v in rates.items()})  # fmt: skip

    # two seeds: email averages 0.5 and 1.0; ssn is measured by one seed only (None in the other)
    seeds = [entry(email=0.5, ssn=None), entry(email=1.0, ssn=0.2)]
    assert field_rates(seeds) == {"email": 0.75, "ssn": 0.2}
    table = heatmap_table([{"label": "ga", "fields": field_rates(seeds)}, {"label": "oracle", "fields": {}}])
    assert table.count("<tr>") == 3 and '<th class="field" title="email">' in table  # the header and two rows
    assert 'rgba(192, 57, 43, 0.750); color: #fff" title="ga, email: 75.0%">75</td>' in table
    assert 'rgba(192, 57, 43, 0.200); color: #222" title="ga, ssn: 20.0%">20</td>' in table
    assert "username" not in table  # a field nobody measured gets no column
    assert heatmap_table([{"label": "victim", "fields": {}}]) == ""


def test_a_paired_difference_uses_only_the_shared_seeds():
    from leakbench.leaderboard.page import paired_difference

    a = {(0, 0): 0.5, (0, 1): 0.3, (0, 2): 0.4}
    b = {(0, 0): 0.2, (0, 1): 0.2, (0, 2): 0.1, (1, 0): 0.9}  # (1, 0): a run A does not have
    mean, low, high = paired_difference(a, b)
    half = 4.30265272974946 * (0.0133333333333333**0.5) / 3**0.5  # t(0.975, 2) * sd([.3, .1, .3]) / sqrt(3)
    assert mean == pytest.approx(0.7 / 3) and [low, high] == pytest.approx([0.7 / 3 - half, 0.7 / 3 + half])
    assert paired_difference(a, {(0, 0): 0.1}) is None  # one shared run: no interval
    assert paired_difference({(0, 0): 0.3, (1, 0): 0.5}, {(0, 0): 0.1, (1, 0): 0.2})[0] == pytest.approx(0.25)


def test_a_leak_rates_interval_resamples_subjects():
    from leakbench.intervals import subject_rate

    assert subject_rate(["a", "a", "b"], [1, 1, 1]) == [1.0, 1.0] and subject_rate([], []) is None
    # two subjects, one leaking: a resample holds neither, one or both -> rates 0, 1/2, 1, each end with p 1/4
    assert subject_rate(["b", "a"], [0, 1]) == [0.0, 1.0]
    # subject a has 3 probes, all leaking; b has 1, not: a resample's rate weighs a by its probes (3/4, not 1/2)
    assert set(subject_rate(["a", "a", "a", "b"], [1, 1, 1, 0], draws=200)) <= {0.0, 0.75, 1.0}
