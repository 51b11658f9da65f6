#!/usr/bin/env python
"""What 1,000 active suppressions cost `serve`: events/s at 100 directives with none and with
1,000 (the goal: at most 10 % less). Prints a table of medians; rounds alternate the two so
that a loaded machine weighs on both alike.

The suppressions are each for one of the directives and one source network (a /32 or a /24)
that no event comes from: every event offered to a directive is looked up and passes, the
costliest case (a hit ends the work for that directive).

    .venv/bin/python scripts/bench_suppress.py [--events 100000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import random
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_replay import write_configs, write_events
from bench_serve import PUBLISHER, free_port, metric, serve_process, start_nats

DIRECTIVES = 100


def source(i: int) -> str:
    """A /32 or a /24 of 100.64.0.0/10, where no event of the mix comes from."""
    return f"100.64.{i // 250}.{i % 250 + 1}/32" if i % 2 else f"100.{65 + i % 50}.{i % 250}.0/24"


def suppressions(db: Path, n: int) -> None:
    """`n` suppressions in force, in a new database."""
    subprocess.run([sys.executable, "-m", "dsiem_sql", "db", "upgrade", "--db", str(db)],
                   check=True, capture_output=True)
    rnd = random.Random(1)
    con = sqlite3.connect(db)
    with con:
        con.executemany(
            "INSERT INTO suppression_entries (directive_id, src, dst, custom_data, reason, "
            "added_by, created, expires, hits) VALUES (?, ?, NULL, NULL, 'bench', '', ?, NULL, "
            "0)",
            [(rnd.randrange(1, DIRECTIVES + 1), source(i), int(time.time())) for i in range(n)])
    con.close()


def cpu_seconds(pid: int) -> float:
    """The user and system CPU time of a process so far (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run(n_events: int, n_suppressions: int, configs: Path, events: Path, root: Path
        ) -> tuple[float, float]:
    """Events/s of one serve from the first publish to the last event processed, and events
    per CPU-second of serve (start-up included), which a busy machine disturbs less."""
    db = root / f"run-{time.monotonic_ns()}" / "dsiem.db"
    db.parent.mkdir()
    suppressions(db, n_suppressions)
    nats_port, metrics_port = free_port(), free_port()
    nats_server = start_nats(nats_port)
    time.sleep(0.3)
    serve = serve_process(configs, nats_port, metrics_port, db)
    try:
        publisher = subprocess.run(
            [sys.executable, "-c", PUBLISHER, f"nats://127.0.0.1:{nats_port}", str(events)],
            capture_output=True, text=True, check=True)
        first = float(publisher.stdout.split()[0])
        deadline = time.time() + 120
        while metric(metrics_port, "dsiem_events_processed_total") < n_events:
            if time.time() > deadline:
                sys.exit("serve did not process every event within 120 s (NATS dropped some?)")
            time.sleep(0.02)
        return n_events / (time.time() - first), n_events / cpu_seconds(serve.pid)
    finally:
        serve.terminate()
        serve.wait(30)
        nats_server.terminate()
        nats_server.wait(10)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--suppressions", type=int, default=1000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        configs = root / "configs"
        configs.mkdir()
        write_configs(configs, DIRECTIVES)
        events = root / "events.jsonl"
        write_events(events, DIRECTIVES, args.events,
                     t0=int(time.time()) - args.events // 200)
        rates: dict[int, list[float]] = {0: [], args.suppressions: []}
        per_cpu: dict[int, list[float]] = {0: [], args.suppressions: []}
        for _ in range(args.rounds):
            for n in rates:
                rate, cpu = run(args.events, n, configs, events, root)
                rates[n].append(rate)
                per_cpu[n].append(cpu)
    print(f"| directives | suppressions | events/s (median of {args.rounds}) | "
          f"events/cpu-s of serve | runs (events/s) |")
    print("|---:|---:|---:|---:|---|")
    for n, r in rates.items():
        print(f"| {DIRECTIVES} | {n:,} | {statistics.median(r):,.0f} | "
              f"{statistics.median(per_cpu[n]):,.0f} | {', '.join(f'{x:,.0f}' for x in r)} |")
    some, none = rates[args.suppressions], rates[0]
    ratio = statistics.median(a / b for a, b in zip(some, none, strict=True))
    cpu = statistics.median(a / b for a, b in zip(per_cpu[args.suppressions], per_cpu[0],
                                                   strict=True))
    print(f"\nwith {args.suppressions:,} suppressions, run by run against the run without "
          f"in the same round (medians): {ratio:.1%} of the events/s, {cpu:.1%} of the "
          f"events per CPU-second (goal: at least 90 %)")


if __name__ == "__main__":
    main()
