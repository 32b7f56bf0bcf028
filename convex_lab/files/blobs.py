"""The bytes of stored files: one file per storage ID in a directory beside the store.

Where: ``<store file>.files/`` for a file-backed store; a temporary directory, removed when the
backend closes, for an in-memory one.

Crash safety (the same promise as documents: a killed kernel keeps no orphan visible and loses no
acknowledged file):

1. A new file is streamed into ``.tmp-<random>`` in that directory, hashed (SHA-256) as it goes;
   for a durable store it is ``fsync``ed when complete.
2. Inside the transaction that inserts its ``_storage`` document it is renamed to the document's
   ID (and the directory ``fsync``ed), *before* that transaction commits. The upload is
   acknowledged only once the commit is durable, so an acknowledged file has its bytes.
3. A crash between 2 and the commit leaves a file whose ID has no document: invisible (every
   read goes through the document) and removed by :meth:`BlobDir.sweep` when the store opens
   next, with every leftover ``.tmp-*``.
4. A delete commits the document's removal first and unlinks the file after (a commits
   listener); a crash in between leaves an orphan that the next sweep removes. Space is freed.

Nothing here holds a whole file in memory: writes and reads go in chunks.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
import shutil
import tempfile
from pathlib import Path
from typing import BinaryIO

TMP_PREFIX = ".tmp-"
KEY_FILE = ".key"
CHUNK = 1024 * 1024


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class BlobDir:
    """The directory of one store's files (module docstring)."""

    def __init__(self, store_path: str | None) -> None:
        self.durable = store_path is not None
        if store_path is None:
            self.root = Path(tempfile.mkdtemp(prefix="convex_lab-files-"))
        else:
            self.root = Path(os.path.abspath(os.path.expanduser(store_path)) + ".files")
        self.closed = False
        self._key: bytes | None = None

    def _ensure(self) -> None:
        if not self.root.is_dir():
            self.root.mkdir(parents=True, exist_ok=True)
            if self.durable:
                _fsync_dir(self.root.parent)

    def path_of(self, storage_id: str) -> Path:
        return self.root / storage_id

    def writer(self) -> BlobWriter:
        """A new file being written (see :class:`BlobWriter`)."""
        self._ensure()
        return BlobWriter(self)

    def open(self, storage_id: str) -> BinaryIO | None:
        """The file's bytes for reading, or ``None`` if it is gone (deleted meanwhile). An open
        handle keeps reading after a concurrent delete unlinks the file."""
        try:
            return open(self.path_of(storage_id), "rb")
        except (FileNotFoundError, NotADirectoryError):
            return None

    def remove(self, storage_id: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.path_of(storage_id).unlink()

    def sweep(self, live: set[str]) -> int:
        """Remove every file that is not a live storage ID's (and every temporary file); returns
        how many. Call it only while no upload is in flight (the store is opening)."""
        if not self.root.is_dir():
            return 0
        removed = 0
        for entry in os.scandir(self.root):
            if entry.name == KEY_FILE or entry.name in live:
                continue
            with contextlib.suppress(FileNotFoundError, IsADirectoryError, PermissionError):
                os.unlink(entry.path)
                removed += 1
        return removed

    def secret(self) -> bytes:
        """32 random bytes kept with the files, so file URLs outlive the process (durable
        stores); a fresh value per process for an in-memory store."""
        if self._key is not None:
            return self._key
        if not self.durable:
            self._key = secrets.token_bytes(32)
            return self._key
        self._ensure()
        path = self.root / KEY_FILE
        try:
            data = path.read_bytes()
            if len(data) == 32:
                self._key = data
                return data
        except FileNotFoundError:
            pass
        data = secrets.token_bytes(32)
        tmp = self.root / f"{TMP_PREFIX}key-{secrets.token_hex(4)}"
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
        _fsync_dir(self.root)
        self._key = data
        return data

    def usage(self) -> int:
        """Bytes held by stored files (temporary ones included)."""
        if not self.root.is_dir():
            return 0
        return sum(e.stat().st_size for e in os.scandir(self.root)
                   if e.is_file() and e.name != KEY_FILE)

    def close(self) -> None:
        """Remove the directory of an in-memory store (a durable one stays)."""
        if self.closed:
            return
        self.closed = True
        if not self.durable:
            shutil.rmtree(self.root, ignore_errors=True)


class BlobWriter:
    """One file being stored: ``write`` chunks, ``finish`` (hash, size, durable), then
    ``place`` under its storage ID inside the transaction that commits its document; ``abort``
    removes it from wherever it is."""

    def __init__(self, blobs: BlobDir) -> None:
        self._blobs = blobs
        self.path = blobs.root / f"{TMP_PREFIX}{secrets.token_hex(12)}"
        self._file: BinaryIO | None = open(self.path, "xb")  # noqa: SIM115 (closed in finish)
        self._hash = hashlib.sha256()
        self.size = 0
        self.digest = b""

    def write(self, chunk: bytes | bytearray | memoryview) -> None:
        file = self._file
        if file is None:
            raise RuntimeError("write() after finish()")
        file.write(chunk)
        self._hash.update(chunk)
        self.size += len(chunk)

    def finish(self) -> bytes:
        """Close the file (durable on a durable store); returns its SHA-256 digest."""
        file = self._file
        if file is not None:
            self._file = None
            try:
                file.flush()
                if self._blobs.durable:
                    os.fsync(file.fileno())
            finally:
                file.close()
            self.digest = self._hash.digest()
        return self.digest

    def place(self, storage_id: str) -> None:
        """Move the finished file to its storage ID (again, if a retried transaction got
        another ID)."""
        target = self._blobs.path_of(storage_id)
        if target == self.path:
            return
        os.replace(self.path, target)
        self.path = target
        if self._blobs.durable:
            _fsync_dir(self._blobs.root)

    def abort(self) -> None:
        file = self._file
        self._file = None
        if file is not None:
            with contextlib.suppress(OSError):
                file.close()
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
