"""Helpers for the `dsiem-sql serve` tests: events, output snapshots, a subscriber for the
overload subject and a small Dsiem frontend."""

from __future__ import annotations

import asyncio
import json
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import kit
import nats
from kit import CONFIGS, WAIT, wait_until
from servekit import Serve, publish

# -- events -------------------------------------------------------------------------------


def ping_events(base: int, numbers=range(1, 18), rcvd_time: int | None = None) -> list[dict]:
    """The Ping Flood sequence (kit.ping_events), received now unless `rcvd_time`."""
    return kit.ping_events(base, numbers,
                           rcvd_time=time.time_ns() if rcvd_time is None else rcvd_time)


def probe_event(n: int, base: int) -> dict:
    """A ping from its own source: opens a backlog of directive 1 with one event link."""
    return kit.event(f"probe-{n:02d}", base, f"10.1.0.{n % 250 + 1}", "10.0.0.9",
                     title="ET SCAN ICMP PING", sensor="suricata-01", plugin_id=1001,
                     plugin_sid=2100384, protocol="ICMP", rcvd_time=time.time_ns())


def port_scan_events(base: int, count: int = 12) -> list[dict]:
    """Directive 2001: SYNs from 203.0.113.50 to distinct ports of 192.168.10.5."""
    return [
        kit.event(f"scan-{n:02d}", base + 5 + 10 * n, "203.0.113.50", "192.168.10.5",
                  title="ET SCAN Potential SYN Scan", sensor="suricata-01", plugin_id=1001,
                  plugin_sid=2100498, src_port=40000 + n, dst_port=1000 + n, protocol="TCP",
                  rcvd_time=time.time_ns())
        for n in range(1, count + 1)
    ]


def by_time(*sequences: list[dict]) -> list[dict]:
    return sorted((e for s in sequences for e in s), key=lambda e: e["timestamp"])


# -- serve processes ----------------------------------------------------------------------


def with_args(node: Serve, *extra: str) -> Serve:
    """Add command-line arguments to a not yet started serve of the `serve` fixture."""
    node.args.extend(extra)
    return node


def links(node: Serve) -> int:
    return node.query("SELECT count(*) FROM alarm_events")[0][0]


def resubscribed(node: Serve, url: str, base: int) -> None:
    """Publish probes until one reaches the database (those sent too early are lost)."""
    sent = [0]

    def probe() -> bool:
        assert node.proc is not None and node.proc.poll() is None, node.log.read_text()
        before = links(node)
        sent[0] += 1
        publish(url, [probe_event(sent[0], base)])
        try:
            return wait_until("the probe", lambda: links(node) > before, timeout=1)
        except AssertionError:
            return False

    wait_until(lambda: f"serve to resubscribe:\n{node.log.read_text()[-3000:]}", probe)


def wait_log(node: Serve, text: str, timeout: float = WAIT) -> None:
    wait_until(lambda: f"{text!r} in the serve log:\n{node.log.read_text()[-3000:]}",
               lambda: text in node.log.read_text(), timeout)


def wait_metric(node: Serve, name: str, expected: float, timeout: float = WAIT) -> None:
    got: list[float] = []

    def check() -> bool:
        got.append(node.metric(name))
        return got[-1] == expected

    try:
        wait_until(name, check, timeout)
    except AssertionError:
        raise AssertionError(f"{name}: got {got[-1:]}, expected {expected}") from None


def read_jsonl(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines()]


WALL_CLOCK_FIELDS = ("created_time", "update_time")


def snapshot(node: Serve) -> dict:
    """Output lines and database rows with alarm ids renamed by first appearance in the
    alarm-event lines (A1, A2, ...) and without the wall-clock fields."""
    link_lines = read_jsonl(node.logs / "siem_alarm_events.json")
    names: dict[str, str] = {}
    for line in link_lines:
        names.setdefault(line["alarm_id"], f"A{len(names) + 1}")

    def name(alarm_id: str) -> str:
        assert alarm_id in names, f"alarm {alarm_id} has no alarm-event line"
        return names[alarm_id]

    alarm_lines = [
        {**{k: v for k, v in a.items() if k not in WALL_CLOCK_FIELDS},
         "alarm_id": name(a["alarm_id"])}
        for a in read_jsonl(node.logs / "siem_alarms.json")
    ]
    backlogs = sorted(
        (name(r[0]), *r[1:])
        for r in node.query("SELECT id, state, title, current_stage, risk, risk_class, src_ips, "
                            "dst_ips FROM backlogs")
    )
    stage_events: dict[str, list[tuple[int, str]]] = {}
    for backlog, stage, event_id in node.query(
            "SELECT backlog_id, stage, event_id FROM stage_events ORDER BY id"):
        stage_events.setdefault(name(backlog), []).append((stage, event_id))
    stages = sorted(
        (name(r[0]), *r[1:])
        for r in node.query("SELECT backlog_id, stage, status, start_time, end_time FROM stages")
    )
    return {
        "alarm_lines": alarm_lines,
        "link_lines": [{**x, "alarm_id": name(x["alarm_id"])} for x in link_lines],
        "backlogs": backlogs,
        "stage_events": stage_events,
        "stages": stages,
    }


# -- the overload subject -----------------------------------------------------------------


class Subscriber:
    """Collects the payload of every message on one subject, in order, in a thread."""

    def __init__(self, url: str, subject: str = "dsiem_overload_signals"):
        self.messages: list[bytes] = []
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self._nc = self._call(nats.connect(url))
        self._call(self._nc.subscribe(subject, cb=self._on_msg))
        self._call(self._nc.flush())

    def _call(self, coro):
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(10)

    async def _on_msg(self, msg) -> None:
        self.messages.append(msg.data)

    def wait_for(self, count: int, timeout: float = WAIT) -> list[bytes]:
        """The payloads, once there are at least `count`."""
        wait_until(lambda: f"{count} messages (got {self.messages})",
                   lambda: len(self.messages) >= count, timeout)
        return list(self.messages)

    def close(self) -> None:
        try:
            self._call(self._nc.close())
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(5)
            self._loop.close()

    def __enter__(self) -> Subscriber:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


# -- a Dsiem frontend ---------------------------------------------------------------------


class Frontend:
    """GET /config/ lists `listing` (or answers `listing_body`); GET /config/<name> answers
    `files[name]` or 404. Per file name: `fail` answers that HTTP status, or with "drop" sends
    half the body and closes the connection; `trickle` sends one byte every that many seconds;
    `unsized` sends the body without a Content-Length (it ends when the connection closes)."""

    def __init__(self, files: dict[str, bytes], listing: list[str] | None = None,
                 listing_body: bytes | None = None, fail: dict[str, int | str] | None = None,
                 trickle: dict[str, float] | None = None, unsized: set[str] = frozenset()):
        self.files = files
        self.listing = list(files) if listing is None else listing
        self.listing_body = listing_body
        self.fail = fail or {}
        self.trickle = trickle or {}
        self.unsized = unsized
        self.requests: list[str] = []
        self.stopping = threading.Event()
        frontend = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                frontend.requests.append(self.path)
                name = urllib.parse.unquote(self.path[8:])
                if self.path == "/config/":
                    body = frontend.listing_body or json.dumps(
                        {"files": [{"filename": n} for n in frontend.listing]}).encode()
                    self._answer(200, body, "application/json")
                elif not self.path.startswith("/config/") or name not in frontend.files:
                    self._answer(404, b"404 page not found\n", "text/plain")
                elif frontend.fail.get(name) == "drop":
                    body = frontend.files[name]
                    self._head(200, "application/json", len(body))
                    self.wfile.write(body[: len(body) // 2])
                    self.close_connection = True
                elif name in frontend.fail:
                    self._answer(int(frontend.fail[name]), b"internal error\n", "text/plain")
                elif name in frontend.trickle:
                    body = frontend.files[name]
                    self._head(200, "application/json", len(body))
                    for i in range(len(body)):
                        if frontend.stopping.wait(frontend.trickle[name]):
                            break
                        self.wfile.write(body[i:i + 1])
                        self.wfile.flush()
                    self.close_connection = True
                else:
                    size = None if name in frontend.unsized else len(frontend.files[name])
                    self._head(200, "application/json", size)
                    self.wfile.write(frontend.files[name])
                    self.close_connection = size is None

            def _head(self, status: int, kind: str, size: int | None) -> None:
                self.send_response(status)
                self.send_header("Content-Type", kind)
                if size is not None:
                    self.send_header("Content-Length", str(size))
                self.end_headers()

            def _answer(self, status: int, body: bytes, kind: str) -> None:
                self._head(status, kind, len(body))
                self.wfile.write(body)

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Frontend:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stopping.set()
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(5)


# -- configs ------------------------------------------------------------------------------


def directives_file(path: Path, *ids: int) -> Path:
    """A directives file holding only the example directives `ids`."""
    source = json.loads((CONFIGS / "directives_dsiem-backend-0_example.json").read_text())
    chosen = [d for d in source["directives"] if d["id"] in ids]
    assert [d["id"] for d in chosen] == list(ids)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"directives": chosen}))
    return path
