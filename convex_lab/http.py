"""``cl.Request`` and ``cl.Response``: what an HTTP action receives and returns (docs/api.md).

The shapes follow the Fetch API that Convex's HTTP actions use (reference §13), in Python:

* :class:`Request` — ``method`` (upper case), ``url`` (absolute), ``path``, ``query`` (a dict of
  the first value of each query parameter; ``query_list`` has every value), ``headers``
  (:class:`Headers`, case-insensitive), ``body`` (bytes), ``text()`` (UTF-8) and ``json()``.
* :class:`Response` — ``Response(body=b"", status=200, headers=None)``: ``body`` is bytes, a
  ``str`` (sent as UTF-8, with ``content-type: text/plain;charset=UTF-8`` unless a content type
  is given, as Fetch does) or ``None``; ``headers`` a dict or a list of ``(name, value)`` pairs
  (repeat a name for several ``Set-Cookie`` s). Read it back with ``status``, ``headers``,
  ``body``, ``text()``, ``json()``. ``Response.from_json(data, status=200, headers=None)`` is
  Fetch's ``Response.json(...)``.

Both are plain data: the loopback server and ``backend.fetch`` build and read them, handlers never
touch a socket. Invalid values (a status outside 200 to 599, a header name that is not a token, a
header value with a line break) raise ``ValueError`` naming the fix, so a bad response fails
in the handler rather than on the wire.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Mapping
from typing import Any
from urllib.parse import parse_qsl, urlsplit

HeadersInit = Mapping[str, str] | Iterable[tuple[str, str]] | None

_TOKEN = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")


class Headers(Mapping[str, str]):
    """Case-insensitive HTTP headers that keep repeated names (Fetch's ``Headers``).

    ``headers["content-type"]`` and ``headers.get("Content-Type")`` find the same header; a
    repeated name reads as its values joined with ``", "`` (``get_all`` gives them apart).
    Iteration yields lower-case names, once each.
    """

    __slots__ = ("_items",)

    def __init__(self, init: HeadersInit = None) -> None:
        self._items: list[tuple[str, str]] = []
        if init is None:
            return
        pairs = init.items() if isinstance(init, Mapping) else init
        for pair in pairs:
            try:
                name, value = pair
            except (TypeError, ValueError):
                raise ValueError(
                    f"headers must be a dict or a list of (name, value) pairs; got {pair!r} "
                    "in it.") from None
            self.append(name, value)

    def append(self, name: Any, value: Any) -> None:
        """Add a header, keeping any earlier one of the same name."""
        if not isinstance(name, str) or not _TOKEN.match(name):
            raise ValueError(f"{name!r} is not a valid HTTP header name (letters, digits and "
                             "!#$%&'*+-.^_`|~ only).")
        if not isinstance(value, str):
            value = str(value)
        if "\r" in value or "\n" in value or "\0" in value:
            raise ValueError(f"The value of header {name!r} contains a line break or NUL: "
                             "HTTP header values are one line.")
        self._items.append((name.lower(), value.strip()))

    def set(self, name: str, value: str) -> None:
        """Replace every header called ``name`` by one with ``value``."""
        self.delete(name)
        self.append(name, value)

    def delete(self, name: str) -> None:
        key = name.lower()
        self._items = [(k, v) for k, v in self._items if k != key]

    def get_all(self, name: str) -> list[str]:
        key = name.lower()
        return [v for k, v in self._items if k == key]

    def items_list(self) -> list[tuple[str, str]]:
        """Every ``(name, value)`` pair in order, repeated names included."""
        return list(self._items)

    def __getitem__(self, name: str) -> str:
        values = self.get_all(name)
        if not values:
            raise KeyError(name)
        return ", ".join(values)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and any(k == name.lower() for k, _ in self._items)

    def __iter__(self) -> Iterator[str]:
        return iter(dict.fromkeys(k for k, _ in self._items))

    def __len__(self) -> int:
        return len(dict.fromkeys(k for k, _ in self._items))

    def __repr__(self) -> str:
        return f"Headers({self._items!r})"


def _decode_json(body: bytes, what: str) -> Any:
    try:
        return json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"The {what} body is not JSON ({e}); read it with .text() or .body.") \
            from None


class Request:
    """An HTTP request as an HTTP action handler receives it (module docstring)."""

    __slots__ = ("body", "headers", "method", "path", "query", "query_list", "url")

    def __init__(self, method: str, url: str, *, headers: HeadersInit = None,
                 body: bytes | str | None = None) -> None:
        self.method = method.upper()
        self.url = url
        parts = urlsplit(url)
        self.path = parts.path or "/"
        self.query_list: list[tuple[str, str]] = parse_qsl(parts.query, keep_blank_values=True)
        self.query: dict[str, str] = {}
        for key, value in self.query_list:
            self.query.setdefault(key, value)  # the first value, as URLSearchParams.get
        self.headers = headers if isinstance(headers, Headers) else Headers(headers)
        self.body = _as_bytes(body, "Request")

    def text(self) -> str:
        """The body decoded as UTF-8 (invalid bytes become U+FFFD, as Fetch's ``text()``)."""
        return self.body.decode("utf-8", errors="replace")

    def json(self) -> Any:
        """The body parsed as JSON (``ValueError`` if it is not)."""
        return _decode_json(self.body, "request")

    def __repr__(self) -> str:
        return f"<Request {self.method} {self.url} ({len(self.body)} bytes)>"


class Response:
    """What an HTTP action returns, and what ``backend.fetch`` gives back (module docstring)."""

    __slots__ = ("body", "headers", "status")

    def __init__(self, body: bytes | str | None = b"", status: Any = 200,
                 headers: HeadersInit = None) -> None:
        if isinstance(status, bool) or not isinstance(status, int) or not 200 <= status <= 599:
            raise ValueError(f"Response status must be an int from 200 to 599; got {status!r}.")
        self.status = status
        self.headers = Headers(headers) if not isinstance(headers, Headers) else headers
        if isinstance(body, str) and "content-type" not in self.headers:
            self.headers.append("content-type", "text/plain;charset=UTF-8")
        self.body = _as_bytes(body, "Response")

    @classmethod
    def from_json(cls, data: Any, status: int = 200, headers: HeadersInit = None) -> Response:
        """A JSON response (Fetch's ``Response.json(data)``): ``content-type: application/json``
        unless ``headers`` give one."""
        out = cls(json.dumps(data, separators=(",", ":")).encode("utf-8"), status, headers)
        if "content-type" not in out.headers:
            out.headers.append("content-type", "application/json")
        return out

    @property
    def ok(self) -> bool:
        """Whether the status is 2xx (Fetch's ``response.ok``)."""
        return 200 <= self.status < 300

    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")

    def json(self) -> Any:
        return _decode_json(self.body, "response")

    def __repr__(self) -> str:
        kind = self.headers.get("content-type", "no content-type")
        return f"<Response {self.status} ({len(self.body)} bytes, {kind})>"


def _as_bytes(body: Any, what: str) -> bytes:
    if body is None:
        return b""
    if isinstance(body, bytes):
        return body
    if isinstance(body, str):
        return body.encode("utf-8")
    if isinstance(body, bytearray | memoryview):
        return bytes(body)
    raise TypeError(f"A {what} body is bytes, str or None; got {type(body).__name__}. For JSON "
                    "use cl.Response.from_json(data) (or json.dumps it).")
