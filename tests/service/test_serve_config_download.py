"""SPEC §3.2: `serve --frontend URL` fetches this node's config files from a Dsiem frontend
before it starts; a frontend that cannot be used stops it with a clear message."""

from __future__ import annotations

import json
import time

from scenario import (
    CONFIGS,
    Frontend,
    ping_events,
    port_scan_events,
    run_cli,
    with_args,
)
from servekit import free_port, publish

NODE = "backend-1"
ASSETS = (CONFIGS / "assets_example.json").read_bytes()
INTEL = (CONFIGS / "intel_example.json").read_bytes()
VULN = (CONFIGS / "vuln_example.json").read_bytes()
ALL = json.loads((CONFIGS / "directives_dsiem-backend-0_example.json").read_text())["directives"]


def directives(*ids: int) -> bytes:
    return json.dumps({"directives": [d for d in ALL if d["id"] in ids]}).encode()


FILES = {
    "assets_example.json": ASSETS,
    f"directives_{NODE}_x.json": directives(1),
    "directives_backend-10_x.json": directives(2001),  # another node, same prefix
    "directives_other_x.json": directives(3001),
    "intel_example.json": INTEL,
    "vuln_example.json": VULN,
    "dsiem_config.json": b"{}",
}
WANTED = {"assets_example.json", f"directives_{NODE}_x.json", "intel_example.json",
          "vuln_example.json"}


def serve_args(tmp_path, frontend: str) -> list[str]:
    return ["serve", "--node", NODE, "--frontend", frontend, "--configs", str(tmp_path / "cfg"),
            "--db", str(tmp_path / "dsiem.db"), "--logs", str(tmp_path / "logs"),
            "--msq", f"nats://127.0.0.1:{free_port()}"]


def test_serve_downloads_its_files_and_runs_with_them(serve, nats_server, tmp_path):
    configs = tmp_path / "configs"
    configs.mkdir()
    with Frontend(FILES) as frontend:
        node = with_args(serve("node", configs=configs, node=NODE), "--frontend", frontend.url)
        node.start()
    assert {p.name for p in configs.iterdir()} == WANTED
    for name in WANTED:
        assert (configs / name).read_bytes() == FILES[name]
    assert sorted(frontend.requests) == sorted(["/config/", *(f"/config/{n}" for n in WANTED)])
    assert "downloaded 4 config files from" in node.log.read_text()

    base = int(time.time()) - 300
    publish(nats_server.url, ping_events(base) + port_scan_events(base))
    node.wait_for("SELECT count(*) FROM alarm_events", [(17,)])
    assert node.stop() == 0
    assert node.query("SELECT DISTINCT directive_id FROM backlogs") == [(1,)]


def test_an_unreachable_frontend_stops_serve(tmp_path):
    result = run_cli(*serve_args(tmp_path, f"http://127.0.0.1:{free_port()}"))
    assert result.returncode == 1
    assert "cannot get a list of config files from frontend" in result.stderr
    assert "Traceback" not in result.stderr


def test_an_unsafe_listed_name_stops_serve(tmp_path):
    files = {"assets_example.json": ASSETS, "../evil.json": b"{}"}
    with Frontend(files, listing=["assets_example.json", "../evil.json"]) as frontend:
        result = run_cli(*serve_args(tmp_path, frontend.url))
    assert result.returncode == 1
    assert "unsafe file name '../evil.json'" in result.stderr
    assert "Traceback" not in result.stderr
    assert not any("evil" in r for r in frontend.requests)
    assert {p.name for p in tmp_path.iterdir()} == {"cfg"}
    assert {p.name for p in (tmp_path / "cfg").iterdir()} <= {"assets_example.json"}


def test_a_listed_file_that_answers_404_stops_serve(tmp_path):
    listing = ["assets_example.json", f"directives_{NODE}_gone.json"]
    with Frontend({"assets_example.json": ASSETS}, listing=listing) as frontend:
        result = run_cli(*serve_args(tmp_path, frontend.url))
    assert result.returncode == 1
    assert f"cannot download directives_{NODE}_gone.json" in result.stderr
    assert "HTTP 404" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "cfg" / f"directives_{NODE}_gone.json").exists()


def test_a_listing_that_is_not_json_stops_serve(tmp_path):
    with Frontend({}, listing_body=b'["assets_example.json"]') as frontend:
        result = run_cli(*serve_args(tmp_path, frontend.url))
    assert result.returncode == 1
    assert "config listing" in result.stderr
    assert "Traceback" not in result.stderr
