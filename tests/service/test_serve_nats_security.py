"""Security of the NATS connection (issue 10): .creds files work."""

from __future__ import annotations

import time

import pytest
from natsjwt import Operator
from scenario import CONFIGS, ping_events
from servekit import NatsServer, Serve, free_port, publish

PING_LINKS = "SELECT count(*) FROM alarm_events WHERE event_id LIKE 'ping-%'"


@pytest.fixture
def running():
    """start(thing) starts a NatsServer or Serve and has it stopped after the test."""
    things: list[NatsServer | Serve] = []

    def start(thing):
        things.append(thing)
        thing.start()
        return thing

    yield start
    for thing in reversed(things):
        if isinstance(thing, Serve):
            if thing.proc is not None:
                thing.proc.kill()
                thing.proc.wait()
        else:
            thing.stop()


def correlates(node: Serve, url: str, **connect) -> None:
    publish(url, ping_events(int(time.time()) - 300), **connect)
    node.wait_for(PING_LINKS, [(17,)])


# -- .creds -------------------------------------------------------------------------------


@pytest.fixture
def operator_server(tmp_path, running):
    operator = Operator()
    config = tmp_path / "operator.conf"
    config.write_text(operator.server_config())
    log = tmp_path / "nats-server.log"
    server = running(NatsServer(free_port(), "-c", str(config), "-l", str(log)))
    return operator, server, log


def test_creds_connect_and_events_are_correlated(tmp_path, operator_server, running):
    operator, server, _ = operator_server
    creds = operator.user_creds(tmp_path / "serve.creds")
    node = running(Serve(tmp_path / "node", server.url, CONFIGS, "dsiem-backend-0",
                         "--nats-creds", str(creds)))
    publisher = operator.user_creds(tmp_path / "publisher.creds")
    correlates(node, server.url, user_credentials=str(publisher))
    assert node.stop() == 0
