"""Real HTTP servers on 127.0.0.1 that emulate Wise and Nesd, with request counters."""

from __future__ import annotations

import http.server
import json
import threading
from collections import Counter
from urllib.parse import parse_qs, urlparse

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
