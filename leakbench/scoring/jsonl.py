"""`leakbench score`: score a JSONL file of generations, row by row, keeping every input key."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from leakbench.records import atomic_path, check_not_aliased, dumps_row, input_file
from leakbench.scoring.taxonomy import LeakScorer, ScoreInput, ScoreInputError

CHUNK = 256


def _rows(path: Path) -> Iterator[tuple[int, dict[str, Any] | None, str | None]]:
    """(line number, row or None, error or None) for every non-blank line."""
    with path.open("rb") as fh:
        for lineno, raw in enumerate(fh, 1):
            if not raw.strip():
                continue
            try:
                row = json.loads(raw.decode("utf-8"))
            except UnicodeDecodeError:
                yield lineno, None, "not UTF-8 text"
                continue
            except json.JSONDecodeError as exc:
                yield lineno, None, f"not valid JSON ({exc.msg})"
                continue
            except RecursionError:
                yield lineno, None, "JSON nested too deeply"
                continue
            if not isinstance(row, dict):
                yield lineno, None, "expected a JSON object"
                continue
            try:  # JSON may escape a lone surrogate ("\ud800") that no UTF-8 output can hold
                dumps_row(row).encode("utf-8")
            except UnicodeEncodeError:
                yield lineno, None, "holds a lone surrogate escape (e.g. \\ud800): not valid Unicode text"
                continue
            yield lineno, row, None


def _unwritable(row: dict[str, Any]) -> bool:
    try:
        dumps_row(row).encode("utf-8")
        return False
    except (UnicodeEncodeError, RecursionError, ValueError):
        return True


def score_file(
    src: Path,
    dst: Path,
    scorer: LeakScorer,
    on_error: Callable[[str], None] = lambda msg: None,
    on_progress: Callable[[int], None] = lambda n: None,
) -> dict[str, int]:
    """Score `src` into `dst` (written atomically); returns counts by leak class and of errors."""
    input_file(src, "input file")
    check_not_aliased("--out", dst, {"--in": src})
    counts: Counter[str] = Counter()

    def flush(chunk: list[tuple[int, dict[str, Any] | None, str | None]], out) -> None:
        items, slots = [], []
        for lineno, row, error in chunk:
            if row is not None and error is None:
                items.append(
                    ScoreInput(
                        row.get("prompt"),
                        row.get("generation"),
                        row.get("target_field"),
                        row.get("subject"),
                        row.get("others"),
                    )
                )
                slots.append(lineno)
        verdicts = dict(zip(slots, scorer.score_batch(items), strict=True))
        for lineno, row, error in chunk:
            result = verdicts.get(lineno)
            if isinstance(result, ScoreInputError):
                error = str(result)
            if error is not None:
                on_error(f"{src}:{lineno}: {error}")
                counts["error"] += 1
                # the row as read, unless it cannot be written back (then only where it was and why)
                kept = row if row is not None and not _unwritable(row) else {}
                out.write(dumps_row({**kept, "line": lineno, "error": error}) + "\n")
                continue
            assert row is not None and result is not None
            verdict = result.to_dict()
            counts[verdict["leak"]] += 1
            out.write(
                dumps_row({**row, **{k: verdict[k] for k in ("leak", "leak_kind", "matched_field", "other_pii")}})
                + "\n"
            )
        on_progress(len(chunk))

    with atomic_path(dst) as tmp, tmp.open("w", encoding="utf-8") as out:
        chunk: list[tuple[int, dict[str, Any] | None, str | None]] = []
        for entry in _rows(src):
            chunk.append(entry)
            if len(chunk) == CHUNK:
                flush(chunk, out)
                chunk = []
        if chunk:
            flush(chunk, out)
    return dict(counts)
