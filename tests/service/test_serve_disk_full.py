"""A full disk under the database: serve holds the events and retries the commit with
backoff for --db-retry-window seconds, says so (log, /healthz, overload signal), and loses
nothing if space comes back in time; otherwise it stops with an ERROR and a non-zero exit."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from kit import wait_until
from scenario import Subscriber, links, ping_events, wait_log
from servekit import http_status, publish


@pytest.fixture
def small_disk(tmp_path) -> Iterator[Path]:
    """A 3 MB tmpfs (needs root, as on the CI machines)."""
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3M", "tmpfs", str(disk)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs: {mounted.stderr.strip()}")
    yield disk
    subprocess.run(["umount", "-l", str(disk)], check=True)


def fill(disk: Path) -> Path:
    """Take every free byte of `disk`; returns the file to delete to give them back."""
    filler = disk / "filler"
    with filler.open("wb", buffering=0) as f:
        try:
            while True:
                f.write(b"\0" * 4096)
        except OSError:
            pass
    return filler


def test_a_full_disk_holds_the_events_until_space_comes_back(serve, nats_server, small_disk):
    node = serve(db=small_disk / "dsiem.db").start()
    events = ping_events(int(time.time()) - 300)
    publish(nats_server.url, events[:4])
    node.wait_for("SELECT count(*) FROM alarm_events", [(4,)])
    filler = fill(small_disk)

    with Subscriber(nats_server.url) as overload:
        publish(nats_server.url, events[4:])
        wait_log(node, "cannot commit: database or disk is full; retry")
        wait_until("/healthz 503", lambda: http_status(node.url("/healthz")) == 503)
        assert overload.wait_for(1)[:1] == [b"true"]
        wait_log(node, "; retry 2 in")  # it goes on retrying
        assert node.proc is not None and node.proc.poll() is None
        assert links(node) == 4

        filler.unlink()
        node.wait_for("SELECT count(*) FROM alarm_events", [(17,)])
        wait_until("/healthz 200", lambda: http_status(node.url("/healthz")) == 200)
        assert overload.wait_for(2)[:2] == [b"true", b"false"]
    assert node.metric("dsiem_commit_retries_total") >= 2
    assert node.stop() == 0
    assert len((node.logs / "siem_alarm_events.json").read_text().splitlines()) == 17
    assert "writing again after" in node.log.read_text()


def test_a_disk_that_stays_full_stops_serve_after_the_window(serve, nats_server, small_disk):
    node = serve(db=small_disk / "dsiem.db")
    node.args += ["--db-retry-window", "2"]
    node.start()
    events = ping_events(int(time.time()) - 300)
    publish(nats_server.url, events[:4])
    node.wait_for("SELECT count(*) FROM alarm_events", [(4,)])
    filler = fill(small_disk)

    publish(nats_server.url, events[4:])
    assert node.exit_code() != 0
    errors = node.errors()
    assert len(errors) == 1
    assert "cannot commit for 2 s: database or disk is full" in errors[0]

    filler.unlink()  # a supervisor restarts it: what was committed is all there
    node.start()
    assert links(node) == 4
    assert node.stop() == 0
