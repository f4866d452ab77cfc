"""leakbench_code: the frozen held-out code, its metrics (exact values), and that no training stream holds it."""

from __future__ import annotations

import hashlib
import json
import math

import pytest

from leakbench import heldout
from leakbench.harness import process_code_line
from leakbench.heldout import HELD_OUT, edit_similarity, eligible_lines, first_line, frozen_files


def test_edit_similarity_is_codexglue_fuzz_ratio():
    assert edit_similarity("", "") == 1.0
    assert edit_similarity("abc", "abc") == 1.0
    assert edit_similarity("abc", "") == 0.0
    assert edit_similarity("abc", "abd") == pytest.approx(4 / 6)  # LCS "ab"
    assert edit_similarity("kitten", "sitting") == pytest.approx(8 / 13)  # LCS "ittn"
    assert edit_similarity("return x", "return y") == pytest.approx(14 / 16)


def test_the_first_non_empty_line_is_compared_whitespace_normalized():
    assert first_line("\n\n   x  =  1\ny = 2") == "x = 1"
    assert first_line("   \n") == ""
    doc = {"target": "        return  T(value)"}
    assert process_code_line(doc, ["\nreturn T(value)\n"]) == {"exact_match": 1.0, "edit_similarity": 1.0}
    assert process_code_line(doc, ["return T(valu"]) == {"exact_match": 0.0, "edit_similarity": 2 * 13 / 28}


def test_frozen_cases_follow_the_selection_rules():
    files = {f["module"]: f for f in frozen_files()}
    assert tuple(files) == HELD_OUT
    cases = [json.loads(line) for line in (heldout.FROZEN / "cases.jsonl").read_text().splitlines()]
    assert len(cases) == len(HELD_OUT) * heldout.CASES_PER_FILE
    for module, f in files.items():
        assert hashlib.sha256(f["text"].encode()).hexdigest() == f["sha256"]
        assert not heldout.PII_LINE.search(f["text"])  # no line naming a real person
        allowed = set(eligible_lines(f["text"]))
        lines = f["text"].splitlines()
        for c in (c for c in cases if c["module"] == module):
            assert c["line"] in allowed and lines[c["line"]] == c["target"]
    source = json.loads((heldout.FROZEN / "source.json").read_text())
    assert source["license"].startswith("PSF-2.0") and source["modules"] == list(HELD_OUT)


def test_the_sweeps_modules_are_never_the_reported_ones():
    reported, validation = heldout.SPLITS["reported"], heldout.SPLITS["validation"]
    assert sorted(reported + validation) == sorted(HELD_OUT) and not set(reported) & set(validation)
    assert (len(reported), len(validation)) == (8, 4)
    for split, modules in heldout.SPLITS.items():
        assert {c["module"] for c in heldout.line_cases(split)} == set(modules)
        assert len(heldout.line_cases(split)) == len(modules) * heldout.CASES_PER_FILE
        assert [f["module"] for f in heldout.file_texts(split)] == list(modules)
    assert heldout.code_split("validation_forget") == "validation" and heldout.code_split("forget") == "reported"


def test_prompts_are_the_preceding_lines_within_the_budget():
    text = "".join(f"line {i}\n" for i in range(1000))
    p = heldout.prompt(text, 900)
    assert p.endswith("line 899") and p.startswith("line ") and len(p) <= heldout.CONTEXT_CHARS
    assert heldout.prompt(text, 3) == "line 0\nline 1\nline 2"
    assert heldout.prompt("a\n    b\n\n\n    c\n", 4) == "a\n    b"  # the blank lines are the model's to write


def test_docstrings_comments_and_lone_brackets_are_never_targets():
    text = (
        'import os\n\n\n\n\ndef f():\n    """Doc\n    more doc."""\n    # comment\n    x = [\n        1,\n'
        "    ]\n    return x\n"
    )
    expected = ["def f():", "    x = [", "        1,", "    return x"]
    assert [text.splitlines()[i] for i in eligible_lines(text)] == expected


class _Scripted:
    """An lm-eval LM with known answers: exact for cases 0, 3, 6...; empty for 1, 4, ...; the target with one
    extra character for 2, 5, ...; rolling log-likelihood of exactly 1.5 bits per byte."""

    @staticmethod
    def make():
        from lm_eval.api.model import LM

        cases = heldout.line_cases()
        by_prompt = {row["prompt"]: (i, row["target"]) for i, row in enumerate(cases)}

        class Scripted(LM):
            def generate_until(self, requests):
                out = []
                for r in requests:
                    i, target = by_prompt[r.args[0]]
                    out.append(["\n" + target + "\nmore", "", " ".join(target.split()) + "$"][i % 3])
                return out

            def loglikelihood_rolling(self, requests):
                return [-1.5 * math.log(2) * len(r.args[0].encode("utf-8")) for r in requests]

            def loglikelihood(self, requests):
                raise NotImplementedError

        return Scripted(), cases


def test_leakbench_code_through_lm_eval_gives_hand_computed_values():
    import lm_eval
    from lm_eval.tasks import TaskManager

    from leakbench.harness import tasks_path

    lm, cases = _Scripted.make()
    manager = TaskManager(include_path=str(tasks_path()), include_defaults=False)
    results = lm_eval.simple_evaluate(model=lm, tasks=["leakbench_code"], task_manager=manager)["results"]
    n = [len(" ".join(row["target"].split())) for row in cases]
    exact = sum(1 for i in range(len(cases)) if i % 3 == 0)
    edit = exact + sum(2 * n[i] / (2 * n[i] + 1) for i in range(len(cases)) if i % 3 == 2)
    assert results["leakbench_code_lines"]["exact_match,none"] == pytest.approx(exact / len(cases), abs=1e-12)
    assert results["leakbench_code_lines"]["edit_similarity,none"] == pytest.approx(edit / len(cases), abs=1e-12)
    assert results["leakbench_code_files"]["bits_per_byte,none"] == pytest.approx(1.5, abs=1e-12)


# --- no training stream holds held-out code ---------------------------------------------------------


def _held_out_hashes() -> set[str]:
    from leakbench.heldout import scrub, stdlib_root

    return {hashlib.sha256(scrub((stdlib_root() / m).read_text()).encode()).hexdigest() for m in HELD_OUT}


def test_base_pretraining_corpus_never_holds_a_held_out_module():
    from leakbench.base import corpus_files, pretraining_corpus

    assert not {p.name for p in corpus_files() if p.parent == heldout.stdlib_root()} & set(HELD_OUT)
    corpus = pretraining_corpus()  # the whole corpus, as the shipped base saw it
    assert not {r["path"] for r in corpus} & set(HELD_OUT)
    assert not {r["sha256"] for r in corpus} & _held_out_hashes()


def test_victim_and_oracle_streams_never_hold_held_out_code():
    from leakbench.victim import VictimConfig, training_documents

    for cfg in (VictimConfig(), VictimConfig(oracle=True)):
        texts = set(training_documents(cfg).other)
        assert not {f["text"] for f in frozen_files()} & texts
        assert not {hashlib.sha256(t.encode()).hexdigest() for t in texts} & _held_out_hashes()


def test_unlearning_retain_term_is_disjoint_from_every_evaluation_document():
    from leakbench.corpus import retain_training_documents
    from leakbench.harness import retain_heldout

    for subset in ("mini", "full"):
        train = retain_training_documents(subset)
        scored = retain_heldout(subset=subset)["test"]
        assert train and len(scored)
        assert not {d["doc_id"] for d in train} & set(scored["doc_id"])
        assert not {d["text"] for d in train} & set(scored["text"])
        assert not {d["text"] for d in train} & {f["text"] for f in frozen_files()}
