"""The transactional outbox: output lines committed before a crash reach the files once."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from dbcompare import normalised_outputs
from workload import events, write_configs

from dsiem_sql.config import load_config
from dsiem_sql.engine import Engine
from dsiem_sql.runtime.correlator import Batching, Correlator, EventClock, FileSink
from dsiem_sql.runtime.replay import replay
from dsiem_sql.store.outbox import Appender
from dsiem_sql.store.store import Store

LINES = [line.encode() + b"\n" for line in events(3000, seed=3)]
SMALL_BATCHES = Batching(interval_ms=10_000, changes=50)


class Crash(Exception):
    pass


class CrashingAppender(Appender):
    """Dies inside the n-th output write, after `keep` bytes of it reached the files."""

    def __init__(self, *args, crash_on: int, keep: float, **kwargs):
        super().__init__(*args, **kwargs)
        self.crash_on, self.keep, self.writes = crash_on, keep, 0

    def append(self, lines):
        self.writes += 1
        if self.writes < self.crash_on:
            return super().append(lines)
        first_file = lines[0][1]  # lines are (seq, file, line)
        data = "".join(line + "\n" for _, file, line in lines if file == first_file)
        data = data.encode()
        with self.files[first_file].path.open("ab") as f:
            f.write(data[: int(len(data) * self.keep)])
        raise Crash


def correlator(engine: Engine, clock: EventClock, sink) -> Correlator:
    return Correlator(engine, sink, batching=SMALL_BATCHES, clock=clock)


async def resume(store: Store, engine: Engine, clock: EventClock) -> int:
    """Resume `engine` from `store`; returns the input line reached."""
    resumed = await store.resume(engine.directive, "events")
    engine.resume(resumed.backlogs, resumed.next_seq)
    clock.now = resumed.clock
    return resumed.line


async def die(store: Store) -> None:
    """The process dies here: no close(), no confirmation transaction."""
    await store.writer.close()
    store._lock.release()


def expected_output(tmp: Path, configs: Path) -> tuple[list[dict], list[dict]]:
    clock = EventClock()
    engine = Engine(load_config(configs), clock=clock)
    out = Appender(tmp)
    out.open()
    asyncio.run(replay(LINES, Correlator(engine, FileSink(out), clock=clock), final_sweep=False))
    alarms, links, _ = normalised_outputs(tmp)
    return alarms, links


async def crash_then_resume(db: Path, out: Path, configs: Path, crash_on: int, keep: float):
    config = load_config(configs)
    clock = EventClock()
    engine = Engine(config, clock=clock)
    store = Store(db, out)
    store.out = CrashingAppender(out, crash_on=crash_on, keep=keep)
    await store.open()
    with pytest.raises(Crash):
        await replay(LINES, correlator(engine, clock, store), final_sweep=False,
                     source="events")
    await die(store)

    engine = Engine(config, clock=clock)
    store = Store(db, out)
    await store.open()  # writes what the crash left in the outbox
    try:
        line = await resume(store, engine, clock)
        await replay(LINES[line:], correlator(engine, clock, store), final_sweep=False,
                     source="events", line=line)
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
        await replay(LINES[:half], correlator(engine, clock, store), final_sweep=False,
                     source="events")
        # die after the last write, before the transaction that confirms it
        assert store._unconfirmed
        await die(store)
        engine = Engine(load_config(configs), clock=clock)
        store = Store(db, out)
        await store.open()
        try:
            assert await resume(store, engine, clock) == half
            await replay(LINES[half:], correlator(engine, clock, store), final_sweep=False,
                         source="events", line=half)
        finally:
            await store.close()

    asyncio.run(run())
    assert normalised_outputs(out)[:2] == (alarms, links)
