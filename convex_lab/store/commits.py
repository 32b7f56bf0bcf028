"""What a commit is, as the store's log, persistence and listeners see it (store/engine.py).

* :class:`Commit`: one committed transaction, ``writes[table][id] = (old, new)``.
* :class:`BulkInserts`: the ``writes`` of a bulk load, as parallel lists (no million-entry dict
  unless something asks for one ID).
* :func:`freeze_after_load` / :func:`thaw`: bulk loads ``gc.freeze()`` their documents; a
  store that closes hands them back to the collector (and :func:`unfreeze_at_exit` at exit).
"""

from __future__ import annotations

import atexit
import gc
import itertools
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

# Bulk loads of at least this many documents move them out of the collector's sight.
GC_FREEZE_DOCS = 100_000


@dataclass(slots=True)
class Commit:
    """One committed transaction: its ts and, per table, ``id -> (old, new)`` documents."""

    ts: int
    writes: dict[str, dict[str, tuple[dict[str, Any] | None, dict[str, Any] | None]]]
    schema_json: str | None = None
    special: set[str] = field(default_factory=set)  # IDs whose documents need lossless JSON


class BulkInserts(Mapping[str, tuple[None, dict[str, Any]]]):
    """``id -> (None, doc)`` for a bulk import, without building a million-entry dict up front.

    Persistence reads the parallel lists directly; the dict is built only if something asks for
    a single ID (a transaction whose snapshot predates the import, or a conflict check).
    """

    __slots__ = ("_dict", "docs", "ids")

    def __init__(self, ids: list[str], docs: list[dict[str, Any]]) -> None:
        self.ids = ids
        self.docs = docs
        self._dict: dict[str, tuple[None, dict[str, Any]]] | None = None

    def _map(self) -> dict[str, tuple[None, dict[str, Any]]]:
        if self._dict is None:
            self._dict = dict(zip(self.ids, zip(itertools.repeat(None), self.docs), strict=True))
        return self._dict

    def __getitem__(self, key: str) -> tuple[None, dict[str, Any]]:
        return self._map()[key]

    def __contains__(self, key: object) -> bool:
        return key in self._map()

    def __iter__(self) -> Iterator[str]:
        return iter(self.ids)

    def __len__(self) -> int:
        return len(self.ids)

    def items(self) -> Any:
        return zip(self.ids, zip(itertools.repeat(None), self.docs), strict=True)

    def values(self) -> Any:
        return zip(itertools.repeat(None), self.docs)


_unfreeze_registered = False
# Stores whose bulk load froze the heap and that are still open (by id: never kept alive here).
_frozen_by: set[int] = set()


def freeze_after_load(store: object) -> None:
    """Move everything alive out of the collector's sight after a bulk load (a full collection
    walks every live object: with a million documents, a 200+ ms pause each time). Noted for
    :func:`thaw`, so a closed store can still be collected."""
    gc.freeze()
    _frozen_by.add(id(store))
    unfreeze_at_exit()


def thaw(store: object) -> None:
    """``store`` is closing: if it froze the heap, give the frozen objects back to the
    collector, or a closed store's documents (held in reference cycles with the store) would
    never be freed — a notebook re-running an import cell would grow without bound. Other open
    stores' documents are collectable again too, until their next bulk load freezes them."""
    if id(store) in _frozen_by:
        _frozen_by.discard(id(store))
        gc.unfreeze()


def unfreeze_at_exit() -> None:
    """Give frozen objects back to the collector at exit, so extension modules that check for
    leaks at shutdown (DuckDB's bindings do) see them collected."""
    global _unfreeze_registered  # once per process
    if not _unfreeze_registered:
        _unfreeze_registered = True
        atexit.register(gc.unfreeze)
