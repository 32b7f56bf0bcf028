"""``%convex serve``: serves the default backend and prints both URLs (DESIGN §5, §8)."""

from __future__ import annotations

import contextlib
import io
import json
import urllib.request
from collections.abc import Iterator

import pytest

pytest.importorskip("IPython", reason="IPython is not installed (pip install ipython)")

from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell

import convex_lab as cl
from convex_lab import functions


@pytest.fixture
def ip(monkeypatch: pytest.MonkeyPatch) -> Iterator[InteractiveShell]:
    shell = InteractiveShell.instance()
    monkeypatch.setattr(functions, "_default_app", None)
    previous = cl.set_default_backend(None)
    shell.run_line_magic("load_ext", "convex_lab")
    try:
        yield shell
    finally:
        shell.run_line_magic("unload_ext", "convex_lab")
        ours = cl.set_default_backend(previous)
        if ours is not None:
            ours.close()


def test_convex_serve_prints_both_urls_that_answer(ip: InteractiveShell) -> None:
    ip.run_cell("import convex_lab as cl\n"
                "@cl.http_action\n"
                "def ping(ctx, request):\n"
                "    return cl.Response.from_json({'pong': request.query.get('n')})\n"
                "cl.default_app().http = cl.HttpRouter()\n"
                "cl.default_app().http.route(path='/ping', method='GET', handler=ping)\n")
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        ip.run_line_magic("convex", "serve")
    lines = out.getvalue().splitlines()
    assert lines[0] == "Serving the default backend on 127.0.0.1:"
    url = lines[1].split()[-1]
    site = lines[2].split()[-1]
    assert lines[1].lstrip().startswith("deployment URL") and lines[2].lstrip().startswith(
        "site URL (HTTP actions)")
    server = cl.default_backend().serve()
    assert (url, site) == (server.url, server.site_url)
    with urllib.request.urlopen(site + "/ping?n=1", timeout=10) as response:
        assert json.loads(response.read()) == {"pong": "1"}
    with urllib.request.urlopen(url + "/", timeout=10) as response:
        assert response.read().startswith(b"This Convex deployment is running")
    with pytest.raises(UsageError, match="Usage: %convex serve"):
        ip.run_line_magic("convex", "serve now")
