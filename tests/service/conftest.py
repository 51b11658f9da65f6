"""Fixtures: a real nats-server on 127.0.0.1 and `dsiem-sql serve` processes."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from servekit import NatsServer, Serve, free_port


@pytest.fixture
def nats_server() -> Iterator[NatsServer]:
    server = NatsServer(free_port())
    server.start()
    yield server
    server.stop()


@pytest.fixture
def serve(tmp_path, nats_server) -> Iterator[callable]:
    started: list[Serve] = []

    def make(name: str = "node", **kwargs) -> Serve:
        s = Serve(tmp_path / name, nats_server.url, **kwargs)
        started.append(s)
        return s

    yield make
    for s in started:
        if s.proc is not None:
            s.proc.kill()
            s.proc.wait()


