"""``ctx.storage``, split by capability as Convex splits it (reference §12).

=======================  =================================================================
ctx                      ``ctx.storage`` has
=======================  =================================================================
query                    ``get_url(id)``, ``get_metadata(id)``
mutation                 + ``generate_upload_url()``, ``delete(id)``
action, HTTP action      + ``store(data, content_type=None, sha256=None)``, ``get(id)``
=======================  =================================================================

* ``get_url(id)`` → a URL serving the bytes (with a ``Digest: sha-256=...`` header), or ``None``
  once the file is deleted; URLs never expire. ``get_metadata(id)`` (Convex's deprecated form) →
  ``{"storageId", "sha256" (hex), "size", "contentType"}`` or ``None``.
* ``generate_upload_url()`` → a URL to POST the file's bytes to (optional ``Content-Type`` and
  ``Digest: sha-256=<base64>``); it answers ``{"storageId": ...}``. Valid one hour, one upload.
* ``delete(id)``: in a mutation, part of its transaction (the bytes go when it commits); a
  missing file is ``StorageIdNotFound``.
* ``store(data)`` streams ``data`` (bytes, a binary file, or an iterable of byte chunks) into a
  new file and returns its ``_storage`` ID; ``sha256=`` (hex) checks the bytes. ``get(id)`` →
  ``bytes`` or ``None``.

In a query or mutation every read is part of the function's transaction (and of a live query's
read set); in an action each call stands alone, at the latest data.
"""

from __future__ import annotations

import base64
from typing import TYPE_CHECKING, Any

from convex_lab.errors import ConvexLabError
from convex_lab.ids import Id

if TYPE_CHECKING:
    from convex_lab._runtime import Frame
    from convex_lab.files.engine import FileStorage

_WHERE = {
    "generate_upload_url": "mutations and actions",
    "delete": "mutations and actions",
    "store": "actions (and HTTP actions)",
    "get": "actions (and HTTP actions)",
}


class StorageReader:
    """``ctx.storage`` of a query."""

    __slots__ = ("_engine", "_frame")

    def __init__(self, engine: FileStorage, frame: Frame) -> None:
        self._engine = engine
        self._frame = frame

    def get_url(self, storage_id: str) -> str | None:
        """A URL serving the file, or ``None`` if there is no such file."""
        doc = self._engine.document(storage_id, self._frame.tx)
        return None if doc is None else self._engine.url(doc["_id"])

    def get_metadata(self, storage_id: str) -> dict[str, Any] | None:
        """Convex's legacy metadata: ``storageId``, ``sha256`` (hex), ``size``, ``contentType``."""
        doc = self._engine.document(storage_id, self._frame.tx)
        if doc is None:
            return None
        return {"storageId": doc["_id"], "sha256": base64.b64decode(doc["sha256"]).hex(),
                "size": doc["size"], "contentType": doc["contentType"]}

    def __getattr__(self, name: str) -> Any:
        where = _WHERE.get(name)
        if where is None:
            raise AttributeError(f"ctx.storage has no attribute {name!r}")
        raise AttributeError(f"ctx.storage.{name}() is available in {where}, not in a "
                             f"{self._frame.fn.kind}.")

    def __repr__(self) -> str:
        return f"<{type(self).__name__} of {self._frame.fn.path}>"


class StorageWriter(StorageReader):
    """``ctx.storage`` of a mutation."""

    __slots__ = ()

    def generate_upload_url(self) -> str:
        """A URL to POST one file's bytes to, valid for an hour (module docstring)."""
        return self._engine.generate_upload_url()

    def delete(self, storage_id: str) -> None:
        """Delete the file (``StorageIdNotFound`` if there is none)."""
        self._engine.delete(storage_id, self._frame.tx)


class StorageActionWriter(StorageWriter):
    """``ctx.storage`` of an action or an HTTP action."""

    __slots__ = ()

    def store(self, data: Any, content_type: str | None = None, *,
              sha256: str | None = None) -> Id:
        """Store ``data`` as a new file; returns its ``_storage`` ID."""
        expected = None
        if sha256 is not None:
            try:
                expected = bytes.fromhex(sha256)
            except (TypeError, ValueError):
                expected = None
            if expected is None or len(expected) != 32:
                raise ConvexLabError(f"sha256= is the hex SHA-256 of the data (64 hex digits); "
                                     f"got {sha256!r}.", code="InvalidArgument")
        return self._engine.store_data(data, content_type, expected)

    def get(self, storage_id: str) -> bytes | None:
        """The file's bytes, or ``None`` if there is no such file."""
        return self._engine.read(storage_id)
