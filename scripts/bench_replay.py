#!/usr/bin/env python
"""Replay throughput for N directives: prints a table of events/s.

Generates N three-stage PluginRule directives and an event mix in which 90 % of the events
match no directive and 10 % match a random directive, with source addresses drawn from 50
per directive. Each run replays the same kind of stream through `dsiem_sql.runtime.replay.replay`,
writing real output files.

    .venv/bin/python scripts/bench_replay.py [--events 200000] [--directives 2,100,1000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from dsiem_sql.config import load_config
from dsiem_sql.engine import Engine
from dsiem_sql.runtime.correlator import EventClock
from dsiem_sql.runtime.replay import ReplayRun, replay_file

T0 = 1714557600
PLUGIN_ID = 7000
NOISE_PLUGIN_ID = 9000


def write_configs(directory: Path, n: int) -> None:
    assets = {"assets": [{"name": "home", "cidr": "10.0.0.0/8", "value": 3}]}
    (directory / "assets_bench.json").write_text(json.dumps(assets))
    directives = []
    for i in range(n):
        common = {
            "type": "PluginRule",
            "plugin_id": PLUGIN_ID,
            "plugin_sid": [i + 1],
            "port_from": "ANY",
            "port_to": "ANY",
            "protocol": "TCP",
        }
        directives.append(
            {
                "id": i + 1,
                "name": f"bench {i + 1} from SRC_IP",
                "priority": 3,
                "kingdom": "bench",
                "category": "bench",
                "rules": [
                    {
                        "name": "s1",
                        "stage": 1,
                        "occurrence": 1,
                        "from": "ANY",
                        "to": "HOME_NET",
                        "reliability": 1,
                        "timeout": 0,
                        **common,
                    },
                    {
                        "name": "s2",
                        "stage": 2,
                        "occurrence": 5,
                        "from": ":1",
                        "to": ":1",
                        "reliability": 5,
                        "timeout": 3600,
                        **common,
                    },
                    {
                        "name": "s3",
                        "stage": 3,
                        "occurrence": 20,
                        "from": ":1",
                        "to": ":1",
                        "reliability": 10,
                        "timeout": 7200,
                        **common,
                    },
                ],
            }
        )
    (directory / "directives_bench_0.json").write_text(json.dumps({"directives": directives}))


def write_events(
    path: Path, n_directives: int, n_events: int, seed: int = 1, t0: int = T0
) -> None:
    rnd = random.Random(seed)
    with path.open("w") as f:
        for i in range(n_events):
            ts = datetime.fromtimestamp(t0 + i // 200, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            if rnd.random() < 0.1:
                d = rnd.randrange(n_directives)
                plugin_id, sid = PLUGIN_ID, d + 1
                src = f"198.51.{d % 200}.{rnd.randrange(50)}"
            else:
                plugin_id, sid = NOISE_PLUGIN_ID, rnd.randrange(1, 5000)
                src = f"203.0.113.{rnd.randrange(250)}"
            f.write(
                json.dumps(
                    {
                        "event_id": f"e{i}",
                        "timestamp": ts,
                        "title": "bench",
                        "sensor": "bench",
                        "plugin_id": plugin_id,
                        "plugin_sid": sid,
                        "src_ip": src,
                        "dst_ip": f"10.0.{d % 250 if plugin_id == PLUGIN_ID else 1}.5",
                        "src_port": 40000 + i % 1000,
                        "dst_port": 443,
                        "protocol": "TCP",
                    }
                )
                + "\n"
            )


def run(n_directives: int, n_events: int, db: bool) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        write_configs(root, n_directives)
        write_events(root / "events.jsonl", n_directives, n_events)
        config = load_config(root)
        clock = EventClock()
        engine = Engine(config, clock=clock)
        job = ReplayRun(
            file=str(root / "events.jsonl"),
            out=str(root / "out"),
            db=str(root / "state.db") if db else None,
            final_sweep=False,
        )
        cpu = time.process_time()
        s = asyncio.run(replay_file(job, engine, clock))
        cpu = time.process_time() - cpu
    return {
        "directives": n_directives,
        "mode": "--db" if db else "memory",
        "events": s.read,
        "seconds": s.seconds,
        "eps": s.events_per_second,
        "cpu_eps": s.read / cpu,
        "backlogs": s.stats.backlogs_opened,
        "alarms": s.stats.alarms,
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--events", type=int, default=200_000)
    p.add_argument("--directives", default="2,100,1000")
    p.add_argument("--modes", default="memory,db", help="memory, db or both")
    args = p.parse_args()
    modes = [m == "db" for m in args.modes.split(",")]
    rows = [run(int(n), args.events, db) for n in args.directives.split(",") for db in modes]
    memory = {r["directives"]: r for r in rows if r["mode"] == "memory"}
    first = rows[0]
    print(f"{'directives':>10} {'mode':>7} {'events':>8} {'seconds':>8} {'events/s':>10} "
          f"{'events/cpu-s':>12} {'vs first':>8} {'vs memory':>9} {'backlogs':>9} {'alarms':>7}")
    for r in rows:
        mem = memory.get(r["directives"])
        vs_memory = f"{r['eps'] / mem['eps']:.0%}" if mem else "-"
        print(f"{r['directives']:>10} {r['mode']:>7} {r['events']:>8} {r['seconds']:>8.2f} "
              f"{r['eps']:>10,.0f} {r['cpu_eps']:>12,.0f} {r['eps'] / first['eps']:>8.0%} "
              f"{vs_memory:>9} {r['backlogs']:>9} {r['alarms']:>7}")
    print("events/s is wall-clock throughput; events/cpu-s divides by this process's CPU time,")
    print("which a busy shared machine disturbs less. 'vs first' compares with the first row,")
    print("'vs memory' the --db run with the in-memory run of the same directive count.")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
