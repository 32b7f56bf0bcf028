"""Convex's WebSocket sync protocol (issue 12 §2; reference/wire-protocol.md §3), frame by
frame with a plain WebSocket client: version chains, transitions after mutations, read your
writes, auth, errors, exactly-once resends, pings, timestamps across restarts."""

from __future__ import annotations

import base64
import contextlib
import json
import struct
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import ClientConnection, connect

import convex_lab as cl
from convex_lab.server import sync as sync_module
from tests._wire_app import wire_app

ZERO = {"querySet": 0, "identity": 0, "ts": "AAAAAAAAAAA="}


def ts_int(text: str) -> int:
    return int(struct.unpack("<Q", base64.standard_b64decode(text))[0])


class Conn:
    """One sync socket, checking every Transition's version chain as a client does."""

    def __init__(self, url: str, path: str = "/api/1.51.0/sync",
                 session_id: str | None = None) -> None:
        self._stack = contextlib.ExitStack()
        self.ws: ClientConnection = self._stack.enter_context(
            connect(url.replace("http://", "ws://") + path))
        self.version = dict(ZERO)
        self.session_id = session_id or str(uuid.uuid4())
        self.query_set = 0
        self.send({"type": "Connect", "sessionId": self.session_id, "connectionCount": 0,
                   "lastCloseReason": "InitialConnect", "clientTs": 0})

    def send(self, message: dict[str, Any]) -> None:
        self.ws.send(json.dumps(message))

    def recv(self, timeout: float = 10, pings: bool = False) -> dict[str, Any]:
        while True:
            message: dict[str, Any] = json.loads(self.ws.recv(timeout=timeout))
            if message["type"] == "Ping" and not pings:
                continue
            if message["type"] == "Transition":
                assert message["startVersion"] == self.version, "version chain broken"
                assert ts_int(message["endVersion"]["ts"]) >= ts_int(self.version["ts"])
                self.version = message["endVersion"]
            return message

    def add(self, *queries: tuple[int, str, dict[str, Any]]) -> dict[str, Any]:
        base, self.query_set = self.query_set, self.query_set + 1
        self.send({"type": "ModifyQuerySet", "baseVersion": base, "newVersion": self.query_set,
                   "modifications": [{"type": "Add", "queryId": q, "udfPath": p, "args": [a]}
                                     for q, p, a in queries]})
        return self.recv()

    def mutate(self, request_id: int, path: str, args: dict[str, Any]) -> None:
        self.send({"type": "Mutation", "requestId": request_id, "udfPath": path,
                   "args": [args]})

    def close(self) -> None:
        self._stack.close()


def values(transition: dict[str, Any]) -> dict[int, Any]:
    return {m["queryId"]: m.get("value", m.get("errorMessage"))
            for m in transition["modifications"]}


@pytest.fixture(scope="module")
def issuer() -> cl.TestIssuer:
    return cl.TestIssuer()


@pytest.fixture
def served(issuer: cl.TestIssuer) -> Iterator[tuple[cl.Backend, str]]:
    with cl.Backend(app=wire_app(issuer.provider)) as backend:
        yield backend, backend.serve().url


def test_a_query_set_change_gets_one_transition_from_the_initial_version(
        served: tuple[cl.Backend, str]) -> None:
    backend, url = served
    backend.mutation("messages:send", {"body": "hello"})
    conn = Conn(url)
    t = conn.add((0, "messages:list", {}), (1, "messages:count", {}))
    assert t["type"] == "Transition" and t["startVersion"] == ZERO
    assert t["endVersion"]["querySet"] == 1 and t["endVersion"]["identity"] == 0
    got = values(t)
    assert [d["body"] for d in got[0]] == ["hello"] and got[1] == 1.0
    assert all(m["type"] == "QueryUpdated" and m["logLines"] == [] and m["journal"] is None
               for m in t["modifications"])
    conn.send({"type": "ModifyQuerySet", "baseVersion": 1, "newVersion": 2,
               "modifications": [{"type": "Remove", "queryId": 0}]})
    removed = conn.recv()
    assert removed["modifications"] == [{"type": "QueryRemoved", "queryId": 0}]
    assert removed["endVersion"]["querySet"] == 2
    conn.close()


def test_a_mutation_gets_its_response_then_a_transition_with_its_effects(
        served: tuple[cl.Backend, str]) -> None:
    _, url = served
    conn = Conn(url)
    conn.add((0, "messages:count", {}))
    conn.mutate(0, "messages:send", {"body": "hi"})
    response = conn.recv()
    assert response["type"] == "MutationResponse" and response["success"] is True
    assert response["requestId"] == 0 and isinstance(response["result"], str)
    assert response["logLines"] == ["[LOG] sending hi"]
    transition = conn.recv()
    assert transition["type"] == "Transition"
    assert ts_int(transition["endVersion"]["ts"]) >= ts_int(response["ts"])
    assert values(transition) == {0: 1.0}  # read your writes: in the completing transition
    conn.close()


def test_a_transition_follows_every_mutation_even_with_no_subscription_or_failure(
        served: tuple[cl.Backend, str]) -> None:
    backend, url = served
    conn = Conn(url)
    conn.mutate(0, "counters:bump", {"name": "x"})
    ok = conn.recv()
    assert ok["success"] is True and ok["result"] == {"$integer": "AQAAAAAAAAA="}
    after_ok = conn.recv()
    assert after_ok["type"] == "Transition" and after_ok["modifications"] == []
    assert ts_int(after_ok["endVersion"]["ts"]) >= ts_int(ok["ts"])
    conn.mutate(1, "messages:send", {"body": ""})
    failed = conn.recv()
    assert failed["type"] == "MutationResponse" and failed["success"] is False
    assert failed["ts"] is None and "EmptyMessage" in failed["result"]
    assert failed["errorData"] == {"code": "EmptyMessage", "n": {"$integer": "AwAAAAAAAAA="}}
    assert conn.recv()["type"] == "Transition"
    assert backend.query("messages:list") == []
    conn.close()


def test_mutations_of_one_socket_run_in_arrival_order(served: tuple[cl.Backend, str]) -> None:
    backend, url = served
    conn = Conn(url)
    for i in range(20):
        conn.mutate(i, "messages:send", {"body": f"m{i}"})
    responses = []
    while len(responses) < 20:
        message = conn.recv()
        if message["type"] == "MutationResponse":
            responses.append(message["requestId"])
    assert responses == list(range(20))
    assert [d["body"] for d in backend.query("messages:list")] == [f"m{i}" for i in range(20)]
    conn.close()


def test_commits_reach_only_sockets_whose_queries_they_touch(
        served: tuple[cl.Backend, str]) -> None:
    backend, url = served
    watching, other = Conn(url), Conn(url)
    watching.add((0, "counters:get", {"name": "a"}))
    other.add((0, "counters:get", {"name": "b"}))
    backend.mutation("counters:bump", {"name": "a"})  # a commit from the notebook
    update = watching.recv()
    assert values(update) == {0: {"$integer": "AQAAAAAAAAA="}}
    with pytest.raises(TimeoutError):
        other.recv(timeout=0.5)
    watching.close()
    other.close()


def test_failing_and_unknown_queries_are_query_failed(served: tuple[cl.Backend, str]) -> None:
    _, url = served
    conn = Conn(url)
    t = conn.add((0, "fail:query", {}), (1, "nope:nothing", {}))
    by_id = {m["queryId"]: m for m in t["modifications"]}
    assert by_id[0]["type"] == "QueryFailed" and by_id[0]["errorData"] == "no such thing"
    assert by_id[1]["type"] == "QueryFailed"
    assert "Could not find public function" in by_id[1]["errorMessage"]
    conn.close()


def test_authenticate_changes_identity_and_reruns_queries(
        served: tuple[cl.Backend, str], issuer: cl.TestIssuer) -> None:
    _, url = served
    conn = Conn(url)
    assert values(conn.add((0, "whoami", {}))) == {0: None}
    conn.send({"type": "Authenticate", "baseVersion": 0, "tokenType": "User",
               "value": issuer.token("ada")})
    t = conn.recv()
    assert t["endVersion"]["identity"] == 1 and values(t) == {0: "ada"}
    conn.send({"type": "Authenticate", "baseVersion": 1, "tokenType": "None"})
    t = conn.recv()
    assert t["endVersion"]["identity"] == 2 and values(t) == {0: None}
    conn.close()


def test_a_bad_token_gets_auth_error_and_the_socket_closes(
        served: tuple[cl.Backend, str]) -> None:
    _, url = served
    conn = Conn(url)
    conn.send({"type": "Authenticate", "baseVersion": 0, "tokenType": "User", "value": "x.y.z"})
    error = conn.recv()
    assert error["type"] == "AuthError" and error["authUpdateAttempted"] is True
    assert error["baseVersion"] == 0 and error["error"]
    with pytest.raises(ConnectionClosed):
        conn.recv()


def test_an_expiring_token_ends_the_socket_with_auth_error_at_its_exp(
        served: tuple[cl.Backend, str], issuer: cl.TestIssuer) -> None:
    """A socket authenticated with a JWT does not outlive it: at exp (plus the verifier's 5 s
    leeway) the server sends AuthError with authUpdateAttempted false — Convex's signal for the
    client to fetch a fresh token — and closes; queries never run on an expired identity."""
    _, url = served
    conn = Conn(url)
    assert values(conn.add((0, "whoami", {}))) == {0: None}
    conn.send({"type": "Authenticate", "baseVersion": 0, "tokenType": "User",
               "value": issuer.token("ada", expires_in=-4)})  # valid for ~1 s more (leeway)
    t = conn.recv()
    assert t["endVersion"]["identity"] == 1 and values(t) == {0: "ada"}
    error = conn.recv(timeout=5)
    assert error["type"] == "AuthError" and error["authUpdateAttempted"] is False
    assert "expired" in error["error"] and error["baseVersion"] == 1
    with pytest.raises(ConnectionClosed):
        conn.recv()
    # A long-lived token keeps the socket: still open and pinging, no AuthError.
    other = Conn(url)
    other.send({"type": "Authenticate", "baseVersion": 0, "tokenType": "User",
                "value": issuer.token("bob", expires_in=3600)})
    assert other.recv()["type"] == "Transition"
    with pytest.raises(TimeoutError):
        other.recv(timeout=1.5)
    other.close()


def test_a_wrong_base_version_is_fatal(served: tuple[cl.Backend, str]) -> None:
    _, url = served
    conn = Conn(url)
    conn.send({"type": "ModifyQuerySet", "baseVersion": 5, "newVersion": 6, "modifications": []})
    fatal = conn.recv()
    assert fatal["type"] == "FatalError" and "BaseVersionMismatch" in fatal["error"]
    with pytest.raises(ConnectionClosed):
        conn.recv()


def test_a_resent_mutation_runs_exactly_once_per_session_and_request(
        served: tuple[cl.Backend, str]) -> None:
    backend, url = served
    first = Conn(url)
    first.mutate(7, "counters:bump", {"name": "once"})
    original = first.recv()
    first.close()
    again = Conn(url, session_id=first.session_id)  # a reconnect re-sends what it tracked
    again.mutate(7, "counters:bump", {"name": "once"})
    resent = again.recv()
    assert resent["result"] == original["result"] and resent["ts"] == original["ts"]
    assert again.recv()["type"] == "Transition"
    assert backend.query("counters:get", {"name": "once"}) == 1
    other = Conn(url)  # another session's request 7 is another request
    other.mutate(7, "counters:bump", {"name": "once"})
    assert other.recv()["result"] == {"$integer": "AgAAAAAAAAA="}
    for c in (again, other):
        c.close()


def test_an_action_gets_its_response_and_a_transition(served: tuple[cl.Backend, str]) -> None:
    _, url = served
    conn = Conn(url)
    conn.add((0, "messages:count", {}))
    conn.send({"type": "Action", "requestId": 0, "udfPath": "actions:shout",
               "args": [{"body": "hey"}]})
    seen = [conn.recv(), conn.recv()]
    responses = [m for m in seen if m["type"] == "ActionResponse"]
    assert len(responses) == 1
    response = responses[0]
    assert response["success"] is True and response["result"] == "HEY"
    assert sorted(response["logLines"]) == ["[LOG] sending HEY", "[LOG] shouting"]
    if seen[-1]["type"] != "Transition":
        seen.append(conn.recv())
    assert seen[-1]["type"] == "Transition"
    counts = [values(m).get(0) for m in seen if m["type"] == "Transition"]
    assert 1.0 in counts
    conn.close()


def test_events_are_accepted_and_the_python_path_works(served: tuple[cl.Backend, str]) -> None:
    _, url = served
    conn = Conn(url, path="/api/sync")
    conn.send({"type": "Event", "eventType": "ClientConnect", "event": {}})
    assert values(conn.add((0, "messages:count", {}))) == {0: 0.0}
    conn.close()


def test_an_idle_socket_gets_pings(served: tuple[cl.Backend, str],
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    _, url = served
    monkeypatch.setattr(sync_module, "HEARTBEAT_S", 0.2)
    conn = Conn(url)
    assert conn.recv(timeout=5, pings=True) == {"type": "Ping"}
    conn.close()


def test_a_bad_version_in_the_path_is_refused(served: tuple[cl.Backend, str]) -> None:
    _, url = served
    with pytest.raises(InvalidStatus):  # the handshake itself is refused
        Conn(url, path="/api/not-a-version/sync")


def test_timestamps_never_go_backwards_across_restarts(tmp_path: Path) -> None:
    path = tmp_path / "chat.duckdb"
    seen = []
    for round_ in range(2):
        with cl.Backend(path, app=wire_app()) as backend:
            conn = Conn(backend.serve().url)
            conn.mutate(0, "messages:send", {"body": f"round {round_}"})
            seen.append(ts_int(conn.recv()["ts"]))
            conn.recv()
            conn.close()
    assert seen[1] > seen[0]


def test_a_paginated_query_sends_its_journal_and_keeps_its_page_across_a_reconnect() -> None:
    """Convex's query journal over the wire: a live page grows in place (same end, same
    continueCursor) when a document lands inside it, its journal travels in QueryUpdated, and a
    client re-adding the query with that journal (a reconnect) gets the same page, not a fresh
    first page."""
    with cl.Backend(app=wire_app()) as backend:
        for name in ("a", "b", "c"):
            backend.mutation("counters:bump", {"name": name})
        url = backend.serve().url
        opts = {"numItems": 2.0, "cursor": None}
        first = Conn(url)
        try:
            update = first.add((0, "counters:page", {"paginationOpts": opts}))["modifications"][0]
            assert [d["name"] for d in update["value"]["page"]] == ["a", "b"]
            journal, cursor = update["journal"], update["value"]["continueCursor"]
            assert isinstance(journal, str) and journal
            first.mutate(1, "counters:bump", {"name": "ab"})  # lands inside the page
            assert first.recv()["type"] == "MutationResponse"
            grown = first.recv()["modifications"][0]
            assert [d["name"] for d in grown["value"]["page"]] == ["a", "ab", "b"]
            assert grown["value"]["continueCursor"] == cursor
            journal = grown["journal"]
        finally:
            first.close()
        again = Conn(url)
        try:
            again.send({"type": "ModifyQuerySet", "baseVersion": 0, "newVersion": 1,
                        "modifications": [{"type": "Add", "queryId": 0,
                                           "udfPath": "counters:page",
                                           "args": [{"paginationOpts": opts}],
                                           "journal": journal}]})
            resumed = again.recv()["modifications"][0]
            assert [d["name"] for d in resumed["value"]["page"]] == ["a", "ab", "b"]
            assert resumed["value"]["continueCursor"] == cursor
            # Without the journal: a fresh first page of two.
            again.send({"type": "ModifyQuerySet", "baseVersion": 1, "newVersion": 2,
                        "modifications": [{"type": "Add", "queryId": 1,
                                           "udfPath": "counters:page",
                                           "args": [{"paginationOpts": opts}]}]})
            fresh = again.recv()["modifications"][0]
            assert [d["name"] for d in fresh["value"]["page"]] == ["a", "ab"]
            # A journal that is not a string is a malformed message.
            again.send({"type": "ModifyQuerySet", "baseVersion": 2, "newVersion": 3,
                        "modifications": [{"type": "Add", "queryId": 2,
                                           "udfPath": "counters:page",
                                           "args": [{"paginationOpts": opts}], "journal": 7}]})
            fatal = again.recv()
            assert fatal["type"] == "FatalError" and "journal" in fatal["error"]
        finally:
            again.close()


def test_live_query_updates_carry_their_log_lines() -> None:
    """QueryUpdated.logLines holds what the query's run printed (the npm client shows them in
    the browser's console), not the lines of the mutation that triggered it."""
    with cl.Backend(app=wire_app()) as backend:
        conn = Conn(backend.serve().url)
        try:
            first = conn.add((0, "messages:logged", {}))["modifications"][0]
            assert first["value"] == 0.0 and first["logLines"] == ["[LOG] counting 0"]
            conn.mutate(1, "messages:send", {"body": "hi"})
            response = conn.recv()
            assert response["type"] == "MutationResponse"
            assert response["logLines"] == ["[LOG] sending hi"]
            update = conn.recv()["modifications"][0]
            assert update["value"] == 1.0 and update["logLines"] == ["[LOG] counting 1"]
        finally:
            conn.close()


def test_a_message_nested_past_the_recursion_limit_is_a_fatal_error(
        served: tuple[cl.Backend, str]) -> None:
    _, url = served
    conn = Conn(url)
    conn.ws.send('{"type":"Event","eventType":"x","event":' + "[" * 5000 + "]" * 5000 + "}")
    fatal = conn.recv()
    assert fatal["type"] == "FatalError" and "Malformed message" in fatal["error"]
    with pytest.raises(ConnectionClosed):
        conn.recv()
