"""The function runner's form for a function whose arguments are a pydantic model (DESIGN §8,
"Pydantic"): its args spec is the model's Convex validator with each field's constraints, and a
run through the form validates with pydantic."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any

import pytest

pytest.importorskip("anywidget", reason="anywidget is not installed (pip install -e '.[lab]')")
pytest.importorskip("pydantic", reason="pydantic is not installed (pip install pydantic)")

import pydantic
from _widget_fixtures import ask, bundle, make, sent, widgets  # noqa: F401 (pytest fixtures)

import convex_lab as cl
from convex_lab.jupyter.widgets import function_runner


class Signup(pydantic.BaseModel):
    name: Annotated[str, pydantic.Field(min_length=3, description="display name")]
    age: int = pydantic.Field(default=18, ge=13)


@pytest.fixture
def backend() -> Iterator[cl.Backend]:
    app = cl.App()

    @app.mutation(args=Signup, name="signup")
    def signup(ctx: Any, name: str, age: int) -> str:
        return f"{name.upper()} ({age})"

    with cl.Backend(app=app) as b:
        yield b


def test_the_runner_form_shows_the_models_fields_and_constraints(
        backend: cl.Backend, make: Any, sent: list[dict[str, Any]]) -> None:  # noqa: F811 (pytest fixtures)
    w = make(function_runner, backend, "signup")
    spec = next(f for f in w.functions if f["path"] == "signup")["args"]
    assert spec["type"] == "object"
    assert spec["value"]["name"] == {"fieldType": {"type": "string"}, "optional": False,
                                     "constraints": {"minLength": 3},
                                     "description": "display name"}
    assert spec["value"]["age"] == {"fieldType": {"type": "bigint"}, "optional": True,
                                    "constraints": {"minimum": 13}, "default": 18}
    ok = ask(w, sent, {"type": "run", "id": "1", "path": "signup", "args": {"name": "ada"}})
    assert ok["ok"] is True and ok["result"] == "ADA (18)"
    refused = ask(w, sent, {"type": "run", "id": "2", "path": "signup",
                            "args": {"name": "al", "age": {"$int64": "9"}}})
    assert refused["ok"] is False
    assert "String should have at least 3 characters" in str(refused["error"])
    assert ".age: Input should be greater than or equal to 13" in str(refused["error"])
