"""P3: invalidation with many live queries.

10,000 live queries, each on its own index range (``eq`` on a distinct channel). A mutation
inserts into one channel, touching exactly one of them. Ours: the cost of that mutation with the
10,000 subscriptions (it returns after the touched query re-ran: delivery is synchronous outside a
kernel). Anchor: the same mutation on a backend with 1 subscription, measured in the same run.
Also: commit → callback latency, from the commit becoming visible to the live query's callback.
"""

from __future__ import annotations

import statistics
import time
from typing import Any

import convex_lab as cl
from benchmarks._common import Row, interleave, rounds
from convex_lab import define_schema, define_table, v

N_SUBS = 10_000


def make(n_subs: int) -> tuple[cl.Backend, Any, list[float]]:
    app = cl.App()
    app.schema = define_schema({
        "messages": define_table({"channel": v.string(), "body": v.string()})
        .index("by_channel", ["channel"]),
    })

    @app.query(args={"channel": v.string()})
    def by_channel(ctx: Any, channel: str) -> Any:
        return ctx.db.query("messages").with_index(
            "by_channel", lambda q: q.eq("channel", channel)).order("desc").take(10)

    @app.mutation(args={"channel": v.string(), "body": v.string()})
    def send(ctx: Any, channel: str, body: str) -> Any:
        return ctx.db.insert("messages", {"channel": channel, "body": body})

    backend = cl.Backend(app=app)
    backend.mutation(send, {"channel": "warm", "body": "x"})  # the table exists
    commits: list[float] = []
    # Registered before the subscription manager's listener, so it runs first.
    backend.store.commits.subscribe(lambda _c: commits.append(time.perf_counter()))
    lag: list[float] = []
    for i in range(n_subs):
        live = backend.subscribe(by_channel, {"channel": f"c{i}"})
        if i == 0:
            live.on_change(lambda _v: lag.append(time.perf_counter() - commits[-1]))
    return backend, send, lag


def bench_p3() -> list[Row]:
    many, send_many, lag = make(N_SUBS)
    one, send_one, _ = make(1)

    def rate(backend: cl.Backend, send: Any) -> float:
        n = 300
        t0 = time.perf_counter()
        for i in range(n):
            backend.mutation(send, {"channel": "c0", "body": str(i)})
        return (time.perf_counter() - t0) / n * 1e6

    rate(many, send_many)
    rate(one, send_one)
    lag.clear()
    ours, anchor, ratio = interleave(lambda: rate(many, send_many),
                                     lambda: rate(one, send_one), rounds())
    p50_lag = statistics.median(lag) * 1e3
    many.close()
    one.close()
    return [
        Row("P3", f"mutation touching 1 of {N_SUBS:,} live queries", ours, "µs",
            "same mutation, 1 live query", anchor, False, "≤ 1.5× anchor", ratio <= 1.5),
        Row("P3", "  commit → live-query callback (p50)", p50_lag, "ms", "goal", 1.0, False,
            "≤ 1 ms", p50_lag <= 1.0),
    ]
