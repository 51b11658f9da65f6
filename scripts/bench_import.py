#!/usr/bin/env python
"""Import throughput of legacy saved backlogs: prints a table of backlogs/s.

Generates a config of three-stage directives and a directory of `--files` saved backlog files
(`<directive id>.json`, dsiem-backend's format) of `--backlogs` backlogs each, waiting at
stage 2 or 3 with event ids, sticky values and (some) vulnerabilities. Then imports the
directory through the real code path: `load_config`, `Engine`, `Store` on a fresh database and
`dsiem_sql.legacy.importer.import_files` (which reads the files in worker processes), as
`dsiem-sql import-backlogs` does. `--profile` profiles the importing process only.

    .venv/bin/python scripts/bench_import.py [--files 20] [--backlogs 500] [--repeat 5]
                                             [--profile]
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import json
import platform
import pstats
import random
import resource
import sqlite3
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

from dsiem_sql.config import load_config
from dsiem_sql.engine import Engine
from dsiem_sql.legacy.importer import backlog_files, import_files
from dsiem_sql.store.store import Store

PLUGIN_ID = 7000
GOAL = 5000  # backlogs/s


def rule(stage: int, occurrence: int, reliability: int, timeout: int, sid: int,
         src: str, dst: str, sticky: str = "") -> dict:
    r = {
        "name": f"s{stage}", "stage": stage, "occurrence": occurrence, "from": src, "to": dst,
        "plugin_id": PLUGIN_ID, "plugin_sid": [sid], "type": "PluginRule",
        "port_from": "ANY", "port_to": "ANY", "protocol": "TCP",
        "reliability": reliability, "timeout": timeout,
    }
    if sticky:
        r["sticky_different"] = sticky
    return r


def write_configs(directory: Path, n: int) -> None:
    assets = {"assets": [{"name": "home", "cidr": "10.0.0.0/8", "value": 3}]}
    (directory / "assets_bench.json").write_text(json.dumps(assets))
    directives = [
        {
            "id": i + 1, "name": f"bench {i + 1} from SRC_IP", "priority": 3,
            "kingdom": "bench", "category": "bench",
            "rules": [
                rule(1, 1, 1, 0, i + 1, "ANY", "HOME_NET"),
                rule(2, 5, 5, 3600, i + 1, ":1", ":1", "DST_PORT"),
                rule(3, 20, 10, 7200, i + 1, ":1", ":1", "DST_PORT"),
            ],
        }
        for i in range(n)
    ]
    (directory / "directives_bench_0.json").write_text(json.dumps({"directives": directives}))


def saved_backlog(directive: int, n: int, t0: int, rnd: random.Random) -> dict:
    """One live backlog as dsiem-backend saves it: references resolved, saved_* keys."""
    src, dst = f"198.51.{directive % 200}.{n % 250}", f"10.{directive % 250}.{n // 250}.5"
    at_stage = rnd.choice((2, 3))
    start = t0 + n
    ports = rnd.sample(range(1, 65535), 4 if at_stage == 2 else 9)
    rules = [
        rule(1, 1, 1, 0, directive, "ANY", "HOME_NET"),
        rule(2, 5, 5, 3600, directive, src, dst, "DST_PORT"),
        rule(3, 20, 10, 7200, directive, src, dst, "DST_PORT"),
    ]
    ids = [f"{directive}-{n}-{k}" for k in range(1 + len(ports))]
    rules[0].update(start_time=start, end_time=start, status="finished",
                    saved_event_ids=ids[:1])
    if at_stage == 2:
        rules[1].update(start_time=start, end_time=start + 4,
                        saved_sticky_diffdata={"sdiff_string": [], "sdiff_int": ports},
                        saved_event_ids=ids[1:])
    else:
        rules[1].update(start_time=start, end_time=start + 5, status="finished",
                        saved_sticky_diffdata={"sdiff_string": [], "sdiff_int": ports[:5]},
                        saved_event_ids=ids[1:6])
        rules[2].update(start_time=start + 5,
                        saved_sticky_diffdata={"sdiff_string": [], "sdiff_int": ports[5:]},
                        saved_event_ids=ids[6:])
    risk = 0 if at_stage == 2 else 3 * 5 * 3 // 25
    b = {
        "alarm_id": f"B{directive:04d}x{n:05d}", "title": f"bench {directive} from SRC_IP",
        "status": "Open", "tag": "Identified Threat", "kingdom": "bench", "category": "bench",
        "created_time": start + 5 if risk else 0, "update_time": start + len(ports),
        "risk": risk, "risk_class": "Low" if risk else "", "rules": rules,
        "src_ips": [src], "dst_ips": [dst], "networks": ["10.0.0.0/8"] if risk else [],
        "saved_last_srcport": 40000 + n % 1000, "saved_last_dstport": ports[-1],
    }
    if n % 10 == 0:
        b["vulnerabilities"] = [{"provider": "Nesd", "term": f"{dst}:{ports[0]}",
                                 "result": "High - something"}]
    return b


def write_saved(directory: Path, files: int, per_file: int, t0: int) -> None:
    rnd = random.Random(1)
    directory.mkdir()
    for d in range(1, files + 1):
        items = [saved_backlog(d, n, t0, rnd) for n in range(per_file)]
        (directory / f"{d}.json").write_text(json.dumps(items, indent=2) + "\n")


async def import_directory(configs: Path, saved: Path, db: Path) -> list:
    engine = Engine(load_config(configs))
    store = Store(db, None)
    await store.open()
    try:
        resumed = await store.resume(engine.directive)
        engine.resume(resumed.backlogs, resumed.next_seq)
        return await import_files(backlog_files([saved]), engine, store)
    finally:
        await store.close()


def total_cpu() -> float:
    """CPU seconds of this process and of its ended children (the import's file readers)."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


def run_once(root: Path, files: int, per_file: int, profiler: cProfile.Profile | None) -> dict:
    db = root / "state.db"
    for path in root.glob("state.db*"):
        path.unlink()
    cpu, started = total_cpu(), time.perf_counter()
    if profiler is not None:
        profiler.enable()
    results = asyncio.run(import_directory(root, root / "saved", db))
    if profiler is not None:
        profiler.disable()
    seconds, cpu = time.perf_counter() - started, total_cpu() - cpu
    con = sqlite3.connect(db)
    stored = con.execute("SELECT count(*) FROM backlogs WHERE state = 'live'").fetchone()[0]
    con.close()
    failed = [r for r in results if r.error or r.skipped]
    imported = sum(r.imported for r in results)
    if failed or imported != files * per_file or stored != imported:
        raise SystemExit(f"import incomplete: {imported} imported, {stored} stored, "
                         f"{[(str(r.path), r.error, dict(r.skipped)) for r in failed]}")
    return {"files": len(results), "backlogs": imported, "seconds": seconds, "cpu": cpu}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--files", type=int, default=20)
    p.add_argument("--backlogs", type=int, default=500, help="backlogs per file")
    p.add_argument("--repeat", type=int, default=5, help="runs, each into a fresh database")
    p.add_argument("--profile", action="store_true", help="print cProfile's top functions")
    args = p.parse_args()
    profiler = cProfile.Profile() if args.profile else None
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        write_configs(root, args.files)
        write_saved(root / "saved", args.files, args.backlogs, int(time.time()) - 600)
        if profiler is not None:
            runs = [run_once(root, args.files, args.backlogs, profiler)]
        else:  # each run in a new process: no cache warmed by an earlier run
            with ProcessPoolExecutor(1, mp_context=get_context("spawn"),
                                     max_tasks_per_child=1) as pool:
                runs = [pool.submit(run_once, root, args.files, args.backlogs, None).result()
                        for _ in range(args.repeat)]
    print(f"{'run':>4} {'files':>6} {'backlogs':>9} {'seconds':>8} {'backlogs/s':>11} "
          f"{'cpu-s':>7} {'backlogs/cpu-s':>15}")
    for i, r in enumerate(runs, 1):
        print(f"{i:>4} {r['files']:>6} {r['backlogs']:>9} {r['seconds']:>8.2f} "
              f"{r['backlogs'] / r['seconds']:>11,.0f} {r['cpu']:>7.2f} "
              f"{r['backlogs'] / r['cpu']:>15,.0f}")
    best = max(r["backlogs"] / r["seconds"] for r in runs)
    middle = sorted(r["backlogs"] / r["seconds"] for r in runs)[len(runs) // 2]
    print(f"best: {best:,.0f} backlogs/s (goal {GOAL:,}: {'met' if best >= GOAL else 'missed'}),"
          f" median {middle:,.0f}")
    print(f"python: {sys.executable} {platform.python_version()}"
          f" ({' '.join(platform.python_build())}, {platform.python_compiler()})")
    print("seconds is wall-clock time of the whole import (parse, convert, insert, commit);")
    print("cpu-s is the CPU time of the import's process and of the worker processes that read")
    print("the files; a busy machine disturbs it less.")
    if profiler is not None:
        for order, count in (("cumulative", 30), ("tottime", 25)):
            out = io.StringIO()
            pstats.Stats(profiler, stream=out).sort_stats(order).print_stats(count)
            print(out.getvalue())


if __name__ == "__main__":
    main()
