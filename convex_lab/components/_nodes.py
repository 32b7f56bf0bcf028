"""How an aggregate tree node is stored: its document's fields, and a decode cache.

A node (``_btree``) is parallel lists — a leaf's ``keys``, ``ids``, ``sums``; an internal node's
``children``, ``seps``, ``sepIds``, ``counts``, ``sums`` (the last two ``None`` on a lazy root).
Its document stores them in three packed fields, because a write costs per value it holds
(about 0.7 µs per array element: validation, sizing) and decoding dozens of JSON numbers per
read is what a call would otherwise spend most of its time on:

* ``nums`` (bytes): the float lists as little-endian float64 — ``sums`` of a leaf, ``counts``
  then ``sums`` of an internal node that is not a lazy root — followed by the keys (leaf) or
  separators (internal) when every one of them is a float (the common case: scores, times).
* ``data`` (string): the keys or separators in Convex's export JSON (``values.dumps_export``,
  lossless for every Convex value) when they are not all floats, else ``""``.
* ``ids`` (string): the item IDs (leaf) or the children then the separator IDs (internal),
  each preceded by ``\\x1f``; a list holding a string with ``\\x1f`` in it is stored as JSON
  instead (it starts with ``[``).
* plus ``leaf``, ``size``, ``count``/``sum`` (the subtree's totals; absent on a lazy root) and
  ``parent`` (the root's ID, on the root's children only).

Decoding is cached per ``(data, ids, nums)`` value objects (the store hands the same value
objects out until the node changes, so a lookup is a cached hash and identity checks); writers
add what they wrote (``remember``), so the next call finds the nodes this one changed.
"""

from __future__ import annotations

import json
import sys
from array import array
from typing import Any, Final

from convex_lab.values import dumps_export, loads_export, sort_key

LEAF: Final = ("keys", "ids", "sums")
INTERNAL: Final = ("children", "seps", "sepIds", "counts", "sums")
_SEP: Final = "\x1f"
_BIG_ENDIAN: Final = sys.byteorder == "big"

# (data, ids, nums) -> [lists in LEAF/INTERNAL order, separators' sort keys or None]. Read-only
# entries (writers copy). The sort keys (so a reader bisects in C) are computed when an internal
# node is read a second time, not for nodes read once. Bounded: cleared when full.
_DECODED: dict[tuple[str, str, bytes], list[Any]] = {}
_DECODED_MAX: Final = 4_096  # an entry holds at most a few KB: bounded memory


def _floats(values: list[float]) -> bytes:
    packed = array("d", values)
    if _BIG_ENDIAN:
        packed.byteswap()
    return packed.tobytes()


def _unfloats(raw: bytes) -> list[float]:
    packed = array("d", raw)
    if _BIG_ENDIAN:
        packed.byteswap()
    return packed.tolist()


def _strs(values: list[str]) -> str:
    if not values:
        return ""
    text = _SEP + _SEP.join(values)
    if text.count(_SEP) != len(values):  # a string holds the separator itself
        return json.dumps(values)
    return text


def _unstrs(text: str) -> list[str]:
    if text.startswith("["):
        out: list[str] = json.loads(text)
        return out
    return text.split(_SEP)[1:]


def encode(node: dict[str, Any]) -> dict[str, Any]:
    """A node as its document's fields (module docstring)."""
    leaf = node["leaf"]
    ordered = node["keys"] if leaf else node["seps"]
    as_floats = not ordered or set(map(type, ordered)) == {float}
    if leaf:
        size = len(node["keys"])
        nums = list(node["sums"])
        strs = node["ids"]
    else:
        size = len(node["children"])
        nums = [] if node["counts"] is None else [*node["counts"], *node["sums"]]
        strs = [*node["children"], *node["sepIds"]]
    out: dict[str, Any] = {"leaf": leaf, "size": float(size),
                           "data": "" if as_floats else dumps_export(ordered),
                           "ids": _strs(strs), "nums": _floats(nums + ordered if as_floats
                                                               else nums)}
    if leaf:
        out["count"], out["sum"] = float(size), float(sum(node["sums"]))
    elif node["counts"] is not None:
        out["count"], out["sum"] = float(sum(node["counts"])), float(sum(node["sums"]))
    if node.get("parent") is not None:
        out["parent"] = node["parent"]
    return out


def _lists(doc: dict[str, Any]) -> list[Any]:
    """A node document's lists, in ``LEAF`` / ``INTERNAL`` order."""
    size = int(doc["size"])
    nums = _unfloats(doc["nums"])
    strs = _unstrs(doc["ids"])
    data = doc["data"]
    if doc["leaf"]:
        keys = nums[size:] if not data else loads_export(data)
        return [keys, strs, nums[:size]]
    lazy = "count" not in doc
    seps = nums[0 if lazy else 2 * size:] if not data else loads_export(data)
    counts = None if lazy else nums[:size]
    sums = None if lazy else nums[size:2 * size]
    return [strs[:size], seps, strs[size:], counts, sums]


def decode(doc: dict[str, Any], *, copy: bool = False) -> dict[str, Any]:
    """A node document as the lists the tree works on (plus its ``_id`` and ``parent``, and
    ``sks`` — the separators' sort keys — when cached). The lists are shared with the decode
    cache unless ``copy``: only a writer may change them, and a writer asks for copies."""
    leaf = doc["leaf"]
    key = (doc["data"], doc["ids"], doc["nums"])
    entry = _DECODED.get(key)
    if entry is None:
        entry = _remember(key, _lists(doc))
    elif not (leaf or copy) and entry[1] is None:  # read again: worth the separators' keys
        entry[1] = [sort_key(sep) for sep in entry[0][1]]
    arrays: list[Any] = entry[0]
    if copy:  # a writer's private lists
        arrays = [None if a is None else list(a) for a in arrays]
    node: dict[str, Any] = dict(zip(LEAF if leaf else INTERNAL, arrays, strict=True))
    if not (leaf or copy) and entry[1] is not None:
        node["sks"] = entry[1]
    node["leaf"] = leaf
    node["_id"] = doc["_id"]
    node["parent"] = doc.get("parent")
    return node


def remember(doc: dict[str, Any], node: dict[str, Any]) -> None:
    """``doc`` (from :func:`encode`) was just written for ``node``: cache its decoding."""
    names = LEAF if node["leaf"] else INTERNAL
    _remember((doc["data"], doc["ids"], doc["nums"]),
              [None if node[n] is None else list(node[n]) for n in names])


def _remember(key: tuple[str, str, bytes], arrays: list[Any]) -> list[Any]:
    if len(_DECODED) >= _DECODED_MAX:
        _DECODED.clear()
    entry = _DECODED[key] = [arrays, None]
    return entry


def empty_root() -> dict[str, Any]:
    return encode({"leaf": True, "keys": [], "ids": [], "sums": []})
