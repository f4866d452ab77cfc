"""Typed records (leakbench.schemas): every JSON file LeakBench writes reads back through its model, the files
committed before records were typed load through the explicit migration, and a bad record is one line naming
the file and the field."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from leakbench.records import LeakBenchError
from leakbench.schemas import (
    RECORDS,
    BaseModelRecord,
    FailureRecord,
    PrivacyRecord,
    RobustnessRecord,
    RunRecord,
    StudySummary,
)

ROOT = Path(__file__).resolve().parents[1]


def test_every_record_declares_its_file_kind_and_title_once():
    files = [r.FILE for r in RECORDS]
    assert len(set(files)) == len(files) and all(f.endswith(".json") for f in files)
    assert len({r.KIND for r in RECORDS}) == len(RECORDS) and all(r.TITLE for r in RECORDS)


def test_the_committed_records_load_through_the_migration():
    """results/ and the shipped base were written before records were typed (schema version 0)."""
    summary = StudySummary.read(ROOT / "results")
    assert summary.schema_version == "1" and list(summary.rows)[:2] == ["victim", "oracle"]
    assert summary.robustness and all(isinstance(r, RobustnessRecord) for r in summary.robustness.values())
    assert BaseModelRecord.read(ROOT / "leakbench" / "models" / "base").parameters > 1_000_000
    failure = FailureRecord.read(ROOT / "results" / "failure")  # written before it was typed: the same content
    assert next(iter(failure.models)) == "victim" and failure.dump()["models"] == json.loads(
        (ROOT / "results" / "failure" / "failure.json").read_text())["models"]  # fmt: skip


def test_a_record_round_trips_and_keeps_its_fields(tmp_path):
    summary = StudySummary.read(ROOT / "results")
    summary.write(tmp_path)
    again = StudySummary.read(tmp_path)
    assert again == summary and list(again.rows) == list(summary.rows)  # the rows' order is the table's
    written = json.loads((tmp_path / "summary.json").read_text())
    assert written["schema_version"] == "1" and written["kind"] == "study"


def test_an_untyped_run_record_migrates_and_dumps_as_before(tmp_path):
    old = {"model_name": "m", "role": "victim", "metrics": {"direct_leak_rate": 0.5}, "provenance": {"date": "x"}}
    (tmp_path / "run.json").write_text(json.dumps(old))
    run = RunRecord.read(tmp_path)
    assert run.kind == "run" and run.schema_version == "1" and run.metrics == {"direct_leak_rate": 0.5}
    dumped = run.dump()
    assert {k: dumped[k] for k in old} == old and "leakbench" not in dumped  # provenance stays nested


@pytest.mark.parametrize(("content", "message"), [
    ('{"kind": "leakbench-privacy", "metrics": {"privleak": Infinity}}', "metrics.privleak is Infinity, not a finite"),
    ('{"kind": "study"}', "not a LeakBench privacy record .kind 'study'"),
    ('{"kind": "leakbench-privacy", "schema_version": "9"}', "unknown privacy record schema_version '9'"),
    ('{"kind": "leakbench-privacy", "model": "m"}', r"not a LeakBench privacy record \(device: Field required"),
    ("[1, 2]", r"not a LeakBench privacy record \(expected a JSON object\)"),
    ('{"kind": "leak', "corrupt or truncated JSON"),
])  # fmt: skip
def test_a_bad_record_is_one_line_naming_file_and_field(tmp_path, content, message):
    path = tmp_path / "privacy.json"
    path.write_text(content)
    with pytest.raises(LeakBenchError, match=message) as caught:
        PrivacyRecord.read(path)
    assert str(path) in str(caught.value) and "\n" not in str(caught.value)


def test_a_missing_record_is_named_as_users_know_it(tmp_path):
    with pytest.raises(LeakBenchError, match="no such study summary"):
        StudySummary.read(tmp_path / "summary.json")
    assert RunRecord.find(tmp_path) is None


def test_the_fingerprint_skips_exactly_the_model_records():
    """records.model_fingerprint (the floor below schemas) names the model records' files itself."""
    from leakbench.records import MODEL_RECORD_FILES
    from leakbench.schemas import MODEL_RECORDS

    assert tuple(r.FILE for r in MODEL_RECORDS) == MODEL_RECORD_FILES


def test_provenance_commit_says_when_the_code_differs_from_it(tmp_path):
    import subprocess

    from leakbench.records import git_commit

    code = tmp_path / "pkg"
    code.mkdir()
    (code / "m.py").write_text("x = 1\n")
    (tmp_path / "results.json").write_text("{}\n")
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.invalid"]
    for args in (["init", "-q"], ["add", "."], ["commit", "-qm", "c"]):
        subprocess.run(git + args, cwd=tmp_path, check=True)
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=tmp_path, capture_output=True, text=True).stdout.strip()
    assert git_commit(code) == head
    (tmp_path / "results.json").write_text('{"new": 1}\n')  # outside the code: still the commit
    assert git_commit(code) == head
    (code / "m.py").write_text("x = 2\n")
    assert git_commit(code) == f"{head}+dirty"
    (code / "m.py").write_text("x = 1\n")
    (code / "new.py").write_text("")  # an uncommitted module counts too
    assert git_commit(code) == f"{head}+dirty"
    assert git_commit(tmp_path.parent / "nowhere") is None
