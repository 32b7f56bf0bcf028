"""Documents as the store of record writes them: ``export_json`` text without the system fields.

``_id`` and ``_creationTime`` are columns of their own in every document table, so a document's
text holds only its user fields; :func:`encode_document` and :func:`decode_document` are inverses
given those two columns.
"""

from __future__ import annotations

from itertools import islice, repeat
from typing import Any

from convex_lab.values import Int64, dumps_export, loads_export


def _fast_encoder() -> Any:
    import msgspec  # noqa: PLC0415

    def hook(obj: Any) -> Any:
        if type(obj) is Int64:
            return int(obj)
        raise TypeError(f"{obj!r} is not a canonical Convex value")

    return msgspec.json.Encoder(enc_hook=hook)


_encoder: Any = None


def encode_document(doc: dict[str, Any], special: bool) -> str:
    """The user fields of a document as ``export_json`` text (``_id`` and ``_creationTime`` are
    columns of their own, so they are cut from the text; see :func:`decode_document`).

    msgspec writes ordinary documents, about 9 times faster than the stdlib; it would write
    NaN/±inf as null and bytes as bare base64, so documents holding those (``special``, found
    while measuring them) take the lossless stdlib path. Documents always start with ``_id``
    then ``_creationTime`` (every write path builds them so), which makes the cut a slice.
    """
    global _encoder  # built once, lazily: msgspec loads only with a backend
    if special:
        text = dumps_export(doc)
    else:
        if _encoder is None:
            _encoder = _fast_encoder()
        text = _encoder.encode(doc).decode()
    # '{"_id":"<id>","_creationTime":<number>,...}': the number ends at the next ',' or '}'.
    start = 26 + len(doc["_id"])
    comma = text.find(",", start)
    return "{}" if comma < 0 else "{" + text[comma + 1 :]


def encode_documents(docs: list[dict[str, Any]]) -> list[str]:
    """:func:`encode_document` of many ordinary documents (no ``special`` one) at once: the user
    fields are cut with C-level iterators (they follow ``_id`` and ``_creationTime``) and
    msgspec writes every document in one call, one per line (a newline inside a string is
    escaped, so the lines split cleanly)."""
    global _encoder
    if not docs:
        return []
    if _encoder is None:
        _encoder = _fast_encoder()
    users = map(dict, map(islice, map(dict.items, docs), repeat(2), repeat(None)))
    return _encoder.encode_lines(users).decode().split("\n")[:-1]  # type: ignore[no-any-return]


def decode_document(doc_id: str, creation_time: float, text: str) -> dict[str, Any]:
    """Inverse of :func:`encode_document`, given the two system columns.

    Raises ``ValueError`` or ``TypeError`` when ``text`` is not ``export_json`` text of an object
    without ``_id``/``_creationTime`` fields: a damaged row.
    """
    fields = loads_export(text)
    if type(fields) is not dict:
        raise ValueError(f"it is JSON but not an object ({text[:40]!r})")
    doc = {"_id": doc_id, "_creationTime": creation_time}
    doc.update(fields)
    if len(doc) != len(fields) + 2:  # cheaper than two lookups per document
        raise ValueError("its text has an _id or _creationTime field of its own (those are "
                         "columns)")
    return doc


def quote_table(name: str) -> str:
    # Table names are Convex identifiers ([A-Za-z0-9_]), or "<component>/<table>" of two (a file's
    # catalog is checked for that when it is opened), so quoting cannot be escaped out of.
    return '_convex."' + name + '"'

