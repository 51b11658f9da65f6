"""The intake queue (SPEC §9.3) and the log formats (§12.1)."""

from __future__ import annotations

import asyncio
import json
import logging

from dsiem_sql.intake import Intake
from dsiem_sql.logs import JsonFormatter, PlainFormatter


def test_full_queue_drops_the_oldest_and_counts_it():
    intake = Intake(max_queue=3)
    for i in range(5):
        intake.put(f"e{i}".encode())
    assert (intake.received, intake.dropped, len(intake)) == (5, 2, 3)
    assert intake.take(10) == [b"e2", b"e3", b"e4"]


def test_zero_means_unbounded():
    intake = Intake(max_queue=0)
    for _ in range(10_000):
        intake.put(b"x")
    assert (len(intake), intake.dropped) == (10_000, 0)


def test_closed_intake_takes_nothing_new_but_hands_out_what_it_has():
    intake = Intake()
    intake.put(b"a")
    intake.close()
    intake.put(b"b")
    assert intake.take(10) == [b"a"] and intake.received == 1


def test_wait_returns_on_an_event_or_the_timeout():
    async def scenario() -> tuple[float, list[bytes]]:
        intake = Intake()
        loop = asyncio.get_running_loop()
        started = loop.time()
        await intake.wait(0.05)
        waited = loop.time() - started
        loop.call_later(0.01, intake.put, b"late")
        await intake.wait(5)
        return waited, intake.take(5)

    waited, taken = asyncio.run(scenario())
    assert waited >= 0.04 and taken == [b"late"]


def record(message: str, **fields) -> logging.LogRecord:
    r = logging.LogRecord("dsiem_sql.service", logging.INFO, __file__, 1, message, (), None)
    if fields:
        r.fields = fields
    return r


def test_json_lines_put_structured_values_under_fields():
    line = JsonFormatter().format(record("watchdog report", eps=12.5, queue_length=0))
    obj = json.loads(line)
    assert obj["level"] == "INFO" and obj["target"] == "dsiem_sql::service"
    assert obj["fields"] == {"message": "watchdog report", "eps": 12.5, "queue_length": 0}


def test_plain_lines_append_key_value_pairs():
    line = PlainFormatter().format(record("watchdog report", eps=12.5, backlogs=3))
    assert line.endswith("dsiem_sql.service: watchdog report eps=12.5 backlogs=3")
