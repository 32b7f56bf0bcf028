"""Pydantic models wherever a validator is accepted (DESIGN §8, "Pydantic"; issue 13 item 4)."""

from __future__ import annotations

import datetime
import sys
from collections.abc import Iterator
from typing import Annotated, Any

import pytest

import convex_lab as cl
from convex_lab import Int64, v
from convex_lab.errors import (
    ArgumentValidationError,
    InvalidValidatorError,
    ReturnsValidationError,
    SchemaValidationError,
)
from convex_lab.validators import validator_from_json

pydantic = pytest.importorskip("pydantic",
                               reason="pydantic is not installed (pip install pydantic)")
BaseModel = pydantic.BaseModel
Field = pydantic.Field


class Address(BaseModel):
    city: str
    zip: Annotated[str, Field(pattern=r"^\d{5}$")]


class Signup(BaseModel):
    name: Annotated[str, Field(min_length=3, max_length=20, description="display name")]
    email: str
    age: int = Field(ge=13)
    address: Address | None = None
    tags: list[str] = Field(default_factory=list)

    @pydantic.field_validator("name")
    @classmethod
    def clean_name(cls, value: str) -> str:  # a transformation and a custom message
        if value != value.strip():
            raise ValueError("no spaces around the name, please")
        return value.title()

    @pydantic.field_validator("email")
    @classmethod
    def lower_email(cls, value: str) -> str:
        if "@" not in value:
            raise ValueError("an email address has an @")
        return value.lower()


class Event(BaseModel):
    title: str
    at: datetime.datetime
    seats: int = Field(gt=0)


@pytest.fixture
def app() -> cl.App:
    return cl.App(schema=cl.define_schema({
        "users": cl.define_table(Signup).index("by_email", ["email"]),
        "events": cl.define_table(Event),
    }))


@pytest.fixture
def backend(app: cl.App) -> Iterator[cl.Backend]:
    with cl.Backend(app=app) as b:
        yield b


def test_args_model_gives_the_handler_the_parsed_transformed_fields(app: cl.App,
                                                                     backend: cl.Backend) -> None:
    seen: dict[str, Any] = {}

    @app.mutation(args=Signup)
    def signup(ctx: Any, *, name: str, email: str, age: int, address: Address | None,
               tags: list[str]) -> Any:
        seen.update(name=name, email=email, age=age, address=address, tags=tags)
        return name

    result = backend.mutation(signup, {"name": "ada lovelace", "email": "ADA@Example.com",
                                       "age": 36, "address": {"city": "London", "zip": "12345"}})
    assert result == "Ada Lovelace"
    assert seen["email"] == "ada@example.com"
    assert isinstance(seen["address"], Address) and seen["address"].city == "London"
    assert seen["tags"] == []  # the model's default
    assert seen["age"] == 36


def test_pydantic_failures_are_argument_errors_with_path_and_messages(
        app: cl.App, backend: cl.Backend) -> None:
    @app.mutation(args=Signup)
    def signup(ctx: Any, **fields: Any) -> Any:
        return ctx.db.insert("users", {"name": fields["name"], "email": fields["email"],
                                       "age": fields["age"]})

    with pytest.raises(ArgumentValidationError) as info:
        backend.mutation(signup, {"name": " al", "email": "nope", "age": 12})
    text = str(info.value)
    assert "no spaces around the name, please" in text  # the custom message
    assert ".email: Value error, an email address has an @" in text
    assert ".age: Input should be greater than or equal to 13" in text
    assert "Path: .name" in text  # the first problem's path
    with pytest.raises(ArgumentValidationError, match=r"\.address\.zip: String should match"):
        backend.mutation(signup, {"name": "Bob", "email": "b@x.io", "age": 20,
                                  "address": {"city": "Paris", "zip": "75"}})
    assert backend.query(_count_users(app)) == 0  # nothing was written


def _count_users(app: cl.App) -> Any:
    @app.query(name="count_users")
    def count_users(ctx: Any) -> int:
        return len(ctx.db.query("users").collect())

    return count_users


def test_returns_model_reaches_the_caller_as_a_dict(app: cl.App, backend: cl.Backend) -> None:
    @app.query(returns=Signup)
    def me(ctx: Any) -> Any:
        return Signup(name="grace", email="g@navy.mil", age=85)

    @app.query(returns=Signup)
    def broken(ctx: Any) -> Any:
        return {"name": "x", "email": "x@y", "age": 1}

    assert backend.query(me) == {"name": "Grace", "email": "g@navy.mil", "age": Int64(85),
                                 "address": None, "tags": []}
    with pytest.raises(ReturnsValidationError, match=r"\.age: Input should be greater"):
        backend.query(broken)


def test_models_returned_without_returns_are_plain_data(app: cl.App,
                                                       backend: cl.Backend) -> None:
    """A handler may return model instances (alone, or inside lists and objects) without
    declaring returns=: the caller gets their dumps, as with returns=Model; other values that
    are not Convex values are still refused."""
    when = datetime.datetime(2026, 12, 3, 9, 30)

    @app.query()
    def upcoming(ctx: Any) -> Any:
        return {"events": [Event(title="launch", at=when, seats=3)], "n": 1.0}

    @app.query()
    def one(ctx: Any) -> Any:
        return Signup(name="ada", email="ADA@x.org", age=36)

    @app.query()
    def odd(ctx: Any) -> Any:
        return {"x": object()}

    assert backend.query(upcoming) == {
        "events": [{"title": "launch", "at": "2026-12-03T09:30:00", "seats": Int64(3)}],
        "n": 1.0}
    assert backend.query(one)["email"] == "ada@x.org"
    with pytest.raises(cl.errors.InvalidValueError, match="object"):
        backend.query(odd)


def test_define_table_with_a_model_validates_and_transforms_documents(
        app: cl.App, backend: cl.Backend) -> None:
    @app.mutation
    def add(ctx: Any, doc: dict[str, Any]) -> Any:
        return ctx.db.insert("users", doc)

    @app.mutation
    def add_event(ctx: Any, doc: dict[str, Any]) -> Any:
        return ctx.db.insert("events", doc)

    @app.query
    def by_email(ctx: Any, email: str) -> Any:
        return ctx.db.query("users").with_index("by_email", lambda q: q.eq("email", email)).unique()

    backend.mutation(add, {"doc": {"name": "linus", "email": "L@Kernel.org", "age": 54}})
    doc = backend.query(by_email, {"email": "l@kernel.org"})
    assert doc["name"] == "Linus" and type(doc["age"]) is Int64
    with pytest.raises(SchemaValidationError) as info:
        backend.mutation(add, {"doc": {"name": "x", "email": "x@y.z", "age": 30}})
    assert 'table "users"' in str(info.value)
    assert "String should have at least 3 characters" in str(info.value)

    backend.mutation(add_event, {"doc": {"title": "launch", "at": "2026-12-03T09:00:00Z",
                                         "seats": 3}})
    stored = backend.query(_all_events(app))
    assert stored[0]["at"] == "2026-12-03T09:00:00Z"  # a datetime is stored as ISO text
    with pytest.raises(SchemaValidationError, match="Input should be greater than 0"):
        backend.mutation(add_event, {"doc": {"title": "x", "at": "2026-12-03T09:00:00Z",
                                             "seats": 0}})


def _all_events(app: cl.App) -> Any:
    @app.query(name="all_events")
    def all_events(ctx: Any) -> Any:
        return ctx.db.query("events").collect()

    return all_events


def test_from_pydantic_gives_the_convex_validator_with_constraints() -> None:
    validator = v.from_pydantic(Signup)
    assert validator.kind == "object"
    assert validator.fields["age"] == v.int64()
    assert validator.fields["tags"] == v.optional(v.array(v.string()))
    assert validator.fields["address"] == v.optional(v.union(
        v.object({"city": v.string(), "zip": v.string()}), v.null()))
    data = validator.to_json()
    assert data["value"]["name"]["constraints"] == {"minLength": 3, "maxLength": 20}
    assert data["value"]["name"]["description"] == "display name"
    assert data["value"]["age"]["constraints"] == {"minimum": 13}
    # Convex's own JSON readers ignore the extra entries: the shape round-trips.
    assert validator_from_json(data) == v.object(dict(validator.fields))
    assert repr(validator) == "v.from_pydantic(Signup)"


def test_a_validator_in_annotated_metadata_is_the_field_validator() -> None:
    class Message(BaseModel):
        author: Annotated[str, v.id("users")]
        body: str

    assert v.from_pydantic(Message).fields["author"] == v.id("users")


def test_a_model_nested_in_another_validator_runs_pydantic() -> None:
    assert isinstance(v.array(v.from_pydantic(Address)).element, type(v.from_pydantic(Address)))
    checked = v.array(v.from_pydantic(Address)).validate([{"city": "Oslo", "zip": "01234"}])
    assert checked == [{"city": "Oslo", "zip": "01234"}]
    with pytest.raises(cl.errors.ValidationError, match=r"Path: \[0\]\.zip"):
        v.array(v.from_pydantic(Address)).validate([{"city": "Oslo", "zip": "1"}])


def test_missing_pydantic_is_named_with_the_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pydantic", None)
    with pytest.raises(InvalidValidatorError, match="pip install pydantic"):
        v.from_pydantic(object)


def test_from_pydantic_refuses_a_non_model() -> None:
    with pytest.raises(InvalidValidatorError, match="BaseModel subclass"):
        v.from_pydantic(dict)
