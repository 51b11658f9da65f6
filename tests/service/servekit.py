"""Helpers for the serve tests: a real nats-server on 127.0.0.1 and `dsiem-sql serve` as
a real process (the fixtures are in conftest.py)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import subprocess
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

import nats
from kit import COMMAND, CONFIGS, WAIT, wait_until
from natskit import NatsServer, free_port, listening, nats_server_binary  # noqa: F401 (also here)

from dsiem_sql.store.database import connect_read_only


def http_status(url: str, timeout: float = 2) -> int | None:
    """The HTTP status of a GET, or None if nothing answers within `timeout` seconds."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return None


class Serve:
    """One `dsiem-sql serve` process with its own database and logs directory."""

    def __init__(self, workdir: Path, nats_url: str, configs: Path = CONFIGS,
                 node: str = "dsiem-backend-0", *extra: str, db: Path | None = None):
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.db = workdir / "dsiem.db" if db is None else db
        self.logs = workdir / "logs"
        self.metrics_port = free_port()
        self.args = [
            *COMMAND, "-v", "serve", "--node", node,
            "--configs", str(configs), "--msq", nats_url, "--db", str(self.db),
            "--logs", str(self.logs), "--metrics-port", str(self.metrics_port),
            "--commit-interval", "50", *extra,
        ]
        self.proc: subprocess.Popen | None = None
        self.log = workdir / "serve.log"

    def start(self, ready: bool = True, preexec_fn: Callable[[], object] | None = None) -> Serve:
        """`preexec_fn`: run in the child before serve, e.g. to set a resource limit."""
        with self.log.open("ab") as log:  # the child keeps its own copy of the descriptor
            self.proc = subprocess.Popen(  # the environment as it is: tests set DSIEM_* in it
                self.args, cwd=self.workdir, stdout=subprocess.DEVNULL, stderr=log,
                env={**os.environ, "PYTHONUNBUFFERED": "1"}, preexec_fn=preexec_fn,
            )
        if ready:
            self.wait_ready()
        return self

    def wait_ready(self, timeout: float = 30) -> None:
        def ready() -> bool:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise AssertionError(f"serve exited early:\n{self.log.read_text()}")
            return http_status(self.url("/healthz")) == 200

        wait_until(lambda: f"serve ready:\n{self.log.read_text()}", ready, timeout)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.metrics_port}{path}"

    def metric(self, name: str) -> float:
        with urllib.request.urlopen(self.url("/metrics"), timeout=5) as r:
            for line in r.read().decode().splitlines():
                if line.startswith(name + " "):
                    return float(line.split()[1])
        raise KeyError(name)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20) -> int:
        assert self.proc is not None
        self.proc.send_signal(sig)
        return self.exit_code(timeout)

    def exit_code(self, timeout: float = 20) -> int:
        """The exit code, once the process exits (`timeout` only guards against a hang)."""
        assert self.proc is not None
        code = self.proc.wait(timeout)
        self.proc = None
        return code

    def errors(self) -> list[str]:
        """The ERROR lines of the log."""
        return [line for line in self.log.read_text().splitlines() if " ERROR " in line]

    def query(self, sql: str) -> list[tuple]:
        con = connect_read_only(self.db, timeout=5)
        try:
            return con.execute(sql).fetchall()
        finally:
            con.close()

    def wait_for(self, sql: str, expected, timeout: float = WAIT):
        """Poll `sql` until it gives `expected`."""
        got = [None]

        def check() -> bool:
            try:
                got[0] = self.query(sql)
            except sqlite3.Error:
                got[0] = None
            return got[0] == expected

        wait_until(lambda: f"{sql!r}: got {got[0]!r}, expected {expected!r}\n"
                           f"{self.log.read_text()[-3000:]}", check, timeout)
        return expected


def publish(url: str, payloads: list[bytes | str | dict], **connect) -> None:
    """`connect`: more nats.connect arguments, e.g. tls= or user_credentials=."""

    async def run() -> None:
        nc = await nats.connect(url, **connect)
        for p in payloads:
            if isinstance(p, dict):
                p = json.dumps(p)
            await nc.publish("dsiem_events", p.encode() if isinstance(p, str) else p)
        await nc.flush()
        await nc.close()

    asyncio.run(run())
