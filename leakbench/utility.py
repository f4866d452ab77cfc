"""Code-generation utility through EvalPlus: HumanEval+ and MBPP+ (as in PLUM and the unlearning study).

Generation is ours (batched Hugging Face `generate`, greedy by default); sanitizing and checking are
EvalPlus's own (`evalplus.sanitize.sanitize`, `evalplus.evaluate.check_correctness` on its cached ground
truth, `evalplus.eval.estimate_pass_at_k`). We call its per-sample API rather than `evalplus.evaluate`
because that one returns nothing, refuses subsets and silently reuses old result files; the files we write
are still valid EvalPlus `eval_results.json`.
"""

from __future__ import annotations

import gzip
import json
import os
import time
import zlib
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any

from leakbench.records import (
    DataError,
    LeakBenchError,
    UsageError,
    atomic_dir,
    check_not_aliased,
    check_number,
    check_output,
    input_file,
    model_label,
    provenance,
)
from leakbench.schemas import UtilityRecord
from leakbench.training import choose_device, context_length, load_causal_lm

DATASETS = ("humaneval", "mbpp")
# Official file names (HumanEval+ v0.1.10, MBPP+ v0.2.0), looked for in --data-dir.
DATA_FILES = {
    ("humaneval", False): "HumanEvalPlus-v0.1.10.jsonl.gz",
    ("humaneval", True): "HumanEvalPlus-Mini-v0.1.10.jsonl.gz",
    ("mbpp", False): "MbppPlus-v0.2.0.jsonl.gz",
}
OVERRIDE_ENV = {"humaneval": "HUMANEVAL_OVERRIDE_PATH", "mbpp": "MBPP_OVERRIDE_PATH"}
# Where a base model's completion of a function ends (EvalPlus's own stop list for base models).
STOP = ["\ndef ", "\nclass ", "\nimport ", "\nfrom ", "\nassert ", '\n"""', "\nif __name__", "\nprint(", "\n#"]
# Generous time limits: canonical solutions time out on slow 2-core machines with EvalPlus's defaults.
MIN_TIME_LIMIT = 4.0
GT_TIME_LIMIT_FACTOR = 8.0
GENERATION_BATCH_SIZE = 16
MAX_NEW_TOKENS = 512


def check_dataset(dataset: str, mini: bool = False) -> None:
    if dataset not in DATASETS:
        raise UsageError(f"unknown EvalPlus dataset {dataset!r}; choose humaneval or mbpp")
    if mini and dataset != "humaneval":
        raise UsageError("--mini exists for humaneval only (HumanEval+ Mini)")


def dataset_name(dataset: str, mini: bool) -> str:
    """(humaneval, True) -> `humaneval-mini`: the name `parse_datasets` reads."""
    return f"{dataset}{'-mini' if mini else ''}"


def parse_datasets(names: str | tuple[str, ...]) -> tuple[tuple[str, bool], ...]:
    """`humaneval,humaneval-mini,mbpp` -> ((dataset, mini), ...), refusing unknown names."""
    items = [n.strip() for n in names.split(",")] if isinstance(names, str) else list(names)
    chosen = []
    for name in filter(None, items):
        dataset, mini = name.removesuffix("-mini"), name.endswith("-mini")
        if dataset not in DATASETS or (mini and dataset != "humaneval"):
            raise UsageError(f"unknown EvalPlus dataset {name!r}; choose from: humaneval, humaneval-mini, mbpp")
        chosen.append((dataset, mini))
    return tuple(chosen)


def check_options(
    *,
    n_samples: int,
    temperature: float,
    limit: int | None,
    batch_size: int,
    max_new_tokens: int,
    min_time_limit: float,
    gt_time_limit_factor: float,
) -> None:
    """The generation and evaluation options, checked before any model or dataset is loaded."""
    check_number("--n-samples", n_samples, integer=True)
    check_number("--temperature", temperature, allow_zero=True)
    check_number("--limit", limit, integer=True)
    check_number("--batch-size", batch_size, integer=True)
    check_number("--max-new-tokens", max_new_tokens, integer=True)
    check_number("--min-time-limit", min_time_limit)
    check_number("--gt-time-limit-factor", gt_time_limit_factor)
    if n_samples > 1 and temperature == 0:
        raise UsageError("--n-samples above 1 needs a --temperature above 0 (greedy decoding repeats itself)")


def _data_path(dataset: str, mini: bool, data_dir: str | Path | None) -> str | None:
    check_dataset(dataset, mini)
    if data_dir is not None:
        path = Path(data_dir) / DATA_FILES[(dataset, mini)]
        if not Path(data_dir).is_dir():
            raise LeakBenchError(f"{data_dir}: no such directory (--data-dir must hold the official EvalPlus files)")
        input_file(path, "EvalPlus data file")
        return str(path)
    return os.environ.get(OVERRIDE_ENV[dataset])


def load_problems(dataset: str, mini: bool = False, data_dir: str | Path | None = None) -> tuple[dict[str, dict], str]:
    """EvalPlus problems and EvalPlus's own dataset hash, from local files or EvalPlus's download."""
    path = _data_path(dataset, mini, data_dir)
    from evalplus.data import humaneval, mbpp

    module = humaneval if dataset == "humaneval" else mbpp
    # EvalPlus reads its override path into a module global at import: point it at our file for this call only
    previous = getattr(module, OVERRIDE_ENV[dataset])
    setattr(module, OVERRIDE_ENV[dataset], path)
    try:
        if dataset == "humaneval":
            return module.get_human_eval_plus(mini=mini), module.get_human_eval_plus_hash(mini=mini)
        return module.get_mbpp_plus(), module.get_mbpp_plus_hash()
    except (EOFError, zlib.error, gzip.BadGzipFile, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: corrupt or truncated EvalPlus file ({exc.__class__.__name__}: {exc})") from None
    except OSError as exc:  # urllib errors are OSErrors: no network and no local copy
        name = DATA_FILES[(dataset, mini)]
        raise LeakBenchError(
            f"cannot load {dataset} ({exc.__class__.__name__}): without network, pass --data-dir DIR with {name} "
            f"in it, or set {OVERRIDE_ENV[dataset]}=/path/to/{name}"
        ) from None
    finally:
        setattr(module, OVERRIDE_ENV[dataset], previous)


def generate_samples(
    model_dir: str | Path,
    problems: dict[str, dict],
    *,
    n_samples: int = 1,
    temperature: float = 0.0,
    batch_size: int = GENERATION_BATCH_SIZE,
    max_new_tokens: int = MAX_NEW_TOKENS,
    progress: Callable[[int], None] = lambda n: None,
) -> list[dict[str, str]]:
    """Completions of every problem's prompt, sanitized with EvalPlus's sanitizer (EvalPlus samples)."""
    import torch
    from evalplus.sanitize import sanitize


    model, tokenizer = load_causal_lm(model_dir)
    device = choose_device(None)
    model.to(device).eval()
    tokenizer.padding_side = "left"
    tokenizer.truncation_side = "left"  # keep the end of a long prompt: the signature being completed
    limit = context_length(model, tokenizer.model_max_length)
    jobs = [(tid, p) for tid, p in problems.items() for _ in range(n_samples)]
    samples = []
    for i in range(0, len(jobs), batch_size):
        chunk = jobs[i : i + batch_size]
        enc = tokenizer(
            [p["prompt"] for _, p in chunk],
            return_tensors="pt",
            padding=True,
            truncation=True,
            max_length=max(16, limit - max_new_tokens),
        ).to(device)
        with torch.no_grad():
            out = model.generate(
                **enc,
                max_new_tokens=max_new_tokens,
                do_sample=temperature > 0,
                temperature=temperature if temperature > 0 else None,
                top_p=0.95 if temperature > 0 else None,
                stop_strings=STOP,
                tokenizer=tokenizer,
                pad_token_id=tokenizer.pad_token_id,
            )
        for (tid, problem), ids in zip(chunk, out, strict=True):
            completion = tokenizer.decode(ids[enc["input_ids"].shape[1] :], skip_special_tokens=True)
            for stop in STOP:  # generation may run a few tokens past a stop string
                completion = completion.split(stop)[0]
            samples.append(
                {"task_id": tid, "solution": sanitize(problem["prompt"] + completion, problem["entry_point"])}
            )
        progress(len(chunk))
    return samples


def read_samples(path: str | Path, problems: dict[str, dict]) -> list[dict[str, str]]:
    """An EvalPlus samples file (`task_id` + `solution` or `completion`), with line-numbered errors."""
    path = input_file(path, "samples file")
    samples = []
    for lineno, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise LeakBenchError(f"{path}:{lineno}: not valid JSON ({exc.msg})") from None
        except RecursionError:
            raise LeakBenchError(f"{path}:{lineno}: JSON nested too deeply") from None
        tid = row.get("task_id") if isinstance(row, dict) else None
        if tid not in problems:
            raise LeakBenchError(f"{path}:{lineno}: unknown task_id {tid!r} for this dataset")
        code = row.get("solution")
        if code is None and isinstance(row.get("completion"), str):
            code = problems[tid]["prompt"] + row["completion"]
        if not isinstance(code, str):
            raise LeakBenchError(f"{path}:{lineno}: needs a string `solution` or `completion`")
        samples.append({"task_id": tid, "solution": code})
    if not samples:
        raise LeakBenchError(f"{path}: no samples")
    return samples


def _worker_signals() -> None:
    """Checker processes leave Ctrl-C and SIGTERM to the parent, which stops the pool and cleans up."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def evaluate_samples(
    dataset: str,
    problems: dict[str, dict],
    dataset_hash: str,
    samples: list[dict[str, str]],
    *,
    min_time_limit: float = MIN_TIME_LIMIT,
    gt_time_limit_factor: float = GT_TIME_LIMIT_FACTOR,
    workers: int | None = None,
    progress: Callable[[int], None] = lambda n: None,
) -> dict[str, Any]:
    """Check samples with EvalPlus (base and plus tests); returns EvalPlus's eval_results structure plus
    pass@k. Tasks without a sample are simply absent (subsets are allowed)."""
    import numpy as np
    from evalplus.eval import PASS, estimate_pass_at_k
    from evalplus.eval._special_oracle import MBPP_OUTPUT_NOT_NONE_TASKS
    from evalplus.evaluate import check_correctness, get_groundtruth

    tasks = {s["task_id"] for s in samples}
    subset = {tid: problems[tid] for tid in problems if tid in tasks}
    expected = get_groundtruth(problems, dataset_hash, MBPP_OUTPUT_NOT_NONE_TASKS if dataset == "mbpp" else [])
    results: dict[str, list[dict[str, Any]]] = defaultdict(list)
    counter: dict[str, int] = defaultdict(int)
    workers = workers or max(1, (os.cpu_count() or 2))
    with ProcessPoolExecutor(max_workers=workers, initializer=_worker_signals) as pool:
        futures = []
        for s in samples:
            tid = s["task_id"]
            futures.append(
                pool.submit(
                    check_correctness,
                    dataset,
                    counter[tid],
                    subset[tid],
                    s["solution"],
                    expected[tid],
                    False,
                    True,
                    f"{tid}#{counter[tid]}",
                    min_time_limit,
                    gt_time_limit_factor,
                )
            )
            counter[tid] += 1
        try:
            for future in as_completed(futures):
                r = future.result()
                results[r["task_id"]].append(r)
                progress(1)
        except BaseException:  # interrupted or failed: drop the queued checks instead of running them all
            pool.shutdown(wait=True, cancel_futures=True)
            raise
    eval_results: dict[str, list[dict[str, Any]]] = {}
    for tid in sorted(results, key=lambda t: int(t.split("/")[-1])):
        eval_results[tid] = [
            {
                "task_id": tid,
                "solution": r["solution"],
                "base_status": r["base"][0],
                "plus_status": r["plus"][0],
                "base_fail_tests": [],
                "plus_fail_tests": [],
            }
            for r in sorted(results[tid], key=lambda r: r["completion_id"])
        ]
    total = np.array([len(v) for v in eval_results.values()])
    base = np.array([sum(r["base_status"] == PASS for r in v) for v in eval_results.values()])
    plus = np.array([sum(r["base_status"] == r["plus_status"] == PASS for r in v) for v in eval_results.values()])
    pass_at = {
        f"pass@{k}": {
            "base": float(estimate_pass_at_k(total, base, k).mean()),
            "plus": float(estimate_pass_at_k(total, plus, k).mean()),
        }
        for k in (1, 10, 100)
        if total.min() >= k
    }
    return {"eval": eval_results, "pass_at_k": pass_at}


def run_utility(
    out: str | Path,
    dataset: str,
    *,
    model_dir: str | Path | None = None,
    samples_file: str | Path | None = None,
    mini: bool = False,
    data_dir: str | Path | None = None,
    n_samples: int = 1,
    temperature: float = 0.0,
    limit: int | None = None,
    batch_size: int = GENERATION_BATCH_SIZE,
    max_new_tokens: int = MAX_NEW_TOKENS,
    min_time_limit: float = MIN_TIME_LIMIT,
    gt_time_limit_factor: float = GT_TIME_LIMIT_FACTOR,
    overwrite: bool = False,
    progress: Callable[[str, int, int], None] = lambda stage, done, total: None,
) -> dict[str, Any]:
    """Generate (or read) samples, evaluate them with EvalPlus, and write OUT/utility.json,
    OUT/eval_results.json (EvalPlus format) and OUT/samples.jsonl."""
    if (model_dir is None) == (samples_file is None):
        raise UsageError("give exactly one of --model (generate) or --samples (evaluate a samples file)")
    check_dataset(dataset, mini)
    check_options(
        n_samples=n_samples, temperature=temperature, limit=limit, batch_size=batch_size,
        max_new_tokens=max_new_tokens, min_time_limit=min_time_limit, gt_time_limit_factor=gt_time_limit_factor,
    )  # fmt: skip
    check_not_aliased("--out", out, {"--samples": samples_file, "--model": model_dir, "--data-dir": data_dir})
    out = check_output(out, kind="directory")
    if samples_file is not None:
        input_file(samples_file, "samples file")
    if out.exists() and not overwrite and any(out.iterdir()):  # refuse before generating for minutes
        raise LeakBenchError(f"{out}: directory exists and is not empty (pass --overwrite to replace it)")
    problems, dataset_hash = load_problems(dataset, mini, data_dir)
    started = time.perf_counter()
    if samples_file is not None:
        samples = read_samples(samples_file, problems)
        if limit:
            keep = set(list(dict.fromkeys(s["task_id"] for s in samples))[:limit])
            samples = [s for s in samples if s["task_id"] in keep]
    else:
        chosen = dict(list(problems.items())[:limit]) if limit else problems
        done = [0]

        def tick(n: int) -> None:
            done[0] += n
            progress("generate", done[0], len(chosen) * n_samples)

        samples = generate_samples(
            model_dir,
            chosen,
            n_samples=n_samples,
            temperature=temperature,
            batch_size=batch_size,
            max_new_tokens=max_new_tokens,
            progress=tick,
        )
    generated = time.perf_counter()
    checked = [0]

    def tick_eval(n: int) -> None:
        checked[0] += n
        progress("evaluate", checked[0], len(samples))

    evaluation = evaluate_samples(
        dataset,
        problems,
        dataset_hash,
        samples,
        min_time_limit=min_time_limit,
        gt_time_limit_factor=gt_time_limit_factor,
        progress=tick_eval,
    )
    from datetime import datetime

    eval_results = {"date": datetime.now().strftime("%Y-%m-%d %H:%M"), "hash": dataset_hash, "eval": evaluation["eval"]}
    record = UtilityRecord(**provenance(
        kind="utility",
        dataset=dataset,
        mini=mini,
        dataset_hash=dataset_hash,
        n_tasks=len(evaluation["eval"]),
        n_tasks_in_dataset=len(problems),
        n_samples=n_samples,
        temperature=temperature,
        # what was measured, never where it lay: the model's folder name and fingerprint, the samples file's name
        source={"model": model_label(model_dir)} if model_dir else {"samples": Path(str(samples_file)).name},
        time_limits={"min_time_limit": min_time_limit, "gt_time_limit_factor": gt_time_limit_factor},
        max_new_tokens=max_new_tokens if model_dir else None,
        wall_time_s={"generate": round(generated - started, 1), "evaluate": round(time.perf_counter() - generated, 1)},
        task_status={
            tid: [{"base": r["base_status"], "plus": r["plus_status"]} for r in rs]
            for tid, rs in evaluation["eval"].items()
        },
        **evaluation["pass_at_k"],
    ))
    with atomic_dir(out, overwrite=overwrite) as tmp:
        (tmp / "eval_results.json").write_text(json.dumps(eval_results) + "\n")
        (tmp / "samples.jsonl").write_text("".join(json.dumps(s) + "\n" for s in samples))
        record.write(tmp)
    return record.dump()
