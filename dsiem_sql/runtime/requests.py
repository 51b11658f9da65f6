"""Changes that other commands ask of a running `serve` (`dsiem-sql suppress`): the database
keeps one writer, so the serve that holds it makes the change.

The asking command writes a request, a JSON object, as `<db>.requests/<id>.json`, and sends
SIGUSR1 to the serve named in the lock file (`dsiem-sql reload` finds it the same way). The
serve takes each request file, does what it asks, writes the answer as `<id>.reply` and
removes the request. It also looks every second, so a lost signal costs at most that.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from dsiem_sql.store.database import LockHolder, lock_holder

log = logging.getLogger(__name__)

LOOK_EVERY = 1.0  # seconds between two looks at the requests without a signal
Handler = Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]


def requests_dir(db: Path) -> Path:
    return Path(f"{db}.requests")


class RequestError(Exception):
    """A request could not be made or answered; the message says why."""


class Requests:
    """The serve side: takes the request files and answers them, one at a time."""

    def __init__(self, db: Path, handle: Handler):
        self.directory = requests_dir(db)
        self.handle = handle
        self._wake = asyncio.Event()

    def on_signal(self) -> None:
        self._wake.set()

    async def run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), LOOK_EVERY)
            self._wake.clear()
            for path in self._pending():
                await self._answer(path)

    def _pending(self) -> list[Path]:
        try:
            return sorted(self.directory.glob("*.json"), key=lambda p: p.stat().st_mtime)
        except OSError:  # no directory yet, or a file gone meanwhile
            return []

    async def _answer(self, path: Path) -> None:
        try:
            request = json.loads(path.read_text(encoding="utf-8"))
            if not isinstance(request, dict):
                raise ValueError("not a JSON object")
        except (OSError, ValueError) as exc:
            reply: dict[str, Any] = {"ok": False, "error": f"unreadable request: {exc}"}
        else:
            reply = await self.handle(request)
        _write(path.with_suffix(".reply"), reply)
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def _write(path: Path, obj: dict[str, Any]) -> None:
    partial = path.with_name(path.name + ".partial")
    partial.write_text(json.dumps(obj), encoding="utf-8")
    os.replace(partial, path)


def ask(db: Path, holder: LockHolder, request: dict[str, Any], timeout: float,
        poll: float = 0.05) -> dict[str, Any]:
    """The asking side: hand `request` to the serve `holder` of `db` and wait for its answer."""
    directory = requests_dir(db)
    try:
        directory.mkdir(mode=0o700, exist_ok=True)
        name = uuid.uuid4().hex
        path = directory / f"{name}.json"
        _write(path, request)
    except OSError as exc:
        raise RequestError(f"{directory}: cannot write a request for serve: "
                           f"{exc.strerror}") from None
    try:
        os.kill(holder.pid, signal.SIGUSR1)
    except OSError as exc:
        path.unlink(missing_ok=True)
        raise RequestError(f"{db}: cannot signal serve (pid {holder.pid}): "
                           f"{exc.strerror}") from None
    reply = path.with_suffix(".reply")
    deadline = time.monotonic() + timeout
    while not reply.exists():
        if lock_holder(db) != holder:
            path.unlink(missing_ok=True)
            raise RequestError(f"{db}: serve (pid {holder.pid}) stopped before it answered")
        if time.monotonic() >= deadline:
            path.unlink(missing_ok=True)
            raise RequestError(f"{db}: serve (pid {holder.pid}) did not answer within "
                               f"{timeout:g} s; see its log")
        time.sleep(poll)
    try:
        answer = json.loads(reply.read_text(encoding="utf-8"))
    finally:
        reply.unlink(missing_ok=True)
    return answer
