"""Opening a DuckDB file as a store without ever writing to a file it cannot load.

:func:`open_file` first checks the path, then reads and checks the whole file through a
read-only connection (``store/loading.py``), and connects for writing only once all of it is
sound; only then does it create a missing catalog or compact long histories. Anything wrong — a
damaged or truncated file, one that is not DuckDB or was written by a newer DuckDB, a lock held by
another process, a bad catalog row or document, a bad path — is one
:class:`~convex_lab.errors.StoreOpenError` naming the file, the problem and the way out; the file is
left as it was and no DuckDB connection stays open.
"""

from __future__ import annotations

import os
import stat
from typing import Any

from convex_lab.store.file_errors import _damaged, _duckdb_error, _open_error, _what_file
from convex_lab.store.loading import (
    LoadedState,
    Reading,
    compact,
    create_catalog,
    fingerprint,
    read,
)

# Every connection to a store (file or memory) is made with these settings; they are chosen when
# DuckDB makes the database instance and hold for every cursor of it, the %%sql ones included:
# - no extension is installed or loaded behind our back (that downloads and runs code): the
#   built-in json, parquet and icu are all the store and %%sql use, and without this an
#   `https://` path in %%sql, or opening a SQLite file, would try to fetch httpfs / sqlite;
# - the configuration is locked, so nothing run through a cursor (a settings-changing table
#   function such as enable_logging(), say) can turn that back on or change any other setting.
#   The store itself never changes a setting after connecting.
DUCKDB_CONFIG: dict[str, Any] = {
    "autoinstall_known_extensions": False,
    "autoload_known_extensions": False,
    "lock_configuration": True,
}


def _check_path(path: str, where: str) -> bool:
    """Problems visible from the path alone, before DuckDB sees it; ``True`` if the file exists.

    DuckDB would create, initialise or write some of these (an empty file becomes a new
    database), and it reports others without the file's name.
    """
    if not path:
        raise _open_error("''", "bad_path", "the path is empty",
                          "Give a file path, e.g. cl.Backend('app.duckdb'), or no path for an "
                          "in-memory backend: cl.Backend().")
    if "://" in path or path.startswith("md:"):
        raise _open_error(path, "not_local", "this is not a local file path (a backend keeps "
                          "its data in a DuckDB file on this machine)",
                          "Copy the file to this machine and open that copy.")
    if os.path.isdir(path):
        raise _open_error(where, "is_directory", "it is a folder, not a file",
                          f"Give a file path inside it, e.g. "
                          f"cl.Backend({os.path.join(path, 'app.duckdb')!r}).")
    if not os.path.lexists(path):
        parent = os.path.dirname(where)
        if not os.path.isdir(parent):
            kind = "is not a folder" if os.path.exists(parent) else "does not exist"
            raise _open_error(where, "missing_folder", f"the folder {parent} {kind}",
                              "Create the folder first (os.makedirs(folder, exist_ok=True)), or "
                              "choose a path in an existing folder.")
        if not os.access(parent, os.W_OK | os.X_OK):
            raise _open_error(where, "read_only", f"the folder {parent} is not writable, so the "
                              "new database file cannot be created there",
                              "Choose a path in a folder you can write to.")
        return False
    try:
        info = os.stat(path)
        with open(path, "rb") as f:
            head = f.read(16)
    except FileNotFoundError:  # a dangling symlink
        raise _open_error(where, "bad_path", "the path is a symbolic link to a file that does "
                          "not exist", "Remove the link, or point it at a database file.") from None
    except PermissionError:
        raise _open_error(where, "unreadable", "the file cannot be read (permission denied)",
                          f"Give yourself read and write access (chmod u+rw {where}), or open "
                          "a copy you own.") from None
    if not stat.S_ISREG(info.st_mode):
        raise _open_error(where, "bad_path", "it is not a regular file",
                          "Give the path of a DuckDB database file, or of a new file to create.")
    # No write bits counts as read-only even for root (whom the OS would let write): a backend
    # writes to its file (every commit), so it must not open one its owner marked read-only.
    if not info.st_mode & 0o222 or not os.access(path, os.W_OK):
        raise _open_error(where, "read_only", "the file is read-only, and a backend writes to "
                          "its file (every commit, every schema push)",
                          f"Make it writable (chmod u+w {where}), or copy it somewhere you can "
                          "write and open the copy. The file was left untouched.")
    if info.st_size == 0:
        raise _damaged(where, "the file is empty (0 bytes), so it holds no database (a copy "
                       "or download that failed, or a file made by hand)",
                       "Delete it to start a new store at this path, restore the file from a "
                       "copy, or open another path.", reason="empty")
    if head[8:12] != b"DUCK":  # every DuckDB file starts with a checksum, then b"DUCK"
        raise _damaged(where, f"it is not a DuckDB database: it looks like {_what_file(head)}",
                       "Give the path of a DuckDB file written by convex_lab, or a new path "
                       "to start a store there.", reason="not_duckdb")
    return True


def open_file(duckdb: Any, path: str) -> tuple[Any, LoadedState]:
    """``(connection, what was read)`` for the store file at ``path`` (module docstring)."""
    path = os.path.expanduser(path)  # as DuckDB would: "~/app.duckdb" is in the home folder
    where = os.path.abspath(path)
    existed = _check_path(path, where)
    reading: Reading | None = None
    if existed:
        try:
            reader = duckdb.connect(path, read_only=True, config=DUCKDB_CONFIG)
        except duckdb.Error as e:
            raise _duckdb_error(e, where) from None
        try:
            reading = read(reader, where)
        finally:
            reader.close()
    try:
        con = duckdb.connect(path, config=DUCKDB_CONFIG)
    except duckdb.Error as e:
        raise _duckdb_error(e, where) from None
    try:
        if reading is None:  # a new file; read it anyway, should another process have
            reading = read(con, where)  # made it since
        else:
            try:
                changed = fingerprint(con) != reading.fingerprint
            except duckdb.Error as e:
                raise _duckdb_error(e, where) from None
            if changed:
                raise _open_error(where, "changed", "another process wrote to it while it "
                                  "was being opened", "Open it again once that process has "
                                  "closed it (DuckDB lets one process at a time write a "
                                  "file).")
        # All checked: from here on the file is the store's, and written to.
        try:
            if reading.fresh:
                create_catalog(con)
            for name in reading.compact:
                compact(con, name)
        except duckdb.Error as e:
            raise _open_error(where, "write_failed", "DuckDB could not write to it",
                              "Check that the disk has room and the file is writable, then "
                              "try again.", duckdb_message=str(e)) from None
    except BaseException:
        con.close()
        raise
    return con, reading.state
