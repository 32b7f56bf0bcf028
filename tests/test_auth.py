"""Auth (reference §14): providers, verification failures, identity mapping, clients with tokens,
``Authorization: Bearer`` on HTTP actions, JWKS sources and caching."""

from __future__ import annotations

import base64
import json
import re
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import jwt
import pytest

import convex_lab as cl
from convex_lab.errors import ConvexLabError


def identity_app(*providers: dict[str, Any]) -> cl.App:
    app = cl.App(auth={"providers": list(providers)})

    @app.query(name="whoami")
    def whoami(ctx: Any) -> Any:
        return ctx.auth.get_user_identity()

    @app.http_action
    def me(ctx: Any, request: cl.Request) -> cl.Response:
        try:
            return cl.Response.from_json({"identity": ctx.auth.get_user_identity()})
        except ConvexLabError as e:
            return cl.Response.from_json({"error": str(e), "code": e.code}, status=401)

    app.http = cl.HttpRouter()
    app.http.route(path="/me", method="GET", handler=me)
    return app


@pytest.fixture(scope="module")
def issuer() -> cl.TestIssuer:
    return cl.TestIssuer()


@pytest.fixture
def backend(issuer: cl.TestIssuer) -> Iterator[cl.Backend]:
    with cl.Backend(app=identity_app(issuer.provider)) as b:
        yield b


# Identity ----------------------------------------------------------------------------------------

def test_a_test_issuer_token_gives_convex_identity(issuer: cl.TestIssuer,
                                                   backend: cl.Backend) -> None:
    token = issuer.token("ada", name="Ada", properties={"email": "ada@x.org", "tier": {"n": 2}},
                         roles=["admin"], jti="once", nbf=int(time.time()) - 10, fva=[1, 2])
    client = backend.client(token=token)
    assert client.query("whoami") == {
        "tokenIdentifier": "https://convex-lab.test|ada", "subject": "ada",
        "issuer": "https://convex-lab.test", "name": "Ada",
        "properties.email": "ada@x.org", "properties.tier.n": 2.0, "roles": ["admin"]}
    assert backend.verify_token(token).expires_at == pytest.approx(
        (time.time() + 3600) * 1000, abs=5000)


def test_set_auth_and_clear_auth_change_the_callers_identity(issuer: cl.TestIssuer,
                                                             backend: cl.Backend) -> None:
    client = backend.client()
    assert client.query("whoami") is None
    assert client.set_auth(issuer.token("grace"))["subject"] == "grace"
    assert client.query("whoami")["tokenIdentifier"] == "https://convex-lab.test|grace"
    with pytest.raises(ConvexLabError, match="expired"):
        client.set_auth(issuer.token("mallory", expires_in=-60))
    assert client.query("whoami")["subject"] == "grace"  # a refused token changes nothing
    client.clear_auth()
    assert client.query("whoami") is None


def test_a_clients_live_queries_follow_set_auth_and_clear_auth(issuer: cl.TestIssuer,
                                                               backend: cl.Backend) -> None:
    """A live query that read ctx.auth re-runs when its client's identity changes (Convex's
    client re-authenticates its whole query set); another client's equal query is untouched."""

    @backend.app.query(name="mine")
    def mine(ctx: Any, paginationOpts: Any) -> Any:  # noqa: N803 (Convex's argument name)
        who = ctx.auth.get_user_identity()
        page = ctx.db.query("notes").paginate(paginationOpts)
        return {**page, "page": [who["subject"] if who else None]}

    client, bystander = backend.client(), backend.client()
    live, other = client.subscribe("whoami"), bystander.subscribe("whoami")
    pages = client.subscribe_paginated("mine", initial_num_items=5)
    seen: list[Any] = []
    live.on_change(lambda value: seen.append(value and value["subject"]))
    assert live.value is None and pages.results == [None]
    client.set_auth(issuer.token("grace"))
    assert live.value["subject"] == "grace" and seen == ["grace"]
    assert pages.results == ["grace"]
    assert other.value is None  # the bystander's query (shared before) is still anonymous
    client.set_auth(issuer.token("ada"))
    assert live.value["subject"] == "ada" and seen == ["grace", "ada"]
    client.clear_auth()
    assert live.value is None and seen == ["grace", "ada", None] and pages.results == [None]
    live.close()
    client.set_auth(issuer.token("grace"))  # a closed live query stays as it was
    assert live.value is None and live.closed


def test_a_client_whose_token_expires_must_refresh(issuer: cl.TestIssuer,
                                                   backend: cl.Backend) -> None:
    client = backend.client(token=issuer.token("ada", expires_in=1))
    assert client.query("whoami")["subject"] == "ada"
    client._expires_at = time.time() * 1000 - 10_000  # as if a minute had passed
    with pytest.raises(ConvexLabError, match="token expired: get a fresh one"):
        client.query("whoami")
    client.set_auth(issuer.token("ada"))
    assert client.query("whoami")["subject"] == "ada"


def test_identity_and_token_are_exclusive(issuer: cl.TestIssuer, backend: cl.Backend) -> None:
    with pytest.raises(ConvexLabError, match="not both"):
        backend.client({"subject": "a", "issuer": "b"}, token=issuer.token())


# One clear error per failure ---------------------------------------------------------------------

def sign(issuer: cl.TestIssuer, payload: dict[str, Any], **header: Any) -> str:
    base = {"iss": issuer.issuer, "sub": "u", "aud": issuer.application_id,
            "iat": int(time.time()), "exp": int(time.time()) + 600}
    headers = {"kid": issuer.kid, **header}
    if headers["kid"] is None:
        del headers["kid"]
    algorithm = headers.pop("alg", "RS256")
    key = headers.pop("key", issuer.private_key)
    return jwt.encode({**base, **payload}, key, algorithm=algorithm, headers=headers)


def test_each_failure_has_its_own_message(issuer: cl.TestIssuer, backend: cl.Backend) -> None:
    other = cl.TestIssuer()  # same issuer name, another key
    good = issuer.token("u")
    tampered = good.rsplit(".", 1)[0] + "." + other.token("u").rsplit(".", 1)[1]
    cases = {
        "malformed": ("not.a.jwt", "Could not parse JWT payload", "InvalidAuthHeader"),
        "expired": (issuer.token("u", expires_in=-30), "The JWT expired", "InvalidAuthHeader"),
        "bad signature": (tampered, "Invalid signature", "InvalidAuthHeader"),
        "unknown issuer": (sign(issuer, {"iss": "https://elsewhere.example"}),
                           "No auth provider found matching the given token: its issuer is "
                           "'https://elsewhere.example'", "NoAuthProvider"),
        "wrong audience": (sign(issuer, {"aud": "other-app"}),
                           "Invalid audience: convex-lab not in ['other-app']",
                           "InvalidAuthHeader"),
        "missing kid": (sign(issuer, {}, kid=None), "missing a 'kid'", "InvalidAuthHeader"),
        "unknown kid": (sign(issuer, {}, kid="nope"), "'kid' (key ID) header is 'nope'",
                        "InvalidAuthHeader"),
        "wrong algorithm": (sign(issuer, {}, alg="HS256", key="a" * 32),
                            "Wrong algorithm: the JWT is signed with 'HS256'",
                            "InvalidAuthHeader"),
        "no subject": (sign(issuer, {"sub": None}), "no 'sub' claim", "InvalidAuthHeader"),
    }
    for what, (token, message, code) in cases.items():
        with pytest.raises(ConvexLabError) as info:
            backend.client(token=token)
        assert message in str(info.value), what
        assert info.value.code == code, what


def test_alg_none_is_refused(issuer: cl.TestIssuer, backend: cl.Backend) -> None:
    token = jwt.encode({"iss": issuer.issuer, "sub": "u", "aud": "convex-lab",
                        "exp": int(time.time()) + 60}, None, algorithm="none",
                       headers={"kid": issuer.kid})
    with pytest.raises(ConvexLabError, match="Wrong algorithm"):
        backend.verify_token(token)


def test_no_providers_and_bad_configs() -> None:
    with cl.Backend(app=identity_app()) as b, pytest.raises(
            ConvexLabError, match="no providers configured"):
        b.client(token=cl.TestIssuer().token())
    for config, message in [
        ({"providers": [{"type": "customJwt", "issuer": "x", "jwks": "y", "algorithm": "HS256"}]},
         "algorithm 'HS256' is not supported"),
        ({"providers": [{"domain": "https://x"}]}, "'applicationID' must be a non-empty"),
        ({"providers": [{"type": "oidc", "domain": "x"}]}, "unknown type 'oidc'"),
        ({"provider": []}, "must be a dict {'providers': [...]}"),
    ]:
        app = identity_app()
        app.auth = config
        with pytest.raises(ConvexLabError, match=re.escape(message)) as info:
            cl.Backend(app=app)
        assert info.value.code == "AuthConfigInvalid"


def test_an_es256_issuer_without_application_id() -> None:
    issuer = cl.TestIssuer("issuer.example", application_id=None, algorithm="ES256")
    assert "applicationID" not in issuer.provider
    with cl.Backend(app=identity_app(issuer.provider)) as b:
        # Convex assumes https:// for an issuer without a scheme, on both sides.
        token = jwt.encode({"iss": "https://issuer.example/", "sub": "s",
                            "exp": int(time.time()) + 60}, issuer.private_key,
                           algorithm="ES256", headers={"kid": issuer.kid})
        assert b.client(token=token).query("whoami")["subject"] == "s"


# HTTP actions ---------------------------------------------------------------------------------

def test_bearer_tokens_on_http_actions(issuer: cl.TestIssuer, backend: cl.Backend) -> None:
    assert backend.fetch("/me").json() == {"identity": None}
    ok = backend.fetch("/me", headers={"Authorization": f"Bearer {issuer.token('ada')}"})
    assert ok.json()["identity"]["subject"] == "ada"
    # A bad token still runs the handler; get_user_identity() raises why (as in Convex).
    bad = backend.fetch("/me", headers={"Authorization": "Bearer " + issuer.token(
        "ada", expires_in=-60)})
    assert bad.status == 401 and "The JWT expired" in bad.json()["error"]
    basic = backend.fetch("/me", headers={"Authorization": "Basic abc"})
    assert basic.json()["code"] == "InvalidAuthHeader"


# JWKS sources and OIDC ---------------------------------------------------------------------------

class _KeyServer:
    """A loopback OIDC provider: discovery document and JWKS, counting requests."""

    def __init__(self, jwks: dict[str, Any]) -> None:
        self.jwks = jwks
        self.hits: list[str] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                owner.hits.append(self.path)
                if self.path == "/.well-known/openid-configuration":
                    body = {"issuer": owner.url, "jwks_uri": owner.url + "/jwks.json"}
                elif self.path == "/jwks.json":
                    body = owner.jwks
                else:
                    self.send_error(404)
                    return
                data = json.dumps(body).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_oidc_discovery_and_claim_renaming() -> None:
    key = cl.TestIssuer()
    server = _KeyServer(key.jwks)
    try:
        app = identity_app({"domain": server.url, "applicationID": "app-1"})
        now = int(time.time())
        token = jwt.encode({
            "iss": server.url + "/", "sub": "oidc-user", "aud": "app-1", "iat": now,
            "exp": now + 600, "given_name": "Ada", "family_name": "Lovelace",
            "picture": "https://x/p.png", "email": "ada@x.org", "email_verified": True,
            "locale": "en", "zoneinfo": "Europe/London", "birthdate": "1815-12-10",
            "address": {"formatted": "London"}, "updated_at": 0, "org": {"id": 7},
            "jti": "j", "nbf": now - 5, "azp": "client"},
            key.private_key, algorithm="RS256", headers={"kid": key.kid})
        with cl.Backend(app=app) as b:
            assert b.client(token=token).query("whoami") == {
                "tokenIdentifier": f"{server.url}/|oidc-user", "subject": "oidc-user",
                "issuer": f"{server.url}/", "givenName": "Ada", "familyName": "Lovelace",
                "pictureUrl": "https://x/p.png", "email": "ada@x.org", "emailVerified": True,
                "language": "en", "timezone": "Europe/London", "birthday": "1815-12-10",
                "address": "London", "updatedAt": "1970-01-01T00:00:00+00:00",
                "org": {"id": 7.0}}
            b.client(token=token)
            assert server.hits.count("/jwks.json") == 1  # cached
            # OIDC requires the audience.
            no_aud = jwt.encode({"iss": server.url, "sub": "x", "iat": now, "exp": now + 60},
                                key.private_key, algorithm="RS256", headers={"kid": key.kid})
            with pytest.raises(ConvexLabError, match="Invalid audience"):
                b.client(token=no_aud)
    finally:
        server.close()


def test_jwks_from_a_url_refetches_for_a_new_kid(tmp_path: Path) -> None:
    first, rotated = cl.TestIssuer(), cl.TestIssuer()
    server = _KeyServer(first.jwks)
    try:
        provider = {**first.provider, "jwks": server.url + "/jwks.json"}
        with cl.Backend(app=identity_app(provider)) as b:
            assert b.client(token=first.token("a")).identity["subject"] == "a"
            assert b.client(token=first.token("b")).identity["subject"] == "b"
            assert server.hits == ["/jwks.json"]
            server.jwks = {"keys": first.jwks["keys"] + rotated.jwks["keys"]}
            rotated_token = jwt.encode(
                {"iss": first.issuer, "sub": "c", "aud": "convex-lab",
                 "exp": int(time.time()) + 60}, rotated.private_key, algorithm="RS256",
                headers={"kid": rotated.kid})
            assert b.client(token=rotated_token).identity["subject"] == "c"
            assert server.hits == ["/jwks.json", "/jwks.json"]
    finally:
        server.close()


def test_jwks_from_a_file_and_a_percent_encoded_data_uri(tmp_path: Path) -> None:
    issuer = cl.TestIssuer()
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps(issuer.jwks))
    from_file = {**issuer.provider, "jwks": str(path)}
    plain = "data:application/json," + json.dumps(issuer.jwks).replace(" ", "%20")
    for provider in (from_file, {**issuer.provider, "jwks": plain}):
        with cl.Backend(app=identity_app(provider)) as b:
            assert b.client(token=issuer.token("f")).identity["subject"] == "f"
    broken = {**issuer.provider, "jwks": "data:application/json;base64," +
              base64.b64encode(b"{not json").decode()}
    with cl.Backend(app=identity_app(broken)) as b, pytest.raises(
            ConvexLabError, match="Invalid JWKS data URL"):
        b.client(token=issuer.token())
    missing = {**issuer.provider, "jwks": str(tmp_path / "nope.json")}
    with cl.Backend(app=identity_app(missing)) as b, pytest.raises(
            ConvexLabError, match="Could not read the JWKS file"):
        b.client(token=issuer.token())
