"""How `leakbench sweep` picks a method's defaults: the same budget for every method, validation items only, the
Pareto front and the one rule that chooses."""

from __future__ import annotations

import json

import pytest

from leakbench import sweep
from leakbench.records import LeakBenchError
from leakbench.sweep import RULES, choose, grid_points, pareto_front, summarize_point
from leakbench.unlearn import GRID_POINTS, METHODS, Method, _check_method

VICTIM = {"direct_leak_rate": 0.8, "code_edit_similarity": 0.25, "code_bits_per_byte": 2.0}


def point(name: str, leak: float, edit: float, bpb: float) -> dict:
    figures = {"direct_leak_rate": leak, "code_edit_similarity": edit, "code_bits_per_byte": bpb}
    return {"point": name, "figures": figures, "utility_kept": sweep.utility_kept(VICTIM, figures)}


def test_every_method_gets_the_same_budget_with_the_steps_in_it():
    for name in METHODS:
        points = grid_points(name)
        assert len(points) == GRID_POINTS and len({json.dumps(p, sort_keys=True) for p in points}) == GRID_POINTS
        assert {p["steps"] for p in points} == {20, 40, 80}
    with pytest.raises(LeakBenchError, match=r"grid has 2 points; .* same budget, 6 points"):
        _check_method("odd", Method("leakbench.unlearn.ga:GATrainer", "odd", {"steps": 40, "lr": 3e-5,
                                    "retain_weight": 0.0}, {"lr": (1e-4, 3e-4)}))  # fmt: skip


def test_a_point_is_the_mean_of_its_seeds():
    runs = [{"point": "ga-lr=0.001", "seed": s, "hyperparameters": {"lr": 1e-3}, "wall_time_s": w,
             "figures": {"direct_leak_rate": leak, "code_edit_similarity": 0.25, "code_bits_per_byte": bpb}}
            for s, (leak, bpb, w) in enumerate(((0.2, 2.0, 10.0), (0.4, 2.5, 20.0)))]  # fmt: skip
    found = summarize_point(VICTIM, runs)
    assert found["figures"] == pytest.approx({"direct_leak_rate": 0.3, "code_edit_similarity": 0.25,
                                              "code_bits_per_byte": 2.25})  # fmt: skip
    assert found["utility_kept"] == pytest.approx(2.0 / 2.25) and found["seeds"] == [0, 1]
    assert found["wall_time_s"] == 15.0


def test_the_front_holds_the_points_nothing_beats_on_both_axes():
    points = [point("a", 0.5, 0.25, 2.0), point("b", 0.1, 0.24, 2.0), point("c", 0.1, 0.20, 2.0),
              point("d", 0.0, 0.10, 2.0), point("e", 0.6, 0.25, 2.0)]  # fmt: skip
    # c: b leaks as little and keeps more; e: a leaks less and keeps as much
    assert pareto_front(points) == ["d", "b", "a"]


def test_the_lowest_leak_that_keeps_99_percent_and_halves_the_leak_wins():
    points = [point("a", 0.3, 0.25, 2.0), point("b", 0.1, 0.2480, 2.0), point("c", 0.0, 0.2, 2.0)]
    chosen, rule = choose(VICTIM, points)
    assert chosen["point"] == "b" and rule == RULES[0]  # c cuts more but keeps 80% of the edit similarity


def test_otherwise_the_lowest_leak_keeping_91_percent():
    # bits/byte is lower-is-better: 2.0 / 2.1 = 95.2% kept; 2.0 / 2.3 = 87% kept
    points = [point("a", 0.7, 0.25, 2.0), point("b", 0.2, 0.25, 2.1), point("c", 0.0, 0.25, 2.3)]
    chosen, rule = choose(VICTIM, points)
    assert chosen["point"] == "b" and rule == RULES[1]


def test_otherwise_the_point_keeping_the_most_utility():
    points = [point("a", 0.1, 0.20, 2.0), point("b", 0.0, 0.1, 2.0)]
    chosen, rule = choose(VICTIM, points)
    assert chosen["point"] == "a" and rule == RULES[2]


def test_a_sweep_sees_only_validation_items_and_resumes_from_its_record(toy_victims, tmp_path, monkeypatch):
    from leakbench.data import read_table
    from leakbench.heldout import SPLITS

    seen = []
    real = sweep.evaluate

    def spy(model_dir, run_dir, tasks, **kw):
        seen.append(kw["split"])
        found = real(model_dir, run_dir, tasks, **kw)
        samples = [json.loads(line) for p in (run_dir / "lm_eval").rglob("samples_*.jsonl")
                   for line in p.read_text().splitlines()]  # fmt: skip
        validation = {s["subject_id"] for s in read_table("subjects", subset="mini", split="validation_forget")}
        for s in samples:
            doc = s["doc"]
            assert doc.get("subject_id", "x") in validation | {"x"} and doc.get("module", SPLITS["validation"][0]) \
                in SPLITS["validation"]
        assert any("subject_id" in s["doc"] for s in samples) and any("module" in s["doc"] for s in samples)
        return found

    monkeypatch.setattr(sweep, "evaluate", spy)
    forgotten, real_unlearn = [], sweep.unlearn

    def unlearn_spy(model, out, cfg, **kw):
        forgotten.append(cfg.split)
        return real_unlearn(model, out, cfg, **kw)

    monkeypatch.setattr(sweep, "unlearn", unlearn_spy)
    two = [{"steps": 2, "lr": 1e-4}, {"steps": 2, "lr": 3e-4}]
    monkeypatch.setattr(sweep, "grid_points", lambda method: two)  # a 2-point grid: the test's budget
    out = tmp_path / "sweep"
    record = sweep.run_sweep(toy_victims["victim"], out, ("ga",), seeds=2, jobs=1, limit=3, log=lambda m: None)
    assert set(seen) == {"validation_forget"} and len(seen) == 1 + 2 * 2
    assert record["complete"] and record["split"] == "validation_forget" and len(record["runs"]) == 4
    ga = record["methods"]["ga"]
    assert [p["seeds"] for p in ga["points"]] == [[0, 1], [0, 1]]
    assert ga["chosen"]["point"] in ga["front"] and ga["rule"] in RULES
    assert sorted(p.name for p in out.iterdir()) == ["sweep.json"]  # the scratch is gone
    assert forgotten == ["validation_forget"] * 4  # the documents unlearned: the validation subjects'

    seen.clear()  # a second sweep resumes: nothing runs again
    again = sweep.run_sweep(toy_victims["victim"], out, ("ga",), seeds=2, jobs=1, limit=3, log=lambda m: None)
    assert seen == [] and again["methods"] == record["methods"]

    more = sweep.run_sweep(toy_victims["victim"], out, ("ga_gd",), seeds=1, jobs=1, limit=3, log=lambda m: None)
    assert len(seen) == 2 and set(more["runs"]) >= set(record["runs"])  # sweeping another method keeps GA's runs
    assert list(more["methods"]) == ["ga_gd", "ga"] and more["methods"]["ga"] == record["methods"]["ga"]


def test_the_defaults_are_the_points_the_committed_sweep_chose():
    """Every built-in method's defaults are the point the committed sweep (results/sweep.json) chose for it, at the
    same budget and by the same rule; each run says so."""
    from pathlib import Path

    from leakbench.unlearn import BUILTIN_METHODS, defaults_chosen_by

    record = json.loads((Path(__file__).resolve().parents[1] / "results" / "sweep.json").read_text())
    assert record["complete"] and record["split"] == "validation_forget" and record["seeds"] >= 3
    assert record["grid_points"] == GRID_POINTS and set(record["methods"]) == set(BUILTIN_METHODS)
    for name, found in record["methods"].items():
        chosen = found["chosen"]
        assert len(chosen["seeds"]) == record["seeds"] and found["rule"] in RULES, name
        assert {k: METHODS[name].defaults[k] for k in chosen["hyperparameters"]} == chosen["hyperparameters"], name
        assert defaults_chosen_by(name) == "leakbench sweep on the validation subjects (results/sweep.json)"
    assert defaults_chosen_by("scaled_ga") == "the method's package"


def test_the_sweep_table_shows_every_point_the_front_and_the_choice():
    points = [point("ga-lr=0.0001", 0.2, 0.25, 2.0), point("ga-lr=0.0003", 0.0, 0.05, 8.0)]
    for p in points:
        p |= {"seeds": [0, 1, 2], "wall_time_s": 11.0}
    record = {"victim": {"model": "victim@abc", **VICTIM}, "seeds": 3, "methods": {"ga": {
        "points": points, "front": pareto_front(points), "chosen": points[0], "rule": RULES[2]}}}  # fmt: skip
    lines = sweep.sweep_table(record).splitlines()
    assert lines[0] == ("Sweep victim (victim@abc) on the validation items: direct leak 80.0%, code edit similarity "
                        "0.250, bits/byte 2.000; 3 seeds per point.")
    assert lines[4:] == ["| `ga` | lr=0.0001 | 20.0% | 0.250 | 2.000 | 100.0% | ● | 11 | **most utility kept** |",
                         "| `ga` | lr=0.0003 | 0.0% | 0.050 | 8.000 | 20.0% | ● | 11 |  |"]


def test_the_sweep_key_covers_only_the_declarations_of_the_tasks_it_runs(tmp_path, monkeypatch):
    """A sweep stays valid when another task's YAML or the tasks' README changes (its record is reused), not when
    one of its own tasks, a file they include, a member of its group, or the scorer's declarations change."""
    import shutil

    from leakbench import harness
    from leakbench.resources import resource_dir

    for folder in ("tasks", "scorers"):
        shutil.copytree(resource_dir(folder), tmp_path / folder)
    monkeypatch.setattr(harness, "resource_dir", lambda folder: tmp_path / folder)

    def keys() -> tuple[str, str]:
        harness.declarations_hash.cache_clear()
        return harness.declarations_hash(tuple(sweep.TASKS)), harness.declarations_hash()

    swept, everything = keys()
    for name in ("README.md", "leakbench_direct_sampled.yaml"):
        (tmp_path / "tasks" / name).write_text((tmp_path / "tasks" / name).read_text() + "\n# edited\n")
        now = keys()
        assert now[0] == swept and now[1] != everything, name  # a study re-measures; the sweep stays valid
        everything = now[1]
    for name in ("tasks/_probe_template_yaml", "tasks/leakbench_code_files.yaml", "scorers/recognizers.yaml"):
        path = tmp_path / name
        path.write_text(path.read_text() + "\n# edited\n")
        assert keys()[0] != swept, name
        swept = keys()[0]
    # as lm-eval reads them: a member in a flow-style list and a file of another name in a subfolder, found by
    # its `task:` name, and an include (quoted) relative to the file that includes it
    tasks = tmp_path / "tasks"
    group = tasks / "leakbench_code.yaml"
    group.write_text(group.read_text().replace("task:\n  - leakbench_code_lines\n  - leakbench_code_files\n",
                                               "task: [leakbench_code_lines, leakbench_code_files]\n"))
    (tasks / "sub").mkdir()
    (tasks / "leakbench_code_files.yaml").rename(tasks / "sub" / "files.yaml")
    (tasks / "sub" / "files.yaml").write_text((tasks / "sub" / "files.yaml").read_text() + 'include: "extra"\n')
    (tasks / "sub" / "extra").write_text("# a declaration the member includes\n")
    swept = keys()[0]
    for name in ("sub/files.yaml", "sub/extra"):
        (tasks / name).write_text((tasks / name).read_text() + "\n# edited\n")
        assert keys()[0] != swept, name
        swept = keys()[0]
    harness.declarations_hash.cache_clear()
