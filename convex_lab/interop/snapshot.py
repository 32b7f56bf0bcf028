"""Snapshot ZIPs in Convex's own layout: ``backend.export_zip(path)`` / ``import_zip(path, mode)``.

Layout (``shared/reference/wire-protocol.md`` §6; Convex's writer ``crates/exports``, reader
``crates/application/src/snapshot_import``): every entry Deflate-compressed, unix mode 0644::

    README.md                        Convex's welcome text
    _tables/documents.jsonl          {"name": <table>, "id": <table number>} per table, by number
    <table>/documents.jsonl          one document per line, Convex export JSON
    <table>/generated_schema.jsonl   "uniform"  (int64 = bare integer, float64 = has a '.')
    _storage/documents.jsonl         one line per stored file (sha256, size, contentType)
    _storage/<storage id>            the file's bytes

Contract
--------
* :func:`export_zip` writes every user table at ONE snapshot, small tables first, ``_storage``
  last, streaming: documents are encoded 16,384 at a time into the compressor, never the whole
  export in memory. It writes ``<path>.partial`` and renames it when complete, so a failed
  export leaves no half file at ``path``. IDs keep their table numbers, so the ZIP imports into
  a real Convex deployment with ``npx convex import --replace-all snapshot.zip``.
* :func:`import_zip` reads the ZIP entry by entry and line by line (the document lines are
  decoded in blocks; the ZIP is never read whole), validates every document against the
  deployed schema (tables without one take any document), and loads every table — and the
  files — as ONE commit (``Store.load_documents``): all of it or nothing. ``mode``:
  ``"require_empty"`` (Convex's default: every imported table must be empty here),
  ``"append"``, ``"replace"`` (the imported tables are replaced). Decoding follows Convex's
  importer: with ``generated_schema.jsonl`` = ``"uniform"`` a bare JSON integer is an int64 and
  ``{"$bytes"|"$float"|"$integer": ...}`` objects are decoded; without one every number is a
  float64 (``ExportContext::Infer``). ``_id``s are kept (a table missing here is made with the
  snapshot's table number) and ``_creationTime``s too when they are floats.
* A component's tables (``c/t`` here) go to ``_components/c/t/...`` with their own
  ``_components/c/_tables/documents.jsonl``, as Convex writes them, and come back the same way.
* Not supported (a clear error): components inside components, legacy exports whose
  ``generated_schema.jsonl`` is a shape rather than ``"uniform"`` (decoded as Infer), and files
  whose storage IDs come from another table number than this backend's ``_storage`` (real
  Convex deployments number ``_storage`` differently).
"""

from __future__ import annotations

import base64
import json
import os
import re
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from convex_lab.errors import ConvexLabError, InvalidValueError
from convex_lab.interop.arrow_in import is_special, json_ints
from convex_lab.interop.progress import bar
from convex_lab.interop.tables_in import no_gc
from convex_lab.interop.tables_out import snapshot_documents, table_validators
from convex_lab.store.bulk_load import BulkLoad
from convex_lab.values import Int64, dumps_export, loads_export

if TYPE_CHECKING:
    from convex_lab.files.engine import FileStorage
    from convex_lab.store.engine import Store

# Convex's own text (crates/exports/src/zip_uploader.rs, README_MD_CONTENTS).
README = """# Welcome to your Convex snapshot export!

This ZIP file contains a snapshot of the tables in your Convex deployment.

Documents for each table are listed as lines of JSON in
<table_name>/documents.jsonl files.

For details on the format and how to use this snapshot with npx convex import,
check out [the docs](https://docs.convex.dev/database/import-export/export) or
ask us in [Discord](http://convex.dev/community).
"""
ENCODE_CHUNK = 16_384
READ_BLOCK = 8 << 20
COMPRESS_LEVEL = 1  # Deflate at level 1: 3-4 times faster than 6, files ~15 % larger
STORAGE = "_storage"

_DOCS = re.compile(r"^(?:.*/)?([^/]+)/documents\.jsonl$")
_SCHEMA = re.compile(r"^(?:.*/)?([^/]+)/generated_schema\.jsonl$")
_FILE = re.compile(r"^(?:.*/)?_storage/([^/.]+)(?:\.[^/]+)?$")


# ---------------------------------------------------------------------------------------------
# Export


def _entry(name: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
    info.compress_type = zipfile.ZIP_DEFLATED
    info.external_attr = (0o100644 & 0xFFFF) << 16  # a regular file, mode 0644
    return info


def _encoder() -> Any:
    import msgspec  # noqa: PLC0415

    def hook(obj: Any) -> Any:
        if type(obj) is Int64:
            return int(obj)
        raise TypeError(f"{obj!r} is not a canonical Convex value")

    return msgspec.json.Encoder(enc_hook=hook)


def encode_lines(docs: list[dict[str, Any]], encoder: Any,
                 special: list[bool] | None = None) -> bytes:
    """Documents as Convex export JSON lines. msgspec writes ordinary documents; one holding
    bytes or a non-finite float (which msgspec would write lossily) takes ``dumps_export``.
    ``special`` (one flag per document, from :func:`special_flags`) saves looking again."""
    if special is None:
        special = list(map(is_special, docs))
    if not any(special):
        return encoder.encode_lines(docs)  # type: ignore[no-any-return]
    return b"".join((dumps_export(d).encode() if sp else encoder.encode(d)) + b"\n"
                    for d, sp in zip(docs, special, strict=True))


_SAFE_KINDS = frozenset(("string", "id", "int64", "boolean", "null"))
# Fields whose validators take a JSON integer as it should be read (int64 → Int64, float64 →
# float): a table typed with only these needs no integer walk on import.
_TYPED_KINDS = frozenset(("string", "id", "int64", "boolean", "null", "float64", "bytes"))


def special_flags(validators: dict[str, Any]) -> Any:
    """``flags(docs)`` → which documents need lossless JSON (``None``: none of them).

    With a schema that types every field as a scalar, only float64 fields can hold a special
    value, and they are checked as numpy arrays; otherwise each document is walked."""
    import numpy as np  # noqa: PLC0415

    kinds = {name: fv.kind for name, fv in validators.items()}
    if not kinds or not all(k in _SAFE_KINDS or k == "float64" for k in kinds.values()):
        return lambda docs: list(map(is_special, docs))
    floats = [name for name, kind in kinds.items() if kind == "float64"]

    def flags(docs: list[dict[str, Any]]) -> list[bool] | None:
        bad = None
        for name in floats:
            values = np.fromiter((d.get(name, 0.0) for d in docs), np.float64, len(docs))
            col = ~np.isfinite(values)
            bad = col if bad is None else bad | col
        if bad is None or not bad.any():
            return [False] * len(docs)
        return bad.tolist()  # type: ignore[no-any-return]

    return flags


class _Writer:
    """Writes compressed blocks on a thread: zlib releases the GIL, so compressing one block
    overlaps encoding the next (the export's two costs, about equal)."""

    def __init__(self) -> None:
        import queue  # noqa: PLC0415
        import threading  # noqa: PLC0415

        self.queue: queue.Queue[tuple[Any, bytes] | None] = queue.Queue(maxsize=2)
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name="convex_lab-export", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while (item := self.queue.get()) is not None:
            if self.error is None:
                try:
                    item[0].write(item[1])
                except BaseException as e:  # noqa: BLE001 (handed to the exporting thread)
                    self.error = e

    def write(self, out: Any, data: bytes) -> None:
        if self.error is not None:
            raise self.error
        self.queue.put((out, data))

    def drain(self) -> None:
        """Wait until everything queued is written; re-raise a write's error."""
        self.queue.put(None)
        self.thread.join()
        if self.error is not None:
            raise self.error


def export_zip(store: Store, path: str | os.PathLike[str], *, files: FileStorage | None = None,
               progress: bool | None = None) -> dict[str, int]:
    """Write a snapshot ZIP at ``path``; returns the documents written per table (and
    ``"_storage"``: files). See the module docstring."""
    _check_path(path, "export_zip")
    target = Path(path)
    if target.suffix.lower() != ".zip":
        raise InvalidValueError(f"{str(target)!r}: a snapshot is a .zip file; name it "
                                "e.g. 'snapshot.zip'.")
    if not target.parent.is_dir():
        raise InvalidValueError(f"No folder {str(target.parent)!r} to write {target.name} in: "
                                "make it first, or choose another path.")
    names = store.user_tables()
    with_files = files is not None and bool(store.tables[STORAGE].docs)
    _, tables = snapshot_documents(store, [*names, STORAGE] if with_files else names)
    total = sum(len(d) for d in tables.values())
    partial = target.with_name(target.name + ".partial")
    counts: dict[str, int] = {}
    encoder = _encoder()
    try:
        with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_DEFLATED,
                             compresslevel=COMPRESS_LEVEL) as zf, \
                bar(total, f"export {target.name}", enabled=progress) as shown:
            zf.writestr(_entry("README.md"), README)
            for prefix in sorted({n.rpartition("/")[0] for n in names} | {""}):
                numbers = sorted((store.tables[n].number, n.rpartition("/")[2]) for n in names
                                 if n.rpartition("/")[0] == prefix)
                zf.writestr(_entry(_path(prefix, "_tables/documents.jsonl")), "".join(
                    dumps_export({"name": n, "id": Int64(num)}) + "\n" for num, n in numbers))
            for name in sorted(names, key=lambda n: (len(tables[n]), n)):
                docs = tables[name]
                flags = special_flags(table_validators(store, name))
                where = _path(*name.rpartition("/")[::2])
                with zf.open(_entry(f"{where}/documents.jsonl"), "w", force_zip64=True) as out:
                    writer = _Writer()
                    try:
                        for start in range(0, len(docs), ENCODE_CHUNK):
                            chunk = docs[start : start + ENCODE_CHUNK]
                            writer.write(out, encode_lines(chunk, encoder, flags(chunk)))
                            shown.update(len(chunk))
                    finally:
                        writer.drain()
                zf.writestr(_entry(f"{where}/generated_schema.jsonl"), '"uniform"\n')
                counts[name] = len(docs)
            if with_files:
                assert files is not None
                counts[STORAGE] = _export_files(zf, files, tables[STORAGE], shown)
        os.replace(partial, target)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return counts


def _path(component: str, rest: str) -> str:
    """Where a component's entry goes: ``_components/<component>/<rest>`` (Convex's layout)."""
    return f"_components/{component}/{rest}" if component else rest


def _export_files(zf: zipfile.ZipFile, files: FileStorage, docs: list[dict[str, Any]],
                  shown: Any) -> int:
    """Each file's bytes, then ``_storage/documents.jsonl`` for the files written: a file
    deleted after the snapshot was taken leaves with its document, so every document listed
    has its bytes (an import checks that)."""
    lines = []
    for d in docs:
        blob = files.blobs.open(d["_id"])
        if blob is None:
            continue
        with blob, zf.open(_entry(f"{STORAGE}/{d['_id']}"), "w", force_zip64=True) as out:
            while block := blob.read(1 << 20):
                out.write(block)
        lines.append(dumps_export({"_id": d["_id"], "_creationTime": d["_creationTime"],
                                   "sha256": d["sha256"], "size": Int64(int(d["size"])),
                                   "contentType": d.get("contentType"), "internalId": ""}))
        shown.update(1)
    zf.writestr(_entry(f"{STORAGE}/documents.jsonl"), "".join(x + "\n" for x in lines))
    return len(lines)


# ---------------------------------------------------------------------------------------------
# Import


class _Table:
    __slots__ = ("docs", "name", "number", "schema")

    def __init__(self, name: str) -> None:
        self.name = name
        self.docs: str | None = None
        self.schema: str | None = None
        self.number: int | None = None


def _split_component(entry: str) -> tuple[str, str]:
    """``(component prefix, rest)`` of an entry: ``"_components/c/t/x"`` → ``("c/", "t/x")``
    (this store names a component's table ``"c/t"``), ``"t/x"`` → ``("", "t/x")``."""
    parts = entry.split("/_components/") if not entry.startswith("_components/") else (
        ["", entry[len("_components/"):]])
    if len(parts) == 1:
        return "", entry
    if len(parts) > 2:
        raise InvalidValueError(
            f"This snapshot has a component inside a component ({entry!r}); convex_lab "
            "imports the app's tables and its direct components' tables only.")
    component, _, rest = parts[1].partition("/")
    return component + "/", rest


def _layout(zf: zipfile.ZipFile) -> tuple[dict[str, _Table], dict[str, str]]:
    """The tables of a snapshot (by store name: ``t``, or ``c/t`` for component ``c``'s table
    ``t``; a component's ``_tables`` is ``c/_tables``) and its stored files (ID → entry)."""
    tables: dict[str, _Table] = {}
    blobs: dict[str, str] = {}
    for name in zf.namelist():
        if name.endswith("/"):
            continue
        if name.startswith("/") or ".." in name.split("/") or "\\" in name:
            raise InvalidValueError(
                f"The ZIP entry {name!r} is not a snapshot path (absolute, or climbing out with "
                "'..'): this ZIP is not a Convex snapshot. Export one with export_zip or `npx "
                "convex export`.")
        prefix, rest = _split_component(name)
        if m := _DOCS.match(rest):
            key = prefix + m.group(1)
            tables.setdefault(key, _Table(key)).docs = name
        elif m := _SCHEMA.match(rest):
            key = prefix + m.group(1)
            tables.setdefault(key, _Table(key)).schema = name
        elif not prefix and (m := _FILE.match(rest)):
            blobs[m.group(1)] = name
    return tables, blobs


def _lines(zf: zipfile.ZipFile, entry: str) -> Iterator[bytes]:
    """Blocks of whole lines of one entry, read ``READ_BLOCK`` bytes at a time."""
    with zf.open(entry) as f:
        rest = b""
        while block := f.read(READ_BLOCK):
            block = rest + block
            cut = block.rfind(b"\n") + 1
            rest = block[cut:]
            if cut:
                yield block[:cut]
        if rest.strip():
            yield rest + b"\n"


def _row_ints(row: Any, as_float: bool) -> Any:
    """:func:`json_ints` of one decoded line, in place at the top level (no call per scalar)."""
    if type(row) is dict:
        for k, x in row.items():
            t = type(x)
            if t is int:
                row[k] = float(x) if as_float else Int64(x)
            elif t is list or t is dict:
                row[k] = json_ints(x, as_float)
    return row


def _decode_block(block: bytes, decoder: Any, uniform: bool, typed: bool) -> list[Any]:
    """Decoded lines. ``typed``: the schema types every field as a scalar, so its validators
    convert integers themselves (int64 fields) and no walk is needed."""
    if uniform and b'"$' in block:  # encoded values: $bytes, $float, $integer
        return [loads_export(line) for line in block.decode("utf-8").splitlines() if line]
    rows = decoder.decode_lines(block)
    if uniform and typed:
        return rows  # type: ignore[no-any-return]
    return [_row_ints(r, not uniform) for r in rows]


def import_zip(store: Store, path: str | os.PathLike[str], *, mode: str = "require_empty",
               files: FileStorage | None = None, progress: bool | None = None,
               ) -> dict[str, int]:
    """Load a snapshot ZIP as one commit; returns the documents loaded per table. See the
    module docstring."""
    import msgspec  # noqa: PLC0415

    from convex_lab.interop.row_build import RowBuilder  # noqa: PLC0415
    from convex_lab.interop.zip_columns import arrow_load  # noqa: PLC0415

    if mode not in ("require_empty", "append", "replace"):
        raise InvalidValueError(f"mode must be 'require_empty', 'append' or 'replace'; got "
                                f"{mode!r}.")
    _check_path(path, "import_zip")
    source = Path(path)
    if not source.is_file():
        raise InvalidValueError(f"No file at {str(source)!r}.")
    try:
        zf = zipfile.ZipFile(source)
    except zipfile.BadZipFile as e:
        raise InvalidValueError(f"{str(source)!r} is not a ZIP file ({e}). A snapshot comes "
                                "from export_zip or `npx convex export`.") from None
    with zf, no_gc():
        tables, blobs = _layout(zf)
        numbers = _numbers(zf, tables)
        names = sorted(n for n in tables
                       if not n.rpartition("/")[2].startswith("_") or n == STORAGE)
        if STORAGE in names and files is None:
            names.remove(STORAGE)
        lookup_names = {num: n for n, num in numbers.items()}

        def name_of(number: int) -> str | None:
            return lookup_names.get(number) or store.table_name_for_number(number)

        total = sum(zf.getinfo(entry).file_size for n in names
                    if (entry := tables[n].docs) is not None)
        decoder = msgspec.json.Decoder()
        loads: list[BulkLoad] = []
        with bar(total, f"import {source.name}", enabled=progress, unit="B",
                 min_total=16 << 20) as shown:  # a bar from 16 MB of documents up
            for name in names:
                t = tables[name]
                uniform = _uniform(zf, t)
                if uniform and t.docs is not None:  # the columnar path, when it applies
                    got = arrow_load(zf, t.docs, store=store, table=name,
                                     number=numbers.get(name), name_of=name_of,
                                     number_of=lambda n: numbers.get(n) or _number_here(store, n),
                                     progress=shown.update)
                    if got is not None:
                        loads.append(got)
                        continue
                builder = RowBuilder(store, name, numbers.get(name), name_of)
                kinds = {fv.kind for fv in table_validators(store, name).values()}
                typed = bool(kinds) and kinds <= _TYPED_KINDS
                if t.docs is not None:
                    for block in _lines(zf, t.docs):
                        try:
                            rows = _decode_block(block, decoder, uniform, typed)
                        except (ValueError, msgspec.DecodeError) as e:
                            raise InvalidValueError(
                                f"{t.docs} in {str(source)!r} is not JSON lines: {e}") from None
                        except RecursionError:
                            raise InvalidValueError(
                                f"{t.docs} in {str(source)!r} holds a value nested deeper than "
                                "Convex allows (64 levels).") from None
                        builder.add(rows)
                        shown.update(len(block))
                loads.append(builder.finish())
            shown.set_postfix_str("indexing")
            placed = _place_files(zf, files, blobs, loads) if files is not None else []
            try:
                store.load_documents(loads, mode=mode)
            except BaseException:
                for storage_id in placed:
                    files.blobs.remove(storage_id)  # type: ignore[union-attr]
                raise
    return {ld.table: len(ld.docs) for ld in loads}


def _number_here(store: Store, name: str) -> int | None:
    t = store.tables.get(name)
    return t.number if t is not None else None


def _numbers(zf: zipfile.ZipFile, tables: dict[str, _Table]) -> dict[str, int]:
    """Table (store) name → number from each ``_tables/documents.jsonl`` the snapshot has (the
    app's, and one per component); those entries leave ``tables``."""
    out: dict[str, int] = {}
    for key in [k for k in tables if k == "_tables" or k.endswith("/_tables")]:
        entry = tables.pop(key)
        prefix = key[: -len("_tables")]
        if entry.docs is None:
            continue
        for line in zf.read(entry.docs).decode("utf-8").splitlines():
            if line.strip():
                try:
                    row = loads_export(line)
                    out[prefix + str(row["name"])] = int(row["id"])
                except (ValueError, KeyError, TypeError) as e:
                    raise InvalidValueError(f"{entry.docs} has a bad line {line!r} "
                                            f"({e}).") from None
    return out


def _uniform(zf: zipfile.ZipFile, t: _Table) -> bool:
    """Whether the table's values are lossless export JSON (``"uniform"``); another generated
    schema (a shape) decodes by the no-schema rules; one that is not JSON is refused."""
    if t.schema is None:
        return False
    first = zf.read(t.schema).decode("utf-8", errors="replace").split("\n", 1)[0].strip()
    try:
        json.loads(first)
    except (ValueError, RecursionError):
        raise InvalidValueError(
            f"{t.schema} is not a generated schema (its first line is not JSON: "
            f"{first[:60]!r}). Convex writes '\"uniform\"' there; remove the file to import "
            "the table by the no-schema rules.") from None
    return first == '"uniform"'


def _check_path(path: object, what: str) -> None:
    if not isinstance(path, (str, os.PathLike)):
        raise InvalidValueError(f"{what}() takes the path of a .zip file (a str or a "
                                f"pathlib.Path); got {type(path).__name__} {path!r:.60}.")


def _place_files(zf: zipfile.ZipFile, files: FileStorage, blobs: dict[str, str],
                 loads: list[BulkLoad]) -> list[str]:
    """Copy each imported file's bytes next to the store before the commit (a failed import
    removes them again; a crash leaves them to the sweep when the store reopens)."""
    storage = next((ld for ld in loads if ld.table == STORAGE), None)
    if storage is None:
        return []
    placed: list[str] = []
    try:
        for doc in storage.docs:
            entry = blobs.get(doc["_id"])
            if entry is None:
                raise InvalidValueError(f"The snapshot lists file {doc['_id']!r} in "
                                        "_storage/documents.jsonl but holds no bytes for it.")
            writer = files.blobs.writer()
            with zf.open(entry) as f:
                while block := f.read(1 << 20):
                    writer.write(block)
            digest = writer.finish()
            if base64.b64encode(digest).decode("ascii") != doc["sha256"]:
                writer.abort()
                raise InvalidValueError(f"File {doc['_id']!r} in the snapshot does not match "
                                        "its sha256: the ZIP is damaged.")
            writer.place(doc["_id"])
            placed.append(doc["_id"])
    except BaseException:
        for storage_id in placed:
            files.blobs.remove(storage_id)
        raise
    return placed


__all__ = ["ConvexLabError", "export_zip", "import_zip"]
