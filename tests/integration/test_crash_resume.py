"""Crash safety: SIGKILL a replay with --db at random moments, resume, compare (issue 3)."""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest
from dbcompare import database_dump, integrity, normalised_outputs
from kit import COMMAND, cli_env, ok, replay, wait_until
from workload import events, write_configs

from dsiem_sql.store.database import connect_read_only


def committed_line(db: Path) -> int:
    if not db.exists():
        return 0
    try:
        con = connect_read_only(db, timeout=1)
        try:
            row = con.execute("SELECT max(line) FROM input_progress").fetchone()
        finally:
            con.close()
    except sqlite3.Error:  # schema not created yet
        return 0
    return row[0] or 0


@pytest.mark.parametrize(("n_events", "kills"), [
    pytest.param(6_000, 2, id="2-kills"),
    pytest.param(50_000, 5, id="5-kills", marks=pytest.mark.slow),
])
def test_sigkill_then_resume_equals_one_run(tmp_path, n_events, kills):
    configs = write_configs(tmp_path / "configs")
    events_file = tmp_path / "events.jsonl"
    events_file.write_text("\n".join(events(n_events)) + "\n")

    whole_db, whole_out = tmp_path / "whole.db", tmp_path / "whole"
    ok(replay(configs, whole_out, events_file, "--db", whole_db, timeout=300))

    db, out = tmp_path / "crashed.db", tmp_path / "crashed"
    rnd = random.Random(os.environ.get("CRASH_SEED", "1"))
    targets = sorted(rnd.sample(range(2_000, n_events - 2_000), kills))
    killed_at = []
    for target in targets:
        proc = subprocess.Popen(
            [*COMMAND, "replay", "--configs", str(configs), "--out", str(out), "--db", str(db),
             "--resume", "--commit-interval", "20", str(events_file)],
            env=cli_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )
        wait_until(f"a commit of line {target}",
                   lambda t=target, p=proc: committed_line(db) >= t or p.poll() is not None,
                   120)
        time.sleep(rnd.uniform(0, 0.05))  # land anywhere: mid-batch, mid-commit, mid-write
        assert proc.poll() is None, f"replay finished before the kill: {proc.stderr.read()}"
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        killed_at.append(committed_line(db))
    assert len(killed_at) == kills and killed_at == sorted(killed_at)

    ok(replay(configs, out, events_file, "--db", db, "--resume", timeout=300))

    whole_alarms, whole_links, whole_ids = normalised_outputs(whole_out)
    alarms, links, ids = normalised_outputs(out)
    assert len(links) == len(whole_links) and links == whole_links  # none lost or duplicated
    assert alarms == whole_alarms
    assert len(whole_alarms) > n_events // 1000  # the workload does raise alarms
    assert database_dump(db, ids) == database_dump(whole_db, whole_ids)
    assert integrity(db) == "ok"
