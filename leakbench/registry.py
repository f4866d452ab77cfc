"""The extension points' registries: unlearning methods (`leakbench.unlearn.METHODS`), robustness attacks
(`leakbench.robustness.ATTACKS`) and membership attacks (`leakbench.membership.ATTACKS`).

Each is a read-only mapping name -> declaration: the built-in table, entries added with `register`, and those
outside packages declare under an entry-point group (the way lm-eval and pytest find plugins), e.g. in a
plugin's pyproject.toml::

    [project.entry-points."leakbench.methods"]
    my_ga = "my_plugin:METHOD"

Names are known without importing anything (the CLI lists them in its help); a plugin's declaration is imported
and validated when its name is first looked up. Nothing here imports torch.
"""

from __future__ import annotations

import importlib
import warnings
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Generic, TypeVar

from leakbench.records import LeakBenchError

T = TypeVar("T")


def resolve(ref: Any, what: str) -> Any:
    """An object given as itself, or as a "module:attribute" reference (imported now)."""
    if not isinstance(ref, str):
        return ref
    module, sep, attr = ref.partition(":")
    if not sep or not module or not attr:
        raise LeakBenchError(f"{what}: {ref!r} is not a 'module:attribute' reference")
    try:
        obj: Any = importlib.import_module(module)
        for part in attr.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError) as exc:
        raise LeakBenchError(f"{what}: cannot load {ref!r} ({exc.__class__.__name__}: {exc})") from None
    return obj


def check_reference(ref: Any, what: str) -> None:
    """A "module:attribute" string (not imported) or a callable/class."""
    if isinstance(ref, str):
        module, sep, attr = ref.partition(":")
        if not (sep and module and attr):
            raise LeakBenchError(f"{what}: {ref!r} is not a 'module:attribute' reference")
    elif not callable(ref):
        raise LeakBenchError(f"{what}: expected a 'module:attribute' reference or a callable, got {ref!r}")


class Registry(Mapping[str, T], Generic[T]):
    """Built-in entries, then `register`ed ones, then the entry points of `group` (in discovery order)."""

    def __init__(self, group: str, kind: str, builtins: Mapping[str, T], check: Callable[[str, Any], T]) -> None:
        self.group, self.kind, self._check = group, kind, check
        self._entries: dict[str, T] = {name: check(name, entry) for name, entry in builtins.items()}
        self.builtin: tuple[str, ...] = tuple(self._entries)
        self._plugins: dict[str, Any] | None = None  # name -> importlib.metadata.EntryPoint
        self._loaded: dict[str, T] = {}  # plugins' declarations, checked

    def _entry_points(self) -> dict[str, Any]:
        if self._plugins is None:
            from importlib.metadata import entry_points

            found: dict[str, Any] = {}
            for ep in entry_points(group=self.group):
                if ep.name in self._entries or ep.name in found:
                    warnings.warn(f"entry point {ep.name} = {ep.value} (group {self.group}): a {self.kind} of that "
                                  "name is already registered; ignored", stacklevel=3)  # fmt: skip
                    continue
                found[ep.name] = ep
            self._plugins = found
        return self._plugins

    def register(self, name: str, entry: Any) -> T:
        """Add a declaration from inside Python (checked now); a name already registered is refused."""
        if name in self:
            raise LeakBenchError(f"a {self.kind} named {name!r} is already registered")
        self._entries[name] = checked = self._check(name, entry)
        return checked

    def __getitem__(self, name: str) -> T:
        if name in self._entries:
            return self._entries[name]
        if name in self._loaded:
            return self._loaded[name]
        ep = self._entry_points().get(name)
        if ep is None:
            raise KeyError(name)
        try:
            declared = ep.load()
        except Exception as exc:  # a broken plugin: one line naming it, not a traceback
            raise LeakBenchError(f"{self.kind} {name!r} (entry point {ep.value}, group {self.group}) cannot be "
                                 f"loaded: {exc.__class__.__name__}: {exc}") from None  # fmt: skip
        self._loaded[name] = checked = self._check(name, declared)
        return checked

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and (name in self._entries or name in self._entry_points())

    def __iter__(self) -> Iterator[str]:
        yield from self._entries
        yield from self._entry_points()

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def __repr__(self) -> str:
        return f"Registry({self.group!r}: {', '.join(self)})"
