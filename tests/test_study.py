"""The study against its oracle: rows, comparisons, flags, the run record and what gets published."""

from __future__ import annotations

import dataclasses
import json
import re
import shutil
from pathlib import Path

import pytest

from leakbench import pipeline
from leakbench.leaderboard.publish import keep_entry, kept_entry_is_current, publish
from leakbench.pipeline import Study, StudyConfig, comparisons, run_study, ship_measurements, summarize, table
from leakbench.records import LeakBenchError, UsageError, model_label
from leakbench.schemas import RunRecord, UnlearnRecord
from leakbench.victim import PREBUILT

RESULTS = Path(__file__).resolve().parents[1] / "results"


def validation_mentions(folder: Path, skip: tuple[str, ...] = ()) -> list[str]:
    """Every validation item (a validation subject's id, name, e-mail or SSN; a validation held-out module) that a
    text file under `folder` names, as 'file: item'."""
    from leakbench.data import read_table
    from leakbench.heldout import SPLITS

    items = set(SPLITS["validation"])
    for subject in read_table("subjects", subset="full", split="validation"):
        items |= {subject["subject_id"], subject["name"], subject["email"], subject["ssn"]}
    pattern = re.compile(rf"(?<![\w.]){trie_pattern(items)}(?![\w])")
    found = []
    reference = folder / "reference"  # the reference run's working folder: only what git keeps of it is committed
    kept = set(kept_by_git(reference)) if folder == RESULTS else None
    for path in sorted(folder.rglob("*")):
        if kept is not None and path.is_relative_to(reference) and path not in kept:
            continue
        if path.is_file() and path.suffix in {".json", ".jsonl", ".md", ".html", ".svg", ".txt", ".log"} \
                and not path.name.startswith(skip):  # fmt: skip
            found += [f"{path.relative_to(folder)}: {m.group()}" for m in pattern.finditer(path.read_text("utf-8"))]
    return found


def trie_pattern(words: set[str]) -> str:
    """A regex matching any of `words`, their common prefixes factored out: an alternation of 1,600 items would
    try every one at each character (minutes over the committed results)."""
    trie: dict[str, dict] = {}
    for word in words:
        node = trie
        for ch in word:
            node = node.setdefault(ch, {})
        node[""] = {}

    def build(node: dict[str, dict]) -> str:
        alternatives = [re.escape(ch) + build(child) for ch, child in sorted(node.items()) if ch]
        if not alternatives:
            return ""
        body = alternatives[0] if len(alternatives) == 1 else f"(?:{'|'.join(alternatives)})"
        return f"(?:{body})?" if "" in node else body

    return build(trie)


def kept_by_git(folder: Path) -> list[Path]:
    """The files under `folder` that git keeps of a study run in results/reference (its .gitignore's whitelist)."""
    rules = (RESULTS / "reference" / ".gitignore").read_text().splitlines()
    kept = {line[1:] for line in rules if line.startswith("!") and not line.endswith("/")}
    return [p for p in sorted(folder.rglob("*")) if p.is_file() and p.name in kept]


def _metrics(**changes):
    base = {
        "direct_leak_rate": 0.9, "indirect_leak_rate": 0.2, "any_leak_rate_direct_probes": 0.9,
        "any_leak_rate_indirect_probes": 0.3, "other_pii_rate": 0.0, "near_neighbour_bits_per_byte": 1.2,
        "code_edit_similarity": 0.40, "code_exact_match": 0.02, "code_bits_per_byte": 1.5,
        "reformatted_rate": 0.0, "partial_rate": 0.1, "cross_attribute_rate": 0.0, "cross_subject_rate": 0.0,
        "humaneval_plus_pass_at_1": 0.0,
    }  # fmt: skip
    return {**base, **changes}


def test_utility_kept_above_100_is_flagged_and_undefined_pass_at_1_explained():
    victim = _metrics()
    oracle = _metrics(direct_leak_rate=0.01, indirect_leak_rate=0.05, code_edit_similarity=0.41)
    npo = _metrics(direct_leak_rate=0.3, indirect_leak_rate=0.25, near_neighbour_bits_per_byte=0.6,
                   code_edit_similarity=0.38, code_bits_per_byte=1.2)  # fmt: skip
    rows = {"victim": {"metrics": victim}, "oracle": {"metrics": oracle}, "npo": {"metrics": npo}}
    for row in rows.values():
        row["comparisons"] = comparisons(victim, row["metrics"], oracle)
    # near-neighbour bits/byte halved (a diagnostic, never kept); held-out bits/byte 1.5 -> 1.2 is kept at 125%
    assert rows["npo"]["comparisons"]["utility_kept_above_100"] == ["code_bits_per_byte"]
    columns, cells, notes = table(rows)
    assert [c[0] for c in cells] == ["victim", "oracle", "npo"]
    npo_cells = dict(zip(columns, cells[2], strict=True))
    assert npo_cells["near-neighbour bits/byte"] == "0.600"
    assert npo_cells["held-out bits/byte (kept)"] == "1.200 (125.0% ↑)"
    assert npo_cells["code edit sim. (kept)"] == "0.380 (95.0%)"
    assert npo_cells["direct leak vs oracle"] == "+29.0 pts" and npo_cells["indirect leak vs oracle"] == "+20.0 pts"
    assert npo_cells["direct-leak reduction"] == "66.7%" and npo_cells["indirect change"] == "+5.0 pts"
    assert npo_cells["humaneval+ pass@1 (kept)"] == "0.000 (n/a)"
    assert npo_cells["code edit sim. vs oracle"] == f"{100 * 0.38 / 0.41:.1f}%"
    assert any("above 100%" in n for n in notes)
    assert any("humaneval+ pass@1 kept is n/a: the victim's pass@1 is 0" in n for n in notes)
    oracle_cells = dict(zip(columns, cells[1], strict=True))
    assert oracle_cells["direct leak vs oracle"] == "+0.0 pts"


def test_oracle_needs_an_external_victim(tmp_path, tiny_model_dir):
    with pytest.raises(UsageError, match="--oracle needs --model"):
        StudyConfig(out=tmp_path / "s", oracle=str(tiny_model_dir))


def test_seed_rows_show_mean_and_confidence_interval():
    from leakbench.pipeline import summarize

    victim = _metrics()
    runs = [{"label": f"npo-s{i}", "metrics": _metrics(direct_leak_rate=rate, privleak=leak)}
            for i, (rate, leak) in enumerate(((0.2, 30.0), (0.4, 50.0)))]  # fmt: skip
    for run in runs:
        run["comparisons"] = comparisons(victim, run["metrics"], None)
    row = summarize(runs)
    assert row["n_runs"] == 2 and row["metrics"]["direct_leak_rate"] == pytest.approx(0.3)
    half = 12.7062047361747 * (0.2 / 2**0.5) / 2**0.5  # t(0.975, 1) * sample sd / sqrt(n)
    assert row["ci95"]["direct_leak_rate"] == pytest.approx(half)
    assert row["comparisons"]["direct_leak_reduction"] == pytest.approx(1 - 0.3 / 0.9)
    columns, cells, notes = table({"victim": {"metrics": victim, "comparisons": {}}, "npo": row})
    npo = dict(zip(columns, cells[1], strict=True))
    assert npo["runs"] == "2" and npo["direct leak"] == f"30.0% ± {100 * half:.1f}"
    assert npo["PrivLeak"] == f"+40.0 ± {10 * 12.7062047361747:.1f}% (over-unlearned)"
    assert any("95% confidence" in n for n in notes)


def test_seed_intervals_over_several_victims_are_two_level():
    """Two victims, two unlearning seeds each: the interval is Student t on the two victims' means (1 degree of
    freedom), not on four runs counted as independent."""
    from leakbench.metrics import mean_ci
    from leakbench.pipeline import summarize

    t1, t3 = 12.7062047361747, 3.18244630528371  # t(0.975, 1), t(0.975, 3)
    mean, half = mean_ci([0.1, 0.2, 0.3, 0.5], victims=[0, 0, 1, 1])  # victim means 0.15 and 0.4
    assert mean == pytest.approx(0.275) and half == pytest.approx(t1 * (0.25 / 2**0.5) / 2**0.5)
    assert mean_ci([0.1, 0.2, 0.3, 0.5], victims=[7] * 4)[1] == pytest.approx(t3 * 0.17078251276599 / 2)
    assert mean_ci([0.1, 0.2, 0.3, 0.5])[1] == mean_ci([0.1, 0.2, 0.3, 0.5], victims=[7] * 4)[1]
    assert mean_ci([0.1, None, 0.3], victims=[0, 1, 1]) == (
        pytest.approx(0.2),
        pytest.approx(t1 * 0.2 / 2**0.5 / 2**0.5),
    )
    assert mean_ci([0.1, 0.2], victims=[0, 0]) == (pytest.approx(0.15), pytest.approx(t1 * 0.1 / 2**0.5 / 2**0.5))
    runs = [{"label": f"ga-v{v}-s{s}", "victim_seed": v, "metrics": _metrics(direct_leak_rate=rate)}
            for (v, s), rate in zip(((0, 0), (0, 1), (1, 0), (1, 1)), (0.1, 0.2, 0.3, 0.5), strict=True)]  # fmt: skip
    for run in runs:
        run["comparisons"] = comparisons(_metrics(), run["metrics"], None)
    row = summarize(runs)
    assert row["ci95"]["direct_leak_rate"] == pytest.approx(half)
    assert row["comparisons_ci95"]["direct_leak_reduction"] == pytest.approx(half / 0.9)


def test_the_workers_get_the_references_first_then_the_longest_unlearning():
    from leakbench.pipeline import Job, measure_order
    from leakbench.unlearn import UnlearnConfig

    def job(label, method=None, steps=None, unlearned=False):
        cfg = None if method is None or unlearned else UnlearnConfig(method=method, steps=steps)
        return Job(label, Path(label), {}, method=method, unlearn=cfg)

    jobs = [job("oracle"), job("victim"), job("ga", "ga", 20), job("ga_gd", "ga_gd", 80), job("npo", "npo", 40),
            job("ga_kl", "ga_kl", 20), job("rmu", "rmu", 300, unlearned=True)]  # fmt: skip
    order = [j.label for j in measure_order(jobs)]
    assert order == ["oracle", "victim", "ga_gd", "npo", "ga", "ga_kl", "rmu"]  # ties keep their order
    again = [dataclasses.replace(j, privacy_only=f"{j.label}@0") if j.label in ("ga", "rmu") else j for j in jobs]
    order = [j.label for j in measure_order(again)]
    assert order == ["oracle", "victim", "ga", "rmu", "ga_gd", "npo", "ga_kl"]  # privacy again: minutes, first


def test_study_with_an_oracle_compares_and_publishes_every_row(toy_victims, tmp_path, monkeypatch):
    out = tmp_path / "study"
    cfg = StudyConfig(out=out, model=str(toy_victims["victim"]), oracle=str(toy_victims["oracle"]), methods=("ga",),
                      unlearn={"steps": 2, "batch_size": 2}, limit=2, utility=(), batch_size=8,
                      seeds=2)  # fmt: skip
    summary = run_study(cfg, log=lambda m: None)
    rows = summary["rows"]
    assert list(rows) == ["victim", "oracle", "ga"]
    assert rows["ga"]["n_runs"] == 2 and [r["label"] for r in rows["ga"]["runs"]] == ["ga-s0", "ga-s1"]
    assert set(rows["ga"]["ci95"]) >= {"direct_leak_rate", "privleak"}
    m = {label: row["metrics"] for label, row in rows.items()}
    gap = rows["ga"]["comparisons"]["vs_oracle"]
    assert gap["direct_leak_rate_gap"] == pytest.approx(m["ga"]["direct_leak_rate"] - m["oracle"]["direct_leak_rate"])
    assert all(m[label]["code_edit_similarity"] is not None for label in rows)
    assert m["oracle"]["privleak"] == 0.0 and m["oracle"]["forget_quality"] == 1.0  # by construction
    assert all(m[label]["mia_min_k_plus_plus"] is not None for label in rows)
    for key in ("leak_at_5", "leak_at_10", "reconstruction_acc"):  # beyond greedy (here on --limit's probes)
        assert all(0 <= m[label][key] <= 1 for label in rows), key
    assert all(m[label]["leak_at_5"] <= m[label]["leak_at_10"] for label in rows)  # any of 5 -> any of 10
    labels = ["victim", "oracle", "ga-s0", "ga-s1"]
    for label in labels:
        RunRecord.model_validate(json.loads((out / "runs" / label / "run.json").read_text()))
        assert json.loads((out / "runs" / label / "privacy.json").read_text())["kind"] == "leakbench-privacy"
    md = (out / "summary.md").read_text()
    assert "| oracle |" in md and "code edit sim. (kept)" in md and "strongest AUC" in md
    board = json.loads((out / "leaderboard.json").read_text())
    assert len(board["entries"]) == 4
    entries = {e["model"]["role"]: e for e in board["entries"]}
    assert set(entries) == {"victim", "oracle", "unlearned"}
    ga = entries["unlearned"]
    assert ga["group"].endswith("/ga") and ga["privacy"]["reference_model"] == entries["oracle"]["model"]["name"]
    assert ga["leak_metrics"]["leakbench_privacy/privleak"]["value"] is not None
    assert ga["ratios"]["oracle_entry_id"] == entries["oracle"]["entry_id"]
    html = (out / "index.html").read_text()
    assert "Code edit sim." in html and ">oracle<" in html and "Over seeds" in html and "PrivLeak" in html
    assert validation_mentions(out) == []  # no validation subject or module in anything the study writes

    # every stage resumes: a re-run reuses the unlearned models and the measured run folders
    logged: list[str] = []
    weights = (out / "models" / "ga-s1" / "model.safetensors").stat().st_mtime_ns
    again = run_study(cfg, log=logged.append)
    assert sum("(reused)" in line for line in logged) == 2 + 2 * 2  # the two references; two seeds, twice each
    assert (out / "models" / "ga-s1" / "model.safetensors").stat().st_mtime_ns == weights
    assert json.dumps(again["rows"]) == json.dumps(rows)  # read back, the same bytes as measured
    assert again["jobs"] == 2 and (out / "logs" / "ga-s1.log").is_file()  # two worker processes (2+ cores)
    # a folder holding its samples whose key is of the older form (it named the EvalPlus folder): reused, in
    # today's form, its entry made again from the samples
    run = RunRecord.read(out / "runs" / "ga-s0")
    older_key = {**run.evaluation, "evalplus_dir": None, "utility": []}
    run.model_copy(update={"evaluation": older_key}).write(out / "runs" / "ga-s0")
    study = Study(cfg, log=lambda m: None)
    _, _, _, todo = study.pending(study.models_stage(0))
    assert todo == [] and RunRecord.read(out / "runs" / "ga-s0").evaluation == run.evaluation
    assert kept_entry_is_current(out / "runs" / "ga-s0")

    # on another machine, from what git keeps of a reference run (results/reference/.gitignore: the records, no
    # weights, no samples): nothing unlearned or measured again, the same rows and the same leaderboard
    clone = tmp_path / "clone"
    for path in kept_by_git(out):
        (clone / path.relative_to(out)).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, clone / path.relative_to(out))
    assert not list(clone.rglob("*.safetensors")) and not list(clone.rglob("samples_*.jsonl"))
    logged.clear()
    moved = run_study(dataclasses.replace(cfg, out=clone), log=logged.append)
    assert not any("unlearning" in line or "unlearned already" in line for line in logged)
    assert sum("measured already" in line for line in logged) == 4
    assert {k: v["metrics"] for k, v in moved["rows"].items()} == {k: v["metrics"] for k, v in rows.items()}
    assert json.loads((clone / "leaderboard.json").read_text()) == board
    (clone / "runs" / "ga-s1" / "privacy.json").write_bytes(b"{}")  # records changed after the entry was kept
    with pytest.raises(LeakBenchError, match=r"entry\.json: made from other records"):
        publish([clone / "runs" / "ga-s1"], tmp_path / "board" / "leaderboard.json")

    # records of an older LeakBench (one truth ratio per subject, a forget quality from them), kept as git keeps
    # them: each unlearned model is made again byte for byte and only privacy is measured again, into the figures
    # and the leaderboard this LeakBench measures
    older = tmp_path / "older"
    shutil.copytree(out, older)
    for label in labels:
        run_dir = older / "runs" / label
        record = json.loads((run_dir / "privacy.json").read_text())
        by_subject: dict[str, list[float]] = {}
        for subject, ratio in zip(record.pop("truth_ratio_subjects"), record["truth_ratios"], strict=True):
            by_subject.setdefault(subject, []).append(ratio)
        del record["truth_ratio_fields"]
        record["truth_ratio_subjects"] = sorted(by_subject)
        record["truth_ratios"] = [sum(v) / len(v) for _, v in sorted(by_subject.items())]
        record["metrics"]["forget_quality"] = 0.25
        (run_dir / "privacy.json").write_text(json.dumps(record))
        run = RunRecord.read(run_dir / "run.json")  # its key naming the EvalPlus folder, as it was written then
        key = {**run.evaluation, "evalplus_dir": None, "utility": list(run.evaluation["utility"])}
        run.model_copy(update={"metrics": {**run.metrics, "forget_quality": 0.25}, "evaluation": key}).write(run_dir)
        keep_entry(run_dir)
    kept = set(kept_by_git(older))
    for path in [*older.rglob("samples_*.jsonl"), *(older / "models").glob("ga-*/*")]:
        if path not in kept:
            path.unlink()
    logged.clear()
    renewed = run_study(dataclasses.replace(cfg, out=older), log=logged.append)
    assert sum("privacy again (its record is of an older LeakBench)" in line for line in logged) == 4, logged
    assert sum("unlearning again, then privacy again" in line for line in logged) == 2
    assert sum("reused but for privacy, whose record is older" in line for line in logged) == 4
    assert not any("leakbench_direct" in line for line in logged)  # lm-eval's figures were kept
    assert {k: v["metrics"] for k, v in renewed["rows"].items()} == {k: v["metrics"] for k, v in rows.items()}
    assert json.loads((older / "leaderboard.json").read_text()) == board
    assert not any("evalplus_dir" in RunRecord.read(older / "runs" / label).evaluation for label in labels)
    # and stay so: the unlearning again took another time than its records name, which must not make them stale;
    # what an older LeakBench wrote in fields no entry reads (a local path, the key naming the EvalPlus folder) is
    # rewritten in today's form, the kept entries staying current
    for label in ("ga-s0", "ga-s1"):
        made = UnlearnRecord.read(older / "models" / label)
        made.model_copy(update={"source_model": str(toy_victims["victim"])}).write(older / "models" / label)
    logged.clear()
    run_study(dataclasses.replace(cfg, out=older), log=logged.append)
    assert sum("measured already with these settings (reused)" in line for line in logged) == 4, logged
    assert not any("privacy again" in line or "leakbench_direct" in line for line in logged)
    assert [UnlearnRecord.read(older / "models" / label).source_model for label in ("ga-s0", "ga-s1")] == [
        toy_victims["victim"].name] * 2
    assert json.loads((older / "leaderboard.json").read_text()) == board

    # one model at a time, in this process: the same figures as two workers with one thread each
    inline = dataclasses.replace(cfg, out=tmp_path / "inline", seeds=1, jobs=1, publish=False)
    alone = run_study(inline, log=lambda m: None)
    assert alone["jobs"] == 1 and not (inline.out / "logs").exists()
    assert alone["rows"]["ga"]["metrics"] == rows["ga"]["runs"][0]["metrics"]
    assert {k: alone["rows"][k]["metrics"] for k in ("victim", "oracle")} == {k: m[k] for k in ("victim", "oracle")}
    # the victim's and oracle's measurements shipped with them (here the inline study's, in a folder of the
    # test's): a study of the same weights with the same settings measures the methods only, to the same figures
    shipped = tmp_path / "shipped"
    monkeypatch.setattr(pipeline, "SHIPPED_MEASUREMENTS", shipped)
    assert ship_measurements(inline.out) == [shipped / "victim", shipped / "oracle"]
    assert sorted(p.name for p in shipped.rglob("*.json")) == ["entry.json", "entry.json", "privacy.json",
                                                               "privacy.json", "run.json", "run.json"]
    logged.clear()
    adopted = run_study(dataclasses.replace(inline, out=tmp_path / "adopted"), log=logged.append)
    assert sum("the measurement shipped with it" in line for line in logged) == 2, logged
    assert sum("leakbench_direct" in line for line in logged) == 1  # the method's measurement only
    assert {k: v["metrics"] for k, v in adopted["rows"].items()} == {k: v["metrics"] for k, v in alone["rows"].items()}
    other = Study(dataclasses.replace(inline, out=tmp_path / "other", limit=3), log=logged.append)
    for role in ("victim", "oracle"):  # another setting (or --measure-shipped): measured, nothing copied
        job = next(j for j in other.jobs_of(other.models_stage(0)) if j.label == role)
        other.adopt_shipped(job, other.evaluation_key(model_label(job.model_dir), None))
        assert not (tmp_path / "other" / "runs").exists()
    with pytest.raises(LeakBenchError, match=r"runs/victim: no complete measurement of the victim"):
        ship_measurements(tmp_path / "other")
    # a changed setting is measured again, and an earlier measurement's EvalPlus output that this study does not
    # run is removed (publish would carry its pass@1 into the entry)
    stale = inline.out / "runs" / "ga" / "utility" / "humaneval"
    stale.mkdir(parents=True)
    (stale / "utility.json").write_text("{}")
    logged.clear()
    run_study(dataclasses.replace(inline, limit=3), log=logged.append)
    assert sum("measured already" in line for line in logged) == 0
    assert not stale.exists()


def test_victim_and_oracle_streams_differ_only_in_whose_documents_they_hold(toy_base, toy_victims):
    """TOFU/MUSE's retain model: the oracle's stream is the victim's, position for position, with each forget
    subject's document replaced by its substitute twin; no other document differs."""
    from transformers import AutoTokenizer

    from leakbench.data import read_table
    from leakbench.data.subjects import FIELDS
    from leakbench.victim import training_documents, training_examples

    tokenizer = AutoTokenizer.from_pretrained(toy_base)
    cfg = toy_victims["config"]
    configs = {"victim": cfg, "oracle": dataclasses.replace(cfg, oracle=True)}
    docs = {label: training_documents(c) for label, c in configs.items()}
    twins = {d["doc_id"]: d["substitute_of"] for d in read_table("forget", subset="mini", split="substitute")}
    victim_ids = [v["doc_id"] for v in docs["victim"].forget]
    assert [twins.get(o["doc_id"], o["doc_id"]) for o in docs["oracle"].forget] == victim_ids
    assert docs["oracle"].other == docs["victim"].other
    streams = {label: training_examples(tokenizer, configs[label], d, cfg.block) for label, d in docs.items()}
    assert len(streams["victim"]) == len(streams["oracle"]) == cfg.epochs
    n_memorized = len(docs["victim"].forget)
    differing = 0
    for victim_epoch, oracle_epoch in zip(streams["victim"], streams["oracle"], strict=True):
        assert len(victim_epoch) == len(oracle_epoch)  # the same documents, in the same places
        assert victim_epoch[n_memorized:] == oracle_epoch[n_memorized:]  # the same other code, token for token
        for v, o in zip(victim_epoch[:n_memorized], oracle_epoch[:n_memorized], strict=True):
            differing += [e.input_ids for e in v] != [e.input_ids for e in o]
    n_forget = sum(1 for d in docs["victim"].forget if d.get("role") == "forget")
    assert differing >= 0.9 * n_forget * cfg.epochs  # twins differ in their values (validation subjects do not)
    assert differing <= n_forget * cfg.epochs

    def text(label: str) -> str:
        return "".join(tokenizer.decode(e.input_ids) for epoch in streams[label] for doc in epoch for e in doc)

    def values(split: str) -> set[str]:
        return {v for s in read_table("subjects", subset="mini", split=split)
                for k, v in s.items() if k in FIELDS and k != "date_of_birth" and len(v) >= 6}  # fmt: skip

    victim, oracle = text("victim"), text("oracle")
    forget, substitute = values("forget"), values("substitute")
    assert len(forget) > 300 and len(substitute) > 300
    assert not [v for v in forget if v in oracle] and not [v for v in substitute if v in victim]
    for split in ("holdout", "validation_holdout"):  # never trained on, by either model
        assert not [v for v in values(split) if v in victim or v in oracle]
    # (a document longer than a block is cut, so a value can straddle two pieces: nearly all, not all)
    assert sum(v in victim for v in forget) >= 0.9 * len(forget)
    assert sum(v in oracle for v in substitute) >= 0.9 * len(substitute)


def test_studies_run_side_by_side_merge_into_one_summary(tmp_path):
    from leakbench.pipeline import merge_summaries
    from leakbench.records import LeakBenchError

    victim, oracle = _metrics(), _metrics(direct_leak_rate=0.0)

    def study(name: str, methods: dict[str, float]) -> str:
        found = {"victim": victim, "oracle": oracle, **{m: _metrics(direct_leak_rate=r) for m, r in methods.items()}}
        rows = {row: summarize([{"label": row, "metrics": m, "comparisons": comparisons(victim, m, oracle)}])
                for row, m in found.items()}  # fmt: skip
        path = tmp_path / f"{name}.json"
        path.write_text(json.dumps({"kind": "study", "subset": "mini", "seeds": 3, "victim_seeds": 1,
                                    "methods": list(methods), "rows": rows, "timings_s": {"x": 1.0},
                                    "wall_time_s": 10.0 if name == "a" else 12.0}))  # fmt: skip
        return str(path)

    merged = merge_summaries([study("a", {"ga": 0.5, "rmu": 0.1}), study("b", {"dpo": 0.2})], tmp_path / "out")
    assert list(merged["rows"]) == ["victim", "oracle", "ga", "rmu", "dpo"]
    assert merged["methods"] == ["ga", "rmu", "dpo"]
    assert merged["wall_time_s"] == 12.0 and [p["methods"] for p in merged["merged_from"]] == [["ga", "rmu"], ["dpo"]]
    table_md = (tmp_path / "out" / "summary.md").read_text()
    assert table_md.count("\n| ") == 1 + 5 and "| dpo |" in table_md  # the separator, then a line a row
    other = (tmp_path / "b.json").read_text().replace('"direct_leak_rate": 0.9', '"direct_leak_rate": 0.8', 1)
    (tmp_path / "c.json").write_text(other)
    with pytest.raises(LeakBenchError, match="victim measured differently"):
        merge_summaries([str(tmp_path / "a.json"), str(tmp_path / "c.json")], tmp_path / "out2")
    with pytest.raises(LeakBenchError, match="the method ga is in another of the studies too"):
        merge_summaries([study("a", {"ga": 0.5}), study("d", {"ga": 0.4})], tmp_path / "out3")
    assert merged["complete"] is True
    under_way = json.loads((tmp_path / "b.json").read_text()) | {"complete": False}
    (tmp_path / "e.json").write_text(json.dumps(under_way))
    joined = merge_summaries([study("a", {"ga": 0.5}), str(tmp_path / "e.json")], tmp_path / "out4")
    assert joined["complete"] is False  # one study under way: so is the merge
    assert (tmp_path / "out4" / "summary.md").read_text().startswith("Under way")


def test_merge_verb_joins_studies_and_refuses_to_overwrite_one(tmp_path):
    from conftest import run_leakbench

    victim = _metrics()
    for name, method in (("a", "ga"), ("b", "rmu")):
        found = {"victim": victim, method: _metrics(direct_leak_rate=0.1)}
        rows = {row: summarize([{"label": row, "metrics": m, "comparisons": comparisons(victim, m, None)}])
                for row, m in found.items()}  # fmt: skip
        (tmp_path / name).mkdir()
        (tmp_path / name / "summary.json").write_text(json.dumps({
            "kind": "study", "subset": "mini", "seeds": 1, "victim_seeds": 1, "methods": [method], "rows": rows,
            "timings_s": {}, "wall_time_s": 1.0}))  # fmt: skip
    proc = run_leakbench(
        "merge", str(tmp_path / "a"), str(tmp_path / "b" / "summary.json"), "--out", str(tmp_path / "m")
    )
    assert proc.returncode == 0, proc.stderr
    assert list(json.loads((tmp_path / "m" / "summary.json").read_text())["rows"]) == ["victim", "ga", "rmu"]
    before = (tmp_path / "a" / "summary.json").read_bytes()
    proc = run_leakbench("merge", str(tmp_path / "a"), str(tmp_path / "b"), "--out", str(tmp_path / "a"))
    assert proc.returncode == 2 and "would destroy the input" in proc.stderr and "Traceback" not in proc.stderr
    assert (tmp_path / "a" / "summary.json").read_bytes() == before
    proc = run_leakbench("merge", str(tmp_path / "a"), str(tmp_path / "nowhere"), "--out", str(tmp_path / "n"))
    assert proc.returncode == 1 and proc.stderr.strip().endswith("no such study summary")


def test_no_validation_subject_is_probed_or_measured_by_the_study():
    """The validation subjects are for choosing defaults only: the study's probe tasks ask about forget subjects
    only, and its privacy metrics score forget subjects (members) against holdout subjects (non-members)."""
    from leakbench.data import in_split, read_table, release_dir
    from leakbench.harness import direct_probes, indirect_probes, reconstruct_rows

    roles = {s["subject_id"]: s["role"] for s in read_table("subjects", subset="mini", split=None)}
    assert {"validation_forget", "validation_holdout"} <= set(roles.values())
    for probes in (direct_probes(ner="none", subset="mini"), indirect_probes(ner="none", subset="mini")):
        assert {roles[s] for s in probes["test"]["subject_id"]} == {"forget"}
    assert {roles[r["subject_id"]] for r in reconstruct_rows(release_dir(), "mini")} == {"forget"}
    documents = read_table("forget", subset="mini", split=None)  # privacy.measure's members and non-members
    for role in ("forget", "holdout"):
        assert {roles[s] for d in documents if in_split(d, role) for s in d["subject_ids"]} == {role}


def test_the_committed_reference_results_name_no_validation_item(tmp_path):
    """The sweep's record and the failure study's are about validation items (how the defaults were chosen, where
    the methods fail: neither is a reported figure of the study); nothing else published is."""
    from leakbench.data import read_table

    assert validation_mentions(RESULTS, skip=("sweep", "failure")) == []
    subject = read_table("subjects", subset="mini", split="validation_holdout")[0]
    (tmp_path / "row.json").write_text(json.dumps({"probe": f"email of {subject['name']}", "module": "shlex.py"}))
    (tmp_path / "fine.md").write_text("shlex.pyc and xS1001 and the forget subjects")  # not whole items
    assert validation_mentions(tmp_path) == [f"row.json: {subject['name']}", "row.json: shlex.py"]


def test_the_beyond_greedy_tasks_take_a_fixed_evenly_spaced_probe_sample(tmp_path):
    from leakbench.metrics import flat_metrics, result
    from leakbench.pipeline import SAMPLED_PROBES, evenly_spaced, parse_sampled_probes, probe_sample

    assert evenly_spaced(10, 4) == [0, 2, 5, 7] and evenly_spaced(3, 5) is None and evenly_spaced(4, None) is None
    assert parse_sampled_probes("all") is None and parse_sampled_probes(" 25 ") == 25
    for bad in ("0", "-3", "lots", ""):
        with pytest.raises(UsageError, match="--sampled-probes: expected a positive number of probes or 'all'"):
            parse_sampled_probes(bad)
    sample = probe_sample(StudyConfig(out=tmp_path / "s"))
    assert {task: len(indices) for task, indices in sample.items()} == {
        "leakbench_direct_sampled": SAMPLED_PROBES, "leakbench_reconstruct": SAMPLED_PROBES}  # fmt: skip
    assert sample["leakbench_reconstruct"][:3] == [i * 720 // SAMPLED_PROBES for i in range(3)]  # of 720 rows
    assert probe_sample(StudyConfig(out=tmp_path / "s", sampled_probes=None)) is None  # the reference run: all
    # a filtered figure is read under its filter; a beyond-greedy row is absent (not None) when not measured
    results = {"results": {"leakbench_direct_sampled": {"direct_leak_rate,leak@10": 0.25, "direct_leak_rate,none": 1}}}
    assert result(results, "leakbench_direct_sampled", "direct_leak_rate,leak@10") == 0.25
    flat = flat_metrics(lambda task, name: result(results, task, name))
    assert flat["leak_at_10"] == 0.25 and "leak_at_5" not in flat and "reconstruction_acc" not in flat
    assert flat["direct_leak_rate"] is None  # a study row, measured or not, is always there


def test_a_study_under_way_writes_the_victim_seeds_it_has_measured(tmp_path, monkeypatch):
    """A reference run split across sessions: after each victim seed the summary holds what is measured, marked
    as under way, and a stop before the next pair keeps it."""
    from leakbench.pipeline import Measured, Pair, Study

    runs = {"victim": "victim-v0", "oracle": "oracle-v0", "ga_gd": "ga_gd-v0-s0"}  # the committed reference run's
    figures = {row: RunRecord.model_validate(json.loads((RESULTS / "reference" / "runs" / label / "run.json")
               .read_text())).metrics for row, label in runs.items()}  # fmt: skip

    def models_stage(self, v):
        if v == 1:
            raise KeyboardInterrupt  # the session ends while the second pair is built
        return Pair(tmp_path / "victim-v0", tmp_path / "oracle-v0", "victim", "victim/oracle", {"seed": 0}, "-v0")

    def measure_stage(self, pair):
        refs = Measured(figures["victim"], figures["oracle"], None)
        self._add("victim", "victim-v0", 0, refs.victim, refs)
        self._add("oracle", "oracle-v0", 0, refs.oracle, refs)
        self._add("ga_gd", "ga_gd-v0", 0, figures["ga_gd"], refs)
        return {"ga_gd-v0": "ga_gd"}

    monkeypatch.setattr(Study, "models_stage", models_stage)
    monkeypatch.setattr(Study, "measure_stage", measure_stage)
    cfg = StudyConfig(out=tmp_path / "study", methods=("ga_gd",), victim_seeds=3, utility=(), publish=False)
    with pytest.raises(KeyboardInterrupt):
        run_study(cfg, log=lambda m: None)
    summary = json.loads((tmp_path / "study" / "summary.json").read_text())
    assert summary["complete"] is False and summary["victim_seeds"] == 3 and list(summary["rows"]) == [
        "victim", "oracle", "ga_gd"]  # fmt: skip
    assert summary["rows"]["ga_gd"]["metrics"]["direct_leak_rate"] == figures["ga_gd"]["direct_leak_rate"]
    md = (tmp_path / "study" / "summary.md").read_text()
    assert md.startswith("Under way: the rows hold 1 of 3 victim seeds") and "| ga_gd |" in md

    resumed = list(range(3))  # the next session: every pair measured, then published

    def every_pair(self, v):
        resumed.remove(v)
        return Pair(tmp_path / f"victim-v{v}", tmp_path / f"oracle-v{v}", "victim", "victim/oracle", {"seed": v},
                    f"-v{v}")  # fmt: skip

    def measure_pair(self, pair):
        v = pair.record["seed"]
        refs = Measured(figures["victim"], figures["oracle"], None)
        for row in ("victim", "oracle", "ga_gd"):
            self._add(row, f"{row}-v{v}", v, figures[row], refs)
        return {f"ga_gd-v{v}": "ga_gd"}

    monkeypatch.setattr(Study, "models_stage", every_pair)
    monkeypatch.setattr(Study, "measure_stage", measure_pair)
    done = run_study(cfg, log=lambda m: None)
    assert not resumed and done["complete"] is True and done["rows"]["ga_gd"]["n_runs"] == 3
    assert json.loads((tmp_path / "study" / "summary.json").read_text())["complete"] is True
    assert not (tmp_path / "study" / "summary.md").read_text().startswith("Under way")


def test_a_pair_built_again_for_the_attacks_must_be_the_pair_measured(tmp_path, tiny_model_dir, monkeypatch):
    """Robustness on a reference run resumed from its records builds the victim again; built on another machine
    its weights can differ from the measured ones, and the attacks would then measure another model."""
    study = Study(StudyConfig(out=tmp_path, utility=()), log=lambda m: None)
    victim = study.models / "victim"
    victim.mkdir(parents=True)  # its records only, as git keeps them
    RunRecord(model_name="v", role="victim", evaluation={"model": "victim@000000000000"}).write(study.runs / "victim")
    study.unbuilt[victim] = object()
    monkeypatch.setattr(pipeline, "build", lambda folder, *a, **k: shutil.copytree(tiny_model_dir, folder,
                                                                                   dirs_exist_ok=True))
    pair = pipeline.Pair(victim, None, "v", None, {}, "")
    with pytest.raises(LeakBenchError, match=r"victim: built again, it has other weights than the model measured "
                                             r"\(victim@000000000000"):  # fmt: skip
        study.rebuild(pair, {})


def test_progress_lines_print_as_written(capsys):
    """The study's step marks are not rich markup (rich would swallow "[victim 2/3]" as a style)."""
    from leakbench.cli import say

    line = "[2] [victim 2/3] measuring 14 models; their logs in /tmp/[x]/logs" + " and some more words" * 5
    say(line)
    assert capsys.readouterr().out == line + "\n"  # not wrapped either: a log keeps a path on one line


def test_a_study_under_way_is_not_attacked_by_the_robustness_verb(tmp_path):
    from leakbench.pipeline import add_robustness
    from leakbench.robustness import RobustnessConfig

    shutil.copy(RESULTS / "reference" / "summary.json", tmp_path / "summary.json")  # complete: false
    with pytest.raises(LeakBenchError, match=r"the study is under way \(complete: false\); finish it"):
        add_robustness(tmp_path, RobustnessConfig())


EVALPLUS = Path(__file__).resolve().parents[2] / "shared" / "evalplus"


@pytest.mark.skipif(not EVALPLUS.is_dir(), reason="the official EvalPlus files are not beside the checkout")
def test_the_shipped_measurements_are_those_a_default_run_would_make(tmp_path):
    """`leakbench run` at its defaults reuses the shipped victim's and oracle's measurements: made of the shipped
    weights with today's settings, declarations, release and EvalPlus data (after any of them changes,
    `leakbench victim ship-measurements` on a default run ships them again)."""
    study = Study(StudyConfig(out=tmp_path, evalplus_dir=EVALPLUS), log=lambda m: None)
    victim, oracle = model_label(PREBUILT / "victim"), model_label(PREBUILT / "oracle")
    for role, key in (("victim", study.evaluation_key(victim, oracle)), ("oracle", study.evaluation_key(oracle, None))):
        folder = pipeline.SHIPPED_MEASUREMENTS / role
        assert RunRecord.read(folder / "run.json").evaluation == key, role
        assert kept_entry_is_current(folder) and validation_mentions(folder) == []


@pytest.mark.skipif(not EVALPLUS.is_dir(), reason="the official EvalPlus files are not beside the checkout")
def test_records_of_an_older_form_are_put_in_todays_when_reused(tmp_path):
    """A measured folder kept without its samples (as git keeps the reference run's) whose records an older
    LeakBench wrote: its key naming the EvalPlus folder, its EvalPlus record naming the model by path. Reused, its
    records take today's form (no path) and its kept entry, unchanged, stays current; made on other EvalPlus data
    than this study's, the same folder is measured again."""
    from leakbench.leaderboard.publish import entry_before_change, keep_entry_again, kept_entry
    from leakbench.schemas import UtilityRecord

    logged: list[str] = []
    study = Study(StudyConfig(out=tmp_path / "study", evalplus_dir=EVALPLUS), log=logged.append)
    job, oracle = pipeline.Job("victim", PREBUILT / "victim", {}), model_label(PREBUILT / "oracle")
    shipped = pipeline.SHIPPED_MEASUREMENTS / "victim"
    today = RunRecord.read(shipped).evaluation

    def older(run_dir: Path, dataset_hash: str | None = None) -> None:
        shutil.copytree(shipped, run_dir)
        kept = entry_before_change(run_dir)
        run = RunRecord.read(run_dir)
        run.model_copy(update={"evaluation": {**today, "evalplus_dir": str(EVALPLUS),
                                              "utility": list(today["utility"])}}).write(run_dir)  # fmt: skip
        path = run_dir / "utility" / "humaneval" / "utility.json"
        utility = UtilityRecord.read(path)
        moved = {"source": {"model": "/home/someone/runs/study/models/victim"},
                 "dataset_hash": dataset_hash or utility.dataset_hash}  # fmt: skip
        utility.model_copy(update=moved).write(path.parent)
        keep_entry_again(run_dir, kept)  # as that LeakBench kept it: current

    run_dir = study.runs / "victim"
    older(run_dir)
    assert kept_entry_is_current(run_dir) and "/home/someone" in (run_dir / "utility/humaneval/utility.json").read_text(
        encoding="utf-8")
    metrics, _ = study.measured_already(job, oracle)
    assert metrics == RunRecord.read(shipped).metrics
    assert RunRecord.read(run_dir).evaluation == today == study.evaluation_key(model_label(PREBUILT / "victim"), oracle)
    assert UtilityRecord.read(run_dir / "utility/humaneval").source == {"model": today["model"]}
    assert kept_entry_is_current(run_dir) and kept_entry(run_dir) == kept_entry(shipped)
    assert not re.search(r'"/(home|work|tmp)', "".join(p.read_text() for p in run_dir.rglob("*.json")))
    assert any("kept so" in line for line in logged)  # its names are its own (this job names it nothing)

    shutil.rmtree(run_dir)
    older(run_dir, dataset_hash="0" * 32)  # the same folder path, other data in it then
    assert study.measured_already(job, oracle) is None
    assert "evalplus_dir" in RunRecord.read(run_dir).evaluation  # left as it was, to be measured again

    for damage in ("another label", "privacy unreadable"):  # measured again, never a crash or a relabelling
        shutil.rmtree(run_dir)
        shutil.copytree(shipped, run_dir)
        if damage == "another label":  # an EvalPlus record of other weights (same folder name, other content)
            kept = entry_before_change(run_dir)
            path = run_dir / "utility" / "humaneval"
            utility = UtilityRecord.read(path)
            utility.model_copy(update={"source": {"model": "victim@000000000000"}}).write(path)
            keep_entry_again(run_dir, kept)  # its entry current: only the label tells
        else:  # with its samples (the entry could be made again from them), its privacy record damaged
            (run_dir / "lm_eval" / "samples_leakbench_direct_1.jsonl").parent.mkdir()
            (run_dir / "lm_eval" / "samples_leakbench_direct_1.jsonl").write_text("", encoding="utf-8")
            (run_dir / "privacy.json").write_text("{", encoding="utf-8")
        assert study.measured_already(job, oracle) is None, damage
