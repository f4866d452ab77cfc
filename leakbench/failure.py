"""Where unlearning fails, on validation items only: the study the methods aimed at what remains start from.

    python -m leakbench.failure --out DIR [--methods ga_gd,npo,...] [--seed 0]   # measure: DIR/failure.json
    python -m leakbench.failure DIR/failure.json                                 # print its tables

Each method, at its defaults, unlearns the shipped victim's validation subjects (`UnlearnConfig.split =
"validation_forget"`, as `leakbench sweep` does); the victim and each unlearned model are then measured on the
validation subjects only (none of them, their probes or documents is in any figure the study reports):
1. **remaining leaks**: greedy direct leaks of every validation direct probe, by field, template, probe variant
   (the document up to the value, or its last line), position of the value in its document (first, middle or
   last third) and mention (the value's first appearance in the document, or a repeat);
2. **where the membership signal sits**: the LOSS attack's AUC (validation forget subjects' value occurrences,
   members, against the validation holdout subjects', never trained on) on the value's own tokens, on the text
   of its line before it (the key: `DB_PASSWORD=`) and on the rest of its line after it;
3. **what relearning restores first**: the relearning attack of `leakbench robustness` (fine-tuning on a tenth of
   the validation subjects' documents, whole document groups) run for each of `relearn_steps` steps from the
   unlearned weights, and the full probes' direct leak by field on the other validation subjects after each.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import shutil
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from leakbench.data import read_table, release_hash
from leakbench.data.subjects import FIELDS
from leakbench.metrics import DIRECT
from leakbench.records import (
    LeakBenchError,
    UsageError,
    check_number,
    check_output,
    model_label,
    provenance,
)
from leakbench.robustness import (
    RobustnessConfig,
    documents_of,
    evaluate_in_memory,
    relearn,
    relearn_split,
    subject_groups,
)
from leakbench.schemas import FailureLeaks, FailureRecord, FailureSpans

SPLIT = "validation_forget"  # unlearned, probed and relearned: the validation subjects only
HOLDOUT = "validation_holdout"  # their never-trained counterparts: the membership attack's non-members
DIMENSIONS = tuple(FailureLeaks.model_fields)  # field, template, variant, position, mention
SPANS = tuple(FailureSpans.model_fields)  # value, key, tail: the value's tokens, its line before it, after it
POSITIONS = ("first third", "middle third", "last third")  # of the document, where the value starts
ORDER = (*FIELDS, *POSITIONS)  # the tables list fields and positions in this order, the rest alphabetically
DEFAULT_METHODS = ("ga", "ga_gd", "ga_kl", "npo", "undo", "sam_npo", "dpo", "plum", "plum_decoy")


@dataclasses.dataclass(frozen=True)
class FailureConfig:
    methods: tuple[str, ...] = DEFAULT_METHODS
    seed: int = 0  # the unlearning and relearning seed
    subset: str = "mini"
    relearn_steps: tuple[int, ...] = (6, 12, 24)  # each a run of its own from the unlearned weights
    relearn_lr: float = RobustnessConfig.relearn_lr
    relearn_fraction: float = RobustnessConfig.relearn_fraction
    batch_size: int = RobustnessConfig.batch_size
    eval_batch_size: int = RobustnessConfig.eval_batch_size
    limit: int | None = None  # the first N validation direct probes only (smoke runs); None: every one


# --- where a probe's value sits -----------------------------------------------------------------------------------


def occurrence_of(probe: dict[str, Any], doc: dict[str, Any]) -> dict[str, Any]:
    """The occurrence a direct probe asks for: its subject's field whose preceding text ends with the prompt."""
    text = doc["text"]
    for o in doc["occurrences"]:
        if (o["subject_id"], o["field"]) == (probe["subject_id"], probe["target_field"]) and \
                text[: o["start"]].endswith(probe["prompt"]):  # fmt: skip
            return o
    raise LeakBenchError(f"probe {probe['probe_id']}: no occurrence of its value in document {doc['doc_id']}")


def probe_facts(probe: dict[str, Any], doc: dict[str, Any]) -> dict[str, str]:
    """The probe's place on every dimension of the breakdown."""
    o = occurrence_of(probe, doc)
    third = min(2, int(3 * o["start"] / max(1, len(doc["text"]))))
    repeat = doc["text"][: o["start"]].find(doc["text"][o["start"] : o["end"]]) >= 0
    return {"field": probe["target_field"], "template": probe["template"], "variant": probe["variant"],
            "position": POSITIONS[third],
            "mention": "repeat" if repeat else "first"}  # fmt: skip


def breakdown(leaks: Sequence[tuple[dict[str, str], float]]) -> dict[str, dict[str, list[float]]]:
    """Per dimension and value: [leaks, probes] (a rate is their ratio)."""
    out: dict[str, dict[str, list[float]]] = {d: {} for d in DIMENSIONS}
    for facts, leak in leaks:
        for d in DIMENSIONS:
            cell = out[d].setdefault(facts[d], [0.0, 0])
            cell[0] += leak
            cell[1] += 1
    return out


def line_spans(doc: dict[str, Any]) -> list[tuple[int, int, str]]:
    """Per value occurrence, its spans: the value, the text of its line before it and after it (when not empty)."""
    text, spans = doc["text"], []
    for o in doc["occurrences"]:
        line_start = text.rfind("\n", 0, o["start"]) + 1
        line_end = text.find("\n", o["end"])
        line_end = len(text) if line_end < 0 else line_end
        for start, end, kind in ((o["start"], o["end"], "value"), (line_start, o["start"], "key"),
                                 (o["end"], line_end, "tail")):  # fmt: skip
            if text[start:end].strip():
                spans.append((start, end, kind))
    return spans


def span_aucs(model: Any, tokenizer: Any, members: list[dict[str, Any]], non_members: list[dict[str, Any]]
              ) -> dict[str, dict[str, float | int | None]]:  # fmt: skip
    """Per span kind, the LOSS attack's AUC (members: the first documents' spans) and how many spans of each side."""
    from leakbench.privacy import member_auc, membership_scores, value_stats
    from leakbench.training import context_length

    docs = members + non_members
    spans = [line_spans(d) for d in docs]
    stats = value_stats(model, tokenizer, [(d["text"], [(a, b) for a, b, _ in s]) for d, s in zip(docs, spans,
                        strict=True)], max_length=context_length(model, 1024))  # fmt: skip
    scores: dict[str, tuple[list[float], list[float]]] = {kind: ([], []) for kind in SPANS}
    for i, (doc_spans, doc_stats) in enumerate(zip(spans, stats, strict=True)):
        for (_, _, kind), st in zip(doc_spans, doc_stats, strict=True):
            if st is not None:
                scores[kind][0 if i < len(members) else 1].append(membership_scores(st)["loss"])
    return {kind: {"auc": member_auc("loss", ours, theirs) if ours and theirs else None,
                   "members": len(ours), "non_members": len(theirs)}
            for kind, (ours, theirs) in scores.items()}  # fmt: skip


# --- measuring ------------------------------------------------------------------------------------------------------


class ValidationProbes:
    """The validation direct probes, their documents, and lm-eval on a model in memory."""

    def __init__(self, cfg: FailureConfig) -> None:
        from leakbench.harness import task_manager

        self.cfg = cfg
        probes = [p for p in read_table("probes", subset=cfg.subset, split=SPLIT) if p["kind"] == "direct"]
        self.probes = probes[: cfg.limit]  # lm-eval's document indices: the first N keep their places
        self.docs = {d["doc_id"]: d for d in read_table("forget", subset=cfg.subset, split=SPLIT)}
        self.holdout = read_table("forget", subset=cfg.subset, split=HOLDOUT)
        self.facts = [probe_facts(p, self.docs[p["doc_id"]]) for p in self.probes]
        self.manager = task_manager(subset=cfg.subset, split=SPLIT)

    def leaks(self, model: Any, tokenizer: Any, indices: Sequence[int] | None = None) -> list[float]:
        """Greedy direct-leak verdicts of the probes at `indices` (all by default), in that order."""
        chosen = list(range(len(self.probes))) if indices is None else list(indices)
        results = evaluate_in_memory(model, tokenizer, self.manager, [DIRECT], samples={DIRECT: chosen},
                                     batch_size=self.cfg.eval_batch_size)  # fmt: skip
        found = {s["doc"]["probe_id"]: float(s["direct_leak_rate"]) for s in results["samples"][DIRECT]}
        return [found[self.probes[i]["probe_id"]] for i in chosen]

    def measure(self, model: Any, tokenizer: Any, log: Callable[[str], None]) -> dict[str, Any]:
        """Remaining leaks, the membership signal by span, and what each relearning run restores, by field."""
        cfg = self.cfg
        leaks = self.leaks(model, tokenizer)
        members = list(self.docs.values())
        slice_, rest = relearn_split(subject_groups(members, cfg.seed), cfg.relearn_fraction)
        evaluated = [i for i, p in enumerate(self.probes) if p["subject_id"] in set(rest) and p["variant"] == "full"]
        relearned: dict[str, dict[str, list[float]]] = {}
        for steps in cfg.relearn_steps:
            attacked = copy.deepcopy(model)
            relearn(attacked, tokenizer, documents_of(members, slice_), steps=steps, lr=cfg.relearn_lr,
                    batch_size=cfg.batch_size, seed=cfg.seed)  # fmt: skip
            after = self.leaks(attacked, tokenizer, evaluated) if evaluated else []  # --limit may leave none
            pairs = [(self.facts[i], x) for i, x in zip(evaluated, after, strict=True)]
            relearned[str(steps)] = breakdown(pairs)["field"]
            log(f"    relearned {steps} steps: direct leak {_share(after)} on {len(evaluated)} probes of {len(rest)} "
                "subjects")  # fmt: skip
        before = breakdown([(self.facts[i], leaks[i]) for i in evaluated])["field"]
        return {"direct_leak_rate": sum(leaks) / len(leaks) if leaks else None,
                "leaks": breakdown(list(zip(self.facts, leaks,
                strict=True))), "spans": span_aucs(model, tokenizer, members, self.holdout),
                "relearning": {"slice": slice_, "evaluated": rest, "steps": {"0": before, **relearned}}}  # fmt: skip


def _share(leaks: Sequence[float]) -> str:
    return f"{sum(leaks) / len(leaks):.1%}" if leaks else "n/a"


def study_key(victim: str | Path, cfg: FailureConfig) -> dict[str, Any]:
    """What the figures of a failure.json depend on: the victim, the release, the code and task declarations
    (as the sweep's key), and every setting but the methods (a run with other methods adds to the record)."""
    from leakbench import __version__
    from leakbench.harness import declarations_hash

    settings = {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(cfg).items()}
    del settings["methods"]
    return {"victim": model_label(victim), "release": release_hash(), "leakbench": __version__,
            "declarations": declarations_hash((DIRECT,)), **settings}  # fmt: skip


def run(victim: str | Path, out: str | Path, cfg: FailureConfig, log: Callable[[str], None] = print
        ) -> dict[str, Any]:  # fmt: skip
    """Measure the victim and each method's model; writes OUT/failure.json after each (a stop keeps what is done,
    and a run resumes from it, or adds other methods to it). A record made otherwise (another victim, release,
    code or setting) is refused, not overwritten."""
    from leakbench.training import load_causal_lm
    from leakbench.unlearn import UnlearnConfig, check_methods, unlearn

    check_methods(cfg.methods)
    check_number("--seed", cfg.seed, integer=True, allow_zero=True)  # before any measuring
    out = check_output(out, kind="directory")
    path = out / FailureRecord.FILE
    key = study_key(victim, cfg)
    done: dict[str, Any] = {}
    if path.is_file():
        previous = FailureRecord.read(path).dump()
        differs = [k for k in key if previous["key"].get(k) != key[k]]
        if differs:
            raise LeakBenchError(f"{path}: measured with another {differs[0]} ({previous['key'].get(differs[0])!r}, "
                                 f"now {key[differs[0]]!r}); give another --out, or remove it to measure again")
        done = previous["models"]
    out.mkdir(parents=True, exist_ok=True)  # before any measuring: the record is written after the first model
    probes = ValidationProbes(cfg)
    for label in ("victim", *cfg.methods):
        if label in done:
            log(f"failure: {label} measured already (reused)")
            continue
        log(f"failure: {label}")
        if label == "victim":
            model, tokenizer = load_causal_lm(victim)
            record = None
        else:
            model_dir = out / "work" / label
            record = unlearn(victim, model_dir, UnlearnConfig(method=label, seed=cfg.seed, split=SPLIT,
                                                             subset=cfg.subset), overwrite=True, log=log)  # fmt: skip
            model, tokenizer = load_causal_lm(model_dir)
        done[label] = {**probes.measure(model, tokenizer, log),
                       "hyperparameters": record["hyperparameters"] if record else None}  # fmt: skip
        FailureRecord.parse(provenance(kind=FailureRecord.KIND, key=key, models=done), str(path)).write(out)
    shutil.rmtree(out / "work", ignore_errors=True)
    return FailureRecord.read(path).dump()


# --- the tables -------------------------------------------------------------------------------------------------


def _rate(cell: list[float] | None) -> str:
    return "" if not cell or not cell[1] else f"{cell[0] / cell[1]:.1%}"


def tables(record: dict[str, Any]) -> str:
    """The record as Markdown tables: remaining leaks by dimension, span AUCs, relearning by field."""
    models = record["models"]
    names = list(models)
    lines = []
    for d in DIMENSIONS:
        values = sorted({v for m in models.values() for v in m["leaks"][d]},
                        key=lambda v: (ORDER.index(v), "") if v in ORDER else (len(ORDER), v))  # fmt: skip
        lines += [f"Direct leak by {d} (validation probes; probes per row from the victim's column):", "",
                  f"| {d} | probes | " + " | ".join(names) + " |", "| --- | ---: |" + " ---: |" * len(names)]
        for v in values:
            n = models["victim"]["leaks"][d].get(v, [0, 0])[1] if "victim" in models else ""
            lines.append(f"| {v} | {n} | " + " | ".join(_rate(models[m]["leaks"][d].get(v)) for m in names) + " |")
        lines.append("")
    lines += ["LOSS attack AUC by span (validation forget against validation holdout occurrences):", "",
              "| model | " + " | ".join(SPANS) + " |", "| --- |" + " ---: |" * len(SPANS)]
    for m in names:
        cells = [models[m]["spans"][k]["auc"] for k in SPANS]
        lines.append(f"| {m} | " + " | ".join("" if x is None else f"{x:.3f}" for x in cells) + " |")
    for m in names:
        steps = models[m]["relearning"]["steps"]
        lines += ["", f"{m}: direct leak by field after relearning (full probes of the subjects outside the slice):",
                  "", "| field | " + " | ".join(f"{s} steps" for s in steps) + " |", "| --- |" + " ---: |" * len(steps)]
        for f in [f for f in FIELDS if any(f in by for by in steps.values())]:
            lines.append(f"| {f} | " + " | ".join(_rate(by.get(f)) for by in steps.values()) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("record", nargs="?", type=Path, help="a failure.json to print as tables")
    parser.add_argument("--out", type=Path, help="folder to measure into (failure.json; resumes from it)")
    parser.add_argument("--model", help="the victim (default: the shipped one)")
    parser.add_argument("--methods", default=",".join(DEFAULT_METHODS), help="comma-separated methods")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    try:
        if (args.record is None) == (args.out is None):
            raise UsageError("give a failure.json to print, or --out DIR to measure")
        if args.record is not None:
            print(tables(FailureRecord.read(args.record).dump()))
            return 0
        victim = args.model
        if victim is None:
            from leakbench.victim import VictimConfig, prebuilt

            victim = prebuilt(VictimConfig(), release_hash())
            if victim is None:
                raise LeakBenchError("no shipped victim (or its weights fail their sha256 check); pass --model")
        cfg = FailureConfig(methods=tuple(m.strip() for m in args.methods.split(",") if m.strip()), seed=args.seed)
        print(tables(run(victim, args.out, cfg)))
    except (LeakBenchError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2 if isinstance(exc, UsageError) else 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
