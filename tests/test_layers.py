"""The package's layers (shared/DESIGN.md): every import of a LeakBench module, at the top of a file or inside a
function, goes to the same floor or a lower one, and the units of the package import each other without a
circle. Read from the source (ast): nothing is imported."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "leakbench"

# Bottom to top. A unit is a top-level module or subpackage of `leakbench`.
FLOORS = [
    {"", "records", "resources", "registry", "workers", "intervals"},  # shared base ("" is __init__), registries
    {"data", "heldout", "corpus"},  # the synthetic world and the code it is mixed with
    {"scoring", "training", "membership"},  # the leak scorer; model loading and the Trainer plumbing; MIA scores
    {"base", "metrics", "schemas"},  # the embedded base model; the metric table; the typed records
    {"harness", "privacy", "unlearn", "victim", "utility"},  # the verbs' engines
    {"leaderboard"},
    {"robustness", "sweep", "pipeline", "failure"},  # what composes the verbs
    {"cli", "__main__", "benchmarks"},  # entry points: nothing imports them
]
FLOOR = {unit: i for i, units in enumerate(FLOORS) for unit in units}


def _unit(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def _module_name(path: Path) -> str:
    rel = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports() -> list[tuple[str, str, int]]:
    """(importing module, imported LeakBench module, line) for every import in the package."""
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        module = _module_name(path)
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").startswith("leakbench"):
                assert node.module is not None
                found.append((module, node.module, node.lineno))
                for alias in node.names:  # `from leakbench import data` imports a unit too
                    candidate = f"{node.module}.{alias.name}"
                    if (PACKAGE.parent / candidate.replace(".", "/")).with_suffix(".py").is_file() or (
                        PACKAGE.parent / candidate.replace(".", "/")
                    ).is_dir():
                        found.append((module, candidate, node.lineno))
            elif isinstance(node, ast.ImportFrom) and node.level > 0:
                pytest.fail(f"{module}:{node.lineno}: relative import; import from `leakbench...` instead")
            elif isinstance(node, ast.Import):
                found += [(module, a.name, node.lineno) for a in node.names if a.name.startswith("leakbench")]
    return found


def test_every_unit_has_a_floor():
    units = {_unit(_module_name(p)) for p in PACKAGE.rglob("*.py")}
    assert units - set(FLOOR) == set(), "add the new module to FLOORS (and to DESIGN's order)"


def test_no_import_runs_upward():
    upward = [f"{src}:{line} imports {dst} ({_unit(src) or 'leakbench'} is below {_unit(dst)})"
              for src, dst, line in imports() if FLOOR[_unit(dst)] > FLOOR[_unit(src)]]  # fmt: skip
    assert upward == []


def test_units_import_each_other_without_a_circle():
    graph: dict[str, set[str]] = {}
    for src, dst, _ in imports():
        if _unit(src) != _unit(dst):
            graph.setdefault(_unit(src), set()).add(_unit(dst))
    done: set[str] = set()

    def visit(unit: str, path: list[str]) -> None:
        if unit in path:
            pytest.fail("import circle: " + " -> ".join([*path[path.index(unit):], unit]))
        if unit in done:
            return
        for nxt in sorted(graph.get(unit, ())):
            visit(nxt, [*path, unit])
        done.add(unit)

    for unit in sorted(graph):
        visit(unit, [])


def test_the_checks_see_a_circle_and_an_upward_import(monkeypatch):
    """The walk finds what it must: a fake import from records up to the CLI breaks both rules."""
    fake = [("leakbench.records", "leakbench.cli", 1), ("leakbench.cli", "leakbench.records", 1)]
    monkeypatch.setattr(f"{__name__}.imports", lambda: fake)
    with pytest.raises(AssertionError):
        test_no_import_runs_upward()
    with pytest.raises(pytest.fail.Exception, match="import circle"):
        test_units_import_each_other_without_a_circle()
