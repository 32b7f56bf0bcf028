"""Opening a damaged or unsuitable file (issue 7, item 7): one StoreOpenError, file untouched.

Every test makes a real file: a good store written by ``cl.Backend(path, app=...)`` and closed,
then damaged the way it happens in practice (flipped bytes, a copy cut short, a row or catalog
entry edited with DuckDB, a lock held by another process, a bad path). Opening it must raise one
:class:`StoreOpenError` whose message names the file, says what is wrong and what to do, must not
change the file by a byte, and must leave no DuckDB connection (or file claim) behind.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import sqlite3
import struct
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import convex_lab as cl
from convex_lab import v
from convex_lab.errors import (
    FileInUseError,
    PersistenceError,
    StoreLockedError,
    StoreOpenError,
)
from convex_lab.ids import encode_id

duckdb = pytest.importorskip("duckdb")

REPO = Path(__file__).resolve().parent.parent
RESTORE = "Restore the file from a copy"


def _app() -> cl.App:
    app = cl.App(schema=cl.define_schema({
        "tasks": cl.define_table({"text": v.string(), "done": v.boolean()}),
    }))

    @app.mutation(args={"text": v.string()}, name="add")
    def add(ctx: Any, text: str) -> Any:
        return ctx.db.insert("tasks", {"text": text, "done": False})

    @app.query(args={}, name="list_tasks")
    def list_tasks(ctx: Any) -> Any:
        return ctx.db.query("tasks").collect()

    return app


@pytest.fixture
def store_file(tmp_path: Path) -> Path:
    """A good store: a schema and three tasks, written and closed."""
    path = tmp_path / "app.duckdb"
    app = _app()
    with cl.Backend(path, app=app) as backend:
        for i in range(3):
            backend.mutation("add", {"text": f"task {i}"})
    return path


def _first_id(path: Path) -> str:
    con = duckdb.connect(str(path), read_only=True)
    try:
        return str(con.execute('SELECT min(_id) FROM _convex."tasks"').fetchone()[0])
    finally:
        con.close()


def _run_sql(path: Path, *statements: str) -> None:
    """Damage a store the way a hand edit does: plain DuckDB, then closed (checkpointed)."""
    con = duckdb.connect(str(path))
    try:
        for statement in statements:
            con.execute(statement)
    finally:
        con.close()


def _files(path: Path) -> dict[str, str]:
    """The file and its siblings (``.wal``, ...) by name → SHA-256: what "untouched" compares."""
    folder = path.parent
    if not folder.is_dir():
        return {}
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.iterdir()) if p.name.startswith(path.name) and p.is_file()}


def _expect_error(path: Path | str, reason: str, *fix: str, duckdb_can_open: bool = False,
                  cls: type[StoreOpenError] = StoreOpenError) -> StoreOpenError:
    """Open ``path`` twice; both times one ``cls`` naming the file and ``fix``, nothing written.

    The second attempt shows nothing was left behind (a claim on the file or a DuckDB instance
    would make it fail differently). ``duckdb_can_open``: the damage is in content DuckDB itself
    reads fine, so plain DuckDB (another configuration) must be able to open the file right after,
    which it cannot while a connection of ours is still open.
    """
    before = _files(Path(path)) if str(path) else {}
    errors = []
    for _ in range(2):
        with pytest.raises(StoreOpenError) as info:
            cl.Backend(path, app=_app())
        errors.append(info.value)
    error = errors[0]
    assert type(error) is cls
    assert isinstance(error, PersistenceError)
    assert error.reason == reason, str(error)
    assert type(errors[1]) is cls and errors[1].reason == reason
    message = str(error)
    if str(path):
        assert os.path.abspath(path) in message or str(path) in message
    for words in fix:
        assert words in message, message
    if str(path):
        assert _files(Path(path)) == before, "the file changed"
    if duckdb_can_open:
        duckdb.connect(str(path), read_only=True).close()
    return error


def _flip(path: Path, offset: int, n: int = 16) -> None:
    with open(path, "r+b") as f:
        f.seek(offset)
        data = f.read(n)
        f.seek(offset)
        f.write(bytes(b ^ 0xFF for b in data))


# A damaged file ----------------------------------------------------------------------------------


def test_flipped_bytes_in_the_header_are_a_checksum_error(store_file: Path) -> None:
    _flip(store_file, 100)
    error = _expect_error(store_file, "corrupt", "damaged", "checksum", "The file was left "
                          "untouched", RESTORE)
    assert error.duckdb_message is not None and "checksum" in error.duckdb_message


def test_flipped_bytes_in_a_data_block_are_found_while_reading_documents(
        store_file: Path) -> None:
    doc_id = _first_id(store_file)
    offset = store_file.read_bytes().find(doc_id.encode())
    assert offset > 0  # the IDs are stored as plain text in a data block
    _flip(store_file, offset, 8)
    _expect_error(store_file, "corrupt", "damaged", "checksum", RESTORE)


@pytest.mark.parametrize("keep", [1 / 3, 5000])
def test_a_file_cut_short_is_damaged(store_file: Path, keep: float) -> None:
    size = store_file.stat().st_size
    os.truncate(store_file, int(size * keep) if keep < 1 else int(keep))
    _expect_error(store_file, "corrupt", "damaged", "DuckDB: IO Error", RESTORE)


def _set_storage_version(path: Path, version: int) -> None:
    """Write ``version`` into the main header as a newer DuckDB would, with a valid checksum.

    DuckDB's block checksum (duckdb/common/checksum.cpp) XORs ``word * 0xbf58476d1ce4e5b9``
    over the 8-byte words after the checksum itself, so changing words changes it by the XOR of
    their old and new terms.
    """
    k, mask = 0xBF58476D1CE4E5B9, 2**64 - 1
    with open(path, "r+b") as f:
        header = bytearray(f.read(4096))
        old = bytes(header)
        header[12:20] = struct.pack("<Q", version)  # after the checksum and b"DUCK"
        checksum = struct.unpack_from("<Q", old)[0]
        for at in range(8, 4096, 8):
            a, b = struct.unpack_from("<Q", old, at)[0], struct.unpack_from("<Q", header, at)[0]
            if a != b:
                checksum ^= ((a * k) & mask) ^ ((b * k) & mask)
        struct.pack_into("<Q", header, 0, checksum)
        f.seek(0)
        f.write(header)


def test_a_file_written_by_a_newer_duckdb_says_to_upgrade(store_file: Path) -> None:
    _set_storage_version(store_file, 1000)
    error = _expect_error(store_file, "newer_duckdb", "newer", "pip install -U duckdb",
                          duckdb.__version__)
    assert error.duckdb_message is not None and "1000" in error.duckdb_message


# Not a store -------------------------------------------------------------------------------------


def test_an_empty_file_is_not_turned_into_a_database(store_file: Path) -> None:
    os.truncate(store_file, 0)
    _expect_error(store_file, "empty", "empty (0 bytes)", "Delete it to start a new store")
    assert store_file.stat().st_size == 0


def test_a_text_file_is_not_a_duckdb_database(tmp_path: Path) -> None:
    path = tmp_path / "notes.duckdb"
    path.write_text("shopping list\n- milk\n")
    _expect_error(path, "not_duckdb", "not a DuckDB database", "a text file")


def test_a_sqlite_file_is_named_and_no_extension_is_fetched_for_it(tmp_path: Path) -> None:
    path = tmp_path / "app.sqlite"
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE t(x)")
    con.commit()
    con.close()
    error = _expect_error(path, "not_duckdb", "a SQLite database")
    assert "extension" not in str(error)  # DuckDB alone would try to download sqlite_scanner


def test_another_duckdb_database_is_not_taken_over(tmp_path: Path) -> None:
    path = tmp_path / "analytics.duckdb"
    _run_sql(path, "CREATE TABLE sales(amount DOUBLE)", "INSERT INTO sales VALUES (1.5)")
    _expect_error(path, "not_a_store", "not a convex_lab store", "main.sales",
                  "Open another path", duckdb_can_open=True)


def test_an_empty_duckdb_database_becomes_a_store(tmp_path: Path) -> None:
    path = tmp_path / "blank.duckdb"
    _run_sql(path)  # a valid database with nothing in it
    with cl.Backend(path, app=_app()) as backend:
        backend.mutation("add", {"text": "first"})
    with cl.Backend(path, app=_app()) as backend:
        assert [d["text"] for d in backend.query("list_tasks")] == [
            "first"]


# Bad paths ---------------------------------------------------------------------------------------


def test_a_folder_path_suggests_a_file_inside_it(tmp_path: Path) -> None:
    _expect_error(tmp_path, "is_directory", "a folder, not a file",
                  str(tmp_path / "app.duckdb"))


def test_a_missing_folder_is_named(tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    _expect_error(missing / "app.duckdb", "missing_folder", f"the folder {missing} does not "
                  "exist", "os.makedirs")
    assert not missing.exists()


def test_a_file_in_place_of_the_folder_is_named(store_file: Path) -> None:
    _expect_error(store_file / "app.duckdb", "missing_folder", f"{store_file} is not a folder")


def test_a_read_only_file_is_not_opened_for_writing(store_file: Path) -> None:
    store_file.chmod(0o444)
    try:
        _expect_error(store_file, "read_only", "read-only", "chmod u+w", duckdb_can_open=True)
    finally:
        store_file.chmod(0o644)
    with cl.Backend(store_file, app=_app()):
        pass  # writable again: it opens


def test_an_empty_path_and_a_url_are_refused(tmp_path: Path) -> None:
    _expect_error("", "bad_path", "the path is empty", "cl.Backend()")
    error = _expect_error("https://example.com/app.duckdb", "not_local", "not a local file")
    assert "https://example.com/app.duckdb" in str(error)


# Held by someone else ----------------------------------------------------------------------------

HOLDER = textwrap.dedent("""
    import sys
    import convex_lab as cl

    backend = cl.Backend(sys.argv[1])
    print("open", flush=True)
    sys.stdin.read()  # until the test closes our stdin
    backend.close()
""")


@contextlib.contextmanager
def _held_open(path: Path) -> Iterator[int]:
    """Another process (a second kernel, say) with a backend open on ``path``; yields its PID."""
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    with subprocess.Popen([sys.executable, "-c", HOLDER, str(path)], env=env,
                          stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                          stderr=subprocess.DEVNULL, text=True) as proc:
        assert proc.stdout is not None and proc.stdin is not None
        try:
            assert proc.stdout.readline().strip() == "open"
            yield proc.pid
        finally:
            proc.stdin.close()
            proc.wait(timeout=60)


def test_a_file_another_process_holds_names_that_process(store_file: Path) -> None:
    with _held_open(store_file) as pid, pytest.raises(StoreLockedError) as info:
        cl.Backend(store_file, app=_app())
    error = info.value
    assert isinstance(error, StoreOpenError) and isinstance(error, FileInUseError)
    assert error.reason == "locked"
    message = str(error)
    assert str(store_file) in message
    assert f"process {pid}" in message
    assert "Close the backend in that process" in message
    assert "Could not set lock" in message  # DuckDB's own words, after ours


def test_once_the_other_process_closes_it_the_file_opens(store_file: Path) -> None:
    with _held_open(store_file), pytest.raises(StoreLockedError):
        cl.Backend(store_file, app=_app())
    with cl.Backend(store_file, app=_app()) as backend:
        assert len(backend.query("list_tasks")) == 3


def test_a_duckdb_connection_in_this_process_is_named(store_file: Path) -> None:
    con = duckdb.connect(str(store_file))
    try:
        _expect_error(store_file, "in_use", "another DuckDB connection", "con.close()",
                      cls=StoreLockedError)
    finally:
        con.close()
    with cl.Backend(store_file, app=_app()):
        pass


# A bad catalog -----------------------------------------------------------------------------------

CATALOG_DAMAGE = {
    "a listed table that does not exist": (
        ["INSERT INTO _convex._tables VALUES ('ghost', 10002)"],
        "lists 'ghost' with number 10002, but the table _convex.\"ghost\""),
    "a duplicate table number": (
        ['CREATE TABLE _convex."notes" AS SELECT * FROM _convex."tasks" LIMIT 0',
         "INSERT INTO _convex._tables VALUES ('notes', 10001)"],
        "tables 'tasks' and 'notes' both have table number 10001"),
    "a table listed twice": (
        ["INSERT INTO _convex._tables VALUES ('tasks', 10002)"],
        "lists table 'tasks' twice"),
    "a catalog column of the wrong type": (
        ["ALTER TABLE _convex._tables ALTER number TYPE VARCHAR"],
        "column number of _convex._tables has type VARCHAR, not INTEGER"),
    "a document table missing a column": (
        ['ALTER TABLE _convex."tasks" DROP COLUMN doc'],
        "_convex.\"tasks\" has no column doc"),
    "a document column of the wrong type": (
        ['ALTER TABLE _convex."tasks" ALTER _ts TYPE VARCHAR'],
        "column _ts of _convex.\"tasks\" has type VARCHAR, not BIGINT"),
    "a table name that would break out of SQL quotes": (
        ['CREATE TABLE _convex."x""y" AS SELECT * FROM _convex."tasks" LIMIT 0',
         "INSERT INTO _convex._tables VALUES ('x\"y', 10002)"],
        "which is not a table name"),
    "a row without a table number": (
        ["UPDATE _convex._tables SET number = NULL"],
        "has no table number"),
    "a user table with a system table's number": (
        ["UPDATE _convex._tables SET number = 2"],
        "the number of system table '_storage'"),
    "a system table this convex_lab does not know": (
        ['CREATE TABLE _convex."_future" AS SELECT * FROM _convex."tasks" LIMIT 0',
         "INSERT INTO _convex._tables VALUES ('_future', 5)"],
        "a system table '_future' this convex_lab does not know"),
    "a document table the catalog does not list": (
        ['CREATE TABLE _convex."stray" AS SELECT * FROM _convex."tasks"'],
        "_convex holds table 'stray', which _convex._tables does not list"),
    "a missing catalog table": (
        ["DROP TABLE _convex._schema"],
        "catalog table _convex._schema is missing"),
    "a schema row that is not JSON": (
        ["UPDATE _convex._schema SET json = '{\"tables\": ['"],
        "latest schema (the _convex._schema row with ts"),
    "a schema row that is JSON but not a schema": (
        ["UPDATE _convex._schema SET json = '{\"tables\": 5}'"],
        "is not a valid schema"),
    "a schema row without a timestamp": (
        ["INSERT INTO _convex._schema VALUES (NULL, '')"],
        "row(s) of _convex._schema have no timestamp"),
}


@pytest.mark.parametrize("damage", list(CATALOG_DAMAGE))
def test_a_bad_catalog_entry_is_named(store_file: Path, damage: str) -> None:
    statements, problem = CATALOG_DAMAGE[damage]
    _run_sql(store_file, *statements)
    error = _expect_error(store_file, "bad_catalog", problem, "The file was left untouched",
                          "open another path", duckdb_can_open=True)
    assert error.duckdb_message is None  # found by convex_lab, in plain words


@pytest.mark.parametrize("code", [
    "CREATE MACRO lower(x) AS 42",  # would replace DuckDB's lower() in every %%sql query
    "CREATE MACRO tricky() AS TABLE SELECT * FROM checkpoint()",
    "CREATE VIEW main.recent AS SELECT * FROM _convex.\"tasks\"",
])
def test_sql_code_planted_in_the_file_is_refused(store_file: Path, code: str) -> None:
    _run_sql(store_file, code)
    _expect_error(store_file, "foreign_code", "SQL code convex_lab never writes", "DROP",
                  duckdb_can_open=True)


# A bad document row ------------------------------------------------------------------------------

ROW_DAMAGE = {
    "invalid JSON": ("doc = '{\"text\": \"half'", "is not a document"),
    "JSON that is not an object": ("doc = '[1, 2]'", "JSON but not an object"),
    "an _id field inside the document": (
        "doc = '{\"_id\": \"other\", \"text\": \"t\", \"done\": false}'",
        "an _id or _creationTime field of its own"),
    "no document on a live row": ("doc = NULL", "has no document (doc is NULL)"),
    "a NaN creation time": ("_creationTime = 'nan'::DOUBLE", "creation time nan"),
    "no commit timestamp": ("_ts = NULL", "has no commit timestamp (_ts)"),
}


@pytest.mark.parametrize("damage", list(ROW_DAMAGE))
def test_a_bad_row_names_its_table_and_id(store_file: Path, damage: str) -> None:
    assignment, problem = ROW_DAMAGE[damage]
    doc_id = _first_id(store_file)
    _run_sql(store_file, f"UPDATE _convex.\"tasks\" SET {assignment} WHERE _id = '{doc_id}'")
    error = _expect_error(store_file, "bad_row", "table 'tasks'", f"_id {doc_id!r}", problem,
                          "repair or delete that row", duckdb_can_open=True)
    assert "JSONDecodeError" not in type(error).__name__


def test_a_row_without_an_id_is_named(store_file: Path) -> None:
    _run_sql(store_file, "UPDATE _convex.\"tasks\" SET _id = NULL WHERE _id = (SELECT min(_id) "
                         "FROM _convex.\"tasks\")")
    _expect_error(store_file, "bad_row", "table 'tasks'", "a row has no _id",
                  duckdb_can_open=True)


@pytest.mark.parametrize("bad_id", ["bogus", "another table's"])
def test_an_id_that_is_not_an_id_of_its_table_is_named(store_file: Path, bad_id: str) -> None:
    # Functions that meet such a document would all fail (db.get/patch cannot decode its _id).
    if bad_id != "bogus":
        bad_id = encode_id(10_002, bytes(16))
    _run_sql(store_file, f"UPDATE _convex.\"tasks\" SET _id = '{bad_id}' WHERE _id = (SELECT "
                         "min(_id) FROM _convex.\"tasks\")")
    _expect_error(store_file, "bad_row", "table 'tasks'", f"_id {bad_id!r}",
                  "not a document ID of this table", duckdb_can_open=True)


def test_a_repaired_file_opens_with_its_data(store_file: Path) -> None:
    doc_id = _first_id(store_file)
    _run_sql(store_file, f"UPDATE _convex.\"tasks\" SET doc = 'oops' WHERE _id = '{doc_id}'")
    _expect_error(store_file, "bad_row", doc_id)
    _run_sql(store_file, "UPDATE _convex.\"tasks\" SET doc = '{\"text\": \"fixed\", \"done\": "
                         f"true}}' WHERE _id = '{doc_id}'")
    with cl.Backend(store_file, app=_app()) as backend:
        docs = backend.query("list_tasks")
    assert len(docs) == 3
    assert "fixed" in {d["text"] for d in docs}


def test_persistence_error_keeps_its_old_import_path() -> None:
    from convex_lab.store.persist import PersistenceError as Old

    assert Old is PersistenceError
    assert issubclass(StoreOpenError, Old)


# Opening a sound file -----------------------------------------------------------------------------


def test_a_path_in_the_home_folder_opens_there(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    with cl.Backend("~/app.duckdb", app=_app()) as backend:
        backend.mutation("add", {"text": "at home"})
    assert (tmp_path / "app.duckdb").exists()


def test_a_long_history_is_compacted_once_the_file_is_checked(tmp_path: Path) -> None:
    # Compaction is the one write opening makes; it happens after the read-only check.
    path = tmp_path / "history.duckdb"
    app = _app()

    @app.mutation(args={}, name="finish_all")
    def finish_all(ctx: Any) -> None:
        for doc in ctx.db.query("tasks").collect():
            ctx.db.patch(doc["_id"], {"done": not doc["done"]})

    with cl.Backend(path, app=app) as backend:
        backend.import_documents("tasks", [{"text": str(i), "done": False} for i in range(600)])
        backend.mutation("finish_all")
        backend.mutation("finish_all")  # 1800 versions of 600 documents
    with cl.Backend(path, app=app) as backend:
        docs = backend.query("list_tasks")
        versions = backend.store.sql().execute('SELECT count(*) FROM _convex."tasks"').fetchone()
    assert len(docs) == 600 and not any(d["done"] for d in docs)
    assert versions == (600,)
    with cl.Backend(path, app=app) as backend:
        assert len(backend.query("list_tasks")) == 600
