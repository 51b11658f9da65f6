#!/usr/bin/env python
"""Replay throughput for N directives: prints a table of events/s.

Generates N three-stage PluginRule directives and an event mix (`benchmix.py`): `spread`,
in which 90 % of the events match no directive and 10 % match a random directive, with
source addresses drawn from 50 per directive; or `alarms`, 20 % matching with 2 sources a
directive, in which backlogs reach their last stage and alarms fire at every directive
count. Each run replays the stream, writing real output files: through
`dsiem_sql.runtime.replay.replay_file` in this process (`--runner library`), or as the whole
`python -m dsiem_sql replay` command, start-up included (`--runner command`).

    .venv/bin/python scripts/bench_replay.py [--events 200000] [--directives 2,100,1000]
        [--modes memory,db] [--mix spread|alarms] [--runner library,command] [--repeat 1]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchmix import MIXES, Mix, write_configs, write_events


def prepare(root: Path, n_directives: int, n_events: int, mix: Mix) -> None:
    write_configs(root, n_directives)
    write_events(root / "events.jsonl", n_directives, n_events, mix=mix)


def run_library(root: Path, n_directives: int, db: bool) -> dict:
    """`replay_file` in this process: the replay alone, without start-up."""
    from dsiem_sql.config import load_config
    from dsiem_sql.engine import Engine
    from dsiem_sql.runtime.correlator import EventClock
    from dsiem_sql.runtime.replay import ReplayRun, replay_file

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
        "events": s.read,
        "seconds": s.seconds,
        "cpu": cpu,
        "backlogs": s.stats.backlogs_opened,
        "alarms": s.stats.alarms,
        "alarm_lines": s.stats.alarm_lines,
    }


def run_command(root: Path, n_directives: int, db: bool) -> dict:
    """`python -m dsiem_sql replay` as a process: the whole command, start-up included, on
    the wall clock from its start to its exit (in-memory runs end with a final sweep, as the
    command does by default)."""
    command = [sys.executable, "-m", "dsiem_sql", "replay", "--configs", str(root),
               "--out", str(root / "out"), str(root / "events.jsonl")]
    if db:
        command += ["--db", str(root / "state.db")]
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env={**os.environ,
                          "COLUMNS": "200"})
    seconds = time.perf_counter() - started
    if done.returncode:
        sys.exit(f"{' '.join(command)} failed:\n{done.stderr}")
    summary = {}
    for line in done.stdout.splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        if len(cells) == 2:
            summary[cells[0]] = cells[1].replace(",", "")
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return {
        "events": int(summary["events read"]),
        "seconds": seconds,
        "cpu": usage.ru_utime + usage.ru_stime,  # all children so far; see run()
        "backlogs": int(summary["backlogs opened"]),
        "alarms": int(summary["alarms"]),
        "alarm_lines": int(summary["alarm lines"]),
    }


RUNNERS = {"library": run_library, "command": run_command}


def run(n_directives: int, n_events: int, db: bool, mix: Mix, runner: str) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        prepare(root, n_directives, n_events, mix)
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        r = RUNNERS[runner](root, n_directives, db)
        if runner == "command":
            r["cpu"] -= before.ru_utime + before.ru_stime
    return {
        "mix": mix.name,
        "runner": runner,
        "directives": n_directives,
        "mode": "--db" if db else "memory",
        **r,
        "eps": r["events"] / r["seconds"],
        "cpu_eps": r["events"] / r["cpu"],
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--events", type=int, default=200_000)
    p.add_argument("--directives", default="2,100,1000")
    p.add_argument("--modes", default="memory,db", help="memory, db or both")
    p.add_argument("--mix", default="spread", choices=sorted(MIXES),
                   help="spread: 10 %% of the events match, 50 sources a directive; alarms: "
                        "20 %% match, 2 sources a directive, backlogs reach their last stage")
    p.add_argument("--runner", default="library",
                   help="library (replay_file in this process), command (the whole "
                        "`dsiem-sql replay` as a process, start-up included), or both")
    p.add_argument("--repeat", type=int, default=1,
                   help="run everything this many times, in turn; the table shows medians")
    p.add_argument("--json", action="store_true", help="also print every run as JSON")
    args = p.parse_args()
    modes = [m == "db" for m in args.modes.split(",")]
    mix = MIXES[args.mix]
    cases = [(int(n), db, runner) for n in args.directives.split(",") for runner in
             args.runner.split(",") for db in modes]
    runs: dict[tuple, list[dict]] = {case: [] for case in cases}
    for _ in range(args.repeat):
        for case in cases:
            n, db, runner = case
            runs[case].append(run(n, args.events, db, mix, runner))
    rows = [median_row(runs[case]) for case in cases]
    memory = {(r["directives"], r["runner"]): r for r in rows if r["mode"] == "memory"}
    first = rows[0]
    print(f"mix {mix.name}: {mix.share:.0%} of the events match a directive, "
          f"{mix.sources} sources a directive; medians of {args.repeat} run(s)")
    print(f"{'runner':>8} {'directives':>10} {'mode':>7} {'events':>8} {'seconds':>8} "
          f"{'events/s':>10} {'events/cpu-s':>12} {'vs first':>8} {'vs memory':>9} "
          f"{'backlogs':>9} {'alarms':>7} {'alarm lines':>11}")
    for r in rows:
        mem = memory.get((r["directives"], r["runner"]))
        vs_memory = f"{r['eps'] / mem['eps']:.0%}" if mem else "-"
        print(f"{r['runner']:>8} {r['directives']:>10} {r['mode']:>7} {r['events']:>8} "
              f"{r['seconds']:>8.2f} {r['eps']:>10,.0f} {r['cpu_eps']:>12,.0f} "
              f"{r['eps'] / first['eps']:>8.0%} {vs_memory:>9} {r['backlogs']:>9} "
              f"{r['alarms']:>7} {r['alarm_lines']:>11}")
    print("events/s is wall-clock throughput; events/cpu-s divides by the CPU time of the")
    print("replay (runner library: this process's; command: the process's, start-up included),")
    print("which a busy shared machine disturbs less. 'vs first' compares with the first row,")
    print("'vs memory' the --db run with the in-memory run of the same directive count.")
    if args.json:
        print(json.dumps({f"{r} {n} {'db' if db else 'memory'}": runs[(n, db, r)]
                          for n, db, r in cases}))
    sys.stdout.flush()


def median_row(runs: list[dict]) -> dict:
    """The first run, with the median of each measured value over `runs`."""
    row = dict(runs[0])
    for key in ("seconds", "eps", "cpu_eps"):
        row[key] = statistics.median(r[key] for r in runs)
    return row


if __name__ == "__main__":
    main()
