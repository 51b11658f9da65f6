#!/usr/bin/env python
"""How long a live reload takes, and how long it holds up the events: prints two tables.

1. In process, for N directives (the three-stage directives of benchmix.py) with live
   backlogs waiting in stage 2, with the garbage collector set as serve sets it: the time to
   load, validate and compile the new config (on a thread, as serve does, while a probe
   measures how late the event loop runs meanwhile), and
   the time the worker spends taking it between two events (`Engine.reload`: directives,
   index), once with every directive changed and once with none changed.
2. `dsiem-sql serve` with 1,000 directives over a real nats-server, events published at
   5,000/s, reloaded several times with `POST /-/reload` (every directive changed each time):
   the HTTP round trip, what serve logs for each reload, and the events received, processed
   and dropped.

    .venv/bin/python scripts/bench_reload.py [--directives 100,1000,5000] [--backlogs 20000]
                                             [--serve-directives 1000] [--reloads 5]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from statistics import median

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_serve import free_port, metric, serve_process, start_nats
from benchmix import PLUGIN_ID, write_configs, write_events

from dsiem_sql.config import load_config
from dsiem_sql.engine import CompiledConfig, Engine, decode_event
from dsiem_sql.runtime.aio import settle_memory
from dsiem_sql.runtime.correlator import EventClock

T0 = 1714557600
DIRECTIVES_FILE = "directives_bench_0.json"


def change_every_directive(configs: Path, occurrence: int) -> None:
    """Give every directive's stage 2 another occurrence."""
    path = configs / DIRECTIVES_FILE
    data = json.loads(path.read_text())
    for d in data["directives"]:
        d["rules"][1]["occurrence"] = occurrence
    path.write_text(json.dumps(data))


def open_backlogs(engine: Engine, n_directives: int, count: int) -> None:
    """`count` backlogs waiting in stage 2, spread over the directives."""
    for i in range(count):
        d = i % n_directives
        engine.process(decode_event(json.dumps({
            "event_id": f"open-{i}", "timestamp": "2024-05-01T10:00:00Z", "title": "bench",
            "sensor": "bench", "plugin_id": PLUGIN_ID, "plugin_sid": d + 1,
            "src_ip": f"198.{i // 65536 % 256}.{i // 256 % 256}.{i % 256}",
            "dst_ip": "10.0.0.5", "protocol": "TCP",
        })))
    assert len(engine.backlogs) == count, len(engine.backlogs)


async def compile_on_a_thread(configs: Path) -> tuple[CompiledConfig, float, float]:
    """(the compiled config, seconds, the event loop's worst lateness in ms meanwhile)."""
    worst = 0.0
    running = True

    async def probe() -> None:
        nonlocal worst
        while running:
            before = time.perf_counter()
            await asyncio.sleep(0.001)
            worst = max(worst, time.perf_counter() - before - 0.001)

    prober = asyncio.create_task(probe())
    started = time.perf_counter()
    compiled = await asyncio.to_thread(lambda: CompiledConfig.of(load_config(configs)))
    seconds = time.perf_counter() - started
    running = False
    await prober
    return compiled, seconds, worst * 1000


def take(engine: Engine, compiled: CompiledConfig, changes: int) -> float:
    """Seconds of `Engine.reload`, which changes `changes` directives."""
    started = time.perf_counter()
    summary = engine.reload(compiled)
    seconds = time.perf_counter() - started
    assert summary.changed == changes, summary
    return seconds


def in_process(n_directives: int, n_backlogs: int, repeat: int) -> dict:
    """Medians of `repeat` runs of each measure."""
    with tempfile.TemporaryDirectory() as tmp:
        old, new = Path(tmp, "old"), Path(tmp, "new")
        for d in (old, new):
            d.mkdir()
            write_configs(d, n_directives)
        change_every_directive(new, 6)
        clock = EventClock(T0)
        engine = Engine(load_config(old), clock=clock)
        settle_memory()  # as serve does once started (the backlogs come later)
        open_backlogs(engine, n_directives, n_backlogs)
        prepared, lags = [], []
        for _ in range(repeat):
            _, prepare, lag = asyncio.run(compile_on_a_thread(new))
            prepared.append(prepare)
            lags.append(lag)
        unchanged = [take(engine, CompiledConfig.of(load_config(old)), 0)
                     for _ in range(repeat)]
        changed = [take(engine, CompiledConfig.of(load_config(new if n % 2 == 0 else old)),
                        n_directives)
                   for n in range(repeat)]
    return {"directives": n_directives, "backlogs": n_backlogs, "prepare": median(prepared),
            "lag_ms": median(lags), "take_changed_ms": median(changed) * 1000,
            "take_unchanged_ms": median(unchanged) * 1000}


PUBLISHER = """
import asyncio, sys, time, nats
async def main():
    nc = await nats.connect(sys.argv[1], pending_size=64 * 1024 * 1024)
    rate = float(sys.argv[3])
    lines = [l.rstrip(b"\\n") for l in open(sys.argv[2], "rb")]
    started = time.monotonic()
    for i, line in enumerate(lines, 1):
        await nc.publish("dsiem_events", line)
        if i % 100 == 0:
            await nc.flush()
            ahead = i / rate - (time.monotonic() - started)
            if ahead > 0:
                await asyncio.sleep(ahead)
    await nc.flush()
    await nc.close()
asyncio.run(main())
"""

LOGGED = re.compile(r"config reloaded \(POST /-/reload\) in ([0-9.]+) s, taken between two "
                    r"events in ([0-9.]+) ms")


def post_reload(port: int) -> tuple[int, float]:
    request = urllib.request.Request(f"http://127.0.0.1:{port}/-/reload", method="POST",
                                     data=b"")
    started = time.perf_counter()
    with urllib.request.urlopen(request, timeout=120) as r:
        r.read()
        return r.status, time.perf_counter() - started


def over_nats(n_directives: int, reloads: int, rate: int) -> tuple[list[dict], dict]:
    seconds = 2 * reloads + 3
    n_events = rate * seconds
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        configs = root / "configs"
        configs.mkdir()
        write_configs(configs, n_directives)
        events = root / "events.jsonl"
        write_events(events, n_directives, n_events, t0=int(time.time()) - seconds)
        nats_port, metrics_port = free_port(), free_port()
        nats_server = start_nats(nats_port)
        serve = serve_process(configs, nats_port, metrics_port, root / "dsiem.db",
                              "--max_queue", "25000", "--enable-lifecycle")
        rows = []
        try:
            publisher = subprocess.Popen(
                [sys.executable, "-c", PUBLISHER, f"nats://127.0.0.1:{nats_port}",
                 str(events), str(rate)])
            time.sleep(1.5)
            for n in range(reloads):
                change_every_directive(configs, 6 + n % 2)
                status, round_trip = post_reload(metrics_port)
                rows.append({"reload": n + 1, "status": status, "round_trip": round_trip})
                time.sleep(2)
            publisher.wait(120)
            deadline = time.time() + 60
            while (metric(metrics_port, "dsiem_events_processed_total") < n_events
                   and time.time() < deadline):
                time.sleep(0.1)
            totals = {name: int(metric(metrics_port, f"dsiem_events_{name}_total"))
                      for name in ("received", "processed", "dropped")}
            totals["published"] = n_events
        finally:
            serve.terminate()
            serve.wait(60)
            nats_server.terminate()
            nats_server.wait(10)
        logged = LOGGED.findall((root / "serve.log").read_text())
    for row, (total, held) in zip(rows, logged, strict=True):
        row["serve_seconds"], row["held_ms"] = float(total), float(held)
    return rows, totals


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--directives", default="100,1000,5000")
    p.add_argument("--backlogs", type=int, default=20_000)
    p.add_argument("--serve-directives", type=int, default=1000)
    p.add_argument("--reloads", type=int, default=5)
    p.add_argument("--rate", type=int, default=5000)
    p.add_argument("--repeat", type=int, default=5, help="in process: medians of this many")
    args = p.parse_args()

    rows = [in_process(int(n), args.backlogs, args.repeat) for n in args.directives.split(",")]
    print(f"{'directives':>10} {'live backlogs':>13} {'load+compile s':>14} "
          f"{'loop late ms':>12} {'take ms (all changed)':>21} {'take ms (none changed)':>22}")
    for r in rows:
        print(f"{r['directives']:>10} {r['backlogs']:>13} {r['prepare']:>14.3f} "
              f"{r['lag_ms']:>12.1f} {r['take_changed_ms']:>21.1f} "
              f"{r['take_unchanged_ms']:>22.1f}")
    print("Medians of several runs. load+compile runs on a thread while the event loop goes on")
    print("('loop late': the worst delay of a 1 ms sleep meanwhile); 'take' is the time the")
    print("worker holds up the events. A collection of the garbage collector's older")
    print("generations, when one falls into a run, adds up to a few hundred ms to it.")
    print()
    if args.serve_directives:
        reloads, totals = over_nats(args.serve_directives, args.reloads, args.rate)
        print(f"serve, {args.serve_directives} directives, {args.rate} events/s over NATS:")
        print(f"{'reload':>6} {'HTTP':>5} {'round trip s':>12} {'serve s':>8} {'held ms':>8}")
        for r in reloads:
            print(f"{r['reload']:>6} {r['status']:>5} {r['round_trip']:>12.3f} "
                  f"{r['serve_seconds']:>8.3f} {r['held_ms']:>8.1f}")
        print(f"events published {totals['published']}, received {totals['received']}, "
              f"processed {totals['processed']}, dropped {totals['dropped']}")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
