"""The intake queue and the log formats (docs/behaviour.md, "Intake queue" and "Logs")."""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import time

from dsiem_sql.logtext import shown
from dsiem_sql.runtime.intake import MemoryIntake as Intake
from dsiem_sql.runtime.logs import (
    JsonFormatter,
    PlainFormatter,
    RateLimitedLog,
    RepeatedLog,
    log_loop_errors,
)


def taken(intake: Intake, limit: int) -> list[bytes | str]:
    return [item.payload for item in asyncio.run(intake.take(limit))]


def test_full_queue_drops_the_oldest_and_counts_it():
    intake = Intake(max_queue=3)
    for i in range(5):
        intake.put(f"e{i}".encode())
    assert (intake.received, intake.dropped, len(intake)) == (5, 2, 3)
    assert taken(intake, 10) == [b"e2", b"e3", b"e4"]


def test_zero_means_unbounded():
    intake = Intake(max_queue=0)
    for _ in range(10_000):
        intake.put(b"x")
    assert (len(intake), intake.dropped) == (10_000, 0)


def test_closed_intake_takes_nothing_new_but_hands_out_what_it_has():
    intake = Intake()
    intake.put(b"a")
    asyncio.run(intake.stop())
    intake.put(b"b")
    assert not intake.closed
    assert taken(intake, 10) == [b"a"] and intake.received == 1
    assert intake.closed


def test_wait_returns_on_an_event_or_the_timeout():
    async def scenario() -> tuple[list[bytes | str], list[bytes | str]]:
        intake = Intake()
        await intake.wait(0.05)  # nothing comes: returns at the timeout
        nothing = [item.payload for item in await intake.take(5)]
        asyncio.get_running_loop().call_soon(intake.put, b"late")
        await asyncio.wait_for(intake.wait(60), 30)  # returns on the event, a hang fails
        return nothing, [item.payload for item in await intake.take(5)]

    assert asyncio.run(scenario()) == ([], [b"late"])


def record(message: str, **fields) -> logging.LogRecord:
    r = logging.LogRecord("dsiem_sql.shell.service", logging.INFO, __file__, 1, message, (), None)
    if fields:
        r.fields = fields
    return r


def test_json_lines_put_structured_values_under_fields():
    line = JsonFormatter().format(record("watchdog report", eps=12.5, queue_length=0))
    obj = json.loads(line)
    assert obj["level"] == "INFO" and obj["target"] == "dsiem_sql::shell::service"
    assert obj["fields"] == {"message": "watchdog report", "eps": 12.5, "queue_length": 0}


def test_plain_lines_append_key_value_pairs():
    line = PlainFormatter().format(record("watchdog report", eps=12.5, backlogs=3))
    assert line.endswith("dsiem_sql.shell.service: watchdog report eps=12.5 backlogs=3")


FORGED = "x\n2026-01-01 00:00:00,000 ERROR dsiem_sql.shell.service: FORGED"


def test_a_forged_newline_in_an_event_id_stays_on_one_line():
    r = record("event %s is not valid: sensor is empty, skipping it", sensor=FORGED)
    r.args = (FORGED,)
    line = PlainFormatter().format(r)
    assert len(line.splitlines()) == 1
    assert "event x\\n2026-01-01 00:00:00,000 ERROR dsiem_sql.shell.service: FORGED is not" in line
    assert line.endswith("sensor=x\\n2026-01-01 00:00:00,000 ERROR dsiem_sql.shell.service: FORGED")


def test_every_line_breaking_or_control_character_is_escaped():
    message = "a\rb\x1b[31mc\x85d\u2028e\u2029f\x00g\u202eh\ti"
    line = PlainFormatter().format(record(message))
    assert line.endswith(": a\\rb\\x1b[31mc\\x85d\\u2028e\\u2029f\\x00g\\u202eh\\ti")
    assert line.isprintable()


def test_a_traceback_stays_multi_line_after_the_escaped_message():
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        r = logging.LogRecord("dsiem_sql.shell.service", logging.ERROR, __file__, 1,
                              "bad\nthing", (), sys.exc_info())
    r.fields = {"k": "v"}
    lines = PlainFormatter().format(r).splitlines()
    assert lines[0].endswith(": bad\\nthing k=v")
    assert lines[1] == "Traceback (most recent call last):"
    assert lines[-1] == "RuntimeError: boom"


def test_long_values_are_cut_with_the_number_of_characters_left_out():
    assert shown("a" * 200) == "a" * 200
    assert shown("a" * 100_000) == "a" * 200 + "…(+99800 chars)"
    assert shown(12345, limit=3) == "123…(+2 chars)"


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def limited(clock: FakeClock) -> tuple[RateLimitedLog, list[str]]:
    logger = logging.getLogger("test.ratelimited")
    seen: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(record.getMessage())

    logger.handlers[:] = [Collect()]
    logger.propagate = False
    return RateLimitedLog(logger, "invalid events", limit=3, window=1.0, clock=clock), seen


def test_rate_limit_logs_the_first_warnings_then_one_summary_per_window():
    clock = FakeClock()
    limiter, seen = limited(clock)
    for i in range(10):
        limiter.warning("bad %d", i)
    assert seen == ["bad 0", "bad 1", "bad 2"]
    clock.now += 0.5
    limiter.warning("bad %d", 10)  # same window: counted only
    clock.now += 0.5
    limiter.warning("bad %d", 11)  # the next window starts with the summary of the last
    assert seen[3:] == ["… and 8 more invalid events in the last 1.0 s", "bad 11"]


def test_rate_limit_summary_comes_from_flush_when_no_warning_follows():
    clock = FakeClock()
    limiter, seen = limited(clock)
    for i in range(5):
        limiter.warning("bad %d", i)
    limiter.flush()  # the window is still open: nothing yet
    assert len(seen) == 3
    clock.now += 2.5
    limiter.flush()
    limiter.flush()
    assert seen[3:] == ["… and 2 more invalid events in the last 2.5 s"]


def test_rate_limit_forced_flush_at_the_end_of_input():
    clock = FakeClock()
    limiter, seen = limited(clock)
    for i in range(4):
        limiter.warning("bad %d", i)
    clock.now += 0.5
    limiter.flush(force=True)
    assert seen[3:] == ["… and 1 more invalid events in the last 0.5 s"]
    limiter.flush(force=True)  # nothing left to report
    assert len(seen) == 4


def repeated(clock: FakeClock, **options) -> tuple[RepeatedLog, list[str]]:
    logger = logging.getLogger("test.repeated")
    seen: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(record.getMessage() + (" +traceback" if record.exc_info else ""))

    logger.handlers[:] = [Collect()]
    logger.propagate = False
    return RepeatedLog(logger, window=30.0, clock=clock, **options), seen


def test_a_repeated_message_is_logged_once_then_as_a_count():
    clock = FakeClock()
    log, seen = repeated(clock)
    for _ in range(31):  # the same failure every second
        log.warning("nats error: %s", "connection refused")
        log.warning("another error")
        clock.now += 1
    assert seen == ["nats error: connection refused", "another error",
                    "nats error: connection refused (30 more times in the last 30 s)",
                    "another error (30 more times in the last 30 s)"]
    clock.now += 5
    log.warning("nats error: %s", "connection refused")
    log.flush()
    assert seen[4:] == ["nats error: connection refused (1 more time in the last 6 s)"]
    clock.now += 31  # quiet for a window: logged whole again
    log.warning("nats error: %s", "connection refused")
    assert seen[5:] == ["nats error: connection refused"]


def test_only_the_first_of_a_repeated_error_has_its_traceback():
    clock = FakeClock()
    log, seen = repeated(clock)
    for _ in range(100):
        try:
            raise OSError(24, "Too many open files")
        except OSError as exc:
            log.error("accept failed: %s", exc, exc_info=exc)
    clock.now += 30
    log.flush()
    assert seen == ["accept failed: [Errno 24] Too many open files +traceback",
                    "accept failed: [Errno 24] Too many open files (99 more times in the "
                    "last 30 s)"]


def test_messages_that_differ_every_time_cannot_flood_either():
    clock = FakeClock()
    log, seen = repeated(clock, limit=3)
    for i in range(1000):
        log.warning("bad request from port %d", i)
    clock.now += 30
    log.warning("bad request from port %d", 1000)
    assert seen == ["bad request from port 0", "bad request from port 1",
                    "bad request from port 2",
                    "… and 997 more messages like these in the last 30 s",
                    "bad request from port 1000"]


def test_the_count_comes_from_the_event_loop_when_nothing_follows():
    async def run() -> list[str]:
        log, seen = repeated(FakeClock())
        log.window, log.clock = 0.05, time.monotonic
        for _ in range(5):
            log.warning("same")
        await asyncio.sleep(0.2)
        return seen

    seen = asyncio.run(run())
    assert seen[0] == "same"
    assert seen[1].startswith("same (4 more times in the last ")


def test_the_event_loop_logs_a_repeated_error_once_with_its_traceback_then_a_count(caplog):
    async def run() -> None:
        loop = asyncio.get_running_loop()
        errors = log_loop_errors(loop, window=60.0)

        def fail() -> None:
            raise OSError(24, "Too many open files")

        for _ in range(500):
            loop.call_soon(fail)
        await asyncio.sleep(0.1)
        errors.flush()

    with caplog.at_level(logging.ERROR, logger="asyncio"):
        asyncio.run(run())
    records = [r for r in caplog.records if r.name == "asyncio"]
    assert len(records) == 2, [r.getMessage()[:100] for r in records]
    assert records[0].exc_info is not None and "Exception in callback" in records[0].getMessage()
    assert records[1].exc_info is None
    assert "OSError: [Errno 24] Too many open files (499 more times" in records[1].getMessage()
