"""asyncio and runtime helpers shared by the shell."""

from __future__ import annotations

import asyncio
import contextlib
import gc
from collections.abc import Awaitable
from typing import TypeVar

T = TypeVar("T")


class Stopped(Exception):
    """`stop` was set before the work was done; the work was cancelled."""


async def unless_stopped(stop: asyncio.Event, work: Awaitable[T]) -> T:
    """The result of `work`, or `Stopped` if `stop` is set first (`work` is then cancelled
    and awaited)."""
    task = asyncio.ensure_future(work)
    stopped = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait((task, stopped), return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopped.cancel()
        if not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
    if task.cancelled():
        raise Stopped
    return task.result()


def first_cause(error: BaseException) -> BaseException:
    """The first task's error of a task group's `ExceptionGroup` (or `error` itself)."""
    while isinstance(error, BaseExceptionGroup):
        error = error.exceptions[0]
    return error


def settle_memory() -> None:
    """Call once the long-lived state is loaded (config, directives, resumed backlogs).

    It moves that state out of the cyclic garbage collector's sight, and lets young objects
    pile up longer between collections: at the default threshold (700 allocations) the
    collector took a quarter of the time of a flood of new backlogs."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 20)
