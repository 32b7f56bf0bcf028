"""The app the wire tests serve (tests/test_wire_*.py, tests/node/): chat messages, identity,
values of every Convex type, failures."""

from __future__ import annotations

from typing import Any

import convex_lab as cl
from convex_lab import v


def wire_app(provider: dict[str, Any] | None = None) -> cl.App:
    app = cl.App()
    if provider is not None:
        app.auth = {"providers": [provider]}
    app.schema = cl.define_schema({
        "messages": cl.define_table({"body": v.string(), "author": v.optional(v.string())}),
        "counters": cl.define_table({"name": v.string(), "n": v.int64()}).index("by_name",
                                                                               ["name"]),
    })

    @app.query(name="messages:list")
    def list_messages(ctx: Any) -> Any:
        return ctx.db.query("messages").collect()

    @app.query(name="messages:logged")
    def logged(ctx: Any) -> float:
        n = len(ctx.db.query("messages").collect())
        print("counting", n)
        return float(n)

    @app.query(name="messages:count")
    def count_messages(ctx: Any) -> float:
        return float(len(ctx.db.query("messages").collect()))

    @app.mutation(name="messages:send")
    def send(ctx: Any, body: str, author: str | None = None) -> Any:
        if body == "":
            raise cl.ConvexError({"code": "EmptyMessage", "n": cl.Int64(3)})
        print("sending", body)
        doc: dict[str, Any] = {"body": body}
        if author is not None:
            doc["author"] = author
        return ctx.db.insert("messages", doc)

    @app.query(name="counters:get")
    def get_counter(ctx: Any, name: str) -> Any:
        doc = ctx.db.query("counters").with_index("by_name", lambda q: q.eq("name", name)).unique()
        return None if doc is None else doc["n"]

    @app.query(name="counters:page")
    def page(ctx: Any, paginationOpts: Any) -> Any:  # noqa: N803 (Convex's argument name)
        return ctx.db.query("counters").with_index("by_name").paginate(paginationOpts)

    @app.mutation(name="counters:bump")
    def bump(ctx: Any, name: str) -> Any:
        doc = ctx.db.query("counters").with_index("by_name", lambda q: q.eq("name", name)).unique()
        if doc is None:
            ctx.db.insert("counters", {"name": name, "n": cl.Int64(1)})
            return cl.Int64(1)
        ctx.db.patch(doc["_id"], {"n": doc["n"] + 1})
        return doc["n"] + 1

    @app.query(name="whoami")
    def whoami(ctx: Any) -> Any:
        who = ctx.auth.get_user_identity()
        return None if who is None else who["subject"]

    @app.query(name="values:echo")
    def echo(ctx: Any, value: Any) -> Any:
        return {"value": value, "type": type(value).__name__}

    @app.mutation(name="fail:plain")
    def fail_plain(ctx: Any) -> Any:
        raise ValueError("the secret is 42")

    @app.query(name="fail:query")
    def fail_query(ctx: Any) -> Any:
        raise cl.ConvexError("no such thing")

    @app.action(name="actions:shout")
    def shout(ctx: Any, body: str) -> Any:
        print("shouting")
        ctx.run_mutation(send, {"body": body.upper()})
        return body.upper()

    @app.internal_mutation(name="admin:wipe")
    def wipe(ctx: Any) -> Any:
        for doc in ctx.db.query("messages").collect():
            ctx.db.delete(doc["_id"])

    return app
