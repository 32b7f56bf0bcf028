"""Where deliveries run: a Jupyter kernel's event loop, when there is one.

Inside a kernel (an asyncio loop running in the main thread) live-query refreshes and scheduler
timers go on that loop, so callbacks run on the kernel's main thread between cells or while a cell
awaits; elsewhere (a script, a test, a server) they run in the thread that caused them or on a
thread of their own. This module is the one place that tells the two apart.
"""

from __future__ import annotations

import asyncio
import threading


def kernel_loop() -> asyncio.AbstractEventLoop | None:
    """The asyncio loop running in the main thread (a Jupyter kernel's), if called there."""
    if threading.current_thread() is not threading.main_thread():
        return None
    try:
        loop = asyncio.get_event_loop()
    except RuntimeError:
        return None
    return loop if loop.is_running() else None
