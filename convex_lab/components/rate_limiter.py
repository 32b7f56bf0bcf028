"""``convex_lab.components.rate_limiter``: token buckets and fixed windows kept in a component,
mirroring the npm ``@convex-dev/rate-limiter`` (DESIGN §8, "Components").

Usage::

    from convex_lab.components.rate_limiter import RateLimiter, component as rate_limiter
    app.use(rate_limiter)
    limits = RateLimiter(app.components.rate_limiter, {
        "send": {"kind": "token bucket", "rate": 3, "period": 60_000, "capacity": 3},
        "signup": {"kind": "fixed window", "rate": 100, "period": 3_600_000, "shards": 4},
    })
    # in a mutation:  limits.limit(ctx, "send", key=user_id, throws=True)

Contract:

* A limit is ``{"kind": "token bucket" | "fixed window", "rate", "period" (ms), "capacity"?
  (default ``rate``), "shards"? (default 1), "start"? (fixed window: where windows are aligned,
  ms since the epoch, default 0)}``. A token bucket refills ``rate`` tokens per ``period``
  continuously, up to ``capacity``; a fixed window grants ``rate`` more (up to ``capacity``) at
  each window boundary.
* ``limit(ctx, name, key=None, count=1, throws=False)`` consumes ``count`` when it can and
  returns ``{"ok": True, "retryAfter": None}``; otherwise consumes nothing and returns
  ``{"ok": False, "retryAfter": ms}`` — or, with ``throws=True``, raises
  ``ConvexError({"kind": "RateLimited", "name", "retryAfter"})``. ``check(...)`` answers the
  same without consuming (a query: usable in queries and live queries); ``reset(ctx, name,
  key=None)`` forgets the key's state. Each ``key`` (any Convex value; ``None`` for a global
  limit) has its own state. A ``count`` above the capacity can never succeed: an error.
* Time is the backend's clock as the calling function sees it (``cl.now()``, frozen in a query
  or mutation): with a virtual clock, ``backend.clock.advance(ms)`` refills buckets.
* Sharded (``shards=n``): the capacity and rate are split over ``n`` state documents; a call
  takes a random shard and, when that one cannot serve it, a second one (the npm component's
  power of two choices), so concurrent callers of a hot limit rarely write the same document.
  ``retryAfter`` is then the better shard's.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping
from typing import Any, Final

from convex_lab._runtime import function_time
from convex_lab.components import define_component
from convex_lab.errors import ConvexError, FunctionError
from convex_lab.schema import define_schema, define_table
from convex_lab.validators import v

KINDS: Final = ("token bucket", "fixed window")

component = define_component("rate_limiter", define_schema({
    "rateLimits": define_table({
        "name": v.string(), "key": v.any(), "shard": v.float64(), "value": v.float64(),
        "ts": v.float64(),
    }).index("by_name_key_shard", ["name", "key", "shard"]),
}))
"""The component definition: mount it with ``app.use(component)`` (name ``rate_limiter``)."""


def check_config(name: str, config: Any) -> dict[str, Any]:
    """A limit's configuration, completed with its defaults; a clear error when it is wrong."""
    if not isinstance(config, Mapping):
        raise FunctionError(f"Rate limit {name!r}: give a dict such as {{'kind': 'token bucket', "
                         f"'rate': 10, 'period': 60_000}}; got {config!r}.")
    kind = config.get("kind")
    if kind not in KINDS:
        raise FunctionError(f"Rate limit {name!r}: kind must be 'token bucket' or 'fixed "
                            f"window'; got {kind!r}.")
    out = {"kind": kind, "shards": 1.0, "start": 0.0, **config}
    for field in ("rate", "period"):
        x = out.get(field)
        if (not isinstance(x, (int, float)) or isinstance(x, bool) or not x > 0
                or not math.isfinite(x)):
            raise FunctionError(f"Rate limit {name!r}: {field} must be a positive number "
                                f"(period in ms); got {x!r}.")
    out.setdefault("capacity", out["rate"])
    shards = out["shards"]
    if (not isinstance(shards, (int, float)) or isinstance(shards, bool)
            or not math.isfinite(shards) or shards < 1 or int(shards) != shards):
        raise FunctionError(f"Rate limit {name!r}: shards must be a whole number >= 1; got "
                            f"{shards!r}.")
    return {k: float(x) if isinstance(x, (int, float)) and not isinstance(x, bool) else x
            for k, x in out.items()}


def _refill(config: Mapping[str, Any], state: Mapping[str, Any] | None, now: float,
            shards: float) -> tuple[float, float]:
    """``(value, ts)`` of one shard at ``now``: what it holds after refilling."""
    capacity, rate, period = (config["capacity"] / shards, config["rate"] / shards,
                              config["period"])
    if config["kind"] == "token bucket":
        if state is None:
            return capacity, now
        elapsed = max(0.0, now - state["ts"])
        return min(capacity, state["value"] + elapsed * rate / period), now
    start = config["start"]
    window = start + math.floor((now - start) / period) * period  # this window's start
    if state is None:
        return capacity, window
    windows = max(0.0, math.floor((window - state["ts"]) / period))
    return min(capacity, state["value"] + windows * rate), max(window, state["ts"])


def _retry_after(config: Mapping[str, Any], value: float, ts: float, *, now: float,
                 count: float, shards: float) -> float:
    """How long until a shard holding ``value`` (as of ``ts``) can serve ``count``."""
    rate, period = float(config["rate"]) / shards, float(config["period"])
    missing = count - value
    if config["kind"] == "token bucket":
        return missing * period / rate
    return ts + period * math.ceil(missing / rate) - now


def _shard_state(ctx: Any, name: str, key: Any, shard: float) -> dict[str, Any] | None:
    state: dict[str, Any] | None = ctx.db.query("rateLimits").with_index(
        "by_name_key_shard", lambda q: q.eq("name", name).eq("key", key).eq("shard", shard),
    ).unique()
    return state


def _evaluate(ctx: Any, name: str, key: Any, count: float, config: Any, *,
              consume: bool) -> dict[str, Any]:
    config = check_config(name, config)
    shards = config["shards"]
    if count > config["capacity"] / shards:
        raise ConvexError({"kind": "InvalidCount", "name": name, "message": (
            f"count {count:g} exceeds the capacity {config['capacity'] / shards:g} of rate "
            f"limit {name!r}{' per shard' if shards > 1 else ''}: it could never succeed")})
    now = function_time()
    if now is None:
        raise RuntimeError("rate limits are evaluated inside a function")
    picks = [0.0] if shards == 1 else [float(s) for s in random.sample(range(int(shards)),
                                                                       min(2, int(shards)))]
    best: tuple[float, float, float, dict[str, Any] | None] | None = None  # value, ts, shard
    for shard in picks:
        state = _shard_state(ctx, name, key, shard)
        value, ts = _refill(config, state, now, shards)
        if best is None or value > best[0]:
            best = (value, ts, shard, state)
        if value >= count:
            break
    assert best is not None
    value, ts, shard, state = best
    if value < count:
        return {"ok": False, "retryAfter": _retry_after(config, value, ts, now=now, count=count,
                                                            shards=shards)}
    if consume:
        fields = {"name": name, "key": key, "shard": shard, "value": value - count, "ts": ts}
        if state is None:
            ctx.db.insert("rateLimits", fields)
        else:
            ctx.db.replace(state["_id"], fields)
    return {"ok": True, "retryAfter": None}


_ARGS: Final = {"name": v.string(), "key": v.any(), "count": v.float64(), "config": v.any()}


@component.mutation(name="lib:rate_limit", args=_ARGS)
def rate_limit(ctx: Any, *, name: str, key: Any, count: float, config: Any) -> dict[str, Any]:
    return _evaluate(ctx, name, key, count, config, consume=True)


@component.query(name="lib:check_rate_limit", args=_ARGS)
def check_rate_limit(ctx: Any, *, name: str, key: Any, count: float,
                     config: Any) -> dict[str, Any]:
    return _evaluate(ctx, name, key, count, config, consume=False)


@component.mutation(name="lib:reset_rate_limit", args={"name": v.string(), "key": v.any()})
def reset_rate_limit(ctx: Any, name: str, key: Any) -> None:
    for state in ctx.db.query("rateLimits").with_index(
            "by_name_key_shard", lambda q: q.eq("name", name).eq("key", key)).collect():
        ctx.db.delete(state["_id"])


class RateLimiter:
    """Named rate limits kept in a mounted ``rate_limiter`` component (module docstring)."""

    def __init__(self, component_ref: Any, limits: Mapping[str, Mapping[str, Any]]) -> None:
        self.component = component_ref
        self.limits = {name: check_config(name, config) for name, config in limits.items()}

    def _config(self, name: str) -> dict[str, Any]:
        config = self.limits.get(name)
        if config is None:
            known = ", ".join(sorted(self.limits)) or "none"
            raise FunctionError(f"No rate limit named {name!r} (defined: {known}). Add it to "
                                "RateLimiter(..., {name: {'kind', 'rate', 'period'}}).")
        return config

    @staticmethod
    def _count(count: Any) -> float:
        if (not isinstance(count, (int, float)) or isinstance(count, bool)
                or not math.isfinite(count) or count < 0):
            raise FunctionError(f"count is how many tokens to take: a finite number >= 0; got "
                                f"{count!r}.")
        return float(count)

    def limit(self, ctx: Any, name: str, key: Any = None, count: float = 1,
              throws: bool = False) -> dict[str, Any]:
        """Consume ``count`` from ``name``'s limit for ``key`` if it can (module docstring)."""
        config = self._config(name)
        got: dict[str, Any] = ctx.run_mutation(self.component.lib.rate_limit, {
            "name": name, "key": key, "count": self._count(count), "config": config})
        if throws and not got["ok"]:
            raise ConvexError({"kind": "RateLimited", "name": name,
                               "retryAfter": got["retryAfter"]})
        return got

    def check(self, ctx: Any, name: str, key: Any = None, count: float = 1,
              throws: bool = False) -> dict[str, Any]:
        """What ``limit`` would answer, consuming nothing (a query)."""
        config = self._config(name)
        got: dict[str, Any] = ctx.run_query(self.component.lib.check_rate_limit, {
            "name": name, "key": key, "count": self._count(count), "config": config})
        if throws and not got["ok"]:
            raise ConvexError({"kind": "RateLimited", "name": name,
                               "retryAfter": got["retryAfter"]})
        return got

    def reset(self, ctx: Any, name: str, key: Any = None) -> None:
        """Forget ``key``'s state of ``name``: it starts full again."""
        self._config(name)
        ctx.run_mutation(self.component.lib.reset_rate_limit, {"name": name, "key": key})

    def __repr__(self) -> str:
        return f"<RateLimiter {sorted(self.limits)} in {self.component!r}>"


__all__ = ["KINDS", "RateLimiter", "check_config", "component"]
