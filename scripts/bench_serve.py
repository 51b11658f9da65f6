#!/usr/bin/env python
"""Throughput of `dsiem-sql serve` over NATS with persistence: prints a table.

For each directive count, a fresh nats-server and `serve` (max_queue 0, --db) are started; a
separate publisher process sends an event mix of benchmix.py (`--mix`, as bench_replay.py)
as fast as it can. The clock runs from the first publish until serve has committed the last
event.

With `--intake jetstream`, nats-server runs with JetStream (file store in the temporary
directory) and serve reads the events from the stream it creates; the publisher still uses
plain core NATS, as the Dsiem frontend does. With both intakes, each JetStream row also
shows its events/s as a share of core's at the same directive count, run by run.

`--trees before=/path/to/old/checkout,after=.` runs the serve of each source tree in turn,
as bench_replay.py does; the publisher and nats-server are the same for all.

    .venv/bin/python scripts/bench_serve.py [--events 200000] [--directives 2,100,1000]
        [--intake core|jetstream|core,jetstream] [--mix spread|alarms] [--repeat 1]
        [--trees NAME=DIR,...]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_replay import Tree, parse_trees
from benchmix import MIXES, Mix, write_configs, write_events

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent

PUBLISHER = """
import asyncio, sys, time, nats
async def main():
    nc = await nats.connect(sys.argv[1], pending_size=64 * 1024 * 1024)
    lines = [l.rstrip(b"\\n") for l in open(sys.argv[2], "rb")]
    print(time.time(), flush=True)
    for i, line in enumerate(lines):
        await nc.publish("dsiem_events", line)
        if i % 5000 == 0:
            await nc.flush()
    await nc.flush()
    await nc.close()
    print(time.time(), flush=True)
asyncio.run(main())
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def metric(port: int, name: str) -> float:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
        for line in r.read().decode().splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
    return 0.0


def start_nats(port: int, store: Path | None = None) -> subprocess.Popen:
    """nats-server on 127.0.0.1:`port`; with `store`, JetStream keeps its files there."""
    jetstream = ["-js", "-sd", str(store)] if store is not None else []
    return subprocess.Popen(
        [str(BIN / "nats-server"), "-a", "127.0.0.1", "-p", str(port), *jetstream],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )


def serve_process(configs: Path, nats_port: int, metrics_port: int, db: Path,
                  *extra: str, tree: Tree | None = None) -> subprocess.Popen:
    """`dsiem-sql serve` (of `tree`, default this one) with persistence, an unbounded queue
    and no overload signal, once it answers /healthz."""
    tree = tree or Tree("this", ROOT)
    serve = subprocess.Popen(
        [tree.python, "-m", "dsiem_sql", "serve", "--node", "bench", "--configs",
         str(configs), "--msq", f"nats://127.0.0.1:{nats_port}", "--db", str(db), "--logs",
         str(db.parent / "logs"), "--metrics-port", str(metrics_port), "--max_queue", "0",
         "--max_delay", "0", *extra],
        cwd=tree.path, env={**os.environ, "PYTHONPATH": str(tree.path)},
        stdout=subprocess.DEVNULL, stderr=(db.parent / "serve.log").open("wb"),
    )
    for _ in range(300):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/healthz", timeout=1)
            break
        except OSError:
            time.sleep(0.1)
    return serve


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def cpu_seconds(pid: int) -> float:
    """User and system CPU time of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run(n_directives: int, n_events: int, intake: str = "core",
        mix: Mix = MIXES["spread"], tree: Tree | None = None) -> dict:
    tree = tree or Tree("this", ROOT)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        configs = root / "configs"
        configs.mkdir()
        write_configs(configs, n_directives)
        events = root / "events.jsonl"
        # event time ends now, so that the service's wall clock expires nothing early
        write_events(events, n_directives, n_events, t0=int(time.time()) - n_events // 200,
                     mix=mix)
        nats_port, metrics_port = free_port(), free_port()
        url = f"nats://127.0.0.1:{nats_port}"
        nats_server = start_nats(nats_port, root / "jetstream" if intake == "jetstream" else None)
        time.sleep(0.3)
        serve = serve_process(configs, nats_port, metrics_port, root / "dsiem.db",
                              "--intake", intake, tree=tree)
        try:
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            publisher = subprocess.run(
                [sys.executable, "-c", PUBLISHER, url, str(events)],
                capture_output=True, text=True, check=True,
            )
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            publisher_cpu = (after.ru_utime + after.ru_stime
                             - before.ru_utime - before.ru_stime)
            first_publish = float(publisher.stdout.split()[0])
            processed, last_change, done_at = -1.0, time.time(), None
            while time.time() - last_change < 15:
                now_processed = metric(metrics_port, "dsiem_events_processed_total")
                if now_processed != processed:
                    processed, last_change = now_processed, time.time()
                if processed >= n_events:
                    done_at = time.time()
                    break
                time.sleep(0.05)
            rss = peak_rss_mb(serve.pid)
            serve_cpu, nats_cpu = cpu_seconds(serve.pid), cpu_seconds(nats_server.pid)
            received = metric(metrics_port, "dsiem_events_received_total")
            dropped = metric(metrics_port, "dsiem_events_dropped_total")
            end = done_at or last_change
        finally:
            serve.terminate()
            serve.wait(60)
            nats_server.terminate()
            nats_server.wait(10)
        alarms_file = root / "logs" / "siem_alarms.json"
        alarms = sum(1 for _ in alarms_file.open()) if alarms_file.exists() else 0
    return {
        "tree": tree.name, "intake": intake,
        "directives": n_directives, "events": n_events, "seconds": end - first_publish,
        "eps": processed / (end - first_publish), "lost": n_events - int(processed),
        "received": int(received), "dropped": int(dropped), "rss": rss, "alarm_lines": alarms,
        "serve_cpu": serve_cpu, "nats_cpu": nats_cpu, "publisher_cpu": publisher_cpu,
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--events", type=int, default=200_000)
    p.add_argument("--directives", default="2,100,1000")
    p.add_argument("--intake", default="core", help="core, jetstream, or both: core,jetstream")
    p.add_argument("--mix", default="spread", choices=sorted(MIXES), help="see bench_replay.py")
    p.add_argument("--repeat", type=int, default=1,
                   help="run everything this many times, in turn; the table shows medians")
    p.add_argument("--trees", help="NAME=DIR,...: run the serve of each source tree in turn "
                                   "(see bench_replay.py)")
    args = p.parse_args()
    mix = MIXES[args.mix]
    trees = parse_trees(args.trees)
    cases = [(int(n), intake, t.name) for n in args.directives.split(",")
             for intake in args.intake.split(",") for t in trees]
    by_name = {t.name: t for t in trees}
    runs: dict[tuple[int, str, str], list[dict]] = {case: [] for case in cases}
    for _ in range(args.repeat):
        for n, intake, name in cases:
            runs[(n, intake, name)].append(run(n, args.events, intake, mix, by_name[name]))
    print(f"mix {mix.name}: {mix.share:.0%} of the events match a directive, "
          f"{mix.sources} sources a directive; medians of the complete runs")
    print(f"{'tree':>8} {'intake':>9} {'directives':>10} {'runs':>5} {'seconds':>8} "
          f"{'events/s':>10} {'vs core':>7} {'peak RSS MB':>11} {'alarm lines':>11} "
          f"{'serve CPU s':>11} {'NATS CPU s':>10} {'pub CPU s':>9}")
    for case in cases:
        complete = [r for r in runs[case] if not r["lost"]]
        if not complete:
            print(f"{case[2]:>8} {case[1]:>9} {case[0]:>10} {0:>2}/{len(runs[case]):<2} "
                  f"(every run lost events)")
            continue
        r = median_row(complete)
        core = runs.get((case[0], "core", case[2])) if case[1] == "jetstream" else None
        print(f"{r['tree']:>8} {r['intake']:>9} {r['directives']:>10} "
              f"{len(complete):>2}/{len(runs[case]):<2} {r['seconds']:>8.2f} {r['eps']:>10,.0f} "
              f"{share(runs[case], core):>7} {r['rss']:>11.0f} {r['alarm_lines']:>11} "
              f"{r['serve_cpu']:>11.2f} {r['nats_cpu']:>10.2f} {r['publisher_cpu']:>9.2f}")
    print("events/s: from the first publish until serve committed the last event "
          "(persistence on, max_queue 0).")
    print("runs: those in which serve processed every event, of all; a run in which events "
          "never arrived (NATS dropped them: a slow consumer on a loaded machine) is left out.")
    print("vs core: JetStream's events/s divided by core's of the same round and tree, median "
          "over the rounds in which both were complete.")
    print("CPU s: the serve, nats-server and publisher processes' CPU time (start-up included); "
          "they share the machine's cores.")
    print(json.dumps([r for case in cases for r in runs[case]]))


def median_row(runs: list[dict]) -> dict:
    """The first run, with the median of each measured value over `runs`."""
    row = dict(runs[0])
    for key in ("seconds", "eps", "rss", "serve_cpu", "nats_cpu", "publisher_cpu"):
        row[key] = statistics.median(r[key] for r in runs)
    return row


def share(runs: list[dict], core: list[dict] | None) -> str:
    if not core:
        return "-"
    shares = [j["eps"] / c["eps"] for j, c in zip(runs, core, strict=True)
              if not j["lost"] and not c["lost"]]
    return f"{statistics.median(shares):.0%}" if shares else "-"


if __name__ == "__main__":
    main()
