"""Where the declarative folders `tasks/` and `scorers/` live, installed or in a checkout."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from leakbench.records import LeakBenchError

_PACKAGE = Path(__file__).resolve().parent


def resource_dir(name: Literal["tasks", "scorers"]) -> Path:
    """The wheel ships them as leakbench/_shipped/<name>; a source checkout has them at the top level."""
    for candidate in (_PACKAGE / "_shipped" / name, _PACKAGE.parent / name):
        if candidate.is_dir():
            return candidate
    raise LeakBenchError(f"cannot find the '{name}' folder next to {_PACKAGE}: reinstall leakbench")
