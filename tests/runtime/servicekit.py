"""serve in-process: the real `Service` and worker loop, fed by a memory intake (or a JetStream
intake on a fake consumer), on a fake monotonic clock that the test moves, with a real SQLite
database. The pattern of FastStream's TestNatsBroker and procrastinate's InMemoryConnector:
the same code as in production, with the outside replaced by objects the test drives.

The fake monotonic clock drives the commit interval, the expiry tick, the overload hold and
the health check; `settle` moves it on and waits until the worker has taken and committed
everything."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kit import CONFIGS

from dsiem_sql.engine import EngineOptions
from dsiem_sql.runtime.intake import Intake, MemoryIntake
from dsiem_sql.runtime.service import ServeOptions, Service, open_intake
from dsiem_sql.store.database import connect_read_only

NODE = "dsiem-backend-0"


class FakeClock:
    """A monotonic clock that moves only when the test moves it."""

    def __init__(self, now: float = 1000.0):
        self.now = now

    def __call__(self) -> float:
        return self.now


async def until(what: str, check: Callable[[], Any], timeout: float = 10.0) -> Any:
    """Poll `check` (real time) until it returns something true."""
    deadline = time.monotonic() + timeout
    while True:
        got = check()
        if got:
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.002)


class InProcess:
    """One `Service` run as a task of the test's event loop."""

    def __init__(self, tmp_path: Path, feed: Intake | None = None, *, connect: bool = False,
                 configs: Path = CONFIGS, engine_options: EngineOptions | None = None,
                 **options: Any):
        """`feed`: the intake (a new `MemoryIntake` by default); with `connect`, the intake
        and NATS connection that `serve` builds from `options` instead. The overload signal
        goes to `signals`, unless on a connection."""
        self.monotonic = FakeClock()
        self.signals: list[bool] = []
        self.options = ServeOptions(
            node=NODE, configs=configs, db=tmp_path / "dsiem.db", logs=tmp_path / "logs",
            **{"watchdog_interval": 3600.0, **options},
        )
        connection = None
        if connect:
            self.intake, connection = open_intake(self.options)
        else:
            self.intake = feed if feed is not None else MemoryIntake()
        self.service = Service(
            self.options, engine_options or EngineOptions(), self.intake, connection,
            monotonic=self.monotonic, send_overload=None if connect else self._send)
        self.stop = asyncio.Event()
        self.task: asyncio.Task[None] | None = None

    async def _send(self, overloaded: bool) -> None:
        self.signals.append(overloaded)

    async def start(self) -> InProcess:
        self.task = asyncio.create_task(self.service.run(self.stop))
        await until("the service ready", lambda: self.service.ready or self.task.done())
        if self.task.done():
            await self.task  # raises what stopped it
        return self

    async def finish(self) -> None:
        """SIGTERM: drain, commit, stop."""
        assert self.task is not None
        self.stop.set()
        await asyncio.wait_for(self.task, 20)

    async def __aenter__(self) -> InProcess:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        if self.task is not None and not self.task.done():
            await self.finish()

    # -- feeding and watching ------------------------------------------------------------

    def put(self, *events: dict | bytes) -> None:
        assert isinstance(self.intake, MemoryIntake)
        for e in events:
            self.intake.put(e if isinstance(e, bytes) else json.dumps(e).encode())

    @property
    def worker(self):
        assert self.service.worker is not None
        return self.service.worker

    async def turn(self, seconds: float = 0.0) -> None:
        """Move the clock by `seconds`, wake the worker, and wait until it went round."""
        self.monotonic.now += seconds
        await until("a turn of the worker", lambda: self.service.worker is not None)
        now = self.monotonic.now + 1e-6
        self.monotonic.now = now
        self.intake.wake()
        await until("a turn of the worker", lambda: self.worker.turned >= now)
        self.intake.wake()
        self.monotonic.now += 1e-6
        later = self.monotonic.now
        await until("a turn of the worker", lambda: self.worker.turned >= later)

    async def settle(self) -> None:
        """Until the worker took everything and its last commit is written."""
        correlator = self.worker.correlator
        for _ in range(500):
            await self.turn(1.0)  # past the commit interval
            await correlator.written()
            if not len(self.intake) and not correlator.waiting:
                return
        raise AssertionError("the worker did not settle")

    def query(self, sql: str, *parameters: Any) -> list[tuple]:
        con = connect_read_only(self.options.db)
        try:
            return con.execute(sql, parameters).fetchall()
        except sqlite3.Error as exc:
            raise AssertionError(f"{sql}: {exc}") from None
        finally:
            con.close()

    def live(self) -> dict[str, float]:
        return self.service._live()
