"""The overload signal and the watchdog report on a fake clock (docs/behaviour.md, "Overload
signal", "Watchdog report")."""

from __future__ import annotations

import asyncio

from harness import Harness, directive, event, rule

from dsiem_sql.runtime.intake import MemoryIntake as Intake
from dsiem_sql.runtime.overload import Overload
from dsiem_sql.runtime.watchdog import Watchdog
from dsiem_sql.runtime.worker import Counters


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def never_sent(value: bool) -> None:
    raise AssertionError("check() does not send")


def test_true_at_the_first_signal_and_false_hold_seconds_after_the_last():
    clock = FakeClock()
    overload = Overload(never_sent, hold=10, monotonic=clock)
    assert overload.check() is None
    overload.signal()
    assert overload.check() is True
    clock.now = 6
    overload.signal()  # a later late event: the hold counts from here
    assert overload.check() is None
    clock.now = 15.9
    assert overload.check() is None
    clock.now = 16
    assert overload.check() is False
    assert overload.check() is None


def test_failing_commits_keep_the_signal_on_until_hold_seconds_after_them():
    clock = FakeClock()
    failing = [True]
    overload = Overload(never_sent, hold=10, pressure=lambda: failing[0], monotonic=clock)
    assert overload.check() is True
    clock.now = 100
    assert overload.check() is None
    failing[0] = False
    clock.now = 109
    assert overload.check() is None
    clock.now = 110
    assert overload.check() is False


def test_run_sends_each_change_once():
    clock = FakeClock()
    sent: list[bool] = []

    async def send(value: bool) -> None:
        sent.append(value)

    async def scenario() -> None:
        overload = Overload(send, hold=0.04, monotonic=clock)
        task = asyncio.create_task(overload.run())
        overload.signal()
        overload.signal()
        while not sent:
            await asyncio.sleep(0.001)
        clock.now = 1
        while len(sent) < 2:
            await asyncio.sleep(0.001)
        task.cancel()

    asyncio.run(scenario())
    assert sent == [True, False]


def test_the_report_counts_the_last_interval(caplog):
    h = Harness([directive(1, [rule(1), rule(2)])])
    intake, counters = Intake(), Counters()
    watchdog = Watchdog(intake, counters, h.engine, interval=10, max_eps=1000)
    for payload in (b"a", b"b", b"c"):
        intake.put(payload)
    asyncio.run(intake.take(3))
    h.feed(event("e1", 100))
    counters.processed, counters.proc_seconds, counters.invalid = 3, 0.006, 2

    first = watchdog.report()
    assert first == {
        "eps": 0.3, "queue_length": 0, "avg_proc_time_ms": 2.0, "directives_ttl": 1,
        "directives_active": 1, "backlogs": 1, "events_rcvd": 3, "events_matched": 1,
        "events_dropped": 0, "events_invalid": 2,
    }
    intake.put(b"d")
    counters.processed = 4
    counters.proc_seconds = 0.016
    second = watchdog.report()
    assert (second["eps"], second["events_rcvd"], second["events_matched"],
            second["avg_proc_time_ms"], second["queue_length"]) == (0.1, 1, 0, 10.0, 1)
    # 10 ms an event, one waiting: too slow for 1000 events/s
    assert "avg. processing time maybe too long" in caplog.text
