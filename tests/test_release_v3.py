"""Release v3: subject roles, substitute twins, answerable probes; v1 and v2 unchanged beside it."""

from __future__ import annotations

import json
from collections import Counter, defaultdict

import pytest

from leakbench.cli import main
from leakbench.data import RELEASES, ROLES, load, read_manifest, read_table
from leakbench.data.build import CANONICAL_SEED, answerable, generate, role_sizes, write_release
from leakbench.data.subjects import FIELDS
from leakbench.data.verify import verify
from leakbench.records import UsageError, sha256_file

V3 = RELEASES["v3"]
# The packaged v1 and v2 files, pinned: v3 is added beside them, never by regenerating them.
PINNED = {
    "v1": {
        "subjects.jsonl": "55d097fd3c68e73b3819283880d1ba92e79c6f73fe150ab160729165a70ffb27",
        "forget.jsonl": "00df6624bd4b5cb83b2c28fdf0c4d05e317f06b7d0f0675f01e17665b475acfe",
        "retain.jsonl": "6b5816636997b6bed11fc585ef0e7b4ff94702bd7ffa9b95d80b8a1fc37e6050",
        "probes.jsonl": "59abbd53b252c3f111cabbd968afb48765bbbe1f5adedd3094bfb9ed526942c5",
    },
    "v2": {
        "subjects.jsonl": "5ff69fec9edbff3db0c6d41e972444af7f7cbe7331acbfa1cb64b6fa8e1fa752",
        "forget.jsonl": "f83eacc05599020a07d78d3e18278e055f7a45592c0f14527a51084c4a9f0a7b",
        "retain.jsonl": "6b5816636997b6bed11fc585ef0e7b4ff94702bd7ffa9b95d80b8a1fc37e6050",
        "probes.jsonl": "8963e6a3c21df6ed33ab0f1293b4a913e2c2e92a49f81a799a631f62de08ed94",
    },
}


@pytest.fixture(scope="module")
def subjects():
    return read_table("subjects", "v3", split=None)


@pytest.fixture(scope="module")
def documents():
    return read_table("forget", "v3", split=None)


@pytest.fixture(scope="module")
def probes():
    return read_table("probes", "v3", split=None)


@pytest.fixture(scope="module")
def small():
    """A small v3 release in memory (10 forget subjects), for breaking on purpose."""
    return generate(5, 10, "v3")


# --- the packaged release -----------------------------------------------------------------------


def test_rebuilding_v3_reproduces_every_hash(tmp_path):
    """The full canonical build (about 8 s): byte for byte the packaged files and manifest."""
    manifest = read_manifest("v3")
    assert manifest["release"] == "v3" and manifest["seed"] == CANONICAL_SEED
    out = tmp_path / "v3"
    n = manifest["parameters"]["subjects"]
    assert main(["data", "build", "--out", str(out), "--release", "v3", "--subjects", str(n)]) == 0
    assert (out / "manifest.json").read_bytes() == (V3 / "manifest.json").read_bytes()
    for filename, entry in manifest["files"].items():
        assert sha256_file(out / filename) == entry["sha256"], filename


def test_packaged_v3_verifies():
    assert verify(V3) == []


def test_roles_partition_the_subjects(subjects, documents, probes):
    assert Counter(s["role"] for s in subjects) == {r: n["full"] for r, n in role_sizes(500).items()}
    assert Counter(s["role"] for s in subjects if s["mini"]) == {r: n["mini"] for r, n in role_sizes(500).items()}
    assert role_sizes(500)["forget"] == {"full": 500, "mini": 50}
    assert role_sizes(500)["holdout"] == {"full": 500, "mini": 50}
    assert role_sizes(500)["validation_forget"] == {"full": 200, "mini": 20}
    ids = [s["subject_id"] for s in subjects]
    assert len(set(ids)) == len(ids)
    # the loader's splits: each role alone, `validation` both validation roles, None all of them
    for subset in ("full", "mini"):
        by_split = {
            split: {s["subject_id"] for s in read_table("subjects", "v3", subset, split=split)}
            for split in ("forget", "substitute", "validation", "holdout")
        }
        everyone = {s["subject_id"] for s in read_table("subjects", "v3", subset, split=None)}
        assert sum(len(v) for v in by_split.values()) == len(everyone)
        assert set().union(*by_split.values()) == everyone
        vf = {s["subject_id"] for s in read_table("subjects", "v3", subset, split="validation_forget")}
        vh = {s["subject_id"] for s in read_table("subjects", "v3", subset, split="validation_holdout")}
        assert vf and vh and vf | vh == by_split["validation"] and not vf & vh
        assert len(by_split["holdout"]) >= len(by_split["forget"])
    role_of = {s["subject_id"]: s["role"] for s in subjects}
    assert all(role_of[sid] == d["role"] for d in documents for sid in d["subject_ids"])
    assert all(role_of[p["subject_id"]] == p["role"] for p in probes)
    # probes for every role but the substitutes, and for every subject of those roles
    assert {p["role"] for p in probes} == set(ROLES) - {"substitute"}
    assert {p["subject_id"] for p in probes} == {s["subject_id"] for s in subjects if s["role"] != "substitute"}


def test_no_value_is_shared_across_roles(subjects):
    for field in FIELDS:
        if field != "date_of_birth":
            assert len({s[field] for s in subjects}) == len(subjects), field


def test_substitutes_pair_one_to_one_with_matching_documents(subjects, documents):
    partner = {s["substitute_of"]: s["subject_id"] for s in subjects if s["role"] == "substitute"}
    forget = [s for s in subjects if s["role"] == "forget"]
    assert sorted(partner) == sorted(s["subject_id"] for s in forget)
    assert len(set(partner.values())) == len(partner)
    assert all(s["substitute_of"] is None for s in subjects if s["role"] != "substitute")
    mini = {s["subject_id"]: s["mini"] for s in subjects}
    assert all(mini[f] == mini[s] for f, s in partner.items())

    tally: dict[str, Counter] = defaultdict(Counter)
    for doc in documents:
        for sid in doc["subject_ids"]:
            tally[sid][(doc["template"], "document")] += 1
        for occ in doc["occurrences"]:
            tally[occ["subject_id"]][(doc["template"], occ["field"])] += 1
    for forget_id, substitute_id in partner.items():
        assert tally[forget_id] == tally[substitute_id], forget_id

    by_id = {d["doc_id"]: d for d in documents}
    twins = [d for d in documents if d["role"] == "substitute"]
    assert sorted(d["substitute_of"] for d in twins) == sorted(d["doc_id"] for d in documents if d["role"] == "forget")
    for twin in twins:
        original = by_id[twin["substitute_of"]]
        assert (twin["template"], twin["path"]) == (original["template"], original["path"])
        assert twin["subject_ids"] == [partner[sid] for sid in original["subject_ids"]]
        assert [o["field"] for o in twin["occurrences"]] == [o["field"] for o in original["occurrences"]]
        # only the values differ: put the forget subjects' values into the twin and get the original back
        text, shift = twin["text"], 0
        for o_twin, o_orig in zip(twin["occurrences"], original["occurrences"], strict=True):
            value = original["text"][o_orig["start"] : o_orig["end"]]
            start, end = o_twin["start"] + shift, o_twin["end"] + shift
            text = text[:start] + value + text[end:]
            shift += len(value) - (o_twin["end"] - o_twin["start"])
        assert text == original["text"]


def test_every_probe_is_answerable(probes):
    assert answerable(probes)[1] == []
    owners = defaultdict(set)
    for p in probes:
        owners[(p["prompt"], p["target_field"])].add(p["subject_id"])
    assert all(len(v) == 1 for v in owners.values())
    dropped = read_manifest("v3")["answerability"]["dropped_probes"]
    assert dropped["full"] > 0 and 0 < dropped["mini"] <= dropped["full"]
    assert [p["probe_id"] for p in probes] == [f"P{i:06d}" for i in range(1, len(probes) + 1)]


def test_v3_forget_part_is_v1s_less_unanswerable_probes(documents, probes):
    strip = lambda rows, keys: [{k: v for k, v in r.items() if k not in keys} for r in rows]  # noqa: E731
    forget_docs = [d for d in documents if d["role"] == "forget"]
    assert strip(forget_docs, ("role", "substitute_of")) == read_table("forget", "v1")
    assert read_table("retain", "v3") == read_table("retain", "v1")
    v1 = {json.dumps(p, sort_keys=True) for p in strip(read_table("probes", "v1"), ("probe_id",))}
    v3 = [p for p in probes if p["role"] == "forget"]
    assert all(json.dumps(p, sort_keys=True) in v1 for p in strip(v3, ("probe_id", "role")))


# --- v1 and v2 unchanged -----------------------------------------------------------------------


@pytest.mark.parametrize("name", ["v1", "v2"])
def test_v1_and_v2_files_are_unchanged(name):
    manifest = read_manifest(name)
    for filename, digest in PINNED[name].items():
        assert manifest["files"][filename]["sha256"] == digest
    for filename, entry in manifest["files"].items():
        assert sha256_file(RELEASES[name] / filename) == entry["sha256"], filename


def test_v2_callers_get_what_they_got():
    assert len(read_table("subjects", "v2")) == 500  # the default split: forget subjects
    assert len(read_table("subjects", "v2", split="holdout")) == 100
    assert len(read_table("subjects", "v2", split=None)) == 600
    for split in ("substitute", "validation", "validation_forget"):
        assert read_table("subjects", "v2", split=split) == []
    assert read_table("subjects", "v1", split="validation") == []
    with pytest.raises(UsageError, match="unknown split 'train'"):
        read_table("subjects", "v3", split="train")


def test_load_selects_roles_as_read_table_does():
    ds = load("v3", subset="mini", split="validation")
    assert ds["subjects"].num_rows == 40
    assert set(ds["probes"]["role"]) == {"validation_forget", "validation_holdout"}
    assert ds["probes"].num_rows == len(read_table("probes", "v3", "mini", split="validation"))


# --- verify names what is broken ----------------------------------------------------------------


def test_a_small_v3_build_verifies(tmp_path, small):
    write_release(small, tmp_path / "r", seed=5, n_subjects=10, name="v3")
    assert verify(tmp_path / "r") == []


def _broken(tmp_path, small, edit) -> list[str]:
    import copy

    release = copy.deepcopy(small)
    edit(release)
    write_release(release, tmp_path / "r", seed=5, n_subjects=10, name="v3")
    return verify(tmp_path / "r")


def test_verify_names_a_broken_pairing(tmp_path, small):
    def edit(release):
        subs = [s for s in release.subjects if s["role"] == "substitute"]
        subs[1]["substitute_of"] = subs[0]["substitute_of"]  # two substitutes of one forget subject

    problems = _broken(tmp_path, small, edit)
    sub = [s for s in small.subjects if s["role"] == "substitute"]
    assert any(f"({sub[1]['subject_id']})" in p and "pairing must be 1:1" in p for p in problems), problems
    assert any(f"({sub[1]['substitute_of']}): forget subject without a substitute" in p for p in problems), problems


def test_verify_names_a_substitute_document_that_is_not_a_twin(tmp_path, small):
    def edit(release):
        twin = next(d for d in release.forget if d["role"] == "substitute")
        twin["occurrences"] = twin["occurrences"][:-1]  # one value occurrence fewer than its forget document

    problems = _broken(tmp_path, small, edit)
    twin = next(d for d in small.forget if d["role"] == "substitute")
    assert any(f"({twin['doc_id']}): not the substitute twin of {twin['substitute_of']}" in p for p in problems), (
        problems
    )
    assert any("value occurrences per field differ" in p for p in problems), problems


def test_verify_names_a_duplicated_prompt(tmp_path, small):
    direct = [p for p in small.probes if p["kind"] == "direct" and p["target_field"] == "name"]
    a = direct[0]
    b = next(p for p in direct if p["subject_id"] != a["subject_id"])

    def edit(release):
        subject = next(s for s in release.subjects if s["subject_id"] == b["subject_id"])
        copy_b = next(p for p in release.probes if p["probe_id"] == b["probe_id"])
        copy_b["prompt"] = a["prompt"]
        copy_b["prompt_fields"] = [f for f in FIELDS if subject[f] in a["prompt"]]

    problems = _broken(tmp_path, small, edit)
    assert len(problems) == 1, problems
    named = f"({b['probe_id']})" in problems[0] or f"({a['probe_id']})" in problems[0]
    assert named and "cannot be answered" in problems[0], problems


def test_verify_names_rows_whose_role_disagrees(tmp_path, small):
    def edit(release):
        release.probes[-1]["role"] = "forget"  # a holdout subject's probe claimed for the forget set

    problems = _broken(tmp_path, small, edit)
    assert len(problems) == 1 and "role differs from its subject's" in problems[0], problems


# --- the command line ---------------------------------------------------------------------------


@pytest.mark.parametrize("verb", ["build", "verify", "stats", "export"])
def test_bad_release_names_are_one_line_errors(tmp_path, capsys, verb):
    args = ["data", verb, "--release", "v9"] + (["--out", str(tmp_path / "out")] if verb in ("build", "export") else [])
    assert main(args) != 0
    err = capsys.readouterr().err.strip()
    assert "unknown release 'v9'" in err and "v3" in err and len(err.splitlines()) == 1, err
    assert not (tmp_path / "out").exists()


def test_stats_counts_by_role(capsys):
    assert main(["data", "stats", "--release", "v3", "--subset", "mini"]) == 0
    out = capsys.readouterr().out
    assert "by role" in out and "subjects substitute" in out and "validation_holdout" in out
