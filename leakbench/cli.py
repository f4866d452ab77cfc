"""The `leakbench` command: one subcommand per verb, no logic of its own."""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from leakbench import __version__
from leakbench.base import BaseConfig
from leakbench.base import build as build_base
from leakbench.data import DEFAULT_RELEASE, RELEASES, check_subset, release_dir, release_hash
from leakbench.data.build import CANONICAL_SEED, CANONICAL_SUBJECTS, check_parameters, generate, write_release
from leakbench.data.stats import release_stats
from leakbench.data.verify import verify
from leakbench.harness import BACKENDS, tasks_path
from leakbench.leaderboard import publish
from leakbench.metrics import METRICS, PRIVACY
from leakbench.pipeline import (
    SAMPLED_PROBES,
    StudyConfig,
    add_robustness,
    headline_table,
    merge_summaries,
    parse_sampled_probes,
    run_study,
    ship_measurements,
    study_robustness_table,
    table,
)
from leakbench.privacy import CALIBRATION, PrivacyConfig, measure, read_record
from leakbench.records import (
    Interrupted,
    LeakBenchError,
    UsageError,
    atomic_dir,
    check_not_aliased,
    check_number,
    check_output,
    defer_signal,
    input_file,
    os_error_message,
)
from leakbench.robustness import ATTACKS, AXES, RobustnessConfig
from leakbench.schemas import PrivacyRecord
from leakbench.scoring.engine import choose_ner_model
from leakbench.scoring.jsonl import CHUNK, score_file
from leakbench.sweep import SEEDS as SWEEP_SEEDS
from leakbench.sweep import run_sweep
from leakbench.unlearn import METHODS, OPTIONS, PARAMS, UnlearnConfig, expand_methods, parse_params, unlearn
from leakbench.utility import (
    GENERATION_BATCH_SIZE,
    GT_TIME_LIMIT_FACTOR,
    MAX_NEW_TOKENS,
    MIN_TIME_LIMIT,
    check_dataset,
    check_options,
    run_utility,
)
from leakbench.victim import VictimConfig, prebuilt
from leakbench.victim import build as build_victim
from leakbench.workers import default_workers

app = typer.Typer(
    name="leakbench",
    help="LeakBench: does a code model leak the personal data and secrets it was trained on?",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
data_app = typer.Typer(help="Build, check, export and describe the benchmark data release.", no_args_is_help=True)
app.add_typer(data_app, name="data")
base_app = typer.Typer(
    help="Pretrain the embedded base code model (shipped; needed only to rebuild it).", no_args_is_help=True
)
app.add_typer(base_app, name="base")
victim_app = typer.Typer(
    help="Build victim models that memorized the forget set, and their oracles that never saw it.", no_args_is_help=True
)
app.add_typer(victim_app, name="victim")

console = Console()
err_console = Console(stderr=True)


def say(message: str) -> None:
    """A verb's progress line, printed as written: "[victim 2/3]" or a path in brackets is not rich markup."""
    console.print(message, markup=False, highlight=False, soft_wrap=True)


# Help texts list what the registries hold (outside packages' entries by name: their declarations load on use).
def _using(param: str) -> str:
    """The built-in methods that read a hyper-parameter."""
    return ", ".join(m for m in METHODS.builtin if param in METHODS[m].defaults)


_METHODS = ", ".join(METHODS)
_METHOD_TITLES = ", ".join(METHODS[m].title for m in METHODS.builtin)
_PARAMS = "; ".join(f"{k} ({_using(k)})" for k in PARAMS if k not in OPTIONS)
_ATTACK_TITLES = "; ".join(ATTACKS[a].title for a in AXES)


def _version(value: bool) -> None:
    if value:
        say(f"leakbench {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """LeakBench: does a code model leak the personal data and secrets it was trained on?"""


@data_app.command("build")
def data_build(
    out: Annotated[Path, typer.Option("--out", help="Directory to write the release into (must be new or empty).")],
    seed: Annotated[int, typer.Option(help="Generator seed; the canonical seed is the default.")] = CANONICAL_SEED,
    subjects: Annotated[
        int, typer.Option(help="Number of fictional forget subjects (the first 50 form `mini`).")
    ] = CANONICAL_SUBJECTS,
    release: Annotated[
        str,
        typer.Option(
            help="Release format: v3 (subject roles: forget, substitute, validation_forget, validation_holdout, "
            "holdout), v2 (forget + 20% holdout subjects) or v1 (forget subjects only)."
        ),
    ] = DEFAULT_RELEASE,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing non-empty --out directory.")] = False,
) -> None:
    """Generate a release (subjects, forget/retain documents, probes, manifest) deterministically; the defaults
    rebuild the packaged release byte for byte."""

    check_parameters(seed, subjects)
    with console.status(f"generating {subjects} subjects (seed {seed}, release {release})..."):
        rows = generate(seed, subjects, release)
        manifest = write_release(rows, out, seed=seed, n_subjects=subjects, name=release, overwrite=overwrite)
    c = manifest["counts"]
    holdout = c.get("holdout", {}).get("subjects", {}).get("full", 0)
    roles = c.get("roles", {}).get("subjects", {})
    whom = ", ".join(f"{n['full']} {role}" for role, n in roles.items()) if roles else f"{holdout} holdout"
    say(
        f"wrote {out}: {c['subjects']['full']} subjects ({whom}), {c['forget']['full']} forget and "
        f"{c['retain']['full']} retain documents, {c['probes']['full']} probes"
    )
    if "answerability" in manifest:
        say(f"dropped {manifest['answerability']['dropped_probes']['full']} unanswerable probes")


@data_app.command("verify")
def data_verify(
    path: Annotated[Path | None, typer.Argument(help="Release directory (default: the packaged --release).")] = None,
    release: Annotated[str, typer.Option(help="Packaged release name (v1, v2 or v3).")] = DEFAULT_RELEASE,
) -> None:
    """Check hashes, schema, safety rules and invariants of a release; name everything that is wrong."""

    root = release_dir(release, path)
    with console.status(f"verifying {root}..."):
        problems = verify(root)
    if problems:
        for problem in problems:
            err_console.print(f"[red]✗[/red] {escape(problem)}", highlight=False, soft_wrap=True)
        raise LeakBenchError(f"{root}: {len(problems)} problem(s) found")
    console.print(f"[green]✓[/green] {escape(str(root))}: hashes, schema, safety rules and invariants all hold")


@data_app.command("export")
def data_export(
    out: Annotated[Path, typer.Option("--out", help="Directory to copy the release files into.")],
    release: Annotated[str, typer.Option(help="Packaged release name (v1, v2 or v3).")] = DEFAULT_RELEASE,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing non-empty --out directory.")] = False,
) -> None:
    """Write a packaged release out as plain files (JSONL + manifest)."""
    import shutil


    root = release_dir(release)
    check_not_aliased("--out", out, {f"the packaged release {name}": path for name, path in RELEASES.items()})
    with atomic_dir(out, overwrite=overwrite) as tmp:
        for src in sorted(root.iterdir()):
            if src.suffix in (".jsonl", ".json"):
                shutil.copyfile(src, tmp / src.name)
    say(f"exported release {release} to {out}")


@data_app.command("stats")
def data_stats(
    path: Annotated[Path | None, typer.Argument(help="Release directory (default: the packaged --release).")] = None,
    subset: Annotated[str, typer.Option(help="full or mini.")] = "full",
    release: Annotated[str, typer.Option(help="Packaged release name (v1, v2 or v3).")] = DEFAULT_RELEASE,
) -> None:
    """Print counts by split, field, template, language and probe kind."""

    check_subset(subset)
    for title, counts in release_stats(release_dir(release, path), subset).items():
        table = Table(title=f"{title} ({subset})", title_justify="left")
        table.add_column("")
        table.add_column("count", justify="right")
        for key, value in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])):
            table.add_row(key, str(value))
        console.print(table)


@app.command("score")
def score_cmd(
    src: Annotated[Path, typer.Option("--in", help="JSONL rows: prompt, generation, target_field, subject[, others].")],
    dst: Annotated[Path, typer.Option("--out", help="JSONL output: each input row plus its verdict.")],
    ner: Annotated[
        str | None, typer.Option(help="spaCy model for Presidio's NER, or 'none' for the pattern-only engine.")
    ] = None,
    workers: Annotated[int | None, typer.Option(help="Scoring processes (default: one per available core).")] = None,
) -> None:
    """Classify generations as direct / indirect / no leaks of their subject, plus other PII found."""
    from rich.progress import Progress


    check_number("--workers", workers, integer=True)
    input_file(src, "input file")
    check_not_aliased("--out", dst, {"--in": src})
    engine = choose_ner_model(ner)  # an unknown model fails here, before any work
    total = sum(1 for line in src.open("rb") if line.strip())
    n_workers = min(workers or default_workers(), max(1, -(-total // CHUNK)))  # no more workers than chunks
    errors: list[str] = []
    with Progress(console=err_console, transient=True) as progress:
        task = progress.add_task(f"scoring ({n_workers} worker{'s' * (n_workers > 1)})", total=total)
        counts = score_file(
            src, dst, ner_model=engine, workers=n_workers, on_error=errors.append,
            on_progress=lambda n: progress.advance(task, n),
        )  # fmt: skip
    for message in errors:
        err_console.print(f"[red]error:[/red] {escape(message)}", highlight=False, soft_wrap=True)
    summary = ", ".join(f"{counts.get(k, 0)} {k}" for k in ("direct", "indirect", "none"))
    say(f"wrote {dst}: {summary} (NER engine: {engine})")
    if errors:
        raise LeakBenchError(f"{src}: {len(errors)} malformed row(s) (marked with `error` in {dst})")


@base_app.command("build")
def base_build(
    out: Annotated[Path, typer.Option("--out", help="Model directory to write (resumes an interrupted build).")],
    tokens: Annotated[int, typer.Option(help="Training budget in tokens.")] = BaseConfig.tokens,
    hidden: Annotated[int, typer.Option(help="Hidden size.")] = BaseConfig.hidden,
    layers: Annotated[int, typer.Option(help="Decoder layers.")] = BaseConfig.layers,
    heads: Annotated[int, typer.Option(help="Attention heads.")] = BaseConfig.heads,
    vocab_size: Annotated[int, typer.Option(help="BPE vocabulary size.")] = BaseConfig.vocab_size,
    block: Annotated[int, typer.Option(help="Context length (tokens per training block).")] = BaseConfig.block,
    batch_size: Annotated[int, typer.Option(help="Blocks per optimizer step.")] = BaseConfig.batch_size,
    lr: Annotated[float, typer.Option(help="Peak learning rate (cosine schedule).")] = BaseConfig.lr,
    warmup_steps: Annotated[int, typer.Option(help="Linear warm-up steps.")] = BaseConfig.warmup_steps,
    corpus_chars: Annotated[
        int | None, typer.Option(help="Use only this many corpus characters (toy builds); default: all.")
    ] = None,
    seed: Annotated[int, typer.Option(help="Training seed.")] = BaseConfig.seed,
    overwrite: Annotated[bool, typer.Option(help="Rebuild even if --out holds a base.")] = False,
) -> None:
    """Pretrain a small code LM from scratch on the standard library (held-out modules excluded)."""
    cfg = BaseConfig(tokens=tokens, hidden=hidden, layers=layers, heads=heads, vocab_size=vocab_size, block=block,
                     batch_size=batch_size, lr=lr, warmup_steps=warmup_steps, corpus_chars=corpus_chars,
                     seed=seed)  # fmt: skip
    build_base(out, cfg, overwrite=overwrite, log=say)


@victim_app.command("build")
def victim_build(
    out: Annotated[
        Path, typer.Option("--out", help="Model directory to write (reused if built with the same arguments).")
    ],
    subset: Annotated[str, typer.Option(help="Forget set to memorize: mini or full.")] = VictimConfig.subset,
    base: Annotated[
        str | None, typer.Option(help="Fine-tune this Hugging Face causal LM instead of the embedded base.")
    ] = None,
    epochs: Annotated[
        int | None, typer.Option(help=f"Passes over the forget subjects' documents (default {VictimConfig.epochs}).")
    ] = None,
    mix: Annotated[
        float | None, typer.Option(help=f"Tokens of other code per forget token (default {VictimConfig.mix}).")
    ] = None,
    lora: Annotated[bool, typer.Option(help="Fine-tune --base with LoRA adapters (merged when saved).")] = False,
    lora_rank: Annotated[
        int | None,
        typer.Option(help=f"With --lora: the LoRA rank (alpha = 2 x rank; default {VictimConfig.lora_rank})."),
    ] = None,
    oracle: Annotated[
        bool, typer.Option(help="Build the oracle: the same recipe, substitute subjects in the forget ones' place.")
    ] = False,
    seed: Annotated[int, typer.Option(help="Training seed.")] = 0,
    lr: Annotated[float | None, typer.Option(help=f"Peak learning rate (default {VictimConfig.lr}).")] = None,
    data_dir: Annotated[Path | None, typer.Option(help="A release built with `leakbench data build`.")] = None,
    overwrite: Annotated[bool, typer.Option(help="Rebuild even if --out holds a victim.")] = False,
    from_scratch: Annotated[
        bool, typer.Option(help="Train even when the package ships this model (to check it rebuilds byte for byte).")
    ] = False,
) -> None:
    """Fine-tune a victim that memorized the forget subjects (or, with --oracle, the model that saw their
    substitutes instead). The default recipe's victim and oracle ship prebuilt and are copied unless --from-scratch."""
    _check_lora(lora, lora_rank)
    changes = {k: v for k, v in (("epochs", epochs), ("mix", mix), ("lr", lr), ("lora_rank", lora_rank))
               if v is not None}  # fmt: skip
    cfg = VictimConfig(subset=subset, base=base, oracle=oracle, lora=lora, seed=seed, **changes)
    build_victim(out, cfg, data_dir=data_dir, overwrite=overwrite, from_scratch=from_scratch, log=say)


def _check_lora(lora: bool, lora_rank: int | None) -> None:
    if lora_rank is not None and not lora:
        raise UsageError("--lora-rank has no effect without --lora: add --lora, or drop --lora-rank")


@victim_app.command("ship-measurements")
def victim_ship_measurements(
    study: Annotated[Path, typer.Argument(help="The --out folder of a default `leakbench run` that ran to the end.")],
) -> None:
    """For maintainers, after the shipped victim, oracle or task declarations change: keep the victim's and
    oracle's measurements of a default `leakbench run` in the package, where `leakbench run` reuses them when its
    settings, weights and reference are the same."""
    for folder in ship_measurements(study):
        say(f"shipped {folder}")


@app.command("unlearn", help=(
    "Make a model forget the forget set on the HF Trainer (`accelerate launch -m leakbench unlearn` for several "
    f"processes or GPUs): {_METHOD_TITLES}" + "".join(f", {m}" for m in METHODS if m not in METHODS.builtin) + "."))
def unlearn_cmd(
    model: Annotated[str, typer.Option("--model", help="Victim model directory (or hub id).")],
    method: Annotated[str, typer.Option(help=f"One of: {_METHODS}.")],
    out: Annotated[Path, typer.Option("--out", help="Directory for the unlearned model and unlearn.json.")],
    steps: Annotated[int | None, typer.Option(help="Optimizer steps (default: the method's).")] = None,
    lr: Annotated[float | None, typer.Option(help="Learning rate (default: the method's).")] = None,
    retain_weight: Annotated[
        float | None, typer.Option(help="Weight of the retain term (NLL, KL or RMU's activation match).")
    ] = None,
    beta: Annotated[float | None, typer.Option(help=f"Inverse temperature ({_using('beta')}).")] = None,
    param: Annotated[
        list[str] | None,
        typer.Option(help=f"A method's other hyper-parameter as NAME=VALUE (repeatable), e.g. margin=0.5: {_PARAMS}."),
    ] = None,
    batch_size: Annotated[
        int, typer.Option(help="Forget/retain pairs per step, over all processes (the global batch).")
    ] = UnlearnConfig.batch_size,
    values_only: Annotated[
        bool, typer.Option(help="Restrict the forget loss to the tokens of the sensitive values.")
    ] = False,
    lora: Annotated[bool, typer.Option(help="Train LoRA adapters (merged when saved).")] = False,
    lora_rank: Annotated[
        int | None,
        typer.Option(help=f"With --lora: the LoRA rank (alpha = 2 x rank; default {UnlearnConfig.lora_rank})."),
    ] = None,
    seed: Annotated[int, typer.Option(help="Training seed.")] = UnlearnConfig.seed,
    subset: Annotated[str | None, typer.Option(help="Forget set (default: the one the victim memorized).")] = None,
    data_dir: Annotated[Path | None, typer.Option(help="A release built with `leakbench data build`.")] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing --out directory.")] = False,
) -> None:
    _check_lora(lora, lora_rank)
    cfg = UnlearnConfig(
        method=method,
        steps=steps,
        lr=lr,
        retain_weight=retain_weight,
        beta=beta,
        params=parse_params(param or []),
        batch_size=batch_size,
        values_only=values_only,
        lora=lora,
        lora_rank=UnlearnConfig.lora_rank if lora_rank is None else lora_rank,
        seed=seed,
        subset=subset,
    )
    unlearn(model, out, cfg, data_dir=data_dir, overwrite=overwrite, log=say)


@app.command("sweep")
def sweep_cmd(
    out: Annotated[Path, typer.Option("--out", help="Folder for sweep.json (rewritten after every run: a sweep "
                                                    "resumes from it) and the runs' scratch space.")],
    model: Annotated[
        str | None,
        typer.Option("--model", help="The victim (default: the shipped one); it must have memorized the release's "
                                     "validation subjects."),
    ] = None,
    methods: Annotated[str, typer.Option(help="Comma-separated methods, or 'all'.")] = "all",
    subset: Annotated[str, typer.Option(help="mini or full.")] = "mini",
    seeds: Annotated[int, typer.Option(help="Unlearning seeds per grid point (0..N-1).")] = SWEEP_SEEDS,
    jobs: Annotated[
        int | None, typer.Option(help="Runs at once, in worker processes (default: 2 on a CPU with 2+ cores).")
    ] = None,
) -> None:
    """Choose the methods' defaults on the validation subjects and code only: every point of each method's grid
    (the same number for every method) unlearned at --seeds seeds and scored on direct leaks and the validation
    held-out code; per method the Pareto front, and the lowest mean direct leak among points keeping >= 99% of the
    victim's code utility and halving its leaks (else keeping >= 91%) wins. Resumes an interrupted sweep."""

    check_subset(subset)
    chosen = expand_methods(tuple(m.strip() for m in methods.split(",") if m.strip()))
    if model is None:
        found = prebuilt(VictimConfig(subset=subset), release_hash())
        if found is None:
            raise LeakBenchError(f"no shipped victim for the {subset} subset (or its weights fail their sha256 "
                                 "check); pass --model, or reinstall leakbench")  # fmt: skip
        model = str(found)
    summary = run_sweep(model, out, chosen, subset=subset, seeds=seeds, jobs=jobs, log=say)
    for method, row in summary["methods"].items():
        say(f"{method}: {row['chosen']['hyperparameters']} ({row['rule']}); front: {', '.join(row['front'])}")


@app.command("privacy")
def privacy_cmd(
    model: Annotated[str, typer.Option("--model", help="Model directory (or hub id) to measure.")],
    out: Annotated[
        Path, typer.Option("--out", help="JSON record to write (put it in the run folder as privacy.json).")
    ],
    reference: Annotated[
        Path | None,
        typer.Option(help="The oracle's privacy record: adds PrivLeak per attack and forget quality against it."),
    ] = None,
    subset: Annotated[str, typer.Option(help="mini or full.")] = PrivacyConfig.subset,
    k: Annotated[
        float, typer.Option(help="Min-K% and Min-K%++: the fraction of lowest-scoring tokens.")
    ] = PrivacyConfig.k,
    batch_size: Annotated[int, typer.Option(help="Sequences per forward pass.")] = PrivacyConfig.batch_size,
    release: Annotated[str | None, typer.Option(help=f"Packaged release name (default: {DEFAULT_RELEASE}).")] = None,
    data_dir: Annotated[Path | None, typer.Option(help="A release built with `leakbench data build`.")] = None,
    device: Annotated[str | None, typer.Option(help="cpu, cuda, ... (default: cuda when present).")] = None,
    calibration: Annotated[
        str,
        typer.Option(help="The reference attack's reference model: 'base' (the shipped base, which never saw a "
                     "subject), a model directory or hub id (for a hub model: its pre-fine-tuning checkpoint), or "
                     "'none'."),
    ] = CALIBRATION,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing --out file.")] = False,
) -> None:
    """Memorization and membership inference on the forget set: exact memorization, extraction strength, and
    the AUC of LOSS, zlib, Min-K%, Min-K%++ and the reference attack against the holdout subjects, with the
    strongest attack's TPR at 1% and 0.1% FPR and subject-bootstrap intervals; with --reference, MUSE's PrivLeak
    and TOFU's forget quality (p, KS D, log10 p)."""

    cfg = PrivacyConfig(subset=subset, k=k, batch_size=batch_size, release=release, data_dir=data_dir,
                        calibration=calibration)
    check_output(out, kind="file")
    check_not_aliased("--out", out, {"--reference": reference})
    if out.exists() and not overwrite:
        raise LeakBenchError(f"{out}: exists; pass --overwrite to replace it")
    ref = read_record(reference, "--reference") if reference is not None else None
    record = measure(model, cfg, reference=ref, device=device, log=say)
    PrivacyRecord.parse(record, str(out)).write_file(out)
    m = record["metrics"]
    line = ", ".join(f"{spec.label} {spec.show(m[spec.key])}" for spec in METRICS
                     if spec.study and spec.sources[0][0] == PRIVACY and m.get(spec.key) is not None)  # fmt: skip
    say(f"{line}; wrote {out} in {record['wall_time_s']} s")


def headline(rows: dict[str, dict[str, Any]]) -> Table:
    """The study's headline table as the console prints it (`pipeline.headline_table`), its notes as caption."""
    columns, cells, notes = headline_table(rows)
    from rich import box

    printed = Table(title="LeakBench study", title_justify="left", caption="\n".join(notes), caption_justify="left",
                    box=box.SIMPLE_HEAD, collapse_padding=True, pad_edge=False)  # 7 columns fit 100
    for i, column in enumerate(columns):
        printed.add_column(column, justify="left" if i == 0 else "right")
    for row in cells:
        printed.add_row(*row)
    return printed


@app.command("utility")
def utility_cmd(
    dataset: Annotated[str, typer.Option(help="humaneval or mbpp (HumanEval+ / MBPP+).")],
    out: Annotated[Path, typer.Option("--out", help="Directory for utility.json, eval_results.json, samples.jsonl.")],
    model: Annotated[str | None, typer.Option(help="Generate completions with this model directory.")] = None,
    samples: Annotated[Path | None, typer.Option(help="Evaluate this EvalPlus samples file instead.")] = None,
    mini: Annotated[bool, typer.Option(help="HumanEval+ Mini (fewer plus tests).")] = False,
    n_samples: Annotated[int, typer.Option(help="Samples per task (pass@k for k <= n).")] = 1,
    temperature: Annotated[float, typer.Option(help="Sampling temperature (0: greedy).")] = 0.0,
    limit: Annotated[int | None, typer.Option(help="Only the first N tasks (smoke runs).")] = None,
    batch_size: Annotated[int, typer.Option(help="Generation batch size.")] = GENERATION_BATCH_SIZE,
    max_new_tokens: Annotated[int, typer.Option(help="Longest completion, in tokens.")] = MAX_NEW_TOKENS,
    data_dir: Annotated[
        Path | None, typer.Option(help="Folder with the official EvalPlus files (offline use).")
    ] = None,
    min_time_limit: Annotated[float, typer.Option(help="EvalPlus: minimum seconds per test input.")] = MIN_TIME_LIMIT,
    gt_time_limit_factor: Annotated[
        float, typer.Option(help="EvalPlus: time limit as a multiple of the canonical solution's time.")
    ] = GT_TIME_LIMIT_FACTOR,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing --out directory.")] = False,
) -> None:
    """Code-generation utility: HumanEval+ / MBPP+ pass@1 (base and plus tests) through EvalPlus."""
    from rich.progress import Progress


    check_dataset(dataset, mini)
    check_options(
        n_samples=n_samples, temperature=temperature, limit=limit, batch_size=batch_size,
        max_new_tokens=max_new_tokens, min_time_limit=min_time_limit, gt_time_limit_factor=gt_time_limit_factor,
    )  # fmt: skip
    with Progress(console=err_console, transient=True) as bar:
        tasks: dict[str, int] = {}

        def progress(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = bar.add_task(stage, total=total)
            bar.update(tasks[stage], completed=done, total=total)

        record = run_utility(
            out,
            dataset,
            model_dir=model,
            samples_file=samples,
            mini=mini,
            data_dir=data_dir,
            n_samples=n_samples,
            temperature=temperature,
            limit=limit,
            batch_size=batch_size,
            max_new_tokens=max_new_tokens,
            min_time_limit=min_time_limit,
            gt_time_limit_factor=gt_time_limit_factor,
            overwrite=overwrite,
            progress=progress,
        )
    p1 = record["pass@1"]
    say(
        f"{dataset}{' (mini)' if mini else ''}: {record['n_tasks']} tasks, pass@1 base {p1['base']:.3f}, "
        f"plus {p1['plus']:.3f}; wrote {out / 'utility.json'}"
    )


@app.command("publish")
def publish_cmd(
    run_dirs: Annotated[list[Path], typer.Argument(help="Run directories (lm-eval outputs, utility.json, run.json).")],
    leaderboard: Annotated[Path, typer.Option(help="Leaderboard JSON to merge into.")] = Path(
        "results/leaderboard.json"
    ),
    html: Annotated[Path | None, typer.Option(help="Static HTML page to render.")] = Path("results/index.html"),
    examples: Annotated[bool, typer.Option(help="Include a few redacted generations per task.")] = True,
) -> None:
    """Validate runs and merge them into the leaderboard (idempotent), then render the static page."""

    with console.status("validating and merging..."):
        counts = publish(run_dirs, leaderboard, html, examples=examples)
    say(
        f"{leaderboard}: {counts['added']} added, {counts['replaced']} replaced, "
        f"{counts['unchanged']} unchanged" + (f"; page {html}" if html else "")
    )


@app.command("merge")
def merge_cmd(
    studies: Annotated[
        list[Path], typer.Argument(help="Study folders (or their summary.json) of one victim and oracle.")
    ],
    out: Annotated[Path, typer.Option("--out", help="Folder for the merged summary.json and summary.md.")],
) -> None:
    """Join studies of the same victim and oracle run side by side with different --methods into one summary
    (refused when their victim or oracle rows, subset or seeds differ)."""

    merged = merge_summaries(studies, out)
    say(f"wrote {out / 'summary.json'} and summary.md: {len(merged['rows'])} rows from {len(studies)} "
        "studies")  # fmt: skip


@app.command("run")
def run_cmd(
    out: Annotated[Path, typer.Option("--out", help="Run directory (models, lm-eval outputs, summary).")] = Path(
        "runs/study"
    ),
    subset: Annotated[str, typer.Option(help="mini (50 subjects, CPU) or full.")] = StudyConfig.subset,
    methods: Annotated[
        str, typer.Option(help=f"Comma-separated unlearning methods, or 'all' ({_METHODS}).")
    ] = ",".join(StudyConfig.methods),
    model: Annotated[
        str | None, typer.Option(help="Use this victim model directory instead of building the embedded one.")
    ] = None,
    oracle: Annotated[
        str | None, typer.Option(help="With --model: its oracle (the same recipe without the forget set).")
    ] = None,
    epochs: Annotated[int | None, typer.Option(help="Victim: exposures of each forget document.")] = None,
    steps: Annotated[
        int | None, typer.Option(help="Unlearning steps for every method (default: each method's).")
    ] = None,
    ner: Annotated[str, typer.Option(help="Presidio NER model for other-PII detection, or 'none'.")] = "none",
    batch_size: Annotated[str, typer.Option(help="lm-eval batch size: a number, 'auto' or 'auto:N'.")] = str(
        StudyConfig.batch_size
    ),
    backend: Annotated[str, typer.Option(help=f"lm-eval model backend: {', '.join(BACKENDS)}.")] = StudyConfig.backend,
    model_args: Annotated[
        str, typer.Option(help="Backend arguments, k=v,... (e.g. dtype=bfloat16,tensor_parallel_size=2).")
    ] = StudyConfig.model_args,
    limit: Annotated[int | None, typer.Option(help="Evaluate only the first N probes per task (smoke runs).")] = None,
    sampled_probes: Annotated[
        str, typer.Option(help="Probes of the sampled leak@5/leak@10 and reconstruction tasks: N, evenly spaced "
                               "over the subjects, or 'all' (the reference run's).")
    ] = str(SAMPLED_PROBES),
    utility: Annotated[
        str, typer.Option(help="EvalPlus datasets, comma-separated: humaneval, humaneval-mini, mbpp; '' for none.")
    ] = ",".join(StudyConfig.utility),
    evalplus_dir: Annotated[
        Path | None, typer.Option(help="Folder with the official EvalPlus files (offline use).")
    ] = None,
    publish_to: Annotated[
        Path | None,
        typer.Option(help="Leaderboard folder to publish into (default: --out; results/ updates the repository's); "
                          "not with --no-publish."),
    ] = None,
    seeds: Annotated[int, typer.Option(help="Unlearning runs per method (seeds 0..N-1); rows show mean ± 95% CI.")] = 1,
    jobs: Annotated[
        int | None,
        typer.Option(help="Models unlearned and measured at once, in worker processes with their logs in OUT/logs "
                          "(default: 2 on a CPU with 2+ cores, 1 on a GPU or with vLLM)."),
    ] = None,
    victim_seeds: Annotated[
        int, typer.Option(help="Victim/oracle pairs to build (seeds 0..M-1), each unlearned --seeds times.")
    ] = 1,
    robustness: Annotated[
        bool,
        typer.Option(help=f"Also attack every unlearned model, each against its own victim: {_ATTACK_TITLES} "
                     "(about 4 minutes per model on mini, 2 CPU cores); a model attacked already with the same "
                     "settings is reused."),
    ] = False,
    robustness_axes: Annotated[
        str, typer.Option(help=f"With --robustness: the attacks, comma-separated ({', '.join(ATTACKS)}).")
    ] = ",".join(AXES),
    no_publish: Annotated[bool, typer.Option("--no-publish", help="Do not publish the runs.")] = False,
    measure_shipped: Annotated[
        bool,
        typer.Option("--measure-shipped", help="Measure the shipped victim and oracle here rather than reuse the "
                     "measurements shipped with them (used only when made with this run's settings)."),
    ] = False,
) -> None:
    """The whole study: victim and oracle -> leak, utility and privacy measurements -> the unlearning methods
    (over --seeds) -> the same again -> leaderboard, with a table at the end."""

    chosen = tuple(m.strip() for m in methods.split(",") if m.strip())
    cfg = StudyConfig(
        out=out,
        subset=subset,
        methods=chosen,
        model=model,
        oracle=oracle,
        victim={"epochs": epochs} if epochs is not None else {},
        unlearn={"steps": steps} if steps is not None else {},
        ner=ner,
        batch_size=batch_size,
        backend=backend,
        model_args=model_args,
        limit=limit,
        sampled_probes=parse_sampled_probes(sampled_probes),
        utility=tuple(u.strip() for u in utility.split(",") if u.strip()),
        evalplus_dir=evalplus_dir,
        seeds=seeds,
        jobs=jobs,
        victim_seeds=victim_seeds,
        robustness=robustness,
        robustness_options={"axes": _items(robustness_axes)},
        publish=not no_publish,
        publish_to=publish_to,
        reuse_shipped=not measure_shipped,
    )
    summary = run_study(cfg, log=say)
    console.print(headline(summary["rows"]))
    say(f"study finished in {summary['wall_time_s']:.0f}s; the full table ({len(table(summary['rows'])[0])} "
        f"columns) is {out / 'summary.md'}, the record {out / 'summary.json'}")
    if summary.get("robustness"):
        _print_robustness(summary)
    if cfg.publish:
        board = cfg.publish_to or cfg.out
        say(f"leaderboard: {board / 'leaderboard.json'}; page: {board / 'index.html'}")


def _items(text: str) -> tuple[str, ...]:
    return tuple(x.strip() for x in text.split(",") if x.strip())


def _print_robustness(summary: dict) -> None:
    say("\nRobustness (Markdown, also in summary.md):")
    say(study_robustness_table(summary))


@app.command("robustness", help=(
    f"Is it really forgotten? Attack a finished study's unlearned models (each method's first run): {_ATTACK_TITLES}"
    + "".join(f"; {a}" for a in ATTACKS if a not in AXES) + ". Adds the table to the study's summary and "
    "robustness.json to each run folder; `leakbench publish` then puts it on the leaderboard."))
def robustness_cmd(
    study: Annotated[Path, typer.Argument(help="The --out folder of a finished `leakbench run`.")],
    methods: Annotated[
        str | None, typer.Option(help="Comma-separated methods of the study (default: all of them).")
    ] = None,
    axes: Annotated[
        str, typer.Option(help=f"Attacks, comma-separated: {', '.join(ATTACKS)} (default: {', '.join(AXES)}).")
    ] = ",".join(AXES),
    relearn_fraction: Annotated[
        float, typer.Option(help="Relearning: share of the forget subjects whose documents the attack trains on.")
    ] = RobustnessConfig.relearn_fraction,
    relearn_steps: Annotated[int, typer.Option(help="Relearning: fine-tuning steps.")] = RobustnessConfig.relearn_steps,
    relearn_lr: Annotated[float, typer.Option(help="Relearning: learning rate.")] = RobustnessConfig.relearn_lr,
    bits: Annotated[str, typer.Option(help="Quantization: weight bits, comma-separated (8, 4).")] = "8,4",
    requests: Annotated[int, typer.Option(help="Sequential: deletion requests.")] = RobustnessConfig.requests,
    sizes: Annotated[
        str, typer.Option(help="Scaling: forget-set sizes, fractions of the subjects, comma-separated.")
    ] = ",".join(map(str, RobustnessConfig.sizes)),
    probes: Annotated[int, typer.Option(help="Full direct probes measured per subject.")] = RobustnessConfig.probes,
    seed: Annotated[int, typer.Option(help="Seed of the subject splits and the relearning.")] = RobustnessConfig.seed,
    model: Annotated[
        Path | None, typer.Option(help="The victim, for a study run with --model (it is not in the study folder).")
    ] = None,
    oracle: Annotated[Path | None, typer.Option(help="Its oracle, likewise.")] = None,
    data_dir: Annotated[Path | None, typer.Option(help="The release the study used, if not the packaged one.")] = None,
    ner: Annotated[
        str | None, typer.Option(help="Presidio NER model for the leak scorer, or 'none' (default: the study's).")
    ] = None,
    option: Annotated[
        list[str] | None, typer.Option(help="An outside attack's own option as NAME=VALUE (repeatable).")
    ] = None,
) -> None:
    def numbers(option: str, text: str, kind: type) -> tuple:
        try:
            return tuple(kind(x) for x in _items(text))
        except ValueError:
            raise typer.BadParameter(f"expected comma-separated numbers, got {text!r}", param_hint=option) from None

    cfg = RobustnessConfig(axes=_items(axes), relearn_fraction=relearn_fraction, relearn_steps=relearn_steps,
                           relearn_lr=relearn_lr, bits=numbers("--bits", bits, int), requests=requests,
                           sizes=numbers("--sizes", sizes, float), probes=probes, seed=seed,
                           options=parse_params(option or [], "--option"))  # fmt: skip
    summary = add_robustness(study, cfg, methods=_items(methods) if methods else None, model=model, oracle=oracle,
                             data_dir=data_dir, ner=ner, log=say)  # fmt: skip
    _print_robustness(summary)
    say(f"wrote {study / 'summary.json'}, {study / 'summary.md'} and robustness.json in each run folder")


@app.command("tasks-path")
def tasks_path_cmd() -> None:
    """Print the folder of LeakBench's lm-eval tasks (for lm_eval --include_path)."""

    print(tasks_path())


@contextlib.contextmanager
def _stop_cleanly_on_signals() -> Iterator[None]:
    """SIGINT and SIGTERM raise `Interrupted` in the main thread, so every atomic writer unwinds and removes
    its temporary files; a second signal during that clean-up is ignored rather than cutting it short."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    signals = (signal.SIGINT, signal.SIGTERM)

    def stop(signum: int, frame: object) -> None:
        if defer_signal(signum):  # mid-commit: raised when the commit is done
            return
        for s in signals:
            signal.signal(s, signal.SIG_IGN)
        raise Interrupted(signum)

    previous = {s: signal.signal(s, stop) for s in signals}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def _close_progress_bars() -> None:
    """Close every progress bar still drawn (the Trainer's, when a signal or an error stops training), so that the
    error line starts a line of its own and no bar is redrawn after it."""
    for name in ("tqdm.std", "tqdm.auto", "tqdm.asyncio"):  # only if loaded: nothing is imported here
        bar_class = getattr(sys.modules.get(name), "tqdm", None)
        for bar in list(getattr(bar_class, "_instances", ())):
            with contextlib.suppress(Exception):
                bar.close()


def _fail(message: str) -> None:
    """`error: MESSAGE` on one line of stderr (the message is text, never rich markup)."""
    _close_progress_bars()
    sys.stderr.flush()
    err_console.print(f"[red]error:[/red] {escape(' '.join(message.splitlines()))}", highlight=False, soft_wrap=True)


def main(argv: list[str] | None = None) -> int:
    """Entry point and the one place where failures become exit codes: 0 success, 1 an error the user can
    fix (bad input, file-system problem, refused action), 2 a usage error (bad option, found before any work),
    130 interrupted (Ctrl-C), 143 terminated (SIGTERM). Always one line on stderr, never a traceback."""
    try:
        with _stop_cleanly_on_signals():
            rc = app(args=argv, prog_name="leakbench", standalone_mode=False)
    except LeakBenchError as exc:
        _fail(str(exc))
        return exc.exit_code
    except Interrupted as exc:
        what = "interrupted (Ctrl-C)" if exc.signum == signal.SIGINT else "terminated (SIGTERM)"
        _fail(f"{what}; nothing half-written was kept")
        return exc.exit_code
    except typer.exceptions.TyperException as exc:  # typer's (vendored click's) usage errors: exit code 2
        ctx = getattr(exc, "ctx", None)
        if type(exc).__name__ == "NoArgsIsHelpError" or ctx is None:
            exc.show()  # type: ignore[attr-defined]
        else:
            _fail(f"{exc.format_message()} (see '{ctx.command_path} --help')")
        return exc.exit_code
    except typer.Abort:  # typer turns an unexpected end of input (EOFError) into Abort
        _fail("unexpected end of input")
        return 1
    except OSError as exc:
        _fail(os_error_message(exc))
        return 1
    if rc == 130:  # typer turns a KeyboardInterrupt it sees into exit code 130
        _fail("interrupted (Ctrl-C); nothing half-written was kept")
    return rc if isinstance(rc, int) else 0


def entry() -> None:
    sys.exit(main())
