"""The transactional outbox: output lines committed before a crash reach the files once."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from dbcompare import normalised_outputs
from workload import events, write_configs

from dsiem_sql.config import load_config
from dsiem_sql.engine import Engine
from dsiem_sql.output import OutputFiles
from dsiem_sql.shell.replay import Batching, EventClock, FileSink, replay
from dsiem_sql.store.store import Store

LINES = [line.encode() + b"\n" for line in events(3000, seed=3)]
SMALL_BATCHES = Batching(interval_ms=10_000, changes=50)


class Crash(Exception):
    pass


class CrashingStore(Store):
    """Dies inside the n-th output write, after `keep` bytes of it reached the files."""

    def __init__(self, *args, crash_on: int, keep: float, **kwargs):
        super().__init__(*args, **kwargs)
        self.crash_on, self.keep, self.writes = crash_on, keep, 0

    def _append(self, outbox_rows):
        self.writes += 1
        if self.writes < self.crash_on:
            return super()._append(outbox_rows)
        first_file = outbox_rows[0][1]  # rows are (seq, file, line)
        data = "".join(line + "\n" for _, file, line in outbox_rows if file == first_file)
        data = data.encode()
        with self._files[first_file].path.open("ab") as f:
            f.write(data[: int(len(data) * self.keep)])
        raise Crash


def expected_output(tmp: Path, configs: Path) -> tuple[list[dict], list[dict]]:
    clock = EventClock()
    engine = Engine(load_config(configs), clock=clock)
    with OutputFiles(tmp) as out:
        asyncio.run(replay(LINES, engine, clock, FileSink(out), final_sweep=False))
    alarms, links, _ = normalised_outputs(tmp)
    return alarms, links


async def crash_then_resume(db: Path, out: Path, configs: Path, crash_on: int, keep: float):
    config = load_config(configs)
    clock = EventClock()
    engine = Engine(config, clock=clock)
    store = CrashingStore(db, out, crash_on=crash_on, keep=keep)
    await store.open()
    with pytest.raises(Crash):
        await replay(LINES, engine, clock, store, final_sweep=False, batching=SMALL_BATCHES,
                     source="events")
    # the process dies here: no close(), no confirmation transaction
    await store.engine.dispose()
    store._lock.release()

    engine = Engine(config, clock=clock)
    store = Store(db, out)
    await store.open()  # writes what the crash left in the outbox
    try:
        resumed = await store.load(engine, "events")
        clock.now = resumed.clock
        await replay(LINES[resumed.line:], engine, clock, store, final_sweep=False,
                     batching=SMALL_BATCHES, source="events", line=resumed.line)
    finally:
        await store.close()


@pytest.mark.parametrize("keep", [0.0, 0.37, 1.0], ids=["nothing", "partial-line", "all"])
@pytest.mark.parametrize("crash_on", [1, 5])
def test_lines_committed_before_a_crash_are_written_once_in_order(tmp_path, crash_on, keep):
    configs = write_configs(tmp_path / "configs")
    alarms, links = expected_output(tmp_path / "expected", configs)
    out = tmp_path / "out"
    asyncio.run(crash_then_resume(tmp_path / "db.sqlite", out, configs, crash_on, keep))
    assert normalised_outputs(out)[:2] == (alarms, links)
    assert len(alarms) > 5


def test_lines_written_but_not_confirmed_are_not_written_again(tmp_path):
    configs = write_configs(tmp_path / "configs")
    alarms, links = expected_output(tmp_path / "expected", configs)
    out, db = tmp_path / "out", tmp_path / "db.sqlite"

    async def run():
        clock = EventClock()
        engine = Engine(load_config(configs), clock=clock)
        store = Store(db, out)
        await store.open()
        half = len(LINES) // 2
        await replay(LINES[:half], engine, clock, store, final_sweep=False,
                     batching=SMALL_BATCHES, source="events")
        # die after the last write, before the transaction that confirms it
        await store.flush()
        assert store._unconfirmed
        await store.engine.dispose()
        store._lock.release()
        engine = Engine(load_config(configs), clock=clock)
        store = Store(db, out)
        await store.open()
        try:
            resumed = await store.load(engine, "events")
            assert resumed.line == half
            await replay(LINES[half:], engine, clock, store, final_sweep=False,
                         batching=SMALL_BATCHES, source="events", line=half)
        finally:
            await store.close()

    asyncio.run(run())
    assert normalised_outputs(out)[:2] == (alarms, links)
