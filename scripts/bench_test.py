#!/usr/bin/env python
"""How long `dsiem-sql test` takes for a file of 100 cases, start-up included (the goal: at
most 2 s). Prints a table: cases, events, seconds of the whole command (median of runs).

    .venv/bin/python scripts/bench_test.py [--cases 100] [--runs 5]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CASE = """  - name: case {n}
    events:
      - {{at: +0s, id: first, src_ip: 10.0.{a}.{b}}}
      - {{at: +10s, id: ping, repeat: 5, every: 10s, src_ip: 10.0.{a}.{b}}}
      - at: +{expiry}s
    expect:
      alarms:
        - {{directive: 1, risk: 2, risk_class: Low, stage: 3, src_ips: [10.0.{a}.{b}],
            events: {{1: [first], 2: [ping-1..ping-5]}}}}
      alarm_lines: {lines}
"""


def write_cases(path: Path, n: int) -> int:
    """`n` cases of the Ping Flood; half of them end with a clock step that expires it."""
    head = (f"configs: {ROOT / 'examples' / 'configs'}\ndirectives: [1]\n"
            f"start: 2024-05-01T10:00:00Z\n"
            "defaults: {plugin_id: 1001, plugin_sid: 2100384, protocol: ICMP, "
            "dst_ip: 10.0.0.3}\ncases:\n")
    cases = [CASE.format(n=i, a=i // 250, b=i % 250 + 1, expiry=60 if i % 2 else 4000,
                         lines=1 if i % 2 else 2) for i in range(n)]
    path.write_text(head + "".join(cases))
    return 6 * n


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cases", type=int, default=100)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "cases.yaml"
        events = write_cases(path, args.cases)
        seconds = []
        for _ in range(args.runs):
            started = time.perf_counter()
            done = subprocess.run([sys.executable, "-m", "dsiem_sql", "test", str(path)],
                                  capture_output=True, text=True)
            seconds.append(time.perf_counter() - started)
            if done.returncode != 0:
                sys.exit(f"dsiem-sql test failed:\n{done.stdout}{done.stderr}")
        last = done.stdout.splitlines()[-1]
    print(f"| cases | events | seconds (median of {args.runs}) | min | max | result |")
    print("|---:|---:|---:|---:|---:|---|")
    print(f"| {args.cases} | {events} | {statistics.median(seconds):.2f} | {min(seconds):.2f} "
          f"| {max(seconds):.2f} | {last} |")


if __name__ == "__main__":
    main()
