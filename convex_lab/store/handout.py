"""Documents handed out by ``ctx.db``, so that a result made of them need not be converted again.

A query's result must leave its execution as a canonical Convex value. A result that is exactly
what ``ctx.db`` handed out — the list ``take(50)`` returned, the dict ``get(id)`` returned, a
``paginate`` page — already is one: its documents are copies of stored (canonical) documents.
Converting it again would walk every value, and since the copies share their values with the
stored documents, touching each value is a cache miss: for 50 documents that costs as much as
reading them did.

:class:`HandedOut` remembers each such value with the originals it copies. :meth:`unchanged`
then answers, without touching a single field value, whether a result is still exactly that: the
same list object holding the same documents in the same order, each with the same keys and the
very same value objects as its original (identity, never equality: ``1 == 1.0`` but a plain int
is not canonical). Any change — an edited field, an added document, a re-ordered list — makes the
answer ``False`` and the caller converts as usual. The registry holds references to what it
remembers, so an object id cannot be reused while the transaction lives.
"""

from __future__ import annotations

from itertools import chain
from operator import is_
from typing import Any


def _same_documents(copies: list[dict[str, Any]] | tuple[dict[str, Any], ...],
                    originals: list[dict[str, Any]]) -> bool:
    """Each copy has its original's keys, in order, mapped to the very same value objects."""
    return (list(map(len, copies)) == list(map(len, originals))
            and all(map(is_, chain.from_iterable(copies), chain.from_iterable(originals)))
            and all(map(is_, chain.from_iterable(map(dict.values, copies)),
                        chain.from_iterable(map(dict.values, originals)))))


class HandedOut:
    """What one transaction's ``ctx.db`` handed out (see the module docstring)."""

    __slots__ = ("_values",)

    def __init__(self) -> None:
        # id(value) -> (value, snapshot of its parts, originals of its documents)
        self._values: dict[int, tuple[Any, Any, Any]] = {}

    def documents(self, copies: list[dict[str, Any]], originals: list[dict[str, Any]]) -> None:
        """``copies`` (a list returned to user code) are copies of ``originals``."""
        self._values[id(copies)] = (copies, tuple(copies), originals)

    def document(self, copy: dict[str, Any], original: dict[str, Any]) -> None:
        """``copy`` (returned to user code) is a copy of ``original``."""
        self._values[id(copy)] = (copy, None, (original,))

    def also_one(self, copies: list[dict[str, Any]]) -> None:
        """The first of ``copies`` (registered with :meth:`documents`) is returned alone too
        (``first()``, ``unique()``)."""
        entry = self._values.get(id(copies))
        if entry is not None and entry[0] is copies and entry[2] is not None:
            self.document(copies[0], entry[2][0])

    def page(self, result: dict[str, Any]) -> None:
        """``result`` is a ``paginate`` result whose ``page`` was registered with
        :meth:`documents`, and whose other values are strings, booleans or ``None``."""
        self._values[id(result)] = (result, tuple(result.items()), None)

    def unchanged(self, value: Any) -> bool:
        """Whether ``value`` is still exactly something handed out (module docstring)."""
        entry = self._values.get(id(value))
        if entry is None or entry[0] is not value:
            return False
        _, parts, originals = entry
        if originals is None:  # a page: the same items, and the page itself unchanged
            return (len(value) == len(parts)
                    and all(map(is_, chain.from_iterable(value.items()),
                                chain.from_iterable(parts)))
                    and self.unchanged(value["page"]))
        if parts is None:  # one document
            return _same_documents((value,), originals)
        return (len(value) == len(parts) and all(map(is_, value, parts))
                and _same_documents(parts, originals))
