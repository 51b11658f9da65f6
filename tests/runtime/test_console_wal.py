"""The console on the database of a running serve, under load (issue 20): it holds no read
transaction between its queries, so that serve's checkpoint still truncates a WAL that grew
past `WAL_LIMIT`. serve runs in-process (the real Service and worker on a real SQLite file,
on a fake monotonic clock that the test moves to the expiry tick, where the checkpoint runs);
the console is a process of its own, asked for every kind of page by three threads at once
while serve commits thousands of events.

The WAL only grows past the limit while some reader holds an old snapshot; the tests make it
grow with one held on purpose (a plain SQLite connection in a read transaction), then let it
go: with the console still open, and asked for pages all along, the next checkpoint
truncates it. The control keeps the snapshot to the end: then the WAL stays grown, which is
what a console that kept a read transaction open would do."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import threading
import time
from pathlib import Path
from urllib.parse import quote

import pytest
from consolekit import Console
from kit import event
from servicekit import InProcess

from dsiem_sql.defaults import EXPIRY_INTERVAL
from dsiem_sql.store.database import connect_read_only
from dsiem_sql.store.store import WAL_LIMIT

pytestmark = pytest.mark.asyncio

SLOW = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c"
PAGES = (
    "/dsiem/live_backlogs", "/dsiem/live_backlogs.json?_shape=array",
    "/dsiem/backlogs.json?_size=5",  # a page of a longer table: the statement is not done
    "/dsiem/stage_events.csv?_stream=on&_size=max",  # every row, page by page
    "/dsiem/live_by_risk.json", "/dsiem/top_sources", "/dsiem/alarms_24h.csv", "/dsiem",
    "/-/dashboards/dsiem", "/dsiem.json?sql=" + quote(SLOW),  # stopped after the time limit
)
BATCHES, BATCH = 12, 400  # events committed during the load


def wal_size(db: Path) -> int:
    try:
        return os.stat(f"{db}-wal").st_size
    except FileNotFoundError:
        return 0


def ping(n: int, now: int) -> dict:
    """A Ping Flood event of the examples from a source of its own: a new backlog each."""
    return event(f"load-{n}", now, f"10.{n // 65536 % 256}.{n // 256 % 256}.{n % 256}",
                 "10.200.0.1", title="ET SCAN ICMP PING", sensor="suricata-01",
                 plugin_id=1001, plugin_sid=2100384, protocol="ICMP")


class Asking:
    """Three threads that ask the console for its pages, one after the other, until
    stopped; they note every answer that is neither a page nor the time limit's 400."""

    def __init__(self, console: Console, story: str):
        self.console = console
        self.pages = (*PAGES, f"/-/story/{story}", f"/-/story/{story}.json")
        self.stop = threading.Event()
        self.asked = 0
        self.seen: set[str] = set()  # the pages answered since `mark`
        self.wrong: list[str] = []
        self.threads = [threading.Thread(target=self._ask, args=(i,)) for i in range(3)]

    def _ask(self, offset: int) -> None:
        i = offset
        while not self.stop.is_set():
            path = self.pages[i % len(self.pages)]
            status, body = self.console.request(path)
            self.asked += 1
            self.seen.add(path)
            if status != 200 and not (path.endswith(quote(SLOW)) and status == 400):
                self.wrong.append(f"{path}: {status} {body[:200]!r}")
            i += 1

    def mark(self) -> None:
        self.seen = set()

    async def every_page(self) -> None:
        """Until each page has been answered since `mark` (serve goes on meanwhile)."""
        deadline = time.monotonic() + 60
        while self.seen != set(self.pages):
            assert time.monotonic() < deadline, f"not answered: {set(self.pages) - self.seen}"
            await asyncio.sleep(0.05)

    def __enter__(self) -> Asking:
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(60)


async def load(serve: InProcess, start: int, now: int) -> int:
    """Commit BATCHES batches of events; the largest the WAL got."""
    largest = 0
    for b in range(BATCHES):
        serve.put(*(ping(start + b * BATCH + i, now) for i in range(BATCH)))
        await serve.settle()
        largest = max(largest, wal_size(serve.options.db))
    return largest


async def checkpoint(serve: InProcess) -> None:
    """To the next expiry tick, where the worker checkpoints a WAL past WAL_LIMIT."""
    await serve.turn(EXPIRY_INTERVAL + 1)
    await serve.turn(1)


@pytest.mark.parametrize("release", [True, False], ids=["snapshot-released", "control-held"])
async def test_with_the_console_open_under_load_serves_checkpoint_shrinks_the_wal(
        tmp_path, caplog, release):
    caplog.set_level(logging.INFO, "dsiem_sql.runtime.worker")
    now = int(time.time())
    async with InProcess(tmp_path) as serve:
        db = serve.options.db
        serve.put(ping(0, now))
        await serve.settle()
        [(story,)] = serve.query("SELECT id FROM backlogs")
        console = Console(db, workdir=tmp_path / "console").start()
        held = connect_read_only(db)
        try:
            with Asking(console, story) as asking:
                held.execute("BEGIN")
                held.execute("SELECT count(*) FROM backlogs").fetchone()  # a snapshot
                grown = await load(serve, 1, now)
                if release:
                    held.execute("COMMIT")
                asking.mark()
                await load(serve, 1 + BATCHES * BATCH, now)  # the console asked all along
                await asking.every_page()
            assert grown > WAL_LIMIT, "the load did not make the WAL grow past the limit"
            assert not asking.wrong, asking.wrong
            await checkpoint(serve)
            if release:
                assert wal_size(db) <= WAL_LIMIT, (
                    f"the WAL is {wal_size(db):,} bytes after serve's checkpoint, with the "
                    f"console open (limit {WAL_LIMIT:,})")
                assert "the WAL, grown while a reader held it, is truncated" in caplog.text
            else:
                assert wal_size(db) > WAL_LIMIT  # a snapshot held: it cannot be truncated
        finally:
            held.close()
            code = console.stop()
        assert code == -signal.SIGTERM  # uvicorn stops, then ends by the signal it got
        assert "Traceback" not in console.log.read_text()
