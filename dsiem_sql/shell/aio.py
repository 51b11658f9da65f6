"""asyncio helpers shared by the shell."""

from __future__ import annotations

import asyncio
import contextlib
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
