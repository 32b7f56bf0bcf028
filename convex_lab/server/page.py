"""The web page the site URL serves beside the app's HTTP actions (issue 12 §5).

``GET <site URL>/_convex_lab/chat`` is a small live chat (``pages/chat.html``) using the official
npm ``convex`` client's browser build, served from this package at
``/_convex_lab/convex.browser.js`` (copied from web/ by scripts/bundle.py; never a CDN). The page
talks Convex's sync protocol to the deployment URL, so a notebook cell and the page edit the same
messages together, with the client's optimistic updates. ``?list=<query>&send=<mutation>`` pick
the functions (default ``messages:list`` / ``messages:send``): the query returns
``[{author, body}, ...]`` and the mutation takes ``{author, body}``.

Paths under ``/_convex_lab/`` are reserved for these; every other path is an HTTP action.
"""

from __future__ import annotations

from pathlib import Path

PREFIX = "/_convex_lab/"
PAGES = Path(__file__).resolve().parent / "pages"
BUNDLE = Path(__file__).resolve().parent.parent / "static" / "convex.browser.js"
MISSING_BUNDLE = (b"// The convex client's browser build is missing: run `python "
                  b"scripts/bundle.py` in a convex_lab checkout (npm ci in web/), or install a "
                  b"convex_lab wheel.\n"
                  b"document.getElementById('error').textContent = 'The convex client bundle is "
                  b"missing: run python scripts/bundle.py';\n")


def page(path: str, deployment_url: str) -> tuple[int, bytes, list[tuple[str, str]]] | None:
    """``(status, body, headers)`` for a reserved path, ``None`` for any other."""
    if not path.startswith(PREFIX):
        return None
    name = path[len(PREFIX):]
    if name in ("chat", "chat.html"):
        html = (PAGES / "chat.html").read_text(encoding="utf-8")
        body = html.replace("{{CONVEX_URL}}", deployment_url).encode()
        return 200, body, [("content-type", "text/html; charset=utf-8"),
                           ("cache-control", "no-store")]
    if name == "convex.browser.js":
        headers = [("content-type", "text/javascript; charset=utf-8")]
        if BUNDLE.is_file():
            return 200, BUNDLE.read_bytes(), [*headers, ("cache-control", "max-age=3600")]
        return 200, MISSING_BUNDLE, headers
    return 404, f"No page {path}: {PREFIX}chat is the chat page.".encode(), [
        ("content-type", "text/plain; charset=utf-8")]
