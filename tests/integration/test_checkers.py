"""The Wise and Nesd protocols against a real local HTTP server (docs/behaviour.md,
"Enrichment"): the cases of the Rust backends' `test_intel` and `test_vuln`."""

from __future__ import annotations

import asyncio
import http.server
import threading

import httpx
import pytest

from dsiem_sql.enrichment.checkers import CheckFailed, Nesd, Wise
from dsiem_sql.enrichment.enricher import Enricher

DESCRIPTION = 'value: "blacklisted localnet -- testing only"'
ANSWERS = {
    "/ip/1.0.0.1": (200, f'[{{field: "description", len: 4, {DESCRIPTION}}}]'),
    "/ip/192.168.0.1": (200, f'[{{field: "description", len: 37, {DESCRIPTION}}}]'),
    "/ip/1.0.0.2": (200, f'[{{field: "description", len: 40, {DESCRIPTION}}}]'),
    "/?ip=1.0.0.1&port=25": (200, '[{"cve":"CVE-2023-007","risk":"Medium","name":"James"}]'),
    "/?ip=192.168.0.1&port=80": (200, '[{"cve":"CVE-2007-007","risk":"Medium","name":"Bond"}]'),
    "/?ip=1.0.0.2&port=31337": (200, '[{"cve":"CVE-2001-418","risk":"Low","name":"Teapot"}]'),
    "/?ip=1.0.0.2&port=25": (200, "no vulnerability found\n"),
    "/?ip=1.0.0.3&port=0": (418, "invalid port\n"),
}


@pytest.fixture(scope="module")
def server():
    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args) -> None:
            pass

        def do_GET(self) -> None:
            status, body = ANSWERS.get(self.path, (404, "not found"))
            data = body.encode()
            self.send_response(status)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def run(coro):
    return asyncio.run(coro)


def test_wise_lookup_of_three_targets_gives_exactly_one_result(server):
    wise = Wise("Wise", server + "/ip/${ip}")

    async def lookup():
        async with Enricher([wise], private_ips=False) as enricher:
            return await enricher.lookup(["192.168.0.1", "1.0.0.1", "1.0.0.2"], [])

    intel, vulns = run(lookup())
    assert intel == [("Wise", "1.0.0.2", "description: blacklisted localnet -- testing only")]
    assert vulns == []


@pytest.mark.parametrize(
    ("term", "allow_low", "expected"),
    [
        ("1.0.0.1:25", False, ["Medium - James (CVE-2023-007)"]),
        ("192.168.0.1:80", False, ["Medium - Bond (CVE-2007-007)"]),
        ("1.0.0.2:31337", False, []),
        ("1.0.0.2:31337", True, ["Low - Teapot (CVE-2001-418)"]),
        ("1.0.0.2:25", False, []),
        ("1.0.0.3:0", False, []),  # nesd's 418 for an invalid ip or port
    ],
)
def test_nesd_answers(server, term, allow_low, expected):
    nesd = Nesd("Nesd", server + "/?ip=${ip}&port=${port}", allow_low_severity=allow_low)

    async def check():
        async with httpx.AsyncClient(timeout=5) as client:
            return await nesd.check(client, term)

    assert run(check()) == [("Nesd", term, r) for r in expected]


@pytest.mark.parametrize("plugin", ["wise", "nesd"])
def test_server_down_is_a_clear_error(plugin):
    checker = (Wise("w", "http://127.0.0.1:9/ip/${ip}") if plugin == "wise"
               else Nesd("n", "http://127.0.0.1:9/?ip=${ip}&port=${port}"))

    async def check():
        async with httpx.AsyncClient(timeout=5) as client:
            return await checker.check(client, "1.0.0.1" if plugin == "wise" else "1.0.0.1:25")

    with pytest.raises(CheckFailed, match="get request error"):
        run(check())
