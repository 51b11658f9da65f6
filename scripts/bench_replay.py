#!/usr/bin/env python
"""Replay throughput for N directives: prints a table of events/s.

Generates N three-stage PluginRule directives and an event mix (`benchmix.py`): `spread`,
in which 90 % of the events match no directive and 10 % match a random directive, with
source addresses drawn from 50 per directive; or `alarms`, 20 % matching with 2 sources a
directive, in which backlogs reach their last stage and alarms fire at every directive
count. Each run replays the stream, writing real output files: through
`dsiem_sql.runtime.replay.replay_file` in this process (`--runner library`), or as the whole
`python -m dsiem_sql replay` command, start-up included (`--runner command`).

`--trees before=/path/to/old/checkout,after=.` runs the command of each source tree in turn
(its `.venv/bin/python` if it has one, with the tree first on PYTHONPATH), round after
round, on the same files; 'vs first' is then each run's events/s divided by the first
tree's in the same round.

    .venv/bin/python scripts/bench_replay.py [--events 200000] [--directives 2,100,1000]
        [--modes memory,db] [--mix spread|alarms] [--runner library,command] [--repeat 1]
        [--trees NAME=DIR,...]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchmix import MIXES, write_configs, write_events

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Tree:
    """A source tree of dsiem-sql whose `replay` command is run."""

    name: str
    path: Path

    @property
    def python(self) -> str:
        own = self.path / ".venv" / "bin" / "python"
        return str(own) if own.exists() else sys.executable


def run_library(files: Path, work: Path, db: bool, tree: Tree) -> dict:
    """`replay_file` in this process: the replay alone, without start-up."""
    from dsiem_sql.config import load_config
    from dsiem_sql.engine import Engine
    from dsiem_sql.runtime.correlator import EventClock
    from dsiem_sql.runtime.replay import ReplayRun, replay_file

    config = load_config(files)
    clock = EventClock()
    engine = Engine(config, clock=clock)
    job = ReplayRun(
        file=str(files / "events.jsonl"),
        out=str(work / "out"),
        db=str(work / "state.db") if db else None,
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


def run_command(files: Path, work: Path, db: bool, tree: Tree) -> dict:
    """`python -m dsiem_sql replay` as a process: the whole command, start-up included, on
    the wall clock from its start to its exit (in-memory runs end with a final sweep, as the
    command does by default)."""
    command = [tree.python, "-m", "dsiem_sql", "replay", "--configs", str(files),
               "--out", str(work / "out"), str(files / "events.jsonl")]
    if db:
        command += ["--db", str(work / "state.db")]
    env = {**os.environ, "COLUMNS": "200", "PYTHONPATH": str(tree.path)}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=tree.path)
    seconds = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode:
        sys.exit(f"{' '.join(command)} failed:\n{done.stderr}")
    summary = {}
    for line in done.stdout.splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        if len(cells) == 2:
            summary[cells[0]] = cells[1].replace(",", "")
    return {
        "events": int(summary["events read"]),
        "seconds": seconds,
        "cpu": after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime,
        "backlogs": int(summary["backlogs opened"]),
        "alarms": int(summary["alarms"]),
        "alarm_lines": int(summary["alarm lines"]),
    }


RUNNERS = {"library": run_library, "command": run_command}


def run(files: Path, n_directives: int, db: bool, runner: str, tree: Tree) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        r = RUNNERS[runner](files, Path(tmp), db, tree)
    return {
        "tree": tree.name,
        "runner": runner,
        "directives": n_directives,
        "mode": "--db" if db else "memory",
        **r,
        "eps": r["events"] / r["seconds"],
        "cpu_eps": r["events"] / r["cpu"],
    }


def parse_trees(text: str | None) -> list[Tree]:
    if not text:
        return [Tree("this", ROOT)]
    trees = []
    for item in text.split(","):
        name, _, path = item.partition("=")
        trees.append(Tree(name, Path(path).resolve()))
    return trees


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
    p.add_argument("--trees", help="NAME=DIR,...: run the command of each source tree in turn")
    p.add_argument("--json", action="store_true", help="also print every run as JSON")
    args = p.parse_args()
    modes = [m == "db" for m in args.modes.split(",")]
    runners = args.runner.split(",")
    trees = parse_trees(args.trees)
    if args.trees and runners != ["command"]:
        p.error("--trees runs the command: give --runner command")
    mix = MIXES[args.mix]
    counts = [int(n) for n in args.directives.split(",")]
    cases = [(n, runner, db) for n in counts for runner in runners for db in modes]
    runs: dict[tuple, list[dict]] = {(*case, t.name): [] for case in cases for t in trees}
    work = Path(tempfile.mkdtemp(prefix="bench-replay-"))
    try:
        for n in counts:  # the same files for every run of a directive count
            (work / str(n)).mkdir()
            write_configs(work / str(n), n)
            write_events(work / str(n) / "events.jsonl", n, args.events, mix=mix)
        for _ in range(args.repeat):
            for n, runner, db in cases:
                for tree in trees:
                    runs[(n, runner, db, tree.name)].append(
                        run(work / str(n), n, db, runner, tree))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"mix {mix.name}: {mix.share:.0%} of the events match a directive, "
          f"{mix.sources} sources a directive; medians of {args.repeat} run(s)")
    print(f"{'tree':>8} {'runner':>8} {'directives':>10} {'mode':>7} {'events':>8} "
          f"{'seconds':>8} {'events/s':>10} {'events/cpu-s':>12} {'vs first':>8} "
          f"{'vs memory':>9} {'backlogs':>9} {'alarms':>7} {'alarm lines':>11}")
    first_tree = trees[0].name
    for n, runner, db in cases:
        for tree in trees:
            mine = runs[(n, runner, db, tree.name)]
            r = median_row(mine)
            first = runs[(n, runner, db, first_tree) if len(trees) > 1
                         else (*cases[0], first_tree)]
            memory = runs.get((n, runner, False, tree.name)) if db else None
            print(f"{tree.name:>8} {runner:>8} {n:>10} {r['mode']:>7} {r['events']:>8} "
                  f"{r['seconds']:>8.2f} {r['eps']:>10,.0f} {r['cpu_eps']:>12,.0f} "
                  f"{ratio(mine, first):>8} {ratio(mine, memory):>9} {r['backlogs']:>9} "
                  f"{r['alarms']:>7} {r['alarm_lines']:>11}")
    print("events/s is wall-clock throughput; events/cpu-s divides by the CPU time of the")
    print("replay (runner library: this process's; command: the process's, start-up included),")
    print("which a busy shared machine disturbs less. 'vs first' divides events/s by the first")
    print("tree's (with one tree: the first row's), 'vs memory' the --db run's by the in-memory")
    print("run's of the same directive count; both run by run within a round, then the median.")
    if args.json:
        print(json.dumps([r for rs in runs.values() for r in rs]))
    sys.stdout.flush()


def median_row(runs: list[dict]) -> dict:
    """The first run, with the median of each measured value over `runs`."""
    row = dict(runs[0])
    for key in ("seconds", "eps", "cpu_eps"):
        row[key] = statistics.median(r[key] for r in runs)
    return row


def ratio(runs: list[dict], others: list[dict] | None) -> str:
    """The median over the rounds of events/s of `runs` over that of `others`."""
    if not others:
        return "-"
    shares = [a["eps"] / b["eps"] for a, b in zip(runs, others, strict=True)]
    return f"{statistics.median(shares):.0%}"


if __name__ == "__main__":
    main()
