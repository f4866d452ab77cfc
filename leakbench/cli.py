"""The `leakbench` command: one subcommand per verb, no logic of its own."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from leakbench import __version__
from leakbench.records import LeakBenchError

app = typer.Typer(
    name="leakbench",
    help="LeakBench: does a code model leak the personal data and secrets it was trained on?",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
data_app = typer.Typer(help="Build, check, export and describe the benchmark data release.", no_args_is_help=True)
app.add_typer(data_app, name="data")

console = Console()
err_console = Console(stderr=True)


def _version(value: bool) -> None:
    if value:
        console.print(f"leakbench {__version__}")
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
    seed: Annotated[int, typer.Option(help="Generator seed; the canonical v1 seed is the default.")] = 2502,
    subjects: Annotated[int, typer.Option(help="Number of fictional subjects (the first 50 form `mini`).")] = 500,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing non-empty --out directory.")] = False,
) -> None:
    """Generate a release (subjects, forget/retain documents, probes, manifest) deterministically."""
    from leakbench.data.build import check_parameters, generate, write_release

    check_parameters(seed, subjects)
    with console.status(f"generating {subjects} subjects (seed {seed})..."):
        release = generate(seed, subjects)
        manifest = write_release(release, out, seed=seed, n_subjects=subjects, overwrite=overwrite)
    c = manifest["counts"]
    console.print(
        f"wrote {out}: {c['subjects']['full']} subjects, {c['forget']['full']} forget and "
        f"{c['retain']['full']} retain documents, {c['probes']['full']} probes"
    )


@data_app.command("verify")
def data_verify(
    path: Annotated[Path | None, typer.Argument(help="Release directory (default: the packaged v1).")] = None,
) -> None:
    """Check hashes, schema, safety rules and invariants of a release; name everything that is wrong."""
    from leakbench.data import release_dir
    from leakbench.data.verify import verify

    root = release_dir("v1", path)
    with console.status(f"verifying {root}..."):
        problems = verify(root)
    if problems:
        for problem in problems:
            err_console.print(f"[red]✗[/red] {problem}", highlight=False, soft_wrap=True)
        raise LeakBenchError(f"{root}: {len(problems)} problem(s) found")
    console.print(f"[green]✓[/green] {root}: hashes, schema, safety rules and invariants all hold")


@data_app.command("export")
def data_export(
    out: Annotated[Path, typer.Option("--out", help="Directory to copy the release files into.")],
    release: Annotated[str, typer.Option(help="Packaged release name.")] = "v1",
    overwrite: Annotated[bool, typer.Option(help="Replace an existing non-empty --out directory.")] = False,
) -> None:
    """Write a packaged release out as plain files (JSONL + manifest)."""
    import shutil

    from leakbench.data import release_dir
    from leakbench.records import atomic_dir

    root = release_dir(release)
    with atomic_dir(out, overwrite=overwrite) as tmp:
        for src in sorted(root.iterdir()):
            if src.suffix in (".jsonl", ".json"):
                shutil.copyfile(src, tmp / src.name)
    console.print(f"exported release {release} to {out}")


@data_app.command("stats")
def data_stats(
    path: Annotated[Path | None, typer.Argument(help="Release directory (default: the packaged v1).")] = None,
    subset: Annotated[str, typer.Option(help="full or mini.")] = "full",
) -> None:
    """Print counts by field, template, language and probe kind."""
    from leakbench.data import check_subset, release_dir
    from leakbench.data.stats import release_stats

    check_subset(subset)
    for title, counts in release_stats(release_dir("v1", path), subset).items():
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
) -> None:
    """Classify generations as direct / indirect / no leaks of their subject, plus other PII found."""
    from rich.progress import Progress

    from leakbench.scoring import LeakScorer
    from leakbench.scoring.jsonl import score_file

    if not src.is_file():
        raise LeakBenchError(f"{src}: no such file")
    total = sum(1 for line in src.open("rb") if line.strip())
    with console.status("loading the Presidio analyzer..."):
        scorer = LeakScorer(ner_model=ner)
    errors: list[str] = []
    with Progress(console=err_console, transient=True) as progress:
        task = progress.add_task("scoring", total=total)
        counts = score_file(src, dst, scorer, errors.append, lambda n: progress.advance(task, n))
    for message in errors:
        err_console.print(f"[red]error:[/red] {message}", highlight=False, soft_wrap=True)
    summary = ", ".join(f"{counts.get(k, 0)} {k}" for k in ("direct", "indirect", "none"))
    console.print(f"wrote {dst}: {summary} (NER engine: {scorer.ner_model})")
    if errors:
        raise LeakBenchError(f"{src}: {len(errors)} malformed row(s) (marked with `error` in {dst})")


@app.command("tasks-path")
def tasks_path_cmd() -> None:
    """Print the folder of LeakBench's lm-eval tasks (for lm_eval --include_path)."""
    from leakbench.harness import tasks_path

    print(tasks_path())


def main(argv: list[str] | None = None) -> int:
    """Entry point: user errors become one line on stderr and a non-zero exit, never a traceback."""
    try:
        app(args=argv, prog_name="leakbench", standalone_mode=False)
    except LeakBenchError as exc:
        err_console.print(f"[red]error:[/red] {exc}", highlight=False, soft_wrap=True)
        return 1
    except typer.Exit as exc:
        return exc.exit_code
    except typer.Abort:
        err_console.print("aborted")
        return 130
    except typer.exceptions.TyperException as exc:  # usage errors: typer prints them as click would
        exc.show()  # type: ignore[attr-defined]
        return getattr(exc, "exit_code", 2)
    except KeyboardInterrupt:
        err_console.print("interrupted")
        return 130
    return 0


def entry() -> None:
    sys.exit(main())
