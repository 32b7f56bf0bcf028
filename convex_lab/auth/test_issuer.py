"""``cl.TestIssuer()``: a local JWT issuer for notebooks and tests (docs/api.md).

::

    issuer = cl.TestIssuer()                       # a fresh RS256 key pair, in memory
    app.auth = {"providers": [issuer.provider]}    # a customJwt provider with its JWKS inline
    client = backend.client(token=issuer.token(subject="ada", name="Ada Lovelace"))

``provider`` is the dict Convex's ``auth.config.ts`` would hold: ``{"type": "customJwt",
"issuer", "jwks": "data:application/json;base64,...", "algorithm", "applicationID"}``.
``token(subject=..., expires_in=3600, **claims)`` signs a JWT with the header Convex requires
(``kid``, ``alg``, ``typ``) and the claims ``iss``, ``sub``, ``aud`` (the application ID), ``iat``
and ``exp``; keyword claims are added or override those (``exp=...`` for an expired token).
Nothing leaves the process: the private key is never written anywhere.
"""

from __future__ import annotations

import base64
import json
import secrets
import time
from typing import Any

from convex_lab.errors import ConvexLabError


class TestIssuer:
    """A signing key and the provider that trusts it (module docstring)."""

    __test__ = False  # not a pytest test class, despite its name

    def __init__(self, issuer: str = "https://convex-lab.test", *,
                 application_id: str | None = "convex-lab", algorithm: str = "RS256") -> None:
        from cryptography.hazmat.primitives.asymmetric import ec, rsa  # noqa: PLC0415 (on use)

        if algorithm not in ("RS256", "ES256"):
            raise ConvexLabError(f"TestIssuer signs with RS256 or ES256 (what Convex accepts); "
                                 f"got {algorithm!r}.", code="InvalidArgument")
        self.issuer = issuer
        self.application_id = application_id
        self.algorithm = algorithm
        self.kid = secrets.token_hex(8)
        self.private_key: Any = (rsa.generate_private_key(public_exponent=65537, key_size=2048)
                                 if algorithm == "RS256" else ec.generate_private_key(
                                     ec.SECP256R1()))

    @property
    def jwks(self) -> dict[str, Any]:
        """The public key as a JWKS document."""
        from jwt.algorithms import ECAlgorithm, RSAAlgorithm  # noqa: PLC0415 (on use)

        public = self.private_key.public_key()
        jwk = json.loads(RSAAlgorithm.to_jwk(public) if self.algorithm == "RS256"
                         else ECAlgorithm.to_jwk(public))
        jwk.update({"kid": self.kid, "alg": self.algorithm, "use": "sig"})
        return {"keys": [jwk]}

    @property
    def provider(self) -> dict[str, Any]:
        """A customJwt provider for ``app.auth = {"providers": [...]}``."""
        data = base64.b64encode(json.dumps(self.jwks).encode()).decode("ascii")
        out: dict[str, Any] = {"type": "customJwt", "issuer": self.issuer,
                               "jwks": f"data:application/json;base64,{data}",
                               "algorithm": self.algorithm}
        if self.application_id is not None:
            out["applicationID"] = self.application_id
        return out

    def token(self, subject: str = "user", *, expires_in: float = 3600.0,
              **claims: Any) -> str:
        """A signed JWT for ``subject`` (module docstring)."""
        import jwt  # noqa: PLC0415 (on use)

        now = int(time.time())
        payload: dict[str, Any] = {"iss": self.issuer, "sub": subject, "iat": now,
                                   "exp": now + int(expires_in)}
        if self.application_id is not None:
            payload["aud"] = self.application_id
        payload.update(claims)
        return jwt.encode(payload, self.private_key, algorithm=self.algorithm,
                          headers={"kid": self.kid, "typ": "JWT"})

    def __repr__(self) -> str:
        return f"<TestIssuer {self.issuer} ({self.algorithm}, kid {self.kid})>"
