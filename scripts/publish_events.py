#!/usr/bin/env python
"""Publish JSON-lines events on NATS subject `dsiem_events`, as a Dsiem frontend does.

With --shift-to-now the timestamps are moved so that the newest event is "now" (keeping
their spacing), so that a live `dsiem-sql serve` does not expire the backlogs at once.

    .venv/bin/python scripts/publish_events.py --url nats://127.0.0.1:4222 --shift-to-now FILE
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from datetime import UTC, datetime

import nats


def shifted(lines: list[str]) -> list[str]:
    events = []
    for line in lines:
        try:
            events.append(json.loads(line))
        except ValueError:
            events.append(line)  # published as is: the service reports it
    times = [_time(e) for e in events if _time(e) is not None]
    offset = time.time() - max(times) if times else 0
    out = []
    for e in events:
        t = _time(e)
        if t is not None:
            e["timestamp"] = datetime.fromtimestamp(t + offset, UTC).isoformat()
            e["rcvd_time"] = time.time_ns()
        out.append(json.dumps(e) if isinstance(e, dict) else e)
    return out


def _time(event: object) -> float | None:
    if not isinstance(event, dict) or not isinstance(event.get("timestamp"), str):
        return None
    try:
        return datetime.fromisoformat(event["timestamp"].replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


async def publish(url: str, lines: list[str]) -> None:
    nc = await nats.connect(url)
    for line in lines:
        await nc.publish("dsiem_events", line.encode())
    await nc.flush()
    await nc.close()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("file")
    p.add_argument("--url", default="nats://127.0.0.1:4222")
    p.add_argument("--shift-to-now", action="store_true")
    args = p.parse_args()
    with open(args.file) as f:
        lines = [line.strip() for line in f if line.strip()]
    if args.shift_to_now:
        lines = shifted(lines)
    asyncio.run(publish(args.url, lines))
    print(f"published {len(lines)} events on dsiem_events at {args.url}")


if __name__ == "__main__":
    main()
