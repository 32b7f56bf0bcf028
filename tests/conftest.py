"""Suite-wide ordering.

The real-browser tests (tests/browser/) share one Playwright session, and Playwright's sync API
leaves an asyncio loop marked as running in the main thread until the session ends. Code under
test treats a running main-thread loop as a Jupyter kernel's (live-query refreshes and scheduler
timers go on it), and ``asyncio.run`` refuses to start; so the browser tests run last, after
everything that must see a plain thread.
"""

from __future__ import annotations

from pathlib import Path

import pytest

BROWSER = Path(__file__).parent / "browser"


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    def in_browser(item: pytest.Item) -> bool:
        return BROWSER in Path(str(item.fspath)).resolve().parents

    items.sort(key=in_browser)  # stable: the order within each group is kept
