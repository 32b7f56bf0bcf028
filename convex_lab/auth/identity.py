"""Verified claims → Convex's ``UserIdentity`` (reference §14; ``keybroker/src/broker.rs``).

Always ``tokenIdentifier`` (``"<iss>|<sub>"``), ``subject`` and ``issuer``. Then:

* **OIDC** tokens: the standard claims, renamed — ``name``, ``given_name`` → ``givenName``,
  ``family_name`` → ``familyName``, ``nickname``, ``preferred_username`` →
  ``preferredUsername``, ``profile`` → ``profileUrl``, ``picture`` → ``pictureUrl``, ``website``
  → ``websiteUrl``, ``email``, ``email_verified`` → ``emailVerified``, ``gender``,
  ``birthdate`` → ``birthday``, ``zoneinfo`` → ``timezone``, ``locale`` → ``language``,
  ``phone_number`` → ``phoneNumber``, ``phone_number_verified`` → ``phoneNumberVerified``,
  ``address`` (its ``formatted`` text), ``updated_at`` → ``updatedAt`` (RFC 3339) — and every
  other claim as it is (not flattened), except the token's own bookkeeping (``aud``, ``exp``,
  ``iat``, ``auth_time``, ``nonce``, ``azp``, ...) and ``jti``, ``nbf``, ``fva``.
* **customJwt** tokens: every claim but the registered ones (``iss``, ``sub``, ``aud``,
  ``exp``, ``nbf``, ``iat``, ``jti``) and ``fva``, kept under its own name; nested objects
  flatten to dotted keys (``{"properties": {"email": x}}`` → ``identity["properties.email"]``).

Claim values become Convex values (JSON numbers are float64). A claim that is not one (a key
with non-ASCII characters, say) is left out rather than failing the sign-in.
"""

from __future__ import annotations

import contextlib
from datetime import datetime, timezone
from typing import Any, Final

from convex_lab.errors import ConvexLabError
from convex_lab.values import convert

OIDC_RENAMES: Final = {
    "name": "name", "given_name": "givenName", "family_name": "familyName",
    "nickname": "nickname", "preferred_username": "preferredUsername",
    "profile": "profileUrl", "picture": "pictureUrl", "website": "websiteUrl",
    "email": "email", "email_verified": "emailVerified", "gender": "gender",
    "birthdate": "birthday", "zoneinfo": "timezone", "locale": "language",
    "phone_number": "phoneNumber", "phone_number_verified": "phoneNumberVerified",
}
OIDC_OWN: Final = frozenset({
    "iss", "sub", "aud", "exp", "iat", "auth_time", "nonce", "acr", "amr", "azp", "at_hash",
    "c_hash", "address", "updated_at", "jti", "nbf", "fva", *OIDC_RENAMES})
REGISTERED: Final = frozenset({"iss", "sub", "aud", "exp", "nbf", "iat", "jti", "fva"})
_BASE: Final = ("tokenIdentifier", "subject", "issuer")


def _flatten(claims: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in claims.items():
        if isinstance(value, dict):
            out.update(_flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def _base(claims: dict[str, Any]) -> dict[str, Any]:
    issuer, subject = claims["iss"], claims["sub"]
    return {"tokenIdentifier": f"{issuer}|{subject}", "subject": subject, "issuer": issuer}


def _add(identity: dict[str, Any], name: str, value: Any) -> None:
    if name in _BASE:
        return  # never lets a claim stand in for the identity's own fields
    with contextlib.suppress(ConvexLabError):  # not a Convex value: left out (docstring)
        identity[name] = convert({name: value})[name]


def custom_jwt_identity(claims: dict[str, Any]) -> dict[str, Any]:
    identity = _base(claims)
    custom = {k: v for k, v in claims.items() if k not in REGISTERED}
    for name, value in _flatten(custom).items():
        _add(identity, name, value)
    return identity


def oidc_identity(claims: dict[str, Any]) -> dict[str, Any]:
    identity = _base(claims)
    for claim, field in OIDC_RENAMES.items():
        value = claims.get(claim)
        if value is None:
            continue
        if field in ("emailVerified", "phoneNumberVerified"):
            if isinstance(value, bool):
                identity[field] = value
            elif value in ("true", "false"):  # some providers send the text
                identity[field] = value == "true"
            continue
        if isinstance(value, str):
            identity[field] = value
    address = claims.get("address")
    if isinstance(address, dict) and isinstance(address.get("formatted"), str):
        identity["address"] = address["formatted"]
    updated = claims.get("updated_at")
    if isinstance(updated, int | float) and not isinstance(updated, bool):
        identity["updatedAt"] = datetime.fromtimestamp(updated, tz=timezone.utc).isoformat()
    for name, value in claims.items():
        if name not in OIDC_OWN:
            _add(identity, name, value)
    return identity
