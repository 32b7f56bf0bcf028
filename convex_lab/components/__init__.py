"""Components (DESIGN §8, "Components"): backend modules with their own tables and functions.

``define_component(name)`` makes a definition (the same decorators as ``App``); an app mounts it
with ``app.use(definition, name=None)`` and calls its functions through
``app.components.<name>.<module>.<fn>`` with ``ctx.run_query/run_mutation/run_action``. The
mechanism (mounts, references, the confined ``ctx.db``) lives in the functions layer
(``functions.ComponentDefinition``, ``functions.Mount``) and the store (``<name>/<table>``
tables); this package re-exports it and ships two components mirroring the npm ones:
``convex_lab.components.aggregate`` (``Aggregate``) and ``convex_lab.components.rate_limiter``
(``RateLimiter``).
"""

from __future__ import annotations

from typing import Any

from convex_lab.functions import ComponentDefinition, ComponentReference


def define_component(name: str, schema: Any = None) -> ComponentDefinition:
    """A component definition called ``name`` (an identifier), with an optional schema
    (``cl.define_schema``; settable later as ``definition.schema``)."""
    return ComponentDefinition(name, schema=schema)


__all__ = ["ComponentDefinition", "ComponentReference", "define_component"]
