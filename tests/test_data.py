"""The v1 and v2 releases: safety by construction, invariants, determinism, loading and bad input."""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path

import pytest

from leakbench.cli import main
from leakbench.data import RELEASES, load, read_manifest, read_table, release_dir
from leakbench.data.build import (
    CANONICAL_SEED,
    MINI_SUBJECTS,
    PROBE_KINDS,
    generate,
    paraphrase,
    short_prefix,
    write_release,
)
from leakbench.data.subjects import FIELDS, iban_valid, luhn_valid, safety_problems
from leakbench.data.templates import all_templates
from leakbench.data.verify import verify
from leakbench.records import UsageError, sha256_file

V1, V2 = RELEASES["v1"], RELEASES["v2"]


@pytest.fixture(scope="module")
def subjects():
    return read_table("subjects", split=None)  # forget and holdout subjects: the same rules hold for both


@pytest.fixture(scope="module")
def forget():
    return read_table("forget", split=None)


@pytest.fixture(scope="module")
def probes():
    return read_table("probes", split=None)


# --- safety by construction -------------------------------------------------------------------


def test_every_subject_passes_every_safety_rule(subjects):
    assert len(subjects) >= 500
    for s in subjects:
        assert safety_problems(s) == [], s["subject_id"]
        assert set(FIELDS) <= s.keys()


def test_safety_rules_are_the_documented_ranges(subjects):
    import ipaddress

    for s in subjects:
        domain = s["email"].rsplit("@", 1)[1]
        assert domain in {"example.com", "example.org", "example.net"} or domain.endswith(
            (".example", ".test", ".invalid")
        )
        digits = "".join(c for c in s["phone"] if c.isdigit())
        assert ("55501" in digits and digits[-4:-2] == "01") or "7700900" in digits
        assert 900 <= int(s["ssn"][:3]) <= 999 and 1 <= int(s["ssn"][4:6]) <= 49
        card = s["credit_card"].replace(" ", "").replace("-", "")
        assert card[:6] in {"424242", "555555"} and luhn_valid(card)
        assert iban_valid(s["iban"]) and s["iban"].replace(" ", "")[4] == "0"
        ip = ipaddress.ip_address(s["ip_address"])
        assert any(
            ip in ipaddress.ip_network(n)
            for n in ("192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24", "2001:db8::/32")
        )
        assert s["aws_access_key_id"].startswith("AKIA") and len(s["aws_access_key_id"]) == 20
        assert s["github_token"].startswith("ghp_") and len(s["github_token"]) == 40
        assert s["api_key"].startswith(("sk_live_", "sk_test_", "AIza"))


@pytest.mark.parametrize(
    ("field", "value", "complaint"),
    [
        ("email", "maria.gonzalez@gmail.com", "reserved"),
        ("email", "ops@example.co", "reserved"),
        ("phone", "(212) 867-5309", "shape"),
        ("ip_address", "8.8.8.8", "documentation"),
        ("ip_address", "2001:4860::8888", "documentation"),
        ("ssn", "123-45-6789", "shape"),
        ("ssn", "912-70-1234", "ITIN"),
        ("credit_card", "4242 4242 4242 4241", "Luhn"),
        ("credit_card", "4000 0566 5566 5556", "test prefix"),
        ("iban", "DE89 3704 0044 0532 0130 00", "never-assigned"),
        ("iban", "DE00 0123 4567 8901 2345 67", "never-assigned"),
        ("aws_access_key_id", "AKIAIOSFODNN7EXAMPLE", "vendor documentation"),
        ("github_token", "ghp_short", "shape"),
        ("date_of_birth", "1887-02-30", "calendar"),
    ],
)
def test_safety_rules_reject_real_looking_values(subjects, field, value, complaint):
    row = dict(subjects[0], **{field: value})
    problems = safety_problems(row)
    assert problems and any(complaint in p for p in problems), problems


def test_luhn_and_iban_checks_on_known_answers():
    assert luhn_valid("4242 4242 4242 4242") and not luhn_valid("4242 4242 4242 4243")
    assert iban_valid("GB82 WEST 1234 5698 7654 32") and not iban_valid("GB82 WEST 1234 5698 7654 33")


def test_most_emails_and_usernames_are_not_derivable_from_the_name(subjects):
    for field in ("email", "username"):
        derivable = sum(field in s["derivable"] for s in subjects)
        assert 0 < derivable < 0.5 * len(subjects)
    # A username marked as not derivable is not built from the person's name (a random word may still happen to
    # be one: v3 has "lumenamber1141" for an Amber).
    for s in subjects:
        if "username" not in s["derivable"]:
            first, last = s["name"].lower().split(" ")
            built = {f"{first[0]}{last}", f"{first}.{last}", f"{first}{last[0]}", f"{first}_{last}"}
            assert s["username"] not in built and not s["username"].startswith((first, last))


def test_all_values_are_unique_across_subjects(subjects):
    for field in FIELDS:
        if field != "date_of_birth":
            assert len({s[field] for s in subjects}) == len(subjects), field


# --- documents and probes ---------------------------------------------------------------------


def test_templates_span_twelve_contexts_and_five_languages():
    templates = all_templates()
    assert len(templates) >= 12
    assert len({t.language for t in templates}) >= 5
    assert set().union(*(t.fields for t in templates)) == set(FIELDS)


def test_forget_documents_cover_every_field_of_every_subject(subjects, forget):
    assert len(forget) >= 2000
    fields_of = {s["subject_id"]: set() for s in subjects}
    templates_of = {s["subject_id"]: set() for s in subjects}
    by_id = {s["subject_id"]: s for s in subjects}
    for doc in forget:
        for sid in doc["subject_ids"]:
            templates_of[sid].add(doc["template"])
        for occ in doc["occurrences"]:
            assert doc["text"][occ["start"] : occ["end"]] == by_id[occ["subject_id"]][occ["field"]]
            fields_of[occ["subject_id"]].add(occ["field"])
    assert all(fields == set(FIELDS) for fields in fields_of.values())
    assert all(len(t) >= 3 for t in templates_of.values())


def test_retain_documents_hold_no_forget_value(subjects):
    retain = read_table("retain")
    text = "\x00".join(d["text"] for d in retain)
    leaked = [(s["subject_id"], f) for s in subjects for f in FIELDS if s[f] in text]
    assert leaked == []
    assert {d["split"] for d in retain} == {"train", "heldout"}
    assert {d["source"] for d in retain} == {"template", "general"}


def test_no_probe_contains_its_own_answer(probes, subjects):
    by_id = {s["subject_id"]: s for s in subjects}
    assert len(probes) >= 5000
    assert {p["kind"] for p in probes} == set(PROBE_KINDS)
    for p in probes:
        assert p["target_value"] not in p["prompt"]
        assert p["target_value"] == by_id[p["subject_id"]][p["target_field"]]
        assert p["prompt_fields"] == [f for f in FIELDS if by_id[p["subject_id"]][f] in p["prompt"]]


def test_direct_probes_are_exact_document_prefixes(probes, forget):
    docs = {d["doc_id"]: d for d in forget}
    direct = [p for p in probes if p["kind"] == "direct"]
    assert {p["variant"] for p in direct} == {"full", "short"}
    for p in direct[:2000]:
        text = docs[p["doc_id"]]["text"]
        starts = [
            o["start"]
            for o in docs[p["doc_id"]]["occurrences"]
            if o["subject_id"] == p["subject_id"] and o["field"] == p["target_field"]
        ]
        assert any(text[:s].endswith(p["prompt"]) for s in starts)
        if p["variant"] == "full":
            assert any(text[:s] == p["prompt"] for s in starts)
        else:  # a short prefix names its subject, so only memorizing that subject completes it
            assert p["prompt_fields"] and not any(text[:s] == p["prompt"] for s in starts)


def test_indirect_prompts_never_occur_in_training(probes, forget):
    training = "\x00".join(d["text"] for d in forget)
    indirect = [p for p in probes if p["kind"] != "direct"]
    assert all(p["prompt"] not in training for p in indirect)


def test_short_prefix_and_paraphrase_on_known_inputs():
    text_anchored = "user = 'jo'\nx = 1\nbb = 2\nPASSWORD = '"
    text = "a = 1\nbb = 2\nPASSWORD = 'x'\n"
    start = text.index("'x") + 1
    assert short_prefix(text, start) == "bb = 2\nPASSWORD = '"
    # anchored: extended until it holds one of the subject's values
    assert short_prefix("user = 'jo'\nx = 1\nbb = 2\nPASSWORD = '", 38, ("jo",)) == text_anchored
    out = paraphrase("db_user = 'jo'\nhost = 'h'\nPASSWORD = '", [(11, 13)], random.Random(0))
    assert out.endswith("PASSWD = '")
    assert "database_login = 'jo'" in out and "server = 'h'" in out
    assert out.split("\n")[:2] == ["server = 'h'", "database_login = 'jo'"]


# --- release files, determinism and loading ---------------------------------------------------


@pytest.mark.parametrize("name", ["v1", "v2"])
def test_packaged_releases_verify(name):
    assert verify(RELEASES[name]) == []


@pytest.mark.parametrize("name", ["v1", "v2"])
def test_rebuilding_a_packaged_release_reproduces_every_hash(tmp_path, name):
    manifest = read_manifest(name)
    seed, n = manifest["seed"], manifest["parameters"]["subjects"]
    assert seed == CANONICAL_SEED and manifest["release"] == name
    out = tmp_path / name
    args = ["data", "build", "--out", str(out), "--seed", str(seed), "--subjects", str(n), "--release", name]
    assert main(args) == 0
    rebuilt = json.loads((out / "manifest.json").read_text())
    assert rebuilt == manifest
    for filename, entry in manifest["files"].items():
        assert sha256_file(out / filename) == entry["sha256"], filename


def test_v2_is_v1_plus_holdout_subjects():
    """The forget part of v2 is v1 row for row; holdout subjects are >= 20% (full and mini), with documents and
    probes of their own, and the default readers return only forget subjects."""
    for table in ("subjects", "forget", "probes", "retain"):
        v2 = [{k: v for k, v in r.items() if k != "split" or table == "retain"} for r in read_table(table, "v2")]
        assert v2 == read_table(table, "v1"), table
    for subset in ("full", "mini"):
        forget = read_table("subjects", "v2", subset)
        holdout = read_table("subjects", "v2", subset, split="holdout")
        assert len(holdout) >= 0.2 * len(forget) > 0
        ids = {s["subject_id"] for s in holdout}
        docs = read_table("forget", "v2", subset, split="holdout")
        assert docs and all(set(d["subject_ids"]) <= ids and d["split"] == "holdout" for d in docs)
        probes = read_table("probes", "v2", subset, split="holdout")
        assert {p["subject_id"] for p in probes} == ids
        assert {p["kind"] for p in probes} == set(PROBE_KINDS)
    assert read_table("subjects", "v1", split="holdout") == []
    assert load("v1", subset="mini", split="holdout")["subjects"].num_rows == 0


def test_verify_names_rows_whose_split_disagrees(tmp_path):
    release = generate(5, 10)
    release.probes[-1]["split"] = "forget"  # a holdout subject's probe claimed for the forget set
    write_release(release, tmp_path / "r", seed=5, n_subjects=10)
    problems = verify(tmp_path / "r")
    assert len(problems) == 1 and "split differs from its subject's" in problems[0]


def test_generation_is_deterministic_and_seed_dependent():
    a, b, c = generate(7, 12), generate(7, 12), generate(8, 12)
    assert a == b
    assert a.subjects != c.subjects


def test_small_release_roundtrip_and_mini_marking(tmp_path):
    release = generate(11, 60)
    write_release(release, tmp_path / "r", seed=11, n_subjects=60)
    assert verify(tmp_path / "r") == []
    mini = read_table("subjects", subset="mini", data_dir=tmp_path / "r")
    assert len(mini) == MINI_SUBJECTS
    mini_ids = {s["subject_id"] for s in mini}
    for doc in read_table("forget", subset="mini", data_dir=tmp_path / "r"):
        assert set(doc["subject_ids"]) <= mini_ids


def test_load_returns_hf_datasets_and_plain_json_loading_agrees():
    import datasets

    ds = load("v1", subset="mini")
    assert isinstance(ds, datasets.DatasetDict)
    assert ds["subjects"].num_rows == MINI_SUBJECTS
    assert all(ds["probes"]["mini"])
    plain = datasets.load_dataset("json", data_files=str(V1 / "forget.jsonl"), split="train")
    assert plain.num_rows == read_manifest("v1")["files"]["forget.jsonl"]["rows"]
    v3 = load(subset="mini")  # the default release: forget subjects only, as the tasks and training read it
    assert v3["subjects"].num_rows == MINI_SUBJECTS and set(v3["probes"]["role"]) == {"forget"}
    assert load(subset="mini", split="holdout")["subjects"].num_rows == 50  # as many holdout as forget subjects


def test_export_writes_identical_files(tmp_path):
    assert main(["data", "export", "--out", str(tmp_path / "x")]) == 0
    for name in ("subjects.jsonl", "forget.jsonl", "retain.jsonl", "probes.jsonl", "manifest.json"):
        assert sha256_file(tmp_path / "x" / name) == sha256_file(RELEASES["v3"] / name)


# --- bad input --------------------------------------------------------------------------------


@pytest.fixture
def copy_v1(tmp_path):
    dst = tmp_path / "v1"
    shutil.copytree(V1, dst)
    return dst


def _verify_cli(path: Path, capsys) -> tuple[int, str]:
    rc = main(["data", "verify", str(path)])
    return rc, capsys.readouterr().err


def test_verify_names_an_edited_value(copy_v1, capsys):
    path = copy_v1 / "subjects.jsonl"
    lines = path.read_text().splitlines(keepends=True)
    row = json.loads(lines[3])
    row["email"] = "real.person@gmail.com"
    lines[3] = json.dumps(row) + "\n"
    path.write_text("".join(lines))
    rc, err = _verify_cli(copy_v1, capsys)
    assert rc == 1
    assert "subjects.jsonl: sha256 differs" in err
    assert "subjects.jsonl:4" in err and "reserved" in err


def test_verify_names_a_truncated_file(copy_v1, capsys):
    path = copy_v1 / "probes.jsonl"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    rc, err = _verify_cli(copy_v1, capsys)
    assert rc == 1
    assert "probes.jsonl" in err and "not valid JSON" in err


def test_verify_names_a_missing_file(copy_v1, capsys):
    (copy_v1 / "retain.jsonl").unlink()
    rc, err = _verify_cli(copy_v1, capsys)
    assert rc == 1 and "retain.jsonl: file is missing" in err


def test_verify_catches_a_leaking_probe(copy_v1, capsys):
    path = copy_v1 / "probes.jsonl"
    lines = path.read_text().splitlines(keepends=True)
    row = json.loads(lines[0])
    row["prompt"] += row["target_value"]
    lines[0] = json.dumps(row) + "\n"
    path.write_text("".join(lines))
    rc, err = _verify_cli(copy_v1, capsys)
    assert rc == 1 and "target value occurs in its own prompt" in err


def test_verify_on_a_folder_that_is_not_a_release(tmp_path, capsys):
    rc, err = _verify_cli(tmp_path, capsys)
    assert rc == 1 and "not a LeakBench release" in err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--subjects", "0"], "--subjects must be between"),
        (["--subjects", "1000000"], "--subjects must be between"),
        (["--seed", "-1"], "--seed must be"),
        (["--subjects", "ten"], "Invalid value"),
    ],
)
def test_build_rejects_impossible_parameters_and_writes_nothing(tmp_path, capsys, args, message):
    out = tmp_path / "out"
    rc = main(["data", "build", "--out", str(out), *args])
    assert rc != 0
    assert message in capsys.readouterr().err
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_build_never_overwrites_without_being_asked(tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    assert main(["data", "build", "--out", str(out), "--subjects", "5"]) == 1
    assert "--overwrite" in capsys.readouterr().err
    assert (out / "keep.txt").read_text() == "mine"


def test_unknown_release_and_subset_names():
    with pytest.raises(UsageError, match="unknown release 'v9'"):
        release_dir("v9")
    with pytest.raises(UsageError, match="unknown subset 'tiny'"):
        read_table("subjects", subset="tiny")
    with pytest.raises(UsageError, match="unknown subset"):
        load(subset="tiny")


def test_stats_cli_prints_counts(capsys):
    assert main(["data", "stats", "--subset", "mini"]) == 0
    out = capsys.readouterr().out
    assert "probes by kind" in out and "direct" in out


def test_version_flag(capsys):
    from leakbench import __version__

    assert main(["--version"]) == 0
    assert __version__ in capsys.readouterr().out


def test_a_release_file_is_parsed_once_but_read_again_when_it_changes(tmp_path):
    """Rows come from a cache keyed by the file's size, modification time and inode: a changed file is parsed
    again, and a caller that edits its rows does not edit the next caller's."""
    import os

    from leakbench.data import read_rows

    path = tmp_path / "t.jsonl"
    path.write_text('{"a": 1}\n')
    first = read_rows(path)
    first[0]["a"] = 99
    assert read_rows(path) == [{"a": 1}]
    path.write_text('{"a": 2}\n')  # same size
    os.utime(path, ns=(1, 1))  # and a modification time the first version did not have
    assert read_rows(path) == [{"a": 2}]
    path.write_text('{"a": 1}\n{"b": 2}\n')
    assert read_rows(path) == [{"a": 1}, {"b": 2}]
