"""notebooks/04-files-http-auth.ipynb, executed in a real kernel: its results, and the widgets it
shows (tests/test_notebooks.py runs every notebook; this checks what this one must show)."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

import pytest
from test_notebooks import _check_fallbacks, _errors, _execute, _tagged_results, _widget_state

NOTEBOOK = Path(__file__).resolve().parent.parent / "notebooks" / "04-files-http-auth.ipynb"

EXPECTED: dict[str, object] = {
    "uploaded-names": ["orange.png"],
    "download-ok": (True, True),
    "report-text": "3 files, 0 problems",
    "after-delete": ["orange.png"],
    "routes": [("/webhooks/github", "OPTIONS"), ("/webhooks/github", "POST")],
    "events-after-webhook": ["opened #42", "closed #42"],
    "cors-preflight": (204, "*", "POST, OPTIONS"),
    "fetch-404": (404, "No HttpAction routed for /webhooks/gitlab"),
    "http-logs": [("github_webhook", "httpAction"), ("cors_preflight", "httpAction")],
    "provider": {"type": "customJwt", "issuer": "https://convex-lab.test",
                 "algorithm": "RS256", "applicationID": "convex-lab"},
    "identity": {"issuer": "https://convex-lab.test", "name": "Ada Lovelace",
                 "org.id": "analytical", "subject": "ada",
                 "tokenIdentifier": "https://convex-lab.test|ada"},
    "refusals": ("Sign in to add notes", "The JWT expired"),
    "bearer-notes": (["The engine weaves algebraic patterns."], 401),
}

pytestmark = pytest.mark.notebook


@pytest.fixture(scope="module")
def executed() -> Any:
    return _execute(NOTEBOOK)


def test_the_tutorial_shows_what_it_says(executed: Any) -> None:
    assert not _errors(executed), _errors(executed)
    results = _tagged_results(executed)
    for tag, want in EXPECTED.items():
        assert tag in results, f"no result for [{tag}]"
        assert ast.literal_eval(results[tag]) == want, f"[{tag}]: {results[tag]}"
    _check_fallbacks(executed, NOTEBOOK.name)


def test_its_widgets_are_the_upload_picker_and_live_previews(executed: Any) -> None:
    upload = _widget_state(executed, "upload-widget")
    assert (upload["_view"], upload["path"], upload["accept"]) == ("upload", "save_file",
                                                                  "image/*")
    previews = _widget_state(executed, "file-previews")
    assert previews["_view"] == "upload_previews" and previews["status"] == "ready"
    [row] = previews["value"]  # the PNG uploaded later; the report was stored and deleted
    assert row["name"] == "orange.png"
    assert row["preview"].startswith("http://127.0.0.1:") and "/api/storage/" in row["preview"]
    events = _widget_state(executed, "live-events")
    assert [e["detail"] for e in events["value"]] == ["opened #42", "closed #42"]
