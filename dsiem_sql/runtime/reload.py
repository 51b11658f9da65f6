"""Reloading the config of a running `serve` (issue 14): on SIGHUP, `POST /-/reload`, or
`dsiem-sql reload --db PATH` (which sends SIGHUP to the serve that holds the database).

The `Reloader` is a task of the service. For each reload it downloads the files again (with
`--frontend`; they replace those of `--configs` only once all arrived and the result is
valid), loads and validates the whole config and compiles its directives on a thread, all
while the worker goes on with the events. Then it hands the compiled config to the worker,
which takes it between two events (`take_pending`), and records the reload in the database
(`config_reloads`). An invalid config changes nothing: the reload is refused with the
validation message. Requests that arrive while a reload runs are served by the next one.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sqlite3
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dsiem_sql import defaults
from dsiem_sql.adapters.http.frontend import download_config
from dsiem_sql.config import ConfigError, load_config
from dsiem_sql.config.loader import Config
from dsiem_sql.engine import CompiledConfig, Reloaded
from dsiem_sql.runtime.aio import Stopped, unless_stopped
from dsiem_sql.store.database import connect_read_only, lock_holder
from dsiem_sql.store.store import ReloadRecord, Store

log = logging.getLogger(__name__)

STOPPING = "serve is stopping; the config was not reloaded"


@dataclass(frozen=True)
class ReloadResult:
    ok: bool
    message: str


@dataclass(frozen=True)
class Sources:
    """Where a reload takes the config from: `configs`, after a download with `frontend`."""

    configs: Path
    node: str
    frontend: str | None = None
    frontend_timeout: float = defaults.FRONTEND_TIMEOUT
    max_config_size: int = defaults.MAX_CONFIG_SIZE_MB * defaults.MB  # bytes


class Reloader:
    _store: Store
    _take: Callable[[CompiledConfig], Reloaded]
    _wake_worker: Callable[[], None]

    def __init__(self, sources: Sources):
        self.sources = sources
        self.running = False
        self.succeeded = 0
        self.failed = 0
        self.last_ok = True
        self._requests: list[tuple[str, asyncio.Future[ReloadResult]]] = []
        self._asked = asyncio.Event()
        self._stopping = asyncio.Event()
        self._pending: tuple[CompiledConfig, asyncio.Future[Reloaded]] | None = None
        self._serving: list[tuple[str, asyncio.Future[ReloadResult]]] = []
        self.held = 0.0  # seconds the worker spent taking the last config

    # -- asking for a reload --------------------------------------------------------------

    def request(self, trigger: str) -> asyncio.Future[ReloadResult]:
        """Ask for a reload; the future gets its result (also once serve is running, when
        asked before)."""
        future: asyncio.Future[ReloadResult] = asyncio.get_running_loop().create_future()
        if self._stopping.is_set():
            future.set_result(ReloadResult(False, STOPPING))
        else:
            self._requests.append((trigger, future))
            self._asked.set()
        return future

    def on_sighup(self) -> None:
        """The SIGHUP handler: the outcome is logged, recorded and counted."""
        log.info("SIGHUP: reloading the config")
        self.request("SIGHUP")

    async def reload(self, trigger: str) -> tuple[int, str]:
        """For `POST /-/reload`: (HTTP status, message)."""
        if not self.running:
            return 503, "serve is not running yet (or any more); nothing was reloaded"
        result = await self.request(trigger)
        if result.ok:
            return 200, result.message
        return (503 if result.message == STOPPING else 400), result.message

    # -- the task -------------------------------------------------------------------------

    def run(self, store: Store, take: Callable[[CompiledConfig], Reloaded],
            wake_worker: Callable[[], None]) -> Coroutine[Any, Any, None]:
        """Take reload requests from now on; the coroutine returned serves them until
        `stop`. `take` applies a compiled config; it is called by the worker
        (`take_pending`), which `wake_worker` wakes."""
        self._store, self._take, self._wake_worker = store, take, wake_worker
        self.running = True
        return self._serve()

    async def _serve(self) -> None:
        try:
            while not self._stopping.is_set():
                await unless_stopped(self._stopping, self._asked.wait())
                self._asked.clear()
                self._serving, self._requests = self._requests, []
                if not self._serving:
                    continue
                trigger = ", ".join(dict.fromkeys(t for t, _ in self._serving))
                result = await self._reload(trigger)
                for _, future in self._serving:
                    future.set_result(result)
                self._serving = []
        except Stopped:
            pass
        finally:
            self.running = False
            self._stopping.set()
            for _, future in [*self._serving, *self._requests]:
                if not future.done():
                    future.set_result(ReloadResult(False, STOPPING))
            self._serving, self._requests = [], []

    def stop(self) -> None:
        """Give up a reload under way (its download or load) and take no more requests."""
        self._stopping.set()

    def take_pending(self) -> None:
        """Called by the worker between two events: apply the config handed over, if any."""
        if self._pending is None:
            return
        (compiled, done), self._pending = self._pending, None
        started = time.perf_counter()
        summary = self._take(compiled)
        self.held = time.perf_counter() - started
        done.set_result(summary)

    async def _reload(self, trigger: str) -> ReloadResult:
        s = self.sources
        started, clock = time.time(), time.perf_counter()
        config: Config | None = None
        downloaded = ""
        try:
            if s.frontend:
                count = await download_config(
                    s.frontend, s.node, s.configs, deadline=s.frontend_timeout,
                    max_file_size=s.max_config_size, stop=self._stopping,
                )
                if count is None:
                    raise Stopped
                downloaded = f"downloaded {count} files from {s.frontend}; "
            compiled = await unless_stopped(
                self._stopping, asyncio.to_thread(_load_and_compile, s.configs))
            config = compiled.config
            summary = await unless_stopped(self._stopping, self._hand_over(compiled))
        except ConfigError as exc:
            result = ReloadResult(False, f"{exc}; the config in force is unchanged")
            log.error("config reload (%s) refused: %s", trigger, result.message)
        except Stopped:
            log.warning("config reload (%s) not done: serve is stopping", trigger)
            return ReloadResult(False, STOPPING)
        else:
            result = ReloadResult(True, downloaded + describe(s.configs, config, summary))
            log.info("config reloaded (%s) in %.3f s, taken between two events in %.1f ms: %s",
                     trigger, time.perf_counter() - clock, self.held * 1000, result.message)
        seconds = time.perf_counter() - clock
        if result.ok:
            self.succeeded += 1
        else:
            self.failed += 1
        self.last_ok = result.ok
        await self._store.record_reload(
            record(started, seconds, trigger, s.configs, result, config))
        return result

    async def _hand_over(self, compiled: CompiledConfig) -> Reloaded:
        done: asyncio.Future[Reloaded] = asyncio.get_running_loop().create_future()
        self._pending = (compiled, done)
        self._wake_worker()
        try:
            return await done
        finally:
            if self._pending is not None and self._pending[1] is done:
                self._pending = None  # given up (stopping): the worker must not take it


def _load_and_compile(configs: Path) -> CompiledConfig:
    return CompiledConfig.of(load_config(configs))


def describe(configs: Path, config: Config, summary: Reloaded | None = None) -> str:
    """What a reload (or the load at start, without `summary`) took and changed, in a line."""
    directives = f"{len(config.directives)} directives"
    if summary is not None:
        directives += (f" ({summary.added} added, {summary.changed} changed, "
                       f"{summary.removed} removed)")
    text = (
        f"{len(config.files)} files from {configs}: {directives}, {len(config.assets)} assets, "
        f"{len(config.intel)} intel and {len(config.vuln)} vuln sources"
    )
    if summary is None:
        return text
    if summary.older:
        text += f"; {summary.older} live backlogs go on with an earlier definition"
    if summary.retired:
        text += f"; {summary.retired} removed directives run their live backlogs to the end"
    return text


def record(started: float, seconds: float, trigger: str, configs: Path, result: ReloadResult,
           config: Config | None) -> ReloadRecord:
    files = () if config is None else tuple((f.path.name, f.sha256) for f in config.files)
    return ReloadRecord(
        started=started, seconds=seconds, trigger=trigger,
        result="success" if result.ok else "failure", message=result.message,
        configs=str(configs.resolve()), files=files,
    )


# -- `dsiem-sql reload --db PATH` ---------------------------------------------------------


class ReloadCommandError(Exception):
    """`dsiem-sql reload` could not get an outcome; the message says why."""


def reload_serve(db: Path, timeout: float, poll: float = 0.1) -> ReloadResult:
    """Send SIGHUP to the serve that holds `db`, and wait for the outcome of the first
    reload it starts after that (recorded in `reloads`)."""
    holder = lock_holder(db)
    if holder is None:
        raise ReloadCommandError(
            f"{db}: no dsiem-sql serve is running with this database here (if it runs in "
            "another container, run the command there, or POST /-/reload on its metrics port)"
        )
    if holder.role != "serve":
        raise ReloadCommandError(
            f"{db}: held by a dsiem-sql {holder.role or 'command'} (pid {holder.pid}), not "
            "by serve; only serve reloads its config"
        )
    signalled = time.time()
    try:
        os.kill(holder.pid, signal.SIGHUP)
    except OSError as exc:
        raise ReloadCommandError(
            f"{db}: cannot signal serve (pid {holder.pid}): {exc.strerror}") from None
    deadline = time.monotonic() + timeout
    while True:
        found = _outcome(db, signalled)
        if found is not None:
            return found
        if lock_holder(db) != holder:
            raise ReloadCommandError(
                f"{db}: serve (pid {holder.pid}) stopped before it reported the reload")
        if time.monotonic() >= deadline:
            raise ReloadCommandError(
                f"{db}: serve (pid {holder.pid}) reported no reload within {timeout:g} s "
                "(--timeout); see its log")
        time.sleep(poll)


def _outcome(db: Path, since: float) -> ReloadResult | None:
    """The first reload recorded that started at `since` or later."""
    try:
        con = connect_read_only(db)
        try:
            row = con.execute(
                "SELECT result, message FROM reloads WHERE started >= ? ORDER BY id LIMIT 1",
                (since,),
            ).fetchone()
        finally:
            con.close()
    except sqlite3.Error as exc:
        raise ReloadCommandError(f"{db}: cannot read the reloads: {exc}") from None
    return None if row is None else ReloadResult(row[0] == "success", row[1])


__all__ = ["ReloadCommandError", "ReloadResult", "Reloader", "Sources", "reload_serve"]
