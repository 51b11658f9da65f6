"""Crash safety: SIGKILL a replay with --db at random moments, resume, compare (issue 3)."""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from dbcompare import database_dump, integrity, normalised_outputs
from workload import events, write_configs

ROOT = Path(__file__).resolve().parents[2]
N_EVENTS = 50_000
KILLS = 5


def replay_cmd(configs: Path, out: Path, db: Path, events_file: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "dsiem_sql", "replay", "--configs", str(configs),
            "--out", str(out), "--db", str(db), *extra, str(events_file)]


def committed_line(db: Path) -> int:
    if not db.exists():
        return 0
    try:
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1)
        try:
            row = con.execute("SELECT max(line) FROM input_progress").fetchone()
        finally:
            con.close()
    except sqlite3.Error:  # schema not created yet
        return 0
    return row[0] or 0


def test_sigkill_five_times_then_resume_equals_one_run(tmp_path):
    configs = write_configs(tmp_path / "configs")
    events_file = tmp_path / "events.jsonl"
    events_file.write_text("\n".join(events(N_EVENTS)) + "\n")

    whole_db, whole_out = tmp_path / "whole.db", tmp_path / "whole"
    run = subprocess.run(replay_cmd(configs, whole_out, whole_db, events_file),
                         capture_output=True, cwd=ROOT, timeout=300)
    assert run.returncode == 0, run.stderr.decode()

    db, out = tmp_path / "crashed.db", tmp_path / "crashed"
    rnd = random.Random(os.environ.get("CRASH_SEED", "1"))
    targets = sorted(rnd.sample(range(2_000, N_EVENTS - 2_000), KILLS))
    killed_at = []
    for target in targets:
        proc = subprocess.Popen(
            replay_cmd(configs, out, db, events_file, "--resume", "--commit-interval", "20"),
            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + 120
        while committed_line(db) < target and proc.poll() is None:
            assert time.monotonic() < deadline, "replay made no progress"
            time.sleep(0.01)
        time.sleep(rnd.uniform(0, 0.05))  # land anywhere: mid-batch, mid-commit, mid-write
        assert proc.poll() is None, f"replay finished before the kill: {proc.stderr.read()}"
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        killed_at.append(committed_line(db))
    assert len(killed_at) == KILLS and killed_at == sorted(killed_at)

    run = subprocess.run(replay_cmd(configs, out, db, events_file, "--resume"),
                         capture_output=True, cwd=ROOT, timeout=300)
    assert run.returncode == 0, run.stderr.decode()

    whole_alarms, whole_links, whole_ids = normalised_outputs(whole_out)
    alarms, links, ids = normalised_outputs(out)
    assert len(links) == len(whole_links) and links == whole_links  # none lost or duplicated
    assert alarms == whole_alarms
    assert len(whole_alarms) > 50  # the workload does raise alarms
    assert database_dump(db, ids) == database_dump(whole_db, whole_ids)
    assert integrity(db) == "ok"
