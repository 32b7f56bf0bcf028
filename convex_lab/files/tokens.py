"""Upload tokens and file-URL signatures (reference §12).

* An upload token is ``<expiry ms>.<nonce>.<HMAC-SHA256>`` under a key made per backend: valid
  for one hour (Convex's ``STORE_FILE_AUTHORIZATION_VALIDITY``) on the backend's clock — a
  virtual clock advanced past the hour expires it — and **single use**: the first upload that
  completes with it consumes it (an upload that fails gives it back). Convex's own tokens are
  not enforced single-use; issue 11 asks for it here.
* A file URL carries ``sig(storage_id)``, an HMAC under a key stored with the files, so knowing a
  storage ID (often sent to clients inside documents) does not give its URL — as in Convex,
  where the URL holds a separate random UUID. URLs never expire; deleting the file revokes them.

Rejections are ``ConvexLabError`` s with Convex's codes (``StorageTokenInvalid``,
``StorageTokenExpired``) or ``StorageTokenUsed``; the server answers them with 401.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import threading
from collections.abc import Callable

from convex_lab.errors import ConvexLabError

VALIDITY_MS = 60 * 60 * 1000


def _mac(key: bytes, text: str, length: int = 16) -> str:
    digest = hmac.new(key, text.encode("ascii"), hashlib.sha256).digest()[:length]
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def url_signature(key: bytes, storage_id: str) -> str:
    """The signature a file URL carries for ``storage_id``."""
    return _mac(key, "url:" + storage_id)


def check_url_signature(key: bytes, storage_id: str, signature: str) -> bool:
    return hmac.compare_digest(url_signature(key, storage_id), signature)


class UploadTokens:
    """Issues and checks upload tokens (module docstring); thread-safe."""

    def __init__(self, now: Callable[[], float]) -> None:
        self._key = secrets.token_bytes(32)
        self._now = now
        self._lock = threading.Lock()
        self._spent: dict[str, float] = {}  # nonce -> expiry, kept until it expires
        self._in_flight: set[str] = set()

    def issue(self) -> str:
        expires = int(self._now()) + VALIDITY_MS
        payload = f"{expires}.{secrets.token_hex(12)}"
        return f"{payload}.{_mac(self._key, payload)}"

    def claim(self, token: str | None) -> str:
        """Check ``token`` and reserve it for one upload; returns its nonce for
        :meth:`spend` / :meth:`release`."""
        parts = token.split(".") if isinstance(token, str) else []
        if len(parts) != 3 or not parts[0].isdigit() or not hmac.compare_digest(
                _mac(self._key, f"{parts[0]}.{parts[1]}"), parts[2]):
            raise ConvexLabError(
                "Couldn't decode the StoreFileAuthorization token: it was not made by this "
                "backend (or by this run of it). Get a fresh upload URL from "
                "ctx.storage.generate_upload_url().", code="StorageTokenInvalid")
        expires, nonce = int(parts[0]), parts[1]
        now = self._now()
        if now >= expires:
            raise ConvexLabError(
                "Store File Authorization expired: an upload URL is valid for one hour. Get a "
                "fresh one from ctx.storage.generate_upload_url().", code="StorageTokenExpired")
        with self._lock:
            for spent, until in list(self._spent.items()):
                if until <= now:
                    del self._spent[spent]
            if nonce in self._spent or nonce in self._in_flight:
                raise ConvexLabError(
                    "This upload URL was already used: each one stores one file. Get a fresh "
                    "one from ctx.storage.generate_upload_url().", code="StorageTokenUsed")
            self._in_flight.add(nonce)
        return f"{expires}.{nonce}"

    def spend(self, claim: str) -> None:
        """The upload made with the claimed token succeeded: the token is used up."""
        expires, nonce = claim.split(".")
        with self._lock:
            self._in_flight.discard(nonce)
            self._spent[nonce] = float(expires)

    def release(self, claim: str) -> None:
        """The upload failed: the token may be used again (until it expires)."""
        _, nonce = claim.split(".")
        with self._lock:
            self._in_flight.discard(nonce)
