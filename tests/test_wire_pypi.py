"""The unmodified PyPI ``convex`` client against a served backend (issue 12 §4).

That client is a Rust extension whose calls block while holding the GIL: a server thread in the
same process could never answer it. So it runs in another process (as a user's script or
terminal would), and this test checks what that process saw.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from typing import Any

import pytest

import convex_lab as cl
from tests._wire_app import wire_app

pytestmark = pytest.mark.skipif(importlib.util.find_spec("convex") is None,
                                reason="the PyPI `convex` client is not installed "
                                       "(pip install convex; it is in the test extra)")

SCRIPT = textwrap.dedent('''
    import json, sys, threading
    import convex
    from convex import ConvexClient, ConvexError, ConvexInt64

    url, token = sys.argv[1], sys.argv[2]
    client = ConvexClient(url)
    out = {}
    out["empty"] = client.query("messages:list")
    out["sent_id"] = client.mutation("messages:send", {"body": "from pypi"})
    out["after"] = [m["body"] for m in client.query("messages:list")]
    out["bump"] = repr(client.mutation("counters:bump", {"name": "n"}))
    out["get"] = repr(client.query("counters:get", {"name": "n"}))
    echoed = client.query("values:echo", {"value": ConvexInt64(2**62)})
    out["int64"] = [repr(echoed["value"]), echoed["type"]]
    echoed = client.query("values:echo", {"value": b"\\x00\\xffbytes"})
    out["bytes"] = [echoed["value"] == b"\\x00\\xffbytes", echoed["type"]]
    out["plain_int"] = client.query("values:echo", {"value": 3})["type"]
    try:
        client.mutation("messages:send", {"body": ""})
    except ConvexError as e:
        out["convex_error"] = [repr(e.data["n"]), e.data["code"]]
    try:
        client.mutation("fail:plain")
    except Exception as e:
        out["plain_error"] = str(e)
    out["action"] = client.action("actions:shout", {"body": "loud"})
    out["anon"] = client.query("whoami")
    client.set_auth(token)
    out["authed"] = client.query("whoami")
    client.clear_auth()
    out["cleared"] = client.query("whoami")
    sub = client.subscribe("messages:count")
    it = iter(sub)
    first = next(it)
    print("READY", flush=True)
    sys.stdin.readline()  # the parent writes a message from the notebook side, then a line
    second = next(it)
    out["subscription"] = [first, second]
    sub.unsubscribe()
    print(json.dumps(out), flush=True)
''')


@pytest.fixture
def served() -> Iterator[tuple[cl.Backend, str, cl.TestIssuer]]:
    issuer = cl.TestIssuer()
    with cl.Backend(app=wire_app(issuer.provider)) as backend:
        yield backend, backend.serve().url, issuer


def test_the_official_python_client_from_another_process(
        served: tuple[cl.Backend, str, cl.TestIssuer]) -> None:
    backend, url, issuer = served
    proc = subprocess.Popen([sys.executable, "-c", SCRIPT, url, issuer.token("grace")],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        assert proc.stdout is not None and proc.stdin is not None
        lines: list[str] = []
        for line in proc.stdout:
            lines.append(line)
            if line.startswith("READY"):
                break
        assert lines and lines[-1].startswith("READY"), "".join(lines) + proc.stderr.read()
        backend.mutation("messages:send", {"body": "from the notebook"})  # seen live there
        proc.stdin.write("go\n")
        proc.stdin.flush()
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, stderr
    out: dict[str, Any] = json.loads(stdout.strip().splitlines()[-1])
    assert out["empty"] == []
    assert isinstance(out["sent_id"], str)
    assert out["after"] == ["from pypi"]
    assert out["bump"] == "ConvexInt64(1)" and out["get"] == "ConvexInt64(1)"
    assert out["int64"] == [f"ConvexInt64({2**62})", "Int64"]
    assert out["bytes"] == [True, "bytes"]
    assert out["plain_int"] == "float"  # that client sends a Python int as a float64
    assert out["convex_error"] == ["ConvexInt64(3)", "EmptyMessage"]
    assert "the secret is 42" in out["plain_error"]
    assert out["action"] == "LOUD"
    assert out["anon"] is None and out["authed"] == "grace" and out["cleared"] is None
    assert out["subscription"] == [2.0, 3.0]
    bodies = {d["body"] for d in backend.query("messages:list")}
    assert bodies == {"from pypi", "LOUD", "from the notebook"}
