"""A full-text search index over one table's latest committed documents (reference §10).

Structure (held under the store's lock, maintained by ``TableData.apply`` and ``bulk_load``):

* **Slots.** Every indexed document version gets a slot number; per slot: its document ID, its
  ``_creationTime``, its length as tantivy's one-byte field-norm code, whether it is alive, and one
  integer code per filter field (equal codes = equal Convex values; a missing field has a code of
  its own, so ``eq(f, UNDEFINED)`` works). Only documents whose search field is a string are
  indexed (the others can match no term).
* **Postings.** Per term, the slots holding it and the term's frequency there, as numpy arrays
  grown by doubling, plus the term's live document frequency. A sorted list of terms answers
  prefix expansion.
* **Updates** kill the old version's slot (its postings stay until compaction, masked by
  ``alive``) and add the new version in a fresh slot; a write that changes neither the search
  field nor a filter field keeps its slot (a filter-only change rewrites the codes in place).
  When dead slots outnumber live ones the index compacts itself.

Scoring is tantivy's BM25 exactly as Convex's search uses it (k1 = 1.2, b = 0.75, one-byte
field norms, float32, prefix expansions at half weight): the statistics are those of the
snapshot being searched (``search`` takes the transaction's overlay of documents whose version
differs from the latest), so a transaction sees its own writes and nothing committed after it.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any, Final

import numpy as np
from sortedcontainers import SortedList

from convex_lab.store.keys import get_path
from convex_lab.store.text_tokens import tokenize
from convex_lab.values import sort_key

K1: Final = np.float32(1.2)
B: Final = np.float32(0.75)
MAX_CANDIDATES: Final = 1024
MAX_PREFIX_MATCHES: Final = 16
_COMPACT_MIN: Final = 1024

# tantivy's FIELD_NORMS_TABLE (src/fieldnorm/code.rs): a document length is stored as the index
# of the largest entry not above it, and scored as that entry.
_NORMS = [
    *range(41), 42, 44, 46, 48, 50, 52, 54, 56, 60, 64, 68, 72, 76, 80, 84, 88, 96, 104, 112,
    120, 128, 136, 144, 152, 168, 184, 200, 216, 232, 248, 264, 280, 312, 344, 376, 408, 440,
    472, 504, 536, 600, 664, 728, 792, 856, 920, 984, 1048, 1176, 1304, 1432, 1560, 1688, 1816,
    1944, 2072, 2328, 2584, 2840, 3096, 3352, 3608, 3864, 4120, 4632, 5144, 5656, 6168, 6680,
    7192, 7704, 8216, 9240, 10264, 11288, 12312, 13336, 14360, 15384, 16408, 18456, 20504,
    22552, 24600, 26648, 28696, 30744, 32792, 36888, 40984, 45080, 49176, 53272, 57368, 61464,
    65560, 73752, 81944, 90136, 98328, 106520, 114712, 122904, 131096, 147480, 163864, 180248,
    196632, 213016, 229400, 245784, 262168, 294936, 327704, 360472, 393240, 426008, 458776,
    491544, 524312, 589848, 655384, 720920, 786456, 851992, 917528, 983064, 1048600, 1179672,
    1310744, 1441816, 1572888, 1703960, 1835032, 1966104, 2097176, 2359320, 2621464, 2883608,
    3145752, 3407896, 3670040, 3932184, 4194328, 4718616, 5242904, 5767192, 6291480, 6815768,
    7340056, 7864344, 8388632, 9437208, 10485784, 11534360, 12582936, 13631512, 14680088,
    15728664, 16777240, 18874392, 20971544, 23068696, 25165848, 27263000, 29360152, 31457304,
    33554456, 37748760, 41943064, 46137368, 50331672, 54525976, 58720280, 62914584, 67108888,
    75497496, 83886104, 92274712, 100663320, 109051928, 117440536, 125829144, 134217752,
    150994968, 167772184, 184549400, 201326616, 218103832, 234881048, 251658264, 268435480,
    301989912, 335544344, 369098776, 402653208, 436207640, 469762072, 503316504, 536870936,
    603979800, 671088664, 738197528, 805306392, 872415256, 939524120, 1006632984, 1073741848,
    1207959576, 1342177304, 1476395032, 1610612760, 1744830488, 1879048216, 2013265944,
]
_NORM_VALUES: Final = np.array(_NORMS, dtype=np.float32)


def norm_id(length: int) -> int:
    """tantivy's ``fieldnorm_to_id``: the one-byte code of a document length."""
    return bisect_right(_NORMS, length) - 1


def _grow(a: np.ndarray[Any, Any], need: int) -> np.ndarray[Any, Any]:
    out = np.empty(max(need, 2 * len(a), 8), dtype=a.dtype)
    out[: len(a)] = a
    return out


class _Postings:
    """One term's postings: ``slots[:n]``, ``tfs[:n]`` and the field-norm codes of those slots
    ``norms[:n]``; ``df`` counts live documents. ``part`` caches the term-frequency factor of
    BM25 per posting for one average document length (recomputed after any write)."""

    __slots__ = ("_part", "_part_key", "df", "n", "norms", "slots", "tfs")

    def __init__(self, slots: np.ndarray[Any, Any] | None = None,
                 tfs: np.ndarray[Any, Any] | None = None,
                 norms: np.ndarray[Any, Any] | None = None) -> None:
        self.slots = slots if slots is not None else np.empty(2, dtype=np.int32)
        self.tfs = tfs if tfs is not None else np.empty(2, dtype=np.float32)
        self.norms = norms if norms is not None else np.empty(2, dtype=np.uint8)
        self.n = 0 if slots is None else len(slots)
        self.df = self.n
        self._part: np.ndarray[Any, Any] | None = None
        self._part_key: tuple[float, int] | None = None

    def add(self, slot: int, tf: int, norm: int) -> None:
        n = self.n
        if n == len(self.slots):
            self.slots = _grow(self.slots, n + 1)
            self.tfs = _grow(self.tfs, n + 1)
            self.norms = _grow(self.norms, n + 1)
        self.slots[n] = slot
        self.tfs[n] = tf
        self.norms[n] = norm
        self.n = n + 1
        self.df += 1

    def part(self, avg: float, cache: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
        """``tf / (tf + k1 * (1 - b + b * dl / avgdl))`` per posting (tantivy's order of
        operations), for the average length ``avg`` whose table is ``cache``."""
        key = (avg, self.n)
        if self._part_key != key or self._part is None:
            tf = self.tfs[: self.n]
            self._part = tf / (tf + cache[self.norms[: self.n]])
            self._part_key = key
        return self._part

    def replace(self, keep: np.ndarray[Any, Any], remap: np.ndarray[Any, Any]) -> None:
        """Keep the postings ``keep`` selects, with slots renumbered by ``remap``."""
        n = self.n
        self.slots = remap[self.slots[:n][keep]]
        self.tfs = self.tfs[:n][keep]
        self.norms = self.norms[:n][keep]
        self.n = len(self.slots)
        self._part = self._part_key = None


class TextQuery:
    """A compiled search: ``terms`` as ``(token, is_prefix)`` and filters as ``(position of
    the filter field, sort key of the value)``."""

    __slots__ = ("filters", "terms")

    def __init__(self, terms: list[tuple[str, bool]], filters: list[tuple[int, Any]]) -> None:
        self.terms = terms
        self.filters = filters


class TextIndex:
    """One search index of one table (see module docstring)."""

    def __init__(self, name: str, search_field: str, filter_fields: Iterable[str]) -> None:
        self.name = name
        self.field = search_field
        self.filter_fields = tuple(filter_fields)
        self._reset()

    def _reset(self) -> None:
        self.n = 0
        self.ids: list[str] = []
        self.ct = np.empty(8, dtype=np.float64)
        self.norm = np.empty(8, dtype=np.uint8)
        self.alive = np.zeros(8, dtype=np.bool_)
        self.codes = [np.empty(8, dtype=np.int32) for _ in self.filter_fields]
        self.value_codes: list[dict[Any, int]] = [{} for _ in self.filter_fields]
        self.slot_of: dict[str, int] = {}
        self.postings: dict[str, _Postings] = {}
        self.terms = SortedList()
        self.num_docs = 0
        self.num_tokens = 0
        self.dead = 0

    # Reading documents ------------------------------------------------------------------------
    def text_of(self, doc: Mapping[str, Any]) -> str | None:
        """The searched text of a document, or ``None`` if its search field is not a string."""
        value = get_path(doc, self.field)  # type: ignore[arg-type]
        return value if type(value) is str else None

    def filter_keys(self, doc: Mapping[str, Any]) -> tuple[Any, ...]:
        """Sort keys of the document's filter-field values (``UNDEFINED`` when missing)."""
        return tuple(sort_key(get_path(doc, f)) for f in self.filter_fields)  # type: ignore[arg-type]

    def _code(self, position: int, key: Any) -> int:
        codes = self.value_codes[position]
        code = codes.get(key)
        if code is None:
            code = codes[key] = len(codes)
        return code

    # Maintenance ------------------------------------------------------------------------------
    def apply(self, doc_id: str, old: dict[str, Any] | None, new: dict[str, Any] | None) -> None:
        """Follow one committed write ``old -> new`` of ``doc_id``."""
        slot = self.slot_of.get(doc_id)
        if slot is not None and new is not None and old is not None:
            text = self.text_of(new)
            if text is not None and text == self.text_of(old):
                keys = self.filter_keys(new)
                if keys != self.filter_keys(old):  # same text, other filter values: in place
                    for i, key in enumerate(keys):
                        self.codes[i][slot] = self._code(i, key)
                return
        if slot is not None:
            assert old is not None
            self._kill(doc_id, slot, old)
        if new is not None:
            text = self.text_of(new)
            if text is not None:
                self._add(doc_id, new["_creationTime"], text, self.filter_keys(new))
        if self.dead > _COMPACT_MIN and self.dead > self.num_docs:
            self.compact()

    def _kill(self, doc_id: str, slot: int, old: dict[str, Any]) -> None:
        del self.slot_of[doc_id]
        self.alive[slot] = False
        tokens = tokenize(self.text_of(old) or "")
        postings = self.postings
        for term in set(tokens):
            postings[term].df -= 1
        self.num_docs -= 1
        self.num_tokens -= len(tokens)
        self.dead += 1

    def _ensure(self, need: int) -> None:
        if need > len(self.ct):
            self.ct = _grow(self.ct, need)
            self.norm = _grow(self.norm, need)
            alive = np.zeros(len(self.ct), dtype=np.bool_)
            alive[: self.n] = self.alive[: self.n]
            self.alive = alive
            self.codes = [_grow(c, need) for c in self.codes]

    def _add(self, doc_id: str, creation_time: float, text: str, keys: tuple[Any, ...]) -> None:
        slot = self.n
        self._ensure(slot + 1)
        tokens = tokenize(text)
        self.ids.append(doc_id)
        self.ct[slot] = creation_time
        self.norm[slot] = norm_id(len(tokens))
        self.alive[slot] = True
        for i, key in enumerate(keys):
            self.codes[i][slot] = self._code(i, key)
        postings = self.postings
        norm = self.norm[slot]
        for term, tf in Counter(tokens).items():
            p = postings.get(term)
            if p is None:
                p = postings[term] = _Postings()
                self.terms.add(term)
            p.add(slot, tf, norm)
        self.slot_of[doc_id] = slot
        self.n = slot + 1
        self.num_docs += 1
        self.num_tokens += len(tokens)

    def bulk_load(self, docs: list[dict[str, Any]]) -> None:
        """Index many new documents (in creation order) at once: postings are grouped with one
        sort instead of an append per posting."""
        rows = [(d, t) for d in docs if (t := self.text_of(d)) is not None]
        if not rows:
            return
        start = self.n
        self._ensure(start + len(rows))
        vocab: dict[str, int] = {}
        term_ids: list[int] = []
        tfs: list[int] = []
        slots: list[int] = []
        lengths: list[int] = []
        setdefault = vocab.setdefault
        for i, (_, text) in enumerate(rows, start):
            tokens = tokenize(text)
            lengths.append(len(tokens))
            counts = Counter(tokens)
            term_ids += [setdefault(t, len(vocab)) for t in counts]
            tfs += counts.values()
            slots += [i] * len(counts)
        end = start + len(rows)
        self.ids += [d["_id"] for d, _ in rows]
        self.ct[start:end] = [d["_creationTime"] for d, _ in rows]
        self.norm[start:end] = np.searchsorted(_NORMS, lengths, side="right") - 1
        norm = self.norm
        self.alive[start:end] = True
        for p, f in enumerate(self.filter_fields):
            self.codes[p][start:end] = [self._code(p, sort_key(get_path(d, f))) for d, _ in rows]
        for i, (d, _) in enumerate(rows, start):
            self.slot_of[d["_id"]] = i
        tid = np.array(term_ids, dtype=np.int64)
        order = np.argsort(tid, kind="stable")  # slots stay ascending within a term
        slot_arr = np.array(slots, dtype=np.int32)[order]
        tf_arr = np.array(tfs, dtype=np.float32)[order]
        bounds = np.searchsorted(tid[order], np.arange(len(vocab) + 1))
        postings = self.postings
        new_terms: list[str] = []
        for term, term_id in vocab.items():
            lo, hi = bounds[term_id], bounds[term_id + 1]
            known = postings.get(term)
            if known is None:
                slots_of = slot_arr[lo:hi].copy()
                postings[term] = _Postings(slots_of, tf_arr[lo:hi].copy(), norm[slots_of])
                new_terms.append(term)
            else:
                for slot, tf in zip(slot_arr[lo:hi].tolist(), tf_arr[lo:hi].tolist(),
                                    strict=True):
                    known.add(slot, int(tf), int(norm[slot]))
        self.terms.update(new_terms)
        self.n = end
        self.num_docs += len(rows)
        self.num_tokens += sum(lengths)

    def compact(self) -> None:
        """Drop dead slots and their postings (slots are renumbered in order)."""
        n = self.n
        keep = np.flatnonzero(self.alive[:n])
        remap = np.full(n, -1, dtype=np.int32)
        remap[keep] = np.arange(len(keep), dtype=np.int32)
        alive = self.alive
        gone = []
        for term, p in self.postings.items():
            p.replace(alive[p.slots[: p.n]], remap)
            if p.n == 0:
                gone.append(term)
        for term in gone:
            del self.postings[term]
            self.terms.remove(term)
        self.ids = [self.ids[i] for i in keep.tolist()]
        self.ct = self.ct[keep]
        self.norm = self.norm[keep]
        self.alive = np.ones(len(keep), dtype=np.bool_)
        self.codes = [c[keep] for c in self.codes]
        self.slot_of = {doc_id: i for i, doc_id in enumerate(self.ids)}
        self.n = len(keep)
        self.dead = 0

    # Searching --------------------------------------------------------------------------------
    def search(self, query: TextQuery, overlay: Mapping[str, dict[str, Any] | None] | None,
               latest: Mapping[str, dict[str, Any]], limit: int,
               ) -> list[tuple[tuple[float, float, str], dict[str, Any]]]:
        """The best ``limit`` (≤ 1024) matches at a snapshot, best first, as ``(key, document)``
        with key ``(-score, -_creationTime, _id)``.

        ``latest`` is the table's latest documents; ``overlay`` maps IDs whose version at the
        snapshot differs from the latest to that version (``None``: absent), see
        ``Transaction.overlay``. Callers hold the store lock.
        """
        if not query.terms:
            return []
        overlay = overlay or {}
        # Statistics of the snapshot: the latest ones, minus the latest versions the overlay
        # replaces, plus the overlay's versions.
        num_docs, num_tokens = self.num_docs, self.num_tokens
        df_delta: Counter[str] = Counter()
        extra: list[tuple[dict[str, Any], Counter[str], int]] = []
        excluded: list[int] = []
        for doc_id, version in overlay.items():
            slot = self.slot_of.get(doc_id)
            if slot is not None:
                excluded.append(slot)
                tokens = tokenize(self.text_of(latest[doc_id]) or "")
                num_docs -= 1
                num_tokens -= len(tokens)
                df_delta.subtract(set(tokens))
            if version is not None:
                text = self.text_of(version)
                if text is not None:
                    tokens = tokenize(text)
                    counts = Counter(tokens)
                    num_docs += 1
                    num_tokens += len(tokens)
                    df_delta.update(counts.keys())
                    extra.append((version, counts, len(tokens)))
        weights = self._weights(query, df_delta)
        if not weights or num_docs <= 0:
            return []
        avg = np.float32(num_tokens) / np.float32(num_docs)
        cache = K1 * (np.float32(1.0) - B + B * _NORM_VALUES / avg)
        scored = {t: (w * _idf(self._df(t, df_delta), num_docs)).astype(np.float32)
                  for t, w in weights.items()}
        out = self._search_latest(query, scored, (float(avg), cache), excluded, limit)
        if extra:
            out += self._score_extra(query, scored, (float(avg), cache), extra)
            out.sort(key=_first)
            del out[limit:]
        return [(key, latest[key[2]] if doc is None else doc) for key, doc in out]

    def _df(self, term: str, delta: Mapping[str, int]) -> int:
        p = self.postings.get(term)
        return (p.df if p is not None else 0) + delta.get(term, 0)

    def _weights(self, query: TextQuery, delta: Counter[str]) -> dict[str, np.float32]:
        """The matched terms and their boosts: the exact terms (1.0) and up to 16 terms of the
        snapshot that start with the last, prefix term (0.5, unless the term itself)."""
        weights: dict[str, np.float32] = {}
        for token, prefix in query.terms:
            if self._df(token, delta) > 0:
                weights[token] = np.float32(1.0)
            if not prefix:
                continue
            found = [t for t in delta if t.startswith(token) and self._df(t, delta) > 0]
            indexed = 0
            for t in self.terms.irange(minimum=token):
                if not t.startswith(token) or indexed >= MAX_PREFIX_MATCHES:
                    break
                if self._df(t, delta) > 0:
                    found.append(t)
                    indexed += 1
            for t in sorted(set(found))[:MAX_PREFIX_MATCHES]:
                weights.setdefault(t, np.float32(0.5))
        return weights

    def _search_latest(self, query: TextQuery, scored: dict[str, np.float32],
                       norms: tuple[float, np.ndarray[Any, Any]], excluded: list[int],
                       limit: int,
                       ) -> list[tuple[tuple[float, float, str], dict[str, Any] | None]]:
        """The best ``limit`` live, unexcluded slots matching ``query`` in the index."""
        parts = []
        for term, weight in scored.items():
            p = self.postings.get(term)
            if p is not None and p.n:
                parts.append((p.slots[: p.n], weight * p.part(*norms)))
        if not parts or limit <= 0:
            return []
        mask = self._mask(query) if query.filters or self.dead or excluded else None
        if mask is not None and len(mask) == 0:  # a filter value no document has
            return []
        if len(parts) == 1:
            cand, scores = parts[0]
            if mask is not None:
                scores = scores * mask[cand]
        else:
            acc = np.zeros(self.n, dtype=np.float32)
            for slots, s in parts:
                acc[slots] += s  # slots are distinct within one term's postings
            if mask is not None:
                acc *= mask
            cand, scores = None, acc
        if excluded:
            if cand is None:
                scores[excluded] = 0
            else:
                scores = np.where(np.isin(cand, excluded), np.float32(0), scores)
        top = _top_positions(scores, limit)
        picked = top if cand is None else cand[top]
        scores = scores[top]
        cts = self.ct[picked]
        order = np.lexsort((-cts, -scores))[:limit]
        ids = self.ids
        return [((-float(s), -float(c), ids[i]), None)
                for i, s, c in zip(picked[order].tolist(), scores[order].tolist(),
                                   cts[order].tolist(), strict=True)]

    def _mask(self, query: TextQuery) -> np.ndarray[Any, Any]:
        """Per slot, 1.0 where a match may count (alive and passing the filters), else 0.0;
        empty when a filter value was never seen."""
        n = self.n
        keep = self.alive[:n].copy()
        for position, key in query.filters:
            code = self.value_codes[position].get(key)
            if code is None:
                return np.zeros(0, dtype=np.float32)
            keep &= self.codes[position][:n] == code
        out: np.ndarray[Any, Any] = keep.astype(np.float32)
        return out

    def _score_extra(self, query: TextQuery, scored: dict[str, np.float32],
                     norms: tuple[float, np.ndarray[Any, Any]],
                     extra: list[tuple[dict[str, Any], Counter[str], int]],
                     ) -> list[tuple[tuple[float, float, str], dict[str, Any] | None]]:
        out: list[tuple[tuple[float, float, str], dict[str, Any] | None]] = []
        for doc, counts, length in extra:
            keys = self.filter_keys(doc)
            if any(keys[position] != key for position, key in query.filters):
                continue
            norm = norms[1][norm_id(length)]
            score = np.float32(0.0)
            matched = False
            for term, weight in scored.items():
                tf = counts.get(term)
                if tf:
                    matched = True
                    score += weight * (np.float32(tf) / (np.float32(tf) + norm))
            if matched:
                out.append(((-float(score), -float(doc["_creationTime"]), doc["_id"]), doc))
        return out


def _top_positions(scores: np.ndarray[Any, Any], k: int) -> np.ndarray[Any, Any]:
    """Positions of the ``k`` largest positive scores, plus any tied with the last of them.

    Exact, without a selection over every score: the ``k``-th largest of a strided sample is
    a lower bound of the ``k``-th largest overall (the sample is a subset), so only the scores
    at or above it need a closer look — a few percent of them.
    """
    m = len(scores)
    stride = m // (32 * k)
    bound = np.float32(0)
    if stride > 1:
        sample = scores[::stride]
        bound = np.partition(sample, len(sample) - k)[len(sample) - k]
    pos = np.flatnonzero(scores >= bound) if bound > 0 else np.flatnonzero(scores > 0)
    if len(pos) > k:
        near = scores[pos]
        kth = np.partition(near, len(near) - k)[len(near) - k]
        pos = pos[near >= kth]
    return pos


def _idf(df: int, num_docs: int) -> np.float32:
    """tantivy's ``idf``, times ``(1 + k1)`` as ``Bm25Weight`` keeps it."""
    x = np.float32(num_docs - df + 0.5) / np.float32(df + 0.5)
    # Rust's f32::ln is libm's correctly rounded logf; numpy's float32 log may be an ulp off.
    idf = np.float32(math.log(float(np.float32(1.0) + x)))
    return idf * (np.float32(1.0) + K1)  # type: ignore[no-any-return]


def _first(item: tuple[Any, Any]) -> Any:
    return item[0]
