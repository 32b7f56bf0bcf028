"""Convex's HTTP API on the deployment URL (issue 12 §1, §3; reference/wire-protocol.md §1-§2):
the bodies the official clients send, both value formats, errors, auth, public functions only."""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

import convex_lab as cl
from convex_lab.values import Int64
from tests._wire_app import wire_app

ENCODED = "convex_encoded_json"


@pytest.fixture(scope="module")
def issuer() -> cl.TestIssuer:
    return cl.TestIssuer()


@pytest.fixture
def served(issuer: cl.TestIssuer) -> Iterator[tuple[cl.Backend, str]]:
    with cl.Backend(app=wire_app(issuer.provider)) as backend:
        yield backend, backend.serve().url


def post(url: str, route: str, body: Any, **headers: str) -> httpx.Response:
    return httpx.post(url + route, json=body, headers=headers, timeout=30)


def test_npm_array_args_and_python_object_args_both_run_the_function(
        served: tuple[cl.Backend, str]) -> None:
    backend, url = served
    npm = post(url, "/api/mutation", {"path": "messages:send", "format": ENCODED,
                                      "args": [{"body": "from npm"}]})
    legacy = post(url, "/api/mutation", {"path": "messages:send", "format": ENCODED,
                                         "args": {"body": "from python"}})
    assert npm.status_code == legacy.status_code == 200
    assert npm.json()["status"] == "success" and isinstance(npm.json()["value"], str)
    assert npm.json()["logLines"] == ["[LOG] sending from npm"]
    bodies = sorted(d["body"] for d in backend.query("messages:list"))
    assert bodies == ["from npm", "from python"]
    listed = post(url, "/api/query", {"path": "messages:list", "args": [{}], "format": ENCODED})
    assert [d["body"] for d in listed.json()["value"]] == ["from npm", "from python"]


def test_encoded_json_round_trips_every_special_value(served: tuple[cl.Backend, str]) -> None:
    _, url = served
    cases = [
        ({"$integer": "AQAAAAAAAAA="}, "Int64"),
        ({"$integer": "/////////38="}, "Int64"),
        ({"$bytes": "aGVsbG8="}, "bytes"),
        ({"$float": "AAAAAAAA+H8="}, "float"),
        ({"$float": "AAAAAAAA8H8="}, "float"),
        ({"$float": "AAAAAAAA8P8="}, "float"),
        ({"$float": "AAAAAAAAAIA="}, "float"),
        (1, "float"),  # a plain JSON number is a float64, never an int64
        (2.5, "float"),
        ([True, None, "s", {"k": {"$integer": "KgAAAAAAAAA="}}], "list"),
    ]
    for sent, type_name in cases:
        got = post(url, "/api/query", {"path": "values:echo", "format": ENCODED,
                                       "args": [{"value": sent}]}).json()
        assert got["status"] == "success", got
        assert got["value"]["type"] == type_name
        expected = 1.0 if sent == 1 and type_name == "float" else sent
        assert got["value"]["value"] == expected


def test_a_float64_is_written_with_its_fractional_part(served: tuple[cl.Backend, str]) -> None:
    _, url = served
    raw = post(url, "/api/query", {"path": "values:echo", "format": ENCODED,
                                   "args": [{"value": 3}]}).text
    assert '"value":3.0' in raw.replace(" ", "")


def test_clean_json_is_the_default_of_api_run_and_is_lossy(
        served: tuple[cl.Backend, str]) -> None:
    _, url = served
    for sent, clean in [({"$integer": "KgAAAAAAAAA="}, "42"), ({"$bytes": "aGVsbG8="}, "aGVsbG8="),
                        ({"$float": "AAAAAAAA+H8="}, "NaN"),
                        ({"$float": "AAAAAAAA8P8="}, "-Infinity")]:
        got = post(url, "/api/run/values/echo", {"args": {"value": sent}}).json()
        assert got["status"] == "success"
        assert got["value"]["value"] == clean
    encoded = post(url, "/api/run/values/echo", {"args": {"value": {"$integer": "KgAAAAAAAAA="}},
                                                 "format": ENCODED}).json()
    assert encoded["value"]["value"] == {"$integer": "KgAAAAAAAAA="}


def test_function_runs_any_kind_and_get_query_takes_json_args(
        served: tuple[cl.Backend, str]) -> None:
    _, url = served
    assert post(url, "/api/function", {"path": "messages:send", "args": {"body": "x"},
                                       "format": ENCODED}).json()["status"] == "success"
    got = post(url, "/api/function", {"path": "messages:count", "args": {}}).json()
    assert got == {"status": "success", "value": 1.0, "logLines": []}
    via_get = httpx.get(url + "/api/query", params={"path": "messages:count", "args": "{}"})
    assert via_get.json()["value"] == 1.0


def test_function_errors_are_200_with_message_and_convex_error_data(
        served: tuple[cl.Backend, str]) -> None:
    _, url = served
    refused = post(url, "/api/mutation", {"path": "messages:send", "format": ENCODED,
                                          "args": [{"body": ""}]})
    assert refused.status_code == 200
    body = refused.json()
    assert body["status"] == "error"
    assert body["errorData"] == {"code": "EmptyMessage", "n": {"$integer": "AwAAAAAAAAA="}}
    plain = post(url, "/api/mutation", {"path": "fail:plain", "args": [{}]}).json()
    assert plain["status"] == "error" and "errorData" not in plain
    assert "ValueError" in plain["errorMessage"] and "the secret is 42" in plain["errorMessage"]
    assert "Traceback" not in plain["errorMessage"]


def test_redacting_backends_hide_all_but_convex_error(issuer: cl.TestIssuer) -> None:
    with cl.Backend(app=wire_app(), redact_errors=True) as backend:
        url = backend.serve().url
        plain = post(url, "/api/mutation", {"path": "fail:plain", "args": [{}]}).json()
        assert plain["status"] == "error"
        assert plain["errorMessage"].startswith("[Request ID: ")
        assert plain["errorMessage"].endswith("] Server Error")
        assert "secret" not in plain["errorMessage"]
        data = post(url, "/api/mutation", {"path": "messages:send", "args": [{"body": ""}]}).json()
        assert data["errorData"]["code"] == "EmptyMessage"


def test_only_public_functions_and_the_right_kind_are_reachable(
        served: tuple[cl.Backend, str]) -> None:
    backend, url = served
    backend.mutation("messages:send", {"body": "keep me"})
    internal = post(url, "/api/mutation", {"path": "admin:wipe", "args": [{}]}).json()
    assert internal["status"] == "error"
    assert "Could not find public function" in internal["errorMessage"]
    wrong = post(url, "/api/query", {"path": "messages:send", "args": [{"body": "x"}]}).json()
    assert wrong["status"] == "error" and "mutation" in wrong["errorMessage"]
    missing = post(url, "/api/query", {"path": "nope:nothing", "args": [{}]}).json()
    assert missing["status"] == "error" and "nope:nothing" in missing["errorMessage"]
    assert len(backend.query("messages:list")) == 1


def test_bearer_tokens_become_the_identity_and_bad_ones_are_401(
        served: tuple[cl.Backend, str], issuer: cl.TestIssuer) -> None:
    _, url = served
    body = {"path": "whoami", "args": [{}], "format": ENCODED}
    assert post(url, "/api/query", body).json()["value"] is None
    token = issuer.token("ada")
    ok = post(url, "/api/query", body, Authorization=f"Bearer {token}")
    assert ok.json()["value"] == "ada"
    bad = post(url, "/api/query", body, Authorization="Bearer not-a-jwt")
    assert bad.status_code == 401
    assert set(bad.json()) == {"code", "message"} and bad.json()["message"]
    admin = post(url, "/api/query", body, Authorization="Convex some-admin-key")
    assert admin.status_code == 401 and "Bearer" in admin.json()["message"]


def test_bad_requests_get_convex_code_and_message(served: tuple[cl.Backend, str]) -> None:
    _, url = served
    bad_format = post(url, "/api/query", {"path": "messages:list", "args": {}, "format": "xml"})
    assert bad_format.status_code == 400 and bad_format.json()["code"] == "BadFormat"
    not_json = httpx.post(url + "/api/query", content=b"{nope", timeout=10)
    assert not_json.status_code == 400 and "not JSON" in not_json.json()["message"]
    bad_value = post(url, "/api/query", {"path": "values:echo",
                                         "args": {"value": {"$set": []}}})
    assert bad_value.status_code == 400 and "$set" in bad_value.json()["message"]


def test_module_paths_accept_js_suffix_and_default_exports(
        served: tuple[cl.Backend, str]) -> None:
    _, url = served
    assert post(url, "/api/query", {"path": "messages.js:count", "args": {}}).json()["value"] == 0
    assert post(url, "/api/query", {"path": "whoami:default", "args": {}}).json()["status"] == \
        "success"


def test_query_batch_and_consistent_query_timestamps(served: tuple[cl.Backend, str]) -> None:
    backend, url = served
    backend.mutation("messages:send", {"body": "one"})
    batch = post(url, "/api/query_batch", {"queries": [
        {"path": "messages:count", "args": {}}, {"path": "whoami", "args": {}},
        {"path": "nope:x", "args": {}}]}).json()["results"]
    assert [r["status"] for r in batch] == ["success", "success", "error"]
    assert batch[0]["value"] == 1.0
    ts = post(url, "/api/query_ts", None).json()["ts"]
    at = post(url, "/api/query_at_ts", {"path": "messages:count", "args": {}, "ts": ts}).json()
    assert at["value"] == 1.0
    backend.mutation("messages:send", {"body": "two"})
    gone = post(url, "/api/query_at_ts", {"path": "messages:count", "args": {}, "ts": ts})
    assert gone.status_code == 400 and "query_ts again" in gone.json()["message"]
    later = post(url, "/api/query_ts", None).json()["ts"]
    assert later != ts


def test_meta_routes_answer_like_convex(served: tuple[cl.Backend, str]) -> None:
    _, url = served
    assert httpx.get(url + "/").text.startswith("This Convex deployment is running")
    assert httpx.get(url + "/instance_name").text
    assert httpx.post(url + "/echo", content=b"ping").content == b"ping"
    assert math.isfinite(len(httpx.get(url + "/version").text))


def test_int64_results_decode_as_int64(served: tuple[cl.Backend, str]) -> None:
    backend, url = served
    got = post(url, "/api/mutation", {"path": "counters:bump", "args": [{"name": "a"}],
                                      "format": ENCODED}).json()
    assert got["value"] == {"$integer": "AQAAAAAAAAA="}
    assert backend.query("counters:get", {"name": "a"}) == Int64(1)


@pytest.mark.parametrize(("body", "message"), [
    (b'{"path":"values:echo","args":{"value":' + b"[" * 5000 + b"]" * 5000 + b"}}",
     "deeper than Convex allows"),
    (b'{"path":"values:echo","args":{"value":{"$integer":"AAAA"}}}',
     "takes the base64 of 8 little-endian bytes"),
    (b'{"path":"values:echo","args":{"value":{"$float":5}}}',
     "takes the base64 of 8 little-endian bytes"),
])
def test_hostile_bodies_are_400_with_a_reason(served: tuple[cl.Backend, str], body: bytes,
                                              message: str) -> None:
    """Values nested past the recursion limit or malformed encodings are the caller's
    error (400 with Convex's {code, message}), never a 500 from the server."""
    _, url = served
    for route in ("/api/query", "/api/run/values/echo"):
        response = httpx.post(url + route, content=body,
                              headers={"Content-Type": "application/json"})
        assert response.status_code == 400, (route, response.text)
        assert message in response.json()["message"]
