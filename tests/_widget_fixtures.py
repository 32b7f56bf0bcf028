"""Fixtures shared by the headless widget tests (imported by those test modules, not by the
suite-wide conftest: the core's tests must not need anywidget)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any
from unittest.mock import patch

import pytest

from convex_lab.jupyter import _base
from convex_lab.jupyter.widgets import STATIC, ConvexWidget


def ask(widget: ConvexWidget, sent: list[dict[str, Any]],
        request: dict[str, Any]) -> dict[str, Any]:
    """Deliver ``request`` as the front-end would; return the one response it caused."""
    before = len(sent)
    widget._handle_custom_msg(request, [])
    responses = [m for m in sent[before:] if m.get("type") == "response"]
    assert len(responses) == 1, sent[before:]
    assert responses[0]["id"] == request["id"]
    return responses[0]


@pytest.fixture(autouse=True)
def bundle() -> Iterator[None]:
    """Protocol tests need no JavaScript: without a build (no npm here) use a stub module."""
    if (STATIC / "widget.js").is_file():
        yield
        return
    with patch.object(_base, "load_bundle", return_value=("export default {render() {}};", "")):
        yield


@pytest.fixture
def sent() -> Iterator[list[dict[str, Any]]]:
    """Every custom message a widget sends to the front-end, in order."""
    messages: list[dict[str, Any]] = []

    def send(self: Any, content: dict[str, Any], buffers: Any = None) -> None:
        messages.append(content)

    with patch.object(ConvexWidget, "send", send):
        yield messages


@pytest.fixture
def widgets() -> Iterator[list[Any]]:
    """Widgets made by a test; closed after it."""
    made: list[Any] = []
    yield made
    for w in made:
        w.close()


@pytest.fixture
def make(widgets: list[Any]) -> Callable[..., Any]:
    """``make(factory, *args, **kwargs)``: a widget, closed when the test ends."""
    def make(factory: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        widget = factory(*args, **kwargs)
        widgets.append(widget)
        return widget

    return make
