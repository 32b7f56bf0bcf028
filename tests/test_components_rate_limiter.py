"""The rate-limiter component (DESIGN §8; issue 13 item 3): token bucket and fixed window on the
backend's (virtual) clock, per-key limits, check/reset, retryAfter, throws, shards."""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from typing import Any

import pytest

import convex_lab as cl
from convex_lab.components.rate_limiter import RateLimiter
from convex_lab.components.rate_limiter import component as rate_limiter
from convex_lab.errors import ConvexError, ConvexLabError

MINUTE = 60_000.0
LIMITS = {
    "send": {"kind": "token bucket", "rate": 3, "period": MINUTE},
    "burst": {"kind": "token bucket", "rate": 1, "period": MINUTE, "capacity": 4},
    "daily": {"kind": "fixed window", "rate": 2, "period": 24 * 60 * MINUTE},
    "hot": {"kind": "token bucket", "rate": 40, "period": MINUTE, "shards": 4},
}


@pytest.fixture
def env() -> Iterator[tuple[cl.Backend, dict[str, Any]]]:
    app = cl.App()
    app.use(rate_limiter)
    limits = RateLimiter(app.components.rate_limiter, LIMITS)

    @app.mutation(name="hit")
    def hit(ctx: Any, name: str, key: Any = None, count: float = 1.0,
            throws: bool = False) -> Any:
        return limits.limit(ctx, name, key=key, count=count, throws=throws)

    @app.mutation(name="send")
    def send(ctx: Any, user: str, body: str) -> Any:
        limits.limit(ctx, "send", key=user, throws=True)
        return ctx.db.insert("messages", {"user": user, "body": body})

    @app.query(name="peek")
    def peek(ctx: Any, name: str, key: Any = None, count: float = 1.0) -> Any:
        return limits.check(ctx, name, key=key, count=count)

    @app.mutation(name="reset")
    def reset(ctx: Any, name: str, key: Any = None) -> None:
        limits.reset(ctx, name, key=key)

    @app.query(name="messages")
    def messages(ctx: Any) -> int:
        return len(ctx.db.query("messages").collect())

    with cl.Backend(app=app, clock="virtual") as backend:
        yield backend, {"hit": hit, "send": send, "peek": peek, "reset": reset,
                        "messages": messages}


def test_token_bucket_refills_with_virtual_time(env: tuple[cl.Backend, dict[str, Any]]) -> None:
    backend, fns = env
    for _ in range(3):
        assert backend.mutation(fns["hit"], {"name": "send"}) == {"ok": True, "retryAfter": None}
    denied = backend.mutation(fns["hit"], {"name": "send"})
    assert denied["ok"] is False
    assert denied["retryAfter"] == pytest.approx(MINUTE / 3)  # one token every 20 s
    backend.clock.advance(MINUTE / 3 - 1)
    assert backend.mutation(fns["hit"], {"name": "send"})["ok"] is False
    backend.clock.advance(1)
    assert backend.mutation(fns["hit"], {"name": "send"})["ok"] is True
    backend.clock.advance(10 * MINUTE)  # refills up to the capacity (3), no more
    assert [backend.mutation(fns["hit"], {"name": "send"})["ok"] for _ in range(4)] == [
        True, True, True, False]


def test_capacity_allows_a_burst_and_count_consumes_several(
        env: tuple[cl.Backend, dict[str, Any]]) -> None:
    backend, fns = env
    assert backend.mutation(fns["hit"], {"name": "burst", "count": 3.0})["ok"] is True
    denied = backend.mutation(fns["hit"], {"name": "burst", "count": 2.0})
    assert denied == {"ok": False, "retryAfter": pytest.approx(MINUTE)}  # 1 held, 2 needed
    with pytest.raises(ConvexError) as info:
        backend.mutation(fns["hit"], {"name": "burst", "count": 5.0})
    assert info.value.data["kind"] == "InvalidCount"


def test_fixed_window_resets_at_the_window_boundary(
        env: tuple[cl.Backend, dict[str, Any]]) -> None:
    backend, fns = env
    day = 24 * 60 * MINUTE
    now = backend.clock.now()
    next_window = (now // day + 1) * day
    assert [backend.mutation(fns["hit"], {"name": "daily"})["ok"] for _ in range(3)] == [
        True, True, False]
    denied = backend.mutation(fns["hit"], {"name": "daily"})
    assert denied["retryAfter"] == pytest.approx(next_window - now)
    backend.clock.advance(next_window - now)
    assert backend.mutation(fns["hit"], {"name": "daily"})["ok"] is True


def test_keys_have_their_own_state_and_reset_forgets_one(
        env: tuple[cl.Backend, dict[str, Any]]) -> None:
    backend, fns = env
    for _ in range(3):
        backend.mutation(fns["hit"], {"name": "send", "key": "ada"})
    assert backend.mutation(fns["hit"], {"name": "send", "key": "ada"})["ok"] is False
    assert backend.mutation(fns["hit"], {"name": "send", "key": "bob"})["ok"] is True
    backend.mutation(fns["reset"], {"name": "send", "key": "ada"})
    assert backend.mutation(fns["hit"], {"name": "send", "key": "ada"})["ok"] is True


def test_check_consumes_nothing(env: tuple[cl.Backend, dict[str, Any]]) -> None:
    backend, fns = env
    for _ in range(5):
        assert backend.query(fns["peek"], {"name": "send"})["ok"] is True
    for _ in range(3):
        assert backend.mutation(fns["hit"], {"name": "send"})["ok"] is True
    assert backend.query(fns["peek"], {"name": "send"})["ok"] is False


def test_throws_raises_rate_limited_and_the_mutation_writes_nothing(
        env: tuple[cl.Backend, dict[str, Any]]) -> None:
    backend, fns = env
    for i in range(3):
        backend.mutation(fns["send"], {"user": "ada", "body": f"hi {i}"})
    with pytest.raises(ConvexError) as info:
        backend.mutation(fns["send"], {"user": "ada", "body": "one too many"})
    assert info.value.data == {"kind": "RateLimited", "name": "send",
                               "retryAfter": pytest.approx(MINUTE / 3)}
    assert backend.query(fns["messages"]) == 3


def test_sharded_limit_grants_about_its_capacity(env: tuple[cl.Backend, dict[str, Any]]) -> None:
    backend, fns = env
    random.seed(7)
    granted = sum(backend.mutation(fns["hit"], {"name": "hot"})["ok"] for _ in range(60))
    # 4 shards of 10: two choices per call find the tokens left in most shards
    assert 36 <= granted <= 40
    denied = backend.mutation(fns["hit"], {"name": "hot"})
    assert denied["ok"] is False and 0 < denied["retryAfter"] <= MINUTE / 10
    shards = {d["shard"] for d in backend.store.tables["rate_limiter/rateLimits"].docs.values()}
    assert len(shards) == 4  # the state is spread over four documents


def test_bad_configurations_are_named() -> None:
    app = cl.App()
    app.use(rate_limiter)
    with pytest.raises(ConvexLabError, match="kind must be 'token bucket' or 'fixed window'"):
        RateLimiter(app.components.rate_limiter, {"x": {"kind": "leaky", "rate": 1,
                                                        "period": 1}})
    with pytest.raises(ConvexLabError, match="period must be a positive number"):
        RateLimiter(app.components.rate_limiter, {"x": {"kind": "token bucket", "rate": 1}})
    limits = RateLimiter(app.components.rate_limiter, {})
    with pytest.raises(ConvexLabError, match="No rate limit named 'send'"):
        limits.limit(None, "send")
    for rate in (math.nan, math.inf, -1, True):
        with pytest.raises(ConvexLabError, match="rate must be a positive number"):
            RateLimiter(app.components.rate_limiter, {"x": {"kind": "token bucket",
                                                            "rate": rate, "period": 1}})


@pytest.mark.parametrize("count", [-1.0, math.nan, math.inf])
def test_a_count_that_would_add_tokens_is_refused(env: tuple[cl.Backend, dict[str, Any]],
                                                  count: float) -> None:
    backend, fns = env
    with pytest.raises(ConvexLabError, match="a finite number >= 0"):
        backend.mutation(fns["hit"], {"name": "send", "key": "ada", "count": count})
    for _ in range(3):  # the limit is untouched: its capacity is still all there
        assert backend.mutation(fns["hit"], {"name": "send", "key": "ada"})["ok"]
