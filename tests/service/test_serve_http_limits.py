"""Issue 18, item 10: the metrics port must not be a way to stop correlation.

The attack that stopped serve before: at the usual open-file limit of 1,024, 1,100
connections to the metrics port that each send one header line every 3 s took every file
descriptor; /healthz stopped answering, serve could not reconnect to a restarted NATS, and
logged tracebacks by the hundred thousand. These tests run it, and the other bounds of the
port, against a real serve and a real nats-server."""

from __future__ import annotations

import asyncio
import json
import os
import resource
import socket
import threading
import time
import urllib.error
import urllib.request

import kit
import pytest
from kit import wait_until
from scenario import Frontend, links, ping_events, resubscribed, wait_log, with_args
from servekit import http_status, publish

from dsiem_sql import defaults

DEADLINE = defaults.HTTP_REQUEST_SECONDS  # for a whole request, from the connection on
FD_LIMIT = 1024  # the usual soft limit of open files
ATTACKERS = 1100


def limit_open_files() -> None:
    """In serve's child process, before it starts: the usual open-file limit."""
    resource.setrlimit(resource.RLIMIT_NOFILE, (FD_LIMIT, FD_LIMIT))


def open_files(pid: int) -> int:
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except FileNotFoundError:  # gone
        return 0


@pytest.fixture
def many_sockets():
    """This process may open the attack's sockets: its soft open-file limit up to the hard."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = ATTACKERS + 500
    if hard != resource.RLIM_INFINITY and hard < wanted:
        pytest.skip(f"the hard open-file limit ({hard}) is below {wanted}")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 65536)), hard))
    yield
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


class SlowHeaders:
    """`count` connections to `port` in a thread: each sends a request line, then one header
    line every `every` seconds, never the blank line that ends the headers. A connection the
    server closes is opened again `pause` seconds later: the attacker keeps the pressure on
    (an attacker would not pause; the test does, to spare the machine's CPU)."""

    def __init__(self, port: int, count: int = ATTACKERS, every: float = 3.0,
                 pause: float = 1.0):
        self.port, self.count, self.every, self.pause = port, count, every, pause
        self.connected = 0  # connections made
        self.closed = 0  # connections the server closed
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._tasks: list[asyncio.Task] = []
        self._stopping = False

    def __enter__(self) -> SlowHeaders:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)
        return self

    def __exit__(self, *exc) -> None:
        # 1,100 connections to close: slow on a loaded machine (the tests run in parallel)
        asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(180)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    async def _start(self) -> None:
        self._tasks = [asyncio.create_task(self._one()) for _ in range(self.count)]

    async def _stop(self) -> None:
        # the flag too: Python 3.11's wait_for can swallow a cancellation that comes as the
        # read it waits for completes, and the task would go on
        self._stopping = True
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _one(self) -> None:
        while not self._stopping:
            try:
                reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
            except OSError:
                await asyncio.sleep(0.5)
                continue
            self.connected += 1
            try:
                writer.write(b"GET /metrics HTTP/1.1\r\n")
                line = 0
                while not self._stopping:
                    try:
                        if not await asyncio.wait_for(reader.read(4096), self.every):
                            break  # closed by the server
                    except TimeoutError:
                        line += 1
                        writer.write(b"X-Slow-%d: %d\r\n" % (line, line))
            except OSError:
                pass  # reset by the server
            finally:
                writer.close()
            self.closed += 1
            await asyncio.sleep(self.pause)


def test_a_slow_header_flood_takes_no_descriptors_and_does_not_stop_correlation(
        serve, nats_server, many_sockets):
    node = serve().start(preexec_fn=limit_open_files)
    pid = node.proc.pid
    with open(f"/proc/{pid}/limits") as f:
        assert any(line.startswith("Max open files") and f" {FD_LIMIT} " in line for line in f)
    base = int(time.time()) - 300
    events = ping_events(base)
    publish(nats_server.url, events[:8])
    node.wait_for("SELECT count(*) FROM alarm_events", [(8,)])
    at_rest = open_files(pid)

    most = [at_rest]
    answers: list[int | None] = []
    sampling = threading.Event()

    def count_files() -> None:  # serve's open files, every 0.1 s
        while not sampling.wait(0.1):
            most.append(open_files(pid))

    def ask_health() -> None:  # /healthz, every 0.5 s
        while not sampling.wait(0.5):
            answers.append(http_status(node.url("/healthz"), timeout=3))

    samplers = [threading.Thread(target=count_files, daemon=True),
                threading.Thread(target=ask_health, daemon=True)]
    started = time.monotonic()
    with SlowHeaders(node.metrics_port) as attack:
        for sampler in samplers:
            sampler.start()
        wait_until("the attack to connect", lambda: attack.connected >= 500, 10)
        time.sleep(2)
        nats_server.stop()  # NATS restarts in the middle of the attack
        wait_log(node, "disconnected from NATS")
        time.sleep(1)
        nats_server.start()
        resubscribed(node, nats_server.url, base)  # serve reconnects and correlates again
        publish(nats_server.url, events[8:])
        node.wait_for("SELECT count(*) FROM alarm_events WHERE event_id LIKE 'ping-%'",
                      [(17,)])
        time.sleep(max(0.0, 12 - (time.monotonic() - started)))  # at least 12 s of attack
        during = list(answers)
        connected, closed = attack.connected, attack.closed
    sampling.set()
    for sampler in samplers:
        sampler.join(5)

    # the connections are cut: /healthz answers at once
    wait_until("/healthz to answer 200 after the attack",
               lambda: http_status(node.url("/healthz")) == 200, 5)
    assert node.proc.poll() is None, node.log.read_text()[-3000:]
    # serve's open files stayed well under its limit (64 connections at most on the port)
    assert max(most) < at_rest + 2 * defaults.HTTP_MAX_CONNECTIONS < FD_LIMIT // 2, (
        at_rest, max(most))
    # the attack went on: the server cut its connections, and it opened others
    assert connected > ATTACKERS and closed > ATTACKERS // 2, (connected, closed)
    # /healthz answered while under attack (503 while NATS was away counts as an answer)
    assert sum(a is not None for a in during) >= len(during) // 2, during
    text = node.log.read_text()
    lines = text.splitlines()
    assert len(lines) < 200, "\n".join(lines[-50:])
    assert "Traceback" not in text, text[-3000:]
    assert links(node) >= 17
    assert node.stop() == 0


def test_a_slow_client_is_cut_off_at_the_request_deadline(serve):
    node = serve().start()
    with socket.create_connection(("127.0.0.1", node.metrics_port), timeout=1) as client:
        opened = time.monotonic()
        client.sendall(b"GET /healthz HTTP/1.1\r\n")
        line, closed = 0, False
        while time.monotonic() - opened < 3 * DEADLINE:  # a line a second: never idle 5 s
            try:
                data = client.recv(4096)
            except TimeoutError:
                line += 1
                try:
                    client.sendall(b"X-Slow-%d: %d\r\n" % (line, line))
                except OSError:
                    closed = True
                    break
                continue
            except OSError:  # reset
                closed = True
                break
            if not data:
                closed = True
                break
        held = time.monotonic() - opened
    assert closed, f"the connection was still open after {held:.1f} s"
    assert held < DEADLINE + 3, held
    assert http_status(node.url("/healthz")) == 200
    assert node.stop() == 0


def request(port: int, data: bytes, timeout: float = 10) -> bytes:
    """What the server answers to `data` before it closes the connection (b"" if nothing;
    a reset counts as a close)."""
    answer = b""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as client:
        try:
            client.sendall(data)
            while chunk := client.recv(65536):
                answer += chunk
        except (ConnectionResetError, BrokenPipeError):
            pass
    return answer


@pytest.mark.parametrize("header", [
    b"X-Big: " + b"a" * 10_000 + b"\r\n\r\n",  # one header line of 10 kB
    b"X-Big: " + b"a" * 1_000_000,  # 1 MB, the line not even ended
    b"".join(b"X-Many-%d: %d\r\n" % (i, i) for i in range(200)) + b"\r\n",  # 200 headers
], ids=["10kB-line", "1MB-unended", "200-headers"])
def test_headers_beyond_the_limits_are_refused(serve, header):
    node = serve().start()
    started = time.monotonic()
    answer = request(node.metrics_port, b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + header)
    assert time.monotonic() - started < DEADLINE  # refused, not left to the deadline
    status = answer.split(b" ", 2)[1] if answer.startswith(b"HTTP/") else b""
    assert status in (b"400", b"431", b""), answer[:200]
    assert b"ok\n" not in answer
    # refused requests are warnings without traceback, the same one again is counted
    for _ in range(20):
        request(node.metrics_port, b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + header)
    assert http_status(node.url("/healthz")) == 200
    assert node.stop() == 0
    text = node.log.read_text()
    assert "Traceback" not in text
    assert sum("bad request" in line for line in text.splitlines()) <= 2, text[-3000:]


def test_serve_stops_when_nats_stays_away_longer_than_the_reconnect_window(
        serve, nats_server):
    node = with_args(serve(), "--nats-reconnect-window", "3").start()
    nats_server.stop()
    wait_log(node, "disconnected from NATS")
    assert node.exit_code(timeout=30) == 1  # a hang guard: the window is 3 s
    errors = node.errors()
    assert errors, node.log.read_text()
    assert any(f"NATS server {nats_server.url} not reachable again within 3 s "
               "(--nats-reconnect-window)" in e for e in errors), errors
    assert any("last error:" in e for e in errors), errors
    text = node.log.read_text()
    assert "Traceback" not in text
    # nats-py failed to reconnect every second: the same warning is counted, not repeated
    refused = [line for line in text.splitlines()
               if "nats error:" in line and "Connect call failed" in line]
    assert sum("more time" not in line for line in refused) == 1, text
    assert any("more time" in line for line in refused), text  # the count, at the end


def test_a_reload_longer_than_the_request_deadline_is_not_cut_off(serve, nats_server,
                                                                  tmp_path):
    name = "directives_dsiem-backend-0_slow.json"
    source = json.dumps({"directives": [kit.directive(1, [kit.rule(1), kit.rule(2)])]}).encode()
    assets = json.dumps({"assets": [{"name": "home", "cidr": "10.0.0.0/8", "value": 5}]})
    with Frontend({name: source, "assets_slow.json": assets.encode()}) as frontend:
        node = with_args(serve(configs=tmp_path / "configs"), "--frontend", frontend.url,
                         "--enable-lifecycle").start()
        # the reload downloads the file a byte at a time: for longer than the request deadline
        frontend.trickle[name] = (DEADLINE + 2) / len(source)
        post = urllib.request.Request(node.url("/-/reload"), method="POST", data=b"")
        started = time.monotonic()
        with urllib.request.urlopen(post, timeout=60) as r:
            status, body = r.status, r.read().decode()
        took = time.monotonic() - started
    assert status == 200, body
    assert body.startswith(f"downloaded 2 files from {frontend.url}; "), body
    assert took > DEADLINE, took  # else this test proves nothing
    assert node.stop() == 0
