"""Refusing SQL that is not a read: what keeps ``%%sql`` from writing files or changing the store.

Three layers, because DuckDB's statement type alone does not tell a read:
1. The statement type must be SELECT, EXPLAIN or MULTI. But any statement holding a PIVOT is
   MULTI, whatever it does (``COPY (PIVOT t ON x) TO 'f.csv'`` is MULTI), and EXPLAIN ANALYZE
   runs the statement it explains (``EXPLAIN ANALYZE COPY ... TO`` writes the file).
2. So the statement's own first word, after any EXPLAIN [ANALYZE] and WITH ... AS (...) prefix,
   must start a read (SELECT, FROM, VALUES, TABLE, DESCRIBE, SHOW, SUMMARIZE, PIVOT, UNPIVOT).
   DuckDB's tokenizer finds the words, so strings and comments cannot fool it.
3. A SELECT can still call table functions that do more than read: those are named below and
   refused wherever they are called. Below all three, the store's connections are made with
   extension autoloading off and the configuration locked (store/persist.py DUCKDB_CONFIG), and
   every query runs in a READ ONLY transaction on a private cursor.

:func:`check_read_only` raises :class:`~convex_lab.errors.SqlError` naming what is refused and
why; :func:`extension_needed` recognises DuckDB's "this needs an extension" errors, so that a
``https://`` path is explained instead of downloaded.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from convex_lab.errors import SqlError

# DuckDB statement types a read can have. DESCRIBE/SHOW/SUMMARIZE/VALUES/UNPIVOT parse as SELECT;
# PIVOT is MULTI (it may first declare an ENUM type, which a read-only transaction still allows).
# Not sufficient on its own: see _check_statement.
_READ_TYPES = frozenset({"SELECT", "EXPLAIN", "MULTI"})


_READ_STARTS = frozenset({"select", "from", "values", "table", "describe", "desc", "show",
                          "summarize", "pivot", "unpivot", "pivot_wider", "pivot_longer"})

_CHANGES = "it changes the database file or DuckDB's settings, which %%sql shares with the store"
_DENIED_FUNCTIONS = {
    "checkpoint": _CHANGES, "force_checkpoint": _CHANGES,
    "enable_logging": _CHANGES, "disable_logging": _CHANGES, "truncate_duckdb_logs": _CHANGES,
    "enable_profiling": _CHANGES, "disable_profiling": _CHANGES,
    "enable_profile": _CHANGES, "disable_profile": _CHANGES,
    "add_grammar_extension": _CHANGES, "remove_grammar_extension": _CHANGES,
    "register_external_resource_type": _CHANGES, "register_external_resource": _CHANGES,
    "create_external_resource": _CHANGES, "deregister_external_resource": _CHANGES,
    "destroy_external_resource": _CHANGES,
    "query": "it runs SQL given as a string, which these checks cannot see; write that SQL "
             "directly",
    "json_execute_serialized_sql": "it runs SQL given as a string, which these checks cannot "
                                   "see; write that SQL directly",
    "arrow_scan": "it reads Python memory at a raw address",
    "arrow_scan_dumb": "it reads Python memory at a raw address",
    "python_arrow_scan": "it reads Python memory at a raw address",
    "pandas_scan": "it reads Python memory at a raw address",
    "python_map_function": "it calls Python objects at raw addresses",
}

_FILES = "it writes or loads files"
_EXTENSIONS = ("it installs or loads a DuckDB extension: code downloaded from the network, "
               "which SQL over the store never runs")
_SETTINGS = ("it changes DuckDB's settings or runs a procedure, on the database that is the "
             "store of record")
_DATA = ("it changes data or tables; change data with a mutation, e.g. backend.mutation(fn, "
         "args) or %convex run")
_WHY_NOT = {
    "copy": f"{_FILES}; read a file with SELECT * FROM 'data.csv' instead",
    "export": _FILES, "import": _FILES,
    "attach": "it opens (and may create) another database file",
    "detach": "it changes which databases the store's connection sees",
    "use": "it changes which databases the store's connection sees",
    "install": _EXTENSIONS, "load": _EXTENSIONS,
    "set": _SETTINGS, "reset": _SETTINGS, "pragma": _SETTINGS, "call": _SETTINGS,
    "checkpoint": "it writes the database file", "vacuum": "it writes the database file",
    "analyze": "it writes the database file",
    "begin": "each query runs in a read-only transaction of its own",
    "start": "each query runs in a read-only transaction of its own",
    "commit": "each query runs in a read-only transaction of its own",
    "end": "each query runs in a read-only transaction of its own",
    "rollback": "each query runs in a read-only transaction of its own",
    "abort": "each query runs in a read-only transaction of its own",
    "prepare": "pass parameters with backend.sql(query, params) instead",
    "execute": "pass parameters with backend.sql(query, params) instead",
    "deallocate": "pass parameters with backend.sql(query, params) instead",
}

_READS = ("SQL here reads the store's tables at one snapshot, and may read local files: use "
          "SELECT (or WITH, FROM, VALUES, DESCRIBE, SHOW, SUMMARIZE, PIVOT, UNPIVOT, EXPLAIN)")


def _tokens(sql: str) -> list[tuple[str, str]]:
    """DuckDB's tokens of ``sql`` as ``(text, kind)``: comments dropped, each paren its own."""
    import duckdb  # noqa: PLC0415 (loaded by now)

    raw = duckdb.tokenize(sql)
    out: list[tuple[str, str]] = []
    for i, (start, kind) in enumerate(raw):
        end = raw[i + 1][0] if i + 1 < len(raw) else len(sql)
        text, name = sql[start:end].strip(), kind.name
        if name == "comment":
            continue
        if name == "operator":
            out += [(part, name) for part in re.findall(r"[()]|[^()\s]+", text)]
        else:
            out.append((text, name))
    return out


def _word(tokens: Sequence[tuple[str, str]], i: int) -> str:
    return tokens[i][0].lower() if i < len(tokens) and tokens[i][1] != "string_const" else ""


def _after_group(tokens: Sequence[tuple[str, str]], i: int) -> int:
    """The index after the parenthesised group opening at ``i`` (``len`` if unbalanced)."""
    depth = 0
    for j in range(i, len(tokens)):
        if _word(tokens, j) == "(":
            depth += 1
        elif _word(tokens, j) == ")":
            depth -= 1
            if depth == 0:
                return j + 1
    return len(tokens)


def _after_ctes(tokens: Sequence[tuple[str, str]], i: int, names: set[int]) -> int:
    """The index of the statement after ``WITH [RECURSIVE] name [(cols)] AS (...), ...``;
    ``len(tokens)`` if the list does not have that shape. Adds the CTE names' indexes to
    ``names``."""
    if _word(tokens, i) == "recursive":
        i += 1
    while True:
        names.add(i)
        i += 1
        if _word(tokens, i) == "(":  # column names
            i = _after_group(tokens, i)
        if _word(tokens, i) == "using" and _word(tokens, i + 1) == "key":  # USING KEY (cols)
            i = _after_group(tokens, i + 2)
        if _word(tokens, i) != "as":
            return len(tokens)
        i += 1
        if _word(tokens, i) == "not":
            i += 1
        if _word(tokens, i) == "materialized":
            i += 1
        if _word(tokens, i) != "(":
            return len(tokens)
        i = _after_group(tokens, i)
        if _word(tokens, i) != ",":
            return i
        i += 1


def _main_statement(tokens: Sequence[tuple[str, str]], names: set[int]) -> tuple[int, str]:
    """Where the statement proper starts, past EXPLAIN [ANALYZE] [(options)], WITH ... and
    opening parens, and what wraps it (for messages)."""
    i, wrapper = 0, ""
    if _word(tokens, 0) == "explain":
        i, wrapper = 1, "EXPLAIN"
        if _word(tokens, i) in ("analyze", "analyse"):
            i, wrapper = i + 1, "EXPLAIN ANALYZE"
        elif _word(tokens, i) == "(":
            i = _after_group(tokens, i)
    while _word(tokens, i) == "(":
        i += 1
    if _word(tokens, i) == "with":
        i = _after_ctes(tokens, i + 1, names)
        wrapper = wrapper or "WITH"
        while _word(tokens, i) == "(":
            i += 1
    return i, wrapper


# Statements named by two words, for messages (FORCE INSTALL x, UPDATE EXTENSIONS, ...).
_TWO_WORDS = {("force", "install"): _EXTENSIONS, ("update", "extensions"): _EXTENSIONS,
              ("export", "database"): _FILES, ("import", "database"): _FILES}


def _refuse_statement(word: str, wrapper: str = "", next_word: str = "") -> SqlError:
    why = _TWO_WORDS.get((word, next_word)) or _WHY_NOT.get(word, _DATA)
    if (word, next_word) in _TWO_WORDS:
        word = f"{word} {next_word}"
    word = word.upper() or "this"
    inside = ""
    if wrapper.startswith("EXPLAIN"):
        inside = (f", not even inside {wrapper}" + (" (which runs it)" if "ANALYZE" in wrapper
                                                    else ""))
    elif wrapper:
        inside = f", not even after {wrapper}"
    return SqlError(f"SQL here is read-only: {word} statements are not allowed{inside} ({why}). "
                    f"{_READS}.")


def _check_statement(kind: str, text: str) -> None:
    """Raise SqlError unless the statement ``text`` (of DuckDB type ``kind``) only reads."""
    tokens = _tokens(text)
    names: set[int] = set()
    start, wrapper = _main_statement(tokens, names)
    word = _word(tokens, start)
    if kind not in _READ_TYPES or word not in _READ_STARTS:
        if not word and kind in _READ_TYPES:
            raise SqlError(f"SQL here is read-only, and this statement could not be checked: "
                           f"{text.strip()[:80]!r}. {_READS}.")
        raise _refuse_statement(word or kind.lower(), wrapper, _word(tokens, start + 1))
    for i in range(len(tokens) - 1):
        text_i, token_kind = tokens[i]
        if (token_kind not in ("identifier", "keyword") or _word(tokens, i + 1) != "("
                or i in names or (i > 0 and _word(tokens, i - 1) == "as")):  # name(columns)
            continue
        name = text_i.strip('"').replace('""', '"').lower()
        why = _DENIED_FUNCTIONS.get(name)
        if why:
            raise SqlError(f"SQL here is read-only: {name}() is not allowed ({why}). "
                           f"{_READS}.")


def check_read_only(statements: Sequence[Any]) -> None:
    for statement in statements:
        try:
            kind = statement.type.name
        except ValueError:  # a type the Python API has no name for (e.g. UPDATE EXTENSIONS)
            kind = "UNKNOWN"
        _check_statement(kind, str(statement.query))


_EXTENSION = re.compile(r"requires the extension (\w+)|exists in the (\w+) extension|"
                        r"[Ee]xtension \"?(?:[^\"]*/)?(\w+?)(?:\.duckdb_extension)?\"? not found|"
                        r"extension \"?(\w+)\"? (?:is not loaded|to be loaded)")


def extension_needed(message: str) -> str | None:
    """The message for a query DuckDB refused because it needs an extension that is not loaded
    (autoloading is off, store/persist.py DUCKDB_CONFIG); ``None`` for other errors."""
    found = _EXTENSION.search(message)
    if found is None:
        return None
    name = next(g for g in found.groups() if g)
    first_line = message.strip().splitlines()[0]
    remote = (" Remote files (https://, s3://, ...) need httpfs: download the file and read "
              "the local copy, e.g. SELECT * FROM 'data.parquet'." if name == "httpfs" else "")
    return (f"This SQL needs the DuckDB extension {name!r}, which SQL over the store does not "
            f"install or load (that would download and run code): it reads the store's tables "
            f"and local files with DuckDB's built-in readers (CSV, Parquet, JSON).{remote} "
            f"(DuckDB: {first_line})")
