"""Real HTTP servers on 127.0.0.1 that emulate Wise and Nesd, with request counters, and a
config that uses them."""

from __future__ import annotations

import http.server
import json
import threading
from collections import Counter
from pathlib import Path
from urllib.parse import parse_qs, urlparse

from kit import T0, directive, event, rule

WISE_HIT = (
    '[{field: "description", len: 37, value: "blacklisted %s"}, {field: "id", len: 2, value: "x"}]'
)


class FakeIntel:
    """`/wise/<mode>/ip/<ip>` and `/nesd/<mode>?ip=..&port=..`; mode is ok, 500, bad or hang."""

    def __init__(self) -> None:
        self.requests: Counter[str] = Counter()
        self.open = 0
        self.release = threading.Event()
        fake = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_GET(self) -> None:
                url = urlparse(self.path)
                parts = url.path.strip("/").split("/")
                kind, mode = parts[0], parts[1]
                term = parts[-1] if kind == "wise" else "{ip}:{port}".format(
                    **{k: v[0] for k, v in parse_qs(url.query).items()})
                fake.requests[f"{kind}/{mode}/{term}"] += 1
                if mode == "hang":
                    fake.open += 1
                    fake.release.wait(30)
                    fake.open -= 1
                if mode == "500":
                    return self._send(500, "internal error")
                if mode == "bad":
                    return self._send(200, "this is not json [")
                if kind == "wise":
                    return self._send(200, WISE_HIT % term)
                findings = [{"cve": "CVE-2014-6271", "risk": "High", "name": "Shellshock"},
                            {"cve": "", "risk": "Low", "name": "Banner"}]
                return self._send(200, json.dumps(findings))

            def _send(self, status: int, body: str) -> None:
                data = body.encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except OSError:  # the client gave up (timeout)
                    pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> FakeIntel:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()

    def wise(self, mode: str = "ok") -> str:
        return f"http://127.0.0.1:{self.port}/wise/{mode}/ip/${{ip}}"

    def nesd(self, mode: str = "ok") -> str:
        return f"http://127.0.0.1:{self.port}/nesd/{mode}?ip=${{ip}}&port=${{port}}"


def intel_configs(directory: Path, intel: list[str], vuln: list[str]) -> Path:
    """A config directory: directive 1 "Attack from SRC_IP" (plugin 1/[1], TCP, into
    192.168.0.0/16, then twice more from the same source), and one Wise source per `intel`
    URL, one Nesd source per `vuln` URL."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "assets_x.json").write_text(json.dumps(
        {"assets": [{"name": "lan", "cidr": "192.168.0.0/16", "value": 5}]}))
    attack = {"plugin_id": 1, "protocol": "TCP"}
    (directory / "directives_x.json").write_text(json.dumps({"directives": [directive(
        1, [rule(1, name="a", to="HOME_NET", reliability=5, **attack),
            rule(2, name="b", occurrence=2, reliability=10, timeout=600, **attack,
                 **{"from": ":1", "to": ":1"})],
        name="Attack from SRC_IP", priority=5, kingdom="k", category="c")]}))

    def sources(urls: list[str], plugin: str) -> list[dict]:
        return [{"name": f"{plugin}-{i}", "type": "IP", "enabled": True, "plugin": plugin,
                 "config": json.dumps({"url": url})} for i, url in enumerate(urls)]

    (directory / "intel_x.json").write_text(json.dumps({"intel_sources": sources(intel, "Wise")}))
    (directory / "vuln_x.json").write_text(json.dumps({"vuln_sources": sources(vuln, "Nesd")}))
    return directory


def attack(src: str, n: int, start: int = 0, dport: int = 80, base: float = T0) -> list[dict]:
    """Events `start` .. `start + n - 1` from `src`, a second apart from `base`: directive 1 of
    intel_configs correlates them."""
    return [event(f"{src}-{i}", base + i, src, "192.168.0.5", plugin_id=1, src_port=40000,
                  dst_port=dport, protocol="TCP") for i in range(start, start + n)]
