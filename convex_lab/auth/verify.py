"""Verifying a JWT against an app's providers (reference §14; ``authentication/src/lib.rs``).

Steps, each failing with its own message (``ConvexLabError``; code ``NoAuthProvider`` for an
unknown issuer, ``InvalidAuthHeader`` for the rest, as Convex's):

1. **Malformed** — not three base64url parts of JSON.
2. **Unknown issuer** — no provider's issuer (OIDC ``domain``) is the token's ``iss``.
3. **Wrong audience** — a provider with that issuer requires an ``applicationID`` that is not in
   the token's ``aud``.
4. **Wrong algorithm** — the header's ``alg`` is not the provider's (customJwt: its
   ``algorithm``; OIDC: RS256 or EdDSA). Checked before any key is used, so a token cannot pick
   its own verification (``none``, HS256 with a public key, ...).
5. **Missing kid** — Convex selects the key by ``kid``; a token without one is refused.
6. **Unknown kid** — no key of the provider's JWKS has that ``kid`` (after one refetch).
7. **Bad signature**, then **expired** (``exp``, 5 s leeway as Convex's), **not yet valid**
   (``nbf``/``iat`` in the future) and **missing claim** (``sub``, ``iss``, ``exp``; OIDC also
   ``aud``, ``iat``).

A verified token gives a :class:`VerifiedToken`: the identity (``identity.py``) and when it
expires. Times are the real clock's, as JWTs carry wall-clock seconds.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

from convex_lab.auth.identity import custom_jwt_identity, oidc_identity
from convex_lab.auth.jwks import JwksCache
from convex_lab.auth.providers import Provider, parse_providers
from convex_lab.errors import ConvexLabError

LEEWAY_S = 5


@dataclass(frozen=True)
class VerifiedToken:
    """A verified JWT: the caller's ``identity`` and ``expires_at`` (ms since the epoch)."""

    identity: dict[str, Any]
    expires_at: float
    provider: str

    def expired(self, now_ms: float | None = None) -> bool:
        now = time.time() * 1000.0 if now_ms is None else now_ms
        return now >= self.expires_at + LEEWAY_S * 1000


def auth_error(message: str, code: str = "InvalidAuthHeader") -> ConvexLabError:
    """The error for a token that does not authenticate (one place: see the module
    docstring)."""
    return ConvexLabError(message, code=code)


class Authenticator:
    """Verifies tokens for one ``app.auth`` configuration (parsed once, keys cached)."""

    def __init__(self, config: Any, jwks: JwksCache | None = None) -> None:
        self.providers: tuple[Provider, ...] = parse_providers(config)
        self._jwks = jwks if jwks is not None else JwksCache()

    def verify(self, token: Any) -> VerifiedToken:
        import jwt  # noqa: PLC0415 (pyjwt loads with the first token)

        if not isinstance(token, str) or not token:
            raise auth_error(f"A token is a JWT string; got {type(token).__name__}.")
        try:
            header = jwt.get_unverified_header(token)
            unverified = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError:
            raise auth_error(
                "Could not parse JWT payload. Check that the token is a valid JWT format with "
                "three base64-encoded parts separated by dots.") from None
        issuer = unverified.get("iss")
        if not isinstance(issuer, str) or not issuer:
            raise auth_error(
                "Missing issuer claim ('iss') in JWT payload. The JWT must include an 'iss' "
                "claim that matches one of your configured auth providers.")
        provider = self._provider_for(issuer, unverified.get("aud"))
        algorithm = header.get("alg")
        if algorithm not in provider.algorithms:
            raise auth_error(
                f"Wrong algorithm: the JWT is signed with {algorithm!r} but {provider.describe()} "
                f"accepts {' or '.join(provider.algorithms)}. Sign it with the provider's "
                "algorithm (or change the provider's 'algorithm').")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise auth_error(
                "Could not decode token. The JWT is missing a 'kid' (key ID) header: Convex picks "
                "the verification key by it. Sign the token with the kid of a key in the "
                "provider's JWKS.")
        source = provider.issuer if provider.kind == "oidc" else provider.jwks
        assert source is not None
        key = self._jwks.key(source, kid, oidc=provider.kind == "oidc")
        if key is None:
            raise auth_error(
                f"Could not decode token. The JWT's 'kid' (key ID) header is '{kid}', does this "
                f"key match any key in the provider's JWKS? ({provider.describe()})")
        required = ["exp", "iss", "sub"] + (["aud", "iat"] if provider.kind == "oidc" else [])
        try:
            claims = jwt.decode(
                token, key=key.key, algorithms=[algorithm], leeway=LEEWAY_S,
                audience=provider.application_id,
                options={"require": required, "verify_iss": False,
                         "verify_aud": provider.application_id is not None})
        except jwt.InvalidSignatureError:
            raise auth_error(
                "Invalid signature: the JWT was not signed by the key its 'kid' names in "
                f"{provider.describe()}'s JWKS (or it was altered).") from None
        except jwt.ExpiredSignatureError:
            raise auth_error(
                f"The JWT expired (its 'exp' is {unverified.get('exp')}, now is "
                f"{int(time.time())}). Get a fresh token and call set_auth() again.") from None
        except jwt.ImmatureSignatureError:
            raise auth_error("The JWT is not valid yet: its 'nbf' or 'iat' is in the future. "
                             "Check the issuer's clock.") from None
        except jwt.MissingRequiredClaimError as e:
            raise auth_error(f"The JWT has no '{e.claim}' claim, which Convex requires "
                             f"({', '.join(required)}).") from None
        except jwt.InvalidAudienceError:
            raise auth_error(f"Invalid audience: {provider.application_id} not in "
                             f"{_audiences(unverified.get('aud'))}") from None
        except jwt.PyJWTError as e:
            raise auth_error(f"Could not validate token: {e}") from None
        if not isinstance(claims.get("sub"), str) or not claims["sub"]:
            raise auth_error("The JWT's 'sub' claim must be a non-empty string.")
        identity = (oidc_identity(claims) if provider.kind == "oidc"
                    else custom_jwt_identity(claims))
        return VerifiedToken(identity, float(claims["exp"]) * 1000.0, provider.describe())

    def _provider_for(self, issuer: str, audience: Any) -> Provider:
        """The first provider for ``issuer`` whose ``applicationID`` (if any) is an audience."""
        audiences = _audiences(audience)
        same_issuer = [p for p in self.providers if p.matches_issuer(issuer)]
        for provider in same_issuer:
            if provider.application_id is None or provider.application_id in audiences:
                return provider
        if same_issuer:
            wanted = same_issuer[0].application_id
            raise auth_error(f"Invalid audience: {wanted} not in {audiences}. The JWT's 'aud' "
                             "must contain the provider's applicationID.")
        if not self.providers:
            raise auth_error(
                "No auth provider found matching the given token (no providers configured). "
                "Set app.auth = {'providers': [...]} (cl.TestIssuer().provider for a local "
                "one).", code="NoAuthProvider")
        configured = ", ".join(p.describe() for p in self.providers)
        raise auth_error(
            f"No auth provider found matching the given token: its issuer is {issuer!r}. Check "
            f"that your JWT's issuer and audience match one of your configured providers: "
            f"[{configured}]", code="NoAuthProvider")


def _audiences(audience: Any) -> list[str]:
    if isinstance(audience, str):
        return [audience]
    if isinstance(audience, list):
        return [a for a in audience if isinstance(a, str)]
    return []


class AuthenticatorCache:
    """One :class:`Authenticator` per ``app.auth`` value (rebuilt when it changes), sharing
    the JWKS cache; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._jwks = JwksCache()
        self._current: tuple[str, Authenticator] | None = None

    def get(self, config: Any) -> Authenticator:
        fingerprint = repr(config)
        with self._lock:
            current = self._current
            if current is not None and current[0] == fingerprint:
                return current[1]
        made = Authenticator(config, self._jwks)
        with self._lock:
            self._current = (fingerprint, made)
        return made
