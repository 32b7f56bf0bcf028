"""Progress bars for imports and exports: tqdm's notebook bar inside a kernel, text elsewhere.

``tqdm.auto`` picks the bar; convex_lab's core imports no Jupyter module itself (tqdm does, only
when it finds a kernel). ``progress=False`` (or ``None`` in a non-interactive run with nothing to
show) gives a bar that does nothing, so callers never branch.
"""

from __future__ import annotations

import importlib
from types import TracebackType
from typing import Any


class _Silent:
    """A bar that shows nothing (the same three methods as tqdm's)."""

    def update(self, n: int = 1) -> None:
        pass

    def set_postfix_str(self, text: str) -> None:
        pass

    def close(self) -> None:
        pass

    def __enter__(self) -> _Silent:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


def bar(total: int | None, desc: str, *, enabled: bool | None, unit: str = "doc",
        min_total: int = 10_000) -> Any:
    """A progress bar for ``total`` items. ``enabled=None`` shows one only for work of at least
    ``min_total`` items (a 300-row DataFrame needs no bar); ``True`` always; ``False`` never."""
    if enabled is False or (enabled is None and total is not None and total < min_total):
        return _Silent()
    try:  # tqdm ships no type information: imported by name, used as Any
        tqdm = importlib.import_module("tqdm.auto").tqdm
    except ImportError:  # tqdm is a dependency; a broken install still imports the data
        return _Silent()
    return tqdm(total=total, desc=desc, unit=unit, unit_scale=True, leave=False)
