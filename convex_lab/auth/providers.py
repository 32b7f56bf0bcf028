"""``app.auth``: the providers of Convex's ``auth.config.ts`` (reference §14), read and checked.

::

    app.auth = {"providers": [
        {"domain": "https://my-tenant.auth0.com", "applicationID": "abc123"},        # OIDC
        {"type": "customJwt", "issuer": "https://issuer.example", "algorithm": "RS256",
         "jwks": "https://issuer.example/.well-known/jwks.json",                  # or data: / file
         "applicationID": "my-app"},                                               # optional
    ]}

A bad configuration raises ``ConvexLabError`` (code ``AuthConfigInvalid``) naming the provider
and the field to fix. Issuers are compared as Convex compares them: ``https://`` is assumed when
missing, and a trailing ``/`` is ignored.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from convex_lab.errors import ConvexLabError

CUSTOM_ALGORITHMS = ("RS256", "ES256")
OIDC_ALGORITHMS = ("RS256", "EdDSA")


def normalize_issuer(issuer: str) -> str:
    """``iss`` / ``domain`` / ``issuer`` as Convex compares them (``common/src/auth.rs``)."""
    with_protocol = issuer if issuer.startswith(("https://", "http://")) else f"https://{issuer}"
    return with_protocol.rstrip("/")


@dataclass(frozen=True)
class Provider:
    """One configured provider. ``jwks`` is ``None`` for OIDC (discovered from ``issuer``)."""

    kind: str  # "oidc" | "customJwt"
    issuer: str
    application_id: str | None
    algorithms: tuple[str, ...]
    jwks: str | None

    def matches_issuer(self, token_issuer: str) -> bool:
        return normalize_issuer(token_issuer) == normalize_issuer(self.issuer)

    def describe(self) -> str:
        if self.kind == "oidc":
            return f"OIDC(domain={self.issuer}, app_id={self.application_id})"
        return f"CustomJWT(issuer={self.issuer}, app_id={self.application_id or 'none'})"


def _fail(where: str, problem: str) -> ConvexLabError:
    place = f"app.auth {where}" if where else "app.auth"
    return ConvexLabError(
        f"{place}: {problem}. Providers are the dicts of Convex's auth.config.ts: "
        "{'domain': ..., 'applicationID': ...} (OIDC) or {'type': 'customJwt', 'issuer': ..., "
        "'jwks': URL | data: URI | file path, 'algorithm': 'RS256' | 'ES256', "
        "'applicationID': ... (optional)}.", code="AuthConfigInvalid")


def _text(provider: Mapping[str, Any], key: str, where: str, *, required: bool = True) -> Any:
    value = provider.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value:
        raise _fail(where, f"{key!r} must be a non-empty string, got {value!r}")
    return value


def parse_providers(config: Any) -> tuple[Provider, ...]:
    """``app.auth`` → its providers (``None`` or no providers: an empty tuple)."""
    if config is None:
        return ()
    if not isinstance(config, Mapping) or set(config) - {"providers"}:
        raise _fail("", f"must be a dict {{'providers': [...]}}; got {config!r}")
    entries = config.get("providers", [])
    if isinstance(entries, str | bytes) or not isinstance(entries, Sequence):
        raise _fail("['providers']", f"must be a list of provider dicts, got {entries!r}")
    out: list[Provider] = []
    for i, entry in enumerate(entries):
        where = f"provider {i}"
        if not isinstance(entry, Mapping):
            raise _fail(where, f"must be a dict, got {entry!r}")
        kind = entry.get("type")
        if kind is None:
            extra = set(entry) - {"domain", "applicationID"}
            if extra:
                raise _fail(where, f"unknown field(s) {sorted(extra)} for an OIDC provider "
                                   "(did you mean type='customJwt'?)")
            out.append(Provider("oidc", _text(entry, "domain", where),
                                _text(entry, "applicationID", where), OIDC_ALGORITHMS, None))
        elif kind == "customJwt":
            extra = set(entry) - {"type", "issuer", "jwks", "algorithm", "applicationID"}
            if extra:
                raise _fail(where, f"unknown field(s) {sorted(extra)} for a customJwt provider")
            algorithm = _text(entry, "algorithm", where)
            if algorithm not in CUSTOM_ALGORITHMS:
                raise _fail(where, f"algorithm {algorithm!r} is not supported: Convex accepts "
                                   f"{' or '.join(CUSTOM_ALGORITHMS)}")
            out.append(Provider("customJwt", _text(entry, "issuer", where),
                                _text(entry, "applicationID", where, required=False),
                                (algorithm,), _text(entry, "jwks", where)))
        else:
            raise _fail(where, f"unknown type {kind!r} (the only type is 'customJwt'; OIDC "
                               "providers have no type)")
    return tuple(out)
