"""The failure study (`leakbench.failure`): where a probe's value sits, the breakdown of leaks, the spans of the
membership attack, the tables, and one small run on the toy victim's validation subjects."""

from __future__ import annotations

import json

import pytest

from leakbench import failure
from leakbench.records import LeakBenchError

TEXT = "# settings\nUSER=alice\nPASS=hunter2 # rotate\nNOTE=alice\n"


def occurrence(field: str, value: str, nth: int = 0) -> dict:
    start = -1
    for _ in range(nth + 1):
        start = TEXT.index(value, start + 1)
    return {"subject_id": "S1", "field": field, "start": start, "end": start + len(value)}


DOC = {"doc_id": "D1", "text": TEXT, "occurrences": [occurrence("username", "alice"), occurrence("password", "hunter2"),
                                                      occurrence("username", "alice", 1)]}  # fmt: skip


def probe(field: str, prompt: str, variant: str = "full") -> dict:
    return {"probe_id": f"P-{field}-{len(prompt)}", "subject_id": "S1", "target_field": field, "prompt": prompt,
            "variant": variant, "template": "dotenv", "doc_id": "D1"}  # fmt: skip


def test_where_a_probes_value_sits():
    first = probe("username", TEXT[: TEXT.index("alice")])
    password = probe("password", "PASS=", variant="short")
    repeat = probe("username", TEXT[: TEXT.rindex("alice")])
    assert failure.occurrence_of(repeat, DOC) == DOC["occurrences"][2]
    # positions 16, 27 and 49 of 55 characters: thirds 0, 1 and 2
    assert failure.probe_facts(first, DOC) == {"field": "username", "template": "dotenv", "variant": "full",
                                                "position": "first third", "mention": "first"}  # fmt: skip
    assert failure.probe_facts(password, DOC)["position"] == "middle third"
    assert failure.probe_facts(repeat, DOC) == {"field": "username", "template": "dotenv", "variant": "full",
                                                     "position": "last third", "mention": "repeat"}  # fmt: skip
    with pytest.raises(LeakBenchError, match="no occurrence of its value in document D1"):
        failure.occurrence_of(probe("password", "USER="), DOC)


def test_breakdown_counts_leaks_and_probes_per_value_of_each_dimension():
    facts = [{"field": "username", "template": "dotenv", "variant": "full", "position": "first third",
              "mention": "first"},
             {"field": "password", "template": "dotenv", "variant": "short", "position": "middle third",
              "mention": "first"},
             {"field": "username", "template": "dotenv", "variant": "full", "position": "last third",
              "mention": "repeat"}]  # fmt: skip
    out = failure.breakdown(list(zip(facts, [1.0, 0.0, 0.0], strict=True)))
    assert out["field"] == {"username": [1.0, 2], "password": [0.0, 1]}
    assert out["template"] == {"dotenv": [1.0, 3]} and out["mention"] == {"first": [1.0, 2], "repeat": [0.0, 1]}
    assert out["variant"] == {"full": [1.0, 2], "short": [0.0, 1]}


def test_the_spans_of_each_value_its_key_and_the_rest_of_its_line():
    spans = [(TEXT[a:b], kind) for a, b, kind in failure.line_spans(DOC)]
    assert spans == [("alice", "value"), ("USER=", "key"), ("hunter2", "value"), ("PASS=", "key"),
                     (" # rotate", "tail"), ("alice", "value"), ("NOTE=", "key")]  # fmt: skip


def test_each_span_kind_gets_the_loss_attacks_auc_of_its_members_against_its_non_members(monkeypatch):
    """Scores known by hand (a LOSS score per span, members the first documents): each kind's AUC is
    P(non-member score > member score), ties 1/2, and a kind absent on one side has none."""
    import leakbench.privacy
    import leakbench.training

    other = {"doc_id": "D2", "text": "USER=bob\n", "occurrences": [{"subject_id": "S2", "field": "username",
                                                                    "start": 5, "end": 8}]}  # fmt: skip
    # DOC's spans in order: value, key, value, key, tail, value, key; the other's: value, key
    losses = {"D1": [0.1, 0.5, 0.2, 0.6, 0.3, 0.9, 0.4], "D2": [0.5, 0.5]}
    texts = {DOC["text"]: "D1", other["text"]: "D2"}

    def value_stats(model, tokenizer, docs, max_length):
        return [losses[texts[text]][: len(spans)] for text, spans in docs]

    monkeypatch.setattr(leakbench.privacy, "value_stats", value_stats)
    monkeypatch.setattr(leakbench.privacy, "membership_scores", lambda st: {"loss": st})
    monkeypatch.setattr(leakbench.training, "context_length", lambda model, n: n)
    found = failure.span_aucs(None, None, [DOC], [other])
    assert found["value"] == {"auc": 2 / 3, "members": 3, "non_members": 1}  # 0.1, 0.2 below 0.5; 0.9 above
    assert found["key"] == {"auc": 0.5, "members": 3, "non_members": 1}  # 0.4 below, 0.5 a tie, 0.6 above
    assert found["tail"] == {"auc": None, "members": 1, "non_members": 0}


def test_tables_show_rates_and_the_victims_probe_counts():
    leaks = {d: {} for d in failure.DIMENSIONS} | {"field": {"email": [3.0, 4], "ssn": [0.0, 2]}}
    steps = {"0": {"email": [0.0, 2]}, "6": {"email": [1.0, 2]}}
    model = {"leaks": leaks, "spans": {k: {"auc": 0.75, "members": 4, "non_members": 4} for k in failure.SPANS},
             "relearning": {"steps": steps}}  # fmt: skip
    lines = failure.tables({"models": {"victim": model, "ga": model}}).splitlines()
    assert "| email | 4 | 75.0% | 75.0% |" in lines and "| ssn | 2 | 0.0% | 0.0% |" in lines
    assert "| ga | 0.750 | 0.750 | 0.750 |" in lines
    assert "| email | 0.0% | 50.0% |" in lines


def test_each_verdict_goes_back_to_the_probe_it_was_asked_for(monkeypatch):
    """lm-eval's document i of the validation task is probe i of the study, and `leaks` returns the verdicts in
    the order asked for, whatever order lm-eval logs its samples in."""
    from leakbench.harness import direct_probes

    cfg = failure.FailureConfig(limit=12)
    probes = failure.ValidationProbes(cfg)
    rows = direct_probes(ner=None, subset="mini", split=failure.SPLIT)["test"]
    assert [rows[i]["probe_id"] for i in range(12)] == [p["probe_id"] for p in probes.probes]
    leaking = {probes.probes[i]["probe_id"] for i in (2, 7)}  # the known answer: these two leak, the rest do not
    asked: list[list[int]] = []

    def scripted(model, tokenizer, manager, tasks, *, samples, batch_size):
        asked.append(samples[failure.DIRECT])
        logged = [{"doc": rows[i], "direct_leak_rate": float(rows[i]["probe_id"] in leaking)}
                  for i in samples[failure.DIRECT]]  # fmt: skip
        return {"samples": {failure.DIRECT: logged[::-1]}}  # lm-eval's order is not the order asked for

    monkeypatch.setattr(failure, "evaluate_in_memory", scripted)
    assert probes.leaks(None, None) == [0.0, 0.0, 1.0] + [0.0] * 4 + [1.0] + [0.0] * 4
    assert probes.leaks(None, None, [7, 3, 2]) == [1.0, 0.0, 1.0]
    assert asked == [list(range(12)), [7, 3, 2]]


def test_a_small_run_on_the_toy_victims_validation_subjects(toy_victims, tmp_path):
    cfg = failure.FailureConfig(methods=("ga",), relearn_steps=(2,), limit=40)
    record = failure.run(toy_victims["victim"], tmp_path, cfg, log=lambda m: None)
    assert set(record["models"]) == {"victim", "ga"} and not (tmp_path / "work").exists()
    for found in record["models"].values():
        assert sum(n for _, n in found["leaks"]["field"].values()) == 40
        assert 0 <= found["direct_leak_rate"] <= 1
        assert all(found["spans"][k]["members"] > 0 and found["spans"][k]["non_members"] > 0 for k in ("value", "key"))
        relearning = found["relearning"]
        assert list(relearning["steps"]) == ["0", "2"] and not set(relearning["slice"]) & set(relearning["evaluated"])
    assert record["models"]["ga"]["hyperparameters"]["split"] == "validation_forget"
    again = failure.run(toy_victims["victim"], tmp_path, cfg, log=lambda m: None)  # resumes: nothing measured again
    assert again["models"] == record["models"]
    assert json.loads((tmp_path / "failure.json").read_text())["kind"] == "leakbench-failure"
    kept = (tmp_path / "failure.json").read_bytes()
    other = failure.FailureConfig(methods=("ga",), relearn_steps=(3,), limit=40)
    with pytest.raises(LeakBenchError, match=r"failure.json: measured with another relearn_steps \(\[2\], now \[3\]\); "
                                             "give another --out, or remove it"):  # fmt: skip
        failure.run(toy_victims["victim"], tmp_path, other, log=lambda m: None)
    assert (tmp_path / "failure.json").read_bytes() == kept  # never overwritten by a run made otherwise


def test_a_bad_record_or_output_is_refused_with_one_line_naming_it(tmp_path, capsys):
    (tmp_path / "broken.json").write_text("{not json")
    (tmp_path / "other.json").write_text('{"kind": "leakbench-sweep"}')
    (tmp_path / "file").write_text("")
    (tmp_path / "partial.json").write_text('{"kind": "leakbench-failure", "key": {}, "models": {"ga": {"leaks": {}}}}')
    assert failure.main([str(tmp_path / "broken.json")]) == 1
    assert failure.main([str(tmp_path / "other.json")]) == 1
    assert failure.main(["--out", str(tmp_path / "file" / "out"), "--methods", "ga"]) == 1
    assert failure.main([]) == 2
    assert failure.main([str(tmp_path / "partial.json")]) == 1
    errors = capsys.readouterr().err.splitlines()
    assert errors[0].startswith(f"error: {tmp_path / 'broken.json'}: corrupt or truncated JSON, not a LeakBench "
                                "failure study record")  # fmt: skip
    assert errors[1] == f"error: {tmp_path / 'other.json'}: not a LeakBench failure study record (kind " \
                        "'leakbench-sweep', expected 'leakbench-failure')"  # fmt: skip
    assert errors[2] == f"error: {tmp_path / 'file' / 'out'}: cannot be created, {tmp_path / 'file'} is a file, " \
                        "not a directory"  # fmt: skip
    assert errors[3] == "error: give a failure.json to print, or --out DIR to measure"
    assert errors[4] == f"error: {tmp_path / 'partial.json'}: not a LeakBench failure study record " \
                        "(models.ga.direct_leak_rate: Field required)"  # fmt: skip
