"""The storage engine of one backend (reference §12): uploads, downloads, deletes, ``ctx.storage``.

``_storage`` documents are ``{_id, _creationTime, sha256 (base64), size (float bytes),
contentType (str | None)}``; the bytes live in :class:`~convex_lab.files.blobs.BlobDir` under
the document's ID. Every read goes through the document — in a query or mutation inside its
transaction, so a live query that called ``get_url`` re-runs when the file is deleted.

URLs come from the backend's loopback server, started the first time one is needed
(``url_base`` is the backend's ``lambda: backend.serve().url``): ``<url>/api/storage/upload?
token=...`` to upload, ``<url>/api/storage/<storage id>/<signature>`` to download.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, BinaryIO

from convex_lab.errors import ConvexLabError, InvalidIdError, NonexistentDocumentError
from convex_lab.files.blobs import CHUNK, BlobDir, BlobWriter
from convex_lab.files.tokens import UploadTokens, check_url_signature, url_signature
from convex_lab.ids import Id, decode_id
from convex_lab.values import safe_repr

if TYPE_CHECKING:
    from convex_lab._runtime import Frame
    from convex_lab.store.commits import Commit
    from convex_lab.store.engine import Store
    from convex_lab.store.transaction import Transaction

STORAGE = "_storage"


class FileStorage:
    """Files of one backend; ``for_frame`` is what ``Executor.provide("storage", ...)`` gets."""

    def __init__(self, store: Store, now: Callable[[], float], url_base: Callable[[], str]) -> None:
        self.store = store
        self.blobs = BlobDir(store.path)
        self.tokens = UploadTokens(now)
        self._url_base = url_base
        # A file written but never committed (a killed kernel), or deleted without its unlink:
        # invisible already; the space comes back now.
        self.blobs.sweep(set(store.tables[STORAGE].docs))
        self._unsubscribe = store.commits.subscribe(self._on_commit)

    # ctx.storage ---------------------------------------------------------------------------
    def for_frame(self, frame: Frame) -> Any:
        """``ctx.storage`` for an execution, with what its kind may do."""
        from convex_lab.files.ctx import (  # noqa: PLC0415 (ctx imports this module)
            StorageActionWriter,
            StorageReader,
            StorageWriter,
        )

        kind = frame.fn.kind
        if kind == "query":
            return StorageReader(self, frame)
        if kind == "mutation":
            return StorageWriter(self, frame)
        return StorageActionWriter(self, frame)

    # Documents -----------------------------------------------------------------------------
    def check_id(self, storage_id: Any) -> str:
        """``storage_id`` as a string, if it is an ID of ``_storage``; else ``InvalidIdError``."""
        text = str(storage_id) if isinstance(storage_id, str) else None
        number = None
        if text is not None:
            try:
                number = decode_id(text)[0]
            except InvalidIdError:
                number = None
        if number is None or self.store.table_name_for_number(number) != STORAGE:
            raise InvalidIdError(
                f"{safe_repr(storage_id)} is not a storage ID: pass the ID of a _storage "
                "document, as ctx.storage.store() and uploads return it.")
        return text  # type: ignore[return-value]

    def document(self, storage_id: Any, tx: Transaction | None) -> dict[str, Any] | None:
        """The ``_storage`` document, read in ``tx`` (recorded) or at the latest snapshot."""
        sid = self.check_id(storage_id)
        table = self.store.tables[STORAGE]
        if tx is not None:
            return tx.get(table, sid)
        return self.store.run(lambda t: t.get(table, sid), read_only=True)

    def url(self, storage_id: str) -> str:
        """The download URL of a stored file (starts the loopback server if needed)."""
        key = self.blobs.secret()
        return f"{self._url_base()}/api/storage/{storage_id}/{url_signature(key, storage_id)}"

    def generate_upload_url(self) -> str:
        return f"{self._url_base()}/api/storage/upload?token={self.tokens.issue()}"

    # Writes --------------------------------------------------------------------------------
    def commit(self, writer: BlobWriter, content_type: str | None,
               expected_sha256: bytes | None = None) -> Id:
        """Store the written file: its document commits after its bytes are in place."""
        try:
            digest = writer.finish()
            if expected_sha256 is not None and expected_sha256 != digest:
                raise ConvexLabError(
                    f"Sha256 mismatch. Expected: {base64.b64encode(expected_sha256).decode()} "
                    f"Actual: {base64.b64encode(digest).decode()}", code="Sha256Mismatch")
            doc = {"sha256": base64.b64encode(digest).decode("ascii"),
                   "size": float(writer.size), "contentType": content_type}

            def body(tx: Transaction) -> Id:
                storage_id = tx.insert(STORAGE, doc)
                writer.place(str(storage_id))  # before the commit: see blobs.py, step 2
                return storage_id

            return self.store.run(body)
        except BaseException:
            writer.abort()
            raise

    def store_data(self, data: Any, content_type: str | None,
                   expected_sha256: bytes | None = None) -> Id:
        """``ctx.storage.store``: bytes, a binary file object or an iterable of byte chunks."""
        if content_type is not None and not isinstance(content_type, str):
            raise ConvexLabError(f"content_type must be a string such as 'image/png' or None; "
                                 f"got {safe_repr(content_type)}.", code="InvalidArgument")
        writer = self.blobs.writer()
        try:
            for chunk in _chunks(data):
                writer.write(chunk)
        except BaseException:
            writer.abort()
            raise
        return self.commit(writer, content_type, expected_sha256)

    def delete(self, storage_id: Any, tx: Transaction | None) -> None:
        """Delete the document (in ``tx``, or a transaction of its own); its bytes go once the
        delete has committed (``_on_commit``)."""
        sid = self.check_id(storage_id)
        table = self.store.tables[STORAGE]

        def body(t: Transaction) -> None:
            if t.get(table, sid) is None:
                raise NonexistentDocumentError(f"storage id {sid} not found",
                                               code="StorageIdNotFound")
            t.delete(table, sid)

        if tx is not None:
            body(tx)
        else:
            self.store.run(body)

    def _on_commit(self, commit: Commit) -> None:
        writes = commit.writes.get(STORAGE)
        if writes:
            for storage_id, (old, new) in writes.items():
                if new is None and old is not None:
                    self.blobs.remove(storage_id)

    # Reads ---------------------------------------------------------------------------------
    def read(self, storage_id: Any) -> bytes | None:
        """``ctx.storage.get``: the whole file, or ``None`` if there is none."""
        opened = self.open(self.check_id(storage_id))
        if opened is None:
            return None
        file, _ = opened
        with file:
            return file.read()

    def open(self, storage_id: str) -> tuple[BinaryIO, dict[str, Any]] | None:
        """The file (open for reading) and its document, at the latest snapshot."""
        doc = self.document(storage_id, None)
        if doc is None:
            return None
        file = self.blobs.open(storage_id)
        return None if file is None else (file, dict(doc))

    def open_url(self, storage_id: str, signature: str) -> tuple[BinaryIO, dict[str, Any]] | None:
        """What a download URL serves, or ``None`` (not a file of this backend, deleted)."""
        try:
            sid = self.check_id(storage_id)
        except InvalidIdError:
            return None
        if not check_url_signature(self.blobs.secret(), sid, signature):
            return None
        return self.open(sid)

    # Lifecycle -----------------------------------------------------------------------------
    def close(self) -> None:
        self._unsubscribe()
        self.blobs.close()


def parse_digest(header: str | None) -> bytes | None:
    """``Digest: sha-256=<base64>`` (what Convex's upload accepts) → the digest, or ``None``."""
    if not header:
        return None
    for part in header.split(","):
        name, _, value = part.strip().partition("=")
        if name.lower() == "sha-256" and value:
            try:
                digest = base64.b64decode(value, validate=True)
            except (binascii.Error, ValueError):
                digest = b""
            if len(digest) != 32:
                raise ConvexLabError(f"Bad header for Digest: {header!r} is not "
                                     "'sha-256=<base64 of 32 bytes>'.", code="BadHeader")
            return digest
    return None


def _chunks(data: Any) -> Iterable[bytes]:
    if isinstance(data, bytes | bytearray | memoryview):
        yield bytes(data) if not isinstance(data, bytes) else data
        return
    if isinstance(data, str):
        raise ConvexLabError(
            "ctx.storage.store() takes bytes, a binary file or an iterable of byte chunks, not "
            "str: encode text first (text.encode()) and pass content_type='text/plain'.",
            code="InvalidArgument")
    read = getattr(data, "read", None)
    if callable(read):
        while chunk := read(CHUNK):
            if isinstance(chunk, str):
                raise ConvexLabError("ctx.storage.store() got a text file: open it in binary "
                                     "mode ('rb').", code="InvalidArgument")
            yield chunk
        return
    if isinstance(data, Iterable):
        for chunk in data:
            if not isinstance(chunk, bytes | bytearray | memoryview):
                raise ConvexLabError(
                    f"ctx.storage.store() got a chunk of type {type(chunk).__name__}: an "
                    "iterable must yield bytes.", code="InvalidArgument")
            yield bytes(chunk)
        return
    raise ConvexLabError(
        f"ctx.storage.store() takes bytes, a binary file or an iterable of byte chunks; got "
        f"{type(data).__name__}.", code="InvalidArgument")
