"""Signing keys (JWKS) from where a provider says, cached.

Sources:

* an ``http(s)://`` URL — fetched (10 s timeout; the response must be JSON, as Convex requires:
  ``application/json`` or ``application/jwk-set+json``) and kept 10 minutes;
* an OIDC ``domain`` — ``<domain>/.well-known/openid-configuration`` names the ``jwks_uri``;
* a ``data:`` URI (``data:application/json;base64,...`` or percent-encoded) — parsed once;
* a file path — read again when the file changes.

A token whose ``kid`` is not in the cached keys makes one refetch (keys rotate), at most once per
30 seconds per source. Failures are ``ConvexLabError`` s (code ``InvalidAuthHeader``) naming the
source and the fix.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from convex_lab.errors import ConvexLabError

URL_TTL_S = 600.0
REFETCH_AFTER_S = 30.0
TIMEOUT_S = 10.0
_JSON_TYPES = ("application/json", "application/jwk-set+json")


def _error(message: str) -> ConvexLabError:
    return ConvexLabError(message, code="InvalidAuthHeader")


def _fetch_json(url: str, what: str) -> Any:
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT_S) as response:
            content_type = response.headers.get_content_type()
            body = response.read()
    except urllib.error.HTTPError as e:
        raise _error(f"Could not fetch {what} from URL '{url}': HTTP {e.code} {e.reason}. Check "
                     "that the URL is correct and accessible.") from None
    except (urllib.error.URLError, OSError) as e:
        reason = getattr(e, "reason", e)
        raise _error(f"Could not fetch {what} from URL '{url}': {reason}. Check that the URL is "
                     "correct and accessible.") from None
    if content_type not in _JSON_TYPES:
        raise _error(f"Invalid Content-Type '{content_type}' when fetching {what} from '{url}'. "
                     "Expected 'application/json' or 'application/jwk-set+json'.")
    try:
        return json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise _error(f"Invalid {what} response body from '{url}': not valid JSON.") from None


def _data_uri(uri: str) -> Any:
    header, sep, payload = uri.partition(",")
    if not sep:
        raise _error("Invalid JWKS data URL: no ',' before the data. Check that the data URL "
                     "is properly formatted and contains valid base64-encoded JSON.")
    try:
        raw = (base64.b64decode(payload, validate=False) if header.endswith(";base64")
               else urllib.parse.unquote_to_bytes(payload))
        return json.loads(raw)
    except (binascii.Error, ValueError):
        raise _error("Invalid JWKS data URL. Check that the data URL is properly formatted and "
                     "contains valid base64-encoded JSON.") from None


def _file(path: str) -> Any:
    try:
        with open(os.path.expanduser(path), "rb") as f:
            return json.loads(f.read())
    except OSError as e:
        raise _error(f"Could not read the JWKS file {path!r}: {e.strerror or e}. Give a URL, "
                     "a data: URI or an existing file.") from None
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise _error(f"The JWKS file {path!r} is not JSON.") from None


def _keys_by_kid(document: Any, source: str) -> dict[str, Any]:
    """``kid -> PyJWK`` of a JWKS document (keys without a ``kid`` cannot be selected)."""
    import jwt  # noqa: PLC0415 (pyjwt loads with the first token)

    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise _error(f"Invalid JWKS from {source}: expected {{\"keys\": [...]}}.")
    out: dict[str, Any] = {}
    for entry in document["keys"]:
        if not isinstance(entry, dict) or not isinstance(entry.get("kid"), str):
            continue
        try:
            out[entry["kid"]] = jwt.PyJWK(entry)
        except (jwt.PyJWKError, jwt.InvalidKeyError, ValueError, TypeError):
            continue  # a key type this library cannot use: the token's kid will not match it
    return out


class JwksCache:
    """Keys per source (module docstring); thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        # source -> (fetched at, file mtime or None, kid -> key)
        self._entries: dict[str, tuple[float, Any, dict[str, Any]]] = {}
        self._misses: dict[str, float] = {}  # source -> when an unknown kid last refetched it

    def key(self, source: str, kid: str, *, oidc: bool = False) -> Any | None:
        """The ``PyJWK`` for ``kid`` from ``source`` (a JWKS location, or an OIDC domain when
        ``oidc``), or ``None`` if the source has no such key even after a refetch."""
        keys = self._keys(source, oidc, force=False)
        found = keys.get(kid)
        if found is None:
            now = time.monotonic()
            with self._lock:
                last = self._misses.get(source)
                allowed = last is None or now - last >= REFETCH_AFTER_S
                if allowed:
                    self._misses[source] = now
            if allowed:
                found = self._keys(source, oidc, force=True).get(kid)
        return found

    def _keys(self, source: str, oidc: bool, *, force: bool) -> dict[str, Any]:
        now = time.monotonic()
        is_url = oidc or source.startswith(("http://", "https://"))
        tag: Any = None
        if not is_url and not source.startswith("data:"):
            try:
                tag = os.stat(os.path.expanduser(source)).st_mtime_ns
            except OSError:
                tag = None
        with self._lock:
            cached = self._entries.get(source)
        if cached is not None and not force:
            at, cached_tag, keys = cached
            fresh = (now - at < URL_TTL_S) if is_url else cached_tag == tag
            if fresh:
                return keys
        if oidc:
            discovery = _fetch_json(source.rstrip("/") + "/.well-known/openid-configuration",
                                    "the OpenID configuration")
            jwks_uri = discovery.get("jwks_uri") if isinstance(discovery, dict) else None
            if not isinstance(jwks_uri, str):
                raise _error(f"Auth provider discovery of {source} failed: its OpenID "
                             "configuration has no jwks_uri.")
            document = _fetch_json(jwks_uri, "JWKS")
        elif is_url:
            document = _fetch_json(source, "JWKS")
        elif source.startswith("data:"):
            document = _data_uri(source)
        else:
            document = _file(source)
        keys = _keys_by_kid(document, source if not source.startswith("data:") else "data: URI")
        with self._lock:
            self._entries[source] = (now, tag, keys)
        return keys
