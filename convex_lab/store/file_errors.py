"""How a DuckDB file that cannot be opened as a store is reported: one message per problem.

Every failure to open a file is one :class:`~convex_lab.errors.StoreOpenError` whose text names
the file, says in plain words what is wrong (DuckDB's own message after it, when DuckDB found the
problem) and what can be done, and ends by saying the file was left as it was. The helpers here
build those messages; ``store/opening.py`` and ``store/loading.py`` decide when to use them.
"""

from __future__ import annotations

import re

from convex_lab.errors import StoreLockedError, StoreOpenError

_UNTOUCHED = "The file was left untouched."
_RESTORE = ("Restore the file from a copy (a backup), or open another path, e.g. "
            "cl.Backend('fresh.duckdb').")


def _said(message: str) -> str:
    """DuckDB's message on one line, without its advice to run SET/INSTALL (not ours to give)."""
    text = " ".join(message.split())
    for cut in (" Please try installing", " Alternatively, consider", " Possible solutions:"):
        text = text.split(cut)[0]
    return text if len(text) <= 400 else text[:397] + "..."


def _open_error(where: str, reason: str, problem: str, fix: str, *,
                duckdb_message: str | None = None,
                cls: type[StoreOpenError] = StoreOpenError) -> StoreOpenError:
    said = f" (DuckDB: {_said(duckdb_message)})" if duckdb_message else ""
    return cls(f"Cannot open {where}: {problem}{said}. {fix}", path=where, reason=reason,
               duckdb_message=duckdb_message)


def _damaged(where: str, problem: str, fix: str = _RESTORE, reason: str = "bad_catalog",
             duckdb_message: str | None = None) -> StoreOpenError:
    return _open_error(where, reason, problem, f"{_UNTOUCHED} {fix}",
                       duckdb_message=duckdb_message)


def _what_file(head: bytes) -> str:
    if head.startswith(b"SQLite format 3\x00"):
        return "a SQLite database"
    if head.startswith(b"PAR1"):
        return "a Parquet file"
    if head.startswith(b"PK\x03\x04"):
        return "a ZIP archive"
    if head and all(32 <= b < 127 or b in b"\t\r\n" for b in head):
        return "a text file"
    return "some other kind of file"


_CORRUPTION = ("checksum", "Corrupt", "Could not read enough bytes", "Metadata block",
               "block id", "out of range", "database has been invalidated")
_LOCK_HOLDER = re.compile(r"Conflicting lock is held in (.*?) \(PID (\d+)\)")


def _duckdb_error(error: Exception, where: str) -> StoreOpenError:
    """The StoreOpenError for an error DuckDB raised while opening or reading ``where``."""
    import duckdb  # noqa: PLC0415 (loaded by now)

    message = said = str(error)
    if "Could not set lock on file" in message:
        holder = _LOCK_HOLDER.search(message)
        who = (f"process {holder.group(2)} ({holder.group(1)})" if holder
               else "another process")
        return _open_error(
            where, "locked", f"{who} has it open, and DuckDB lets one process at a time open a "
            "database file (even for reading)",
            "Close the backend in that process (backend.close(), or shut down that notebook's "
            "kernel) and try again, or open a copy of the file.", duckdb_message=said,
            cls=StoreLockedError)
    if "different configuration than existing connections" in message:
        return _open_error(
            where, "in_use", "it is already open in this process through another DuckDB "
            "connection (e.g. duckdb.connect(path))",
            "Close that connection (con.close()) and try again; to look at a store's tables "
            "use backend.sql(...).", duckdb_message=said, cls=StoreLockedError)
    if "newer version of DuckDB" in message:
        return _damaged(where, f"it was written by a newer DuckDB, in a storage format this "
                        f"DuckDB {duckdb.__version__} cannot read",
                        "Upgrade DuckDB (pip install -U duckdb) and try again, or open another "
                        "path.", reason="newer_duckdb", duckdb_message=said)
    if "storage version" in message:
        return _damaged(where, f"it is in a storage format this DuckDB {duckdb.__version__} "
                        "cannot read", "Open it with the DuckDB that wrote it and export its "
                        "data (EXPORT DATABASE), or open another path.",
                        reason="old_duckdb", duckdb_message=said)
    if "not a valid DuckDB database file" in message:
        return _damaged(where, "it is not a DuckDB database",
                        "Give the path of a DuckDB file written by convex_lab, or a new path.",
                        reason="not_duckdb", duckdb_message=said)
    if "Permission denied" in message:
        return _open_error(where, "unreadable", "the operating system denied access to it",
                           f"Give yourself read and write access (chmod u+rw {where}), or open a "
                           "copy you own.", duckdb_message=said)
    if (any(sign in message for sign in _CORRUPTION) or type(error) is duckdb.Error
            or isinstance(error, (duckdb.SerializationException, duckdb.InternalException))):
        return _damaged(where, "the file is damaged: DuckDB found bytes that are not what it "
                        "wrote (a disk error, a copy cut short, or an edit outside DuckDB)",
                        reason="corrupt", duckdb_message=said)
    return _damaged(where, "DuckDB could not read it as a database", reason="unreadable",
                    duckdb_message=said)
