"""`leakbench score`: score a JSONL file of generations, row by row, keeping every input key."""

from __future__ import annotations

import json
from collections import Counter, deque
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from leakbench.records import atomic_path, check_not_aliased, dumps_row, input_file
from leakbench.scoring.parallel import score_chunks
from leakbench.scoring.taxonomy import ScoreInput, ScoreInputError

CHUNK = 256
MAX_DEPTH = 64  # no scoring input nests deeper; deeper rows could not even be sent to a worker process


def _depth(value: Any) -> int:
    """Nesting depth of a JSON value, without recursion."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        deepest = max(deepest, level)
        if isinstance(item, dict):
            stack.extend((v, level + 1) for v in item.values())
        elif isinstance(item, list):
            stack.extend((v, level + 1) for v in item)
    return deepest


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
            if _depth(row) > MAX_DEPTH:
                yield lineno, None, f"JSON nested deeper than {MAX_DEPTH} levels"
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
    *,
    ner_model: str | None = None,
    workers: int = 1,
    on_error: Callable[[str], None] = lambda msg: None,
    on_progress: Callable[[int], None] = lambda n: None,
) -> dict[str, int]:
    """Score `src` into `dst` (written atomically), in chunks of CHUNK rows spread over `workers` processes;
    returns counts by leak class and of errors."""
    input_file(src, "input file")
    check_not_aliased("--out", dst, {"--in": src})
    counts: Counter[str] = Counter()
    in_flight: deque[list[tuple[int, dict[str, Any] | None, str | None]]] = deque()

    def batches() -> Iterator[list[ScoreInput]]:
        chunk: list[tuple[int, dict[str, Any] | None, str | None]] = []
        for entry in _rows(src):
            chunk.append(entry)
            if len(chunk) == CHUNK:
                in_flight.append(chunk)
                yield _inputs(chunk)
                chunk = []
        if chunk:
            in_flight.append(chunk)
            yield _inputs(chunk)

    with atomic_path(dst) as tmp, tmp.open("w", encoding="utf-8") as out:
        for results in score_chunks(batches(), ner_model=ner_model, workers=workers):
            chunk = in_flight.popleft()
            verdicts = iter(results)
            for lineno, row, error in chunk:
                result = next(verdicts) if row is not None and error is None else None
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
                picked = {k: verdict[k] for k in ("leak", "leak_kind", "matched_field", "other_pii")}
                out.write(dumps_row({**row, **picked}) + "\n")
            on_progress(len(chunk))
    return dict(counts)


def _inputs(chunk: list[tuple[int, dict[str, Any] | None, str | None]]) -> list[ScoreInput]:
    return [
        ScoreInput(row.get("prompt"), row.get("generation"), row.get("target_field"), row.get("subject"),
                   row.get("others"))
        for _, row, error in chunk
        if row is not None and error is None
    ]  # fmt: skip
