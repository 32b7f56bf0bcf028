"""Auth (reference §14): verify JWTs against an app's providers and turn them into Convex's
``UserIdentity``.

* ``providers.py`` — ``app.auth = {"providers": [...]}`` read and checked: OIDC ``{"domain",
  "applicationID"}`` and ``{"type": "customJwt", "issuer", "jwks", "algorithm",
  "applicationID"?}``.
* ``jwks.py`` — signing keys from a URL (or OIDC discovery), a ``data:`` URI or a file, cached.
* ``verify.py`` — :class:`~convex_lab.auth.verify.Authenticator`: one clear error per failure.
* ``identity.py`` — claims → identity fields, as Convex maps them.
* ``test_issuer.py`` — ``cl.TestIssuer()``: a local signing key for notebooks and tests.

Nothing here imports pyjwt until a token is verified or signed: ``import convex_lab`` stays light.
"""
