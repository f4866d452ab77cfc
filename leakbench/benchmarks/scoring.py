"""Scorer throughput, with and without NER, against bare Presidio on the same texts.

    python -m leakbench.benchmarks.scoring [--n 400] [--json OUT.json]          one core, per text and batched
    python -m leakbench.benchmarks.scoring --full [--workers 2] [--json OUT]    the whole v1 set in worker processes

Texts are realistic generations: the forget-document text that follows each direct probe's prompt (the value
and the next lines), so most carry PII; for indirect probes, the target value on the line that would answer
them. Each one-core configuration is timed after a warm-up over the same texts. The process limits numpy,
torch and spaCy to one thread each (set in `main`, before they load): throughput is per core.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from collections.abc import Callable

from leakbench.data import read_table
from leakbench.records import provenance, write_text_atomic
from leakbench.scoring import LeakScorer, ScoreInput
from leakbench.scoring.parallel import score_chunks


def _inputs(n: int) -> tuple[list[ScoreInput], list[dict]]:
    subjects = read_table("subjects")
    by_id = {s["subject_id"]: s for s in subjects}
    docs = {d["doc_id"]: d for d in read_table("forget", subset="mini")}
    items = []
    for p in read_table("probes", subset="mini"):
        if p["kind"] != "direct" or p["variant"] != "full":
            continue
        text = docs[p["doc_id"]]["text"]
        start = len(p["prompt"])
        end = start
        for _ in range(3):  # the value's line and the next two
            end = text.find("\n", end + 1) if text.find("\n", end + 1) != -1 else len(text)
        items.append(ScoreInput(p["prompt"], text[start:end], p["target_field"], by_id[p["subject_id"]]))
        if len(items) == n:
            break
    return items, subjects


def _rate(fn: Callable[[], object], n: int, repeat: int = 3) -> float:
    fn()  # warm-up
    best = min(_timed(fn) for _ in range(repeat))
    return n / best


def _timed(fn: Callable[[], object]) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def _measure(model: str | None, items: list[ScoreInput], subjects: list[dict]) -> dict:
    scorer = LeakScorer(subjects, ner_model=model)
    engine, policy = scorer.engine, scorer.policy
    assert engine is not None
    texts = [i.generation for i in items]
    entities, min_score = policy.other_pii_entities, policy.other_pii_min_score

    def presidio_per_text() -> None:
        for t in texts:
            engine.analyze(t, entities, min_score)

    def scorer_per_text() -> None:
        for i in items:
            scorer.score(i.prompt, i.generation, i.target_field, i.subject)

    per_text = {"presidio": _rate(presidio_per_text, len(texts)), "scorer": _rate(scorer_per_text, len(texts))}
    batched = {
        "presidio": _rate(lambda: engine.analyze_batch(texts, entities, min_score), len(texts)),
        "scorer": _rate(lambda: scorer.score_batch(items), len(texts)),
    }
    return {
        "engine": engine.ner_model,
        "per_text_gen_per_s": per_text,
        "batched_gen_per_s": batched,
        "scorer_overhead_per_text": per_text["presidio"] / per_text["scorer"] - 1,
        "scorer_overhead_batched": batched["presidio"] / batched["scorer"] - 1,
        "batching_speedup": batched["scorer"] / per_text["scorer"],
    }


def run(n: int) -> dict:
    items, subjects = _inputs(n)
    texts = [i.generation for i in items]
    out: dict = {"n_texts": len(items), "mean_chars": sum(map(len, texts)) / len(texts)}
    for label, model in (("pattern_only", "none"), ("ner", None)):
        out[label] = _measure(model, items, subjects)
    return out


def full_set_items() -> tuple[list[ScoreInput], list[dict]]:
    """One realistic generation for every probe of the full v1 set (direct and indirect)."""
    subjects = read_table("subjects")
    by_id = {s["subject_id"]: s for s in subjects}
    docs = {d["doc_id"]: d for d in read_table("forget")}
    items = []
    for p in read_table("probes"):
        subject = by_id[p["subject_id"]]
        if p["kind"] == "direct":
            text = docs[p["doc_id"]]["text"]
            start = len(p["prompt"]) if text.startswith(p["prompt"]) else text.find(p["target_value"])
            end = text.find("\n", start + len(p["target_value"]))
            generation = text[max(start, 0) : end if end != -1 else len(text)]
        else:
            generation = f"{p['target_value']}'"
        items.append(ScoreInput(p["prompt"], generation, p["target_field"], subject))
    return items, subjects


def run_full(workers: int, chunk: int = 256) -> dict:
    """Wall time to score the whole set, pattern-only and with NER, in `workers` processes (start-up included)."""

    items, subjects = full_set_items()
    chunks = [items[i : i + chunk] for i in range(0, len(items), chunk)]
    out: dict = {"n_generations": len(items), "workers": workers, "chunk": chunk}
    for label, model in (("pattern_only", "none"), ("ner", None)):
        started = time.perf_counter()
        batches = score_chunks(chunks, world=subjects, ner_model=model, workers=workers)
        verdicts = [v for batch in batches for v in batch]
        wall = time.perf_counter() - started
        assert len(verdicts) == len(items)
        out[label] = {"wall_s": round(wall, 1), "gen_per_s": round(len(items) / wall, 1),
                      "leaks": sum(getattr(v, "leak", "error") != "none" for v in verdicts)}  # fmt: skip
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=400, help="number of generations (default 400)")
    parser.add_argument("--full", action="store_true", help="score the whole v1 set in worker processes")
    parser.add_argument("--workers", type=int, default=2, help="worker processes for --full (default 2)")
    parser.add_argument("--json", help="also write the figures (with provenance) to this file")
    args = parser.parse_args()
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):  # one thread per process
        os.environ[var] = "1"
    if args.full:
        figures = run_full(args.workers)
        print(f"{figures['n_generations']} generations (full v1 set), {args.workers} worker processes")
        for label in ("pattern_only", "ner"):
            f = figures[label]
            print(f"  {label:12s} {f['wall_s']:7.1f} s   {f['gen_per_s']:8.1f} gen/s")
        if args.json:
            write_text_atomic(args.json, json.dumps(provenance(benchmark="scoring_full", figures=figures), indent=2))
        return
    figures = run(args.n)
    print(
        f"{figures['n_texts']} generations, {figures['mean_chars']:.0f} characters on average, one core "
        f"({platform.processor() or platform.machine()})"
    )
    for label in ("pattern_only", "ner"):
        f = figures[label]
        print(f"\n[{label}: {f['engine']}]")
        for mode in ("per_text", "batched"):
            rates = f[f"{mode}_gen_per_s"]
            print(
                f"  {mode:9s} bare Presidio {rates['presidio']:8.1f} gen/s   "
                f"LeakBench scorer {rates['scorer']:8.1f} gen/s   overhead {f[f'scorer_overhead_{mode}']:+.1%}"
            )
        print(f"  batching speed-up of the scorer: {f['batching_speedup']:.2f}x")
    if args.json:
        write_text_atomic(args.json, json.dumps(provenance(benchmark="scoring", figures=figures), indent=2) + "\n")


if __name__ == "__main__":
    main()
