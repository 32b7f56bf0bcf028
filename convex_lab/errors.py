"""Errors raised by convex_lab, kept in three distinct families.

::

    Exception
    ├── ConvexError                      thrown by user code on purpose; carries ``.data``
    └── ConvexLabError                   everything convex_lab itself raises about a call
        ├── ValidationError              a value does not match a validator (Convex's text)
        │   ├── ArgumentValidationError  "ArgumentValidationError: ..." — a function's args
        │   ├── ReturnsValidationError   "ReturnsValidationError: ..." — a function's return value
        │   └── SchemaValidationError    a document does not match its table's schema
        ├── InvalidValueError            not a Convex value (type, size, nesting, field names)
        ├── InvalidIdError               a string that is not a document ID of the expected table
        ├── InvalidIndexRangeError       a bad ``with_index`` range expression
        ├── EvalError                    a filter expression that cannot be evaluated
        │   └── FilterTruthValueError    ``bool()`` of a filter expression (also a TypeError)
        ├── InvalidCursorError           a pagination cursor from another query
        ├── NonexistentDocumentError     patch/replace/delete of a missing document
        ├── LimitExceededError           a per-transaction limit (TooManyDocumentsRead, ...)
        ├── OptimisticConcurrencyControlFailure   kept conflicting after its retries
        ├── SchemaError                  a bad schema, or one that existing data breaks
        │   └── InvalidValidatorError    ``v.array(5)``, ``v.id(3)``: not a validator (TypeError)
        ├── FileInUseError               a DuckDB file another open backend already holds
        ├── PersistenceError             the store of record (DuckDB) failed to write
        │   └── StoreOpenError           a DuckDB file that cannot be opened as a store (damaged,
        │       │                        not DuckDB, newer DuckDB, bad path); nothing written
        │       └── StoreLockedError     ... because another process (or DuckDB connection)
        │                                holds it (also a FileInUseError)
        ├── SqlError                     %%sql / backend.sql(): not a read, or DuckDB failed
        ├── ServerError                  a function's own error as a client receives it
        ├── BackendClosedError           a call on a backend after close()
        ├── InvalidCronError             a bad cron registration
        ├── ProtocolError                a malformed request from a widget's front-end
        ├── BundleMissingError           the widget front-end has not been built
        └── FunctionError                unknown function, wrong kind, wrong context, ...

    BaseException
    └── store.transaction.Conflict       OCC retry signal; ``except Exception`` can't swallow it

Every message names the problem and, where one exists, the fix. Error names and texts follow
Convex's own (reference: convex-semantics.md §15) so a Convex doc or forum answer still applies.
"""

from __future__ import annotations

from typing import Any


class ConvexError(Exception):
    """An application error thrown on purpose by a function, as Convex's ``ConvexError``.

    ``data`` is any Convex value and reaches the caller unchanged (never redacted). The message is
    ``data`` itself when it is a string, else its JSON rendering. A mutation that raises it commits
    nothing.
    """

    def __init__(self, data: Any = None) -> None:
        self.data = data
        if isinstance(data, str):
            message = data
        else:
            from convex_lab.values import format_value  # noqa: PLC0415 (cycle: values imports errors)

            message = format_value(data)
        super().__init__(message)

    def __repr__(self) -> str:
        return f"ConvexError({self.data!r})"


class ConvexLabError(Exception):
    """Base of every error convex_lab raises about a call (not user ``ConvexError``s).

    ``code`` is Convex's short error name where it has one (``"TooManyDocumentsRead"``,
    ``"InvalidCursor"``, ...); ``str(error)`` is the full human message.
    """

    code: str = "Error"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code


class ValidationError(ConvexLabError):
    """A value does not match a validator. ``str()`` is Convex's ValidationError text."""

    code = "ValidationError"


class ArgumentValidationError(ValidationError):
    code = "ArgumentValidationError"


class ReturnsValidationError(ValidationError):
    code = "ReturnsValidationError"


class SchemaValidationError(ValidationError):
    code = "SchemaValidationError"


class InvalidValueError(ConvexLabError, ValueError):
    """Not a Convex value: unsupported type, too large, too nested, bad field name."""

    code = "InvalidValue"


class InvalidIdError(ConvexLabError, ValueError):
    code = "InvalidId"


class InvalidIndexRangeError(ConvexLabError):
    code = "InvalidIndexRange"


class EvalError(ConvexLabError):
    code = "EvalError"


class FilterTruthValueError(EvalError, TypeError):
    """``bool()`` of a filter expression: Python's ``and``/``or``/``not`` would silently drop a
    condition. A ``TypeError`` too, as Python code expects from an object without a truth value."""


class InvalidCursorError(ConvexLabError):
    """A cursor that does not belong to this query. ``data`` mirrors Convex's error payload."""

    code = "InvalidCursor"

    @property
    def data(self) -> dict[str, object]:
        return {"isConvexSystemError": True, "paginationError": "InvalidCursor"}


class NonexistentDocumentError(ConvexLabError):
    code = "NonexistentDocument"


class LimitExceededError(ConvexLabError):
    """A Convex per-transaction or per-value limit; ``code`` is Convex's name for it."""

    code = "LimitExceeded"


class OptimisticConcurrencyControlFailure(ConvexLabError):  # noqa: N818 (Convex's name)
    code = "OptimisticConcurrencyControlFailure"


class SchemaError(ConvexLabError):
    code = "SchemaError"


class InvalidValidatorError(SchemaError, TypeError):
    """A validator built from something that is not one (``v.array(5)``, ``v.id(3)``,
    ``args=[...]``). A ``TypeError`` too, as for any argument of the wrong type."""

    code = "InvalidValidator"


class FunctionError(ConvexLabError):
    code = "FunctionError"


class InvalidTableError(ConvexLabError):
    code = "InvalidTable"


class FileInUseError(ConvexLabError):
    """A DuckDB file that another open backend in this process (or another process) holds."""

    code = "FileInUse"


class PersistenceError(ConvexLabError):
    """The store of record (DuckDB) failed; writing stops so that memory and disk agree.

    Also importable as ``convex_lab.store.persist.PersistenceError`` (where it used to live).
    """

    code = "StorageError"


class StoreOpenError(PersistenceError):
    """A DuckDB file could not be opened as a convex_lab store, and was left untouched.

    Raised by ``cl.Backend(path)`` (and ``Store(path)``) before anything is written to the file,
    with DuckDB's connection already closed, so the file can be repaired, copied or reopened at
    once. ``str(error)`` names the file, what is wrong (DuckDB's own message after it, when DuckDB
    reported the problem) and what can be done. Attributes: ``path`` (absolute), ``reason`` (a
    short key: ``"corrupt"``, ``"locked"``, ``"bad_row"``, ... see ``store/persist.py``) and
    ``duckdb_message`` (``None`` when convex_lab found the problem itself).
    """

    def __init__(self, message: str, *, path: str, reason: str,
                 duckdb_message: str | None = None) -> None:
        super().__init__(message)
        self.path = path
        self.reason = reason
        self.duckdb_message = duckdb_message


class StoreLockedError(StoreOpenError, FileInUseError):
    """The file is held by another process (DuckDB lets one process at a time open a file;
    ``reason == "locked"``, the message names its PID) or by another DuckDB connection in this
    process made with other settings (``reason == "in_use"``)."""

    code = "FileInUse"


class SqlError(ConvexLabError):
    """A ``%%sql`` / ``backend.sql()`` query was rejected (not a read, see
    ``convex_lab/interop/sql_guard.py``) or failed; also importable as
    ``convex_lab.interop.sql.SqlError``."""

    code = "SqlError"


class ServerError(ConvexLabError):
    """What a client receives when a function fails with an error of its own (not a
    ``ConvexError``): the message only (``"Uncaught ValueError: ..."``), or Convex's redacted
    ``"[Request ID: …] Server Error"`` when the backend redacts errors."""

    code = "ServerError"


CLOSED_MESSAGE = "This backend is closed. Make a new one: cl.Backend(...)."


class BackendClosedError(ConvexLabError):
    """A call on a backend after ``close()``."""

    code = "BackendClosed"


class InvalidCronError(ConvexLabError, ValueError):
    """A bad cron registration: identifier, schedule, cron string or arguments."""

    code = "InvalidCron"


class ProtocolError(ConvexLabError):
    """A malformed request from a widget's front-end (unknown type, missing or wrong field)."""

    code = "ProtocolError"


class BundleMissingError(ConvexLabError, RuntimeError):
    """The widget front-end (``convex_lab/static/widget.js``) has not been built."""

    code = "BundleMissing"


class UnknownTableWarning(UserWarning):
    """``ctx.db.query(name)`` of a table that is neither in the store nor in the schema: the
    query returns nothing (as in Convex), which is usually a misspelt name. A warning, not an
    error (Convex answers such a query with nothing); ``warnings.simplefilter("error",
    UnknownTableWarning)`` turns it into one. Also importable from
    ``convex_lab.store.database``."""
