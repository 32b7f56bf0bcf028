"""The unmodified npm ``convex`` client in Node against a served backend (issue 12 §4):
``ConvexHttpClient``; ``ConvexClient`` subscriptions, auth, and an optimistic update that shows
at once, is replaced by the server's value and rolls back when the mutation fails.

The client is tests/node/ (its own package.json and package-lock.json pinning ``convex``),
installed here with ``npm ci`` when node_modules is missing or older than the lock file; the
tests are tests/node/*.test.mjs, run with ``node --test``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

import convex_lab as cl
from tests._wire_app import wire_app

NODE_DIR = Path(__file__).parent / "node"

pytestmark = pytest.mark.skipif(shutil.which("node") is None or shutil.which("npm") is None,
                                reason="node and npm are needed for the npm `convex` client "
                                       "tests (apt-get install nodejs npm)")


def install() -> None:
    marker = NODE_DIR / "node_modules" / ".package-lock.json"
    lock = NODE_DIR / "package-lock.json"
    if marker.exists() and marker.stat().st_mtime >= lock.stat().st_mtime:
        return
    done = subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--ignore-scripts"],
                          cwd=NODE_DIR, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, f"npm ci in tests/node failed:\n{done.stdout}\n{done.stderr}"


def test_the_official_npm_client_in_node() -> None:
    install()
    issuer = cl.TestIssuer()
    with cl.Backend(app=wire_app(issuer.provider)) as backend:
        env = dict(os.environ, CONVEX_URL=backend.serve().url, CONVEX_TOKEN=issuer.token("ada"))
        run = subprocess.run(["node", "--test", "--test-reporter=spec", "--test-timeout=60000",
                              *sorted(str(p) for p in NODE_DIR.glob("*.test.mjs"))],
                             cwd=NODE_DIR, env=env, capture_output=True, text=True, timeout=300,
                             check=False)
        assert run.returncode == 0, run.stdout + run.stderr
        assert "pass 4\n" in run.stdout and "fail 0\n" in run.stdout, run.stdout
        bodies = {d["body"] for d in backend.query("messages:list")}
        assert {"over http", "one", "two", "three", "fast"} <= bodies
        assert "doomed" not in bodies and "" not in bodies
