"""`serve --frontend URL` fetches this node's config files from a Dsiem frontend before it
starts; a frontend that cannot be used stops it with a clear message (docs/behaviour.md,
"Config download")."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path

import pytest
from kit import COMMAND, CONFIGS, cli, cli_env, wait_until
from scenario import Frontend, ping_events, port_scan_events, with_args
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


def snapshot(directory: Path) -> dict[str, bytes]:
    """Every entry of `directory`, hidden ones included (a directory would fail read_bytes)."""
    return {p.name: p.read_bytes() for p in directory.iterdir()}


def previous_configs(tmp_path: Path) -> dict[str, bytes]:
    """An earlier download in `cfg`: other versions of some files, and a local one."""
    cfg = tmp_path / "cfg"
    cfg.mkdir()
    (cfg / "assets_example.json").write_bytes(ASSETS.replace(b'"value": 5', b'"value": 4'))
    (cfg / f"directives_{NODE}_x.json").write_bytes(directives(1, 2))
    (cfg / "notes.txt").write_bytes(b"kept by hand\n")
    return snapshot(cfg)


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
    result = cli(*serve_args(tmp_path, f"http://127.0.0.1:{free_port()}"))
    assert result.returncode == 1
    assert "cannot get a list of config files from frontend" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("name", [f"directives_{NODE}_../x.json", "assets_a/b.json",
                                  "intel_a\\b.json"])
def test_an_unsafe_wanted_name_stops_serve(tmp_path, name):
    before = previous_configs(tmp_path)
    files = {"assets_example.json": ASSETS, name: b"{}"}
    with Frontend(files, listing=["assets_example.json", name]) as frontend:
        result = cli(*serve_args(tmp_path, frontend.url))
    assert result.returncode == 1
    assert f"error: frontend {frontend.url} listed an unsafe file name {name!r}" in result.stderr
    assert "Traceback" not in result.stderr
    assert frontend.requests == ["/config/"]
    assert {p.name for p in tmp_path.iterdir()} == {"cfg"}
    assert snapshot(tmp_path / "cfg") == before


@pytest.mark.parametrize("name", [f"directives_{NODE}_\x00.json", "assets_\x1b[2J.json",
                                  "vuln_a\nb.json"])
def test_a_wanted_name_with_a_control_character_stops_serve(tmp_path, name):
    before = previous_configs(tmp_path)
    with Frontend({"assets_example.json": ASSETS}, listing=["assets_example.json", name]) \
            as frontend:
        result = cli(*serve_args(tmp_path, frontend.url))
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert f"listed an unsafe file name {name!r}" in result.stderr
    assert "control character" in result.stderr
    assert snapshot(tmp_path / "cfg") == before


def test_hidden_and_unwanted_listed_names_are_ignored(serve, tmp_path):
    """The Go frontend lists its whole configs/ directory, a ConfigMap mount included."""
    odd = [".gitkeep", "..data", "..2026_01_01_00_00_00.000000001", "../evil.json",
           "other/assets_x.json", "notes\x00.json", "README\n"]
    configs = tmp_path / "configs"
    configs.mkdir()
    files = {**FILES, ".gitkeep": b"", "..data": b"x"}
    with Frontend(files, listing=odd + list(FILES)) as frontend:
        node = with_args(serve("node", configs=configs, node=NODE), "--frontend", frontend.url)
        node.start()
    assert snapshot(configs) == {name: FILES[name] for name in WANTED}
    assert sorted(frontend.requests) == sorted(["/config/", *(f"/config/{n}" for n in WANTED)])
    assert node.stop() == 0


def test_a_listed_file_that_answers_404_stops_serve(tmp_path):
    listing = ["assets_example.json", f"directives_{NODE}_gone.json"]
    with Frontend({"assets_example.json": ASSETS}, listing=listing) as frontend:
        result = cli(*serve_args(tmp_path, frontend.url))
    assert result.returncode == 1
    assert f"cannot download directives_{NODE}_gone.json" in result.stderr
    assert "HTTP 404" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "cfg" / f"directives_{NODE}_gone.json").exists()


def test_a_listing_that_is_not_json_stops_serve(tmp_path):
    with Frontend({}, listing_body=b'["assets_example.json"]') as frontend:
        result = cli(*serve_args(tmp_path, frontend.url))
    assert result.returncode == 1
    assert "config listing" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_frontend_that_trickles_hits_the_deadline(tmp_path):
    before = previous_configs(tmp_path)
    with Frontend(FILES, trickle={"intel_example.json": 0.5}) as frontend:
        result = cli(*serve_args(tmp_path, frontend.url),
                         env={"DSIEM_FRONTEND_TIMEOUT": "2"})
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert (f"error: frontend {frontend.url}: intel_example.json not downloaded within the "
            "2 s deadline of the whole download (--frontend-timeout)") in result.stderr
    assert snapshot(tmp_path / "cfg") == before


def test_sigterm_stops_a_download_at_once(tmp_path):
    before = previous_configs(tmp_path)
    with Frontend(FILES, trickle={"intel_example.json": 5}) as frontend:
        proc = subprocess.Popen(
            [*COMMAND, *serve_args(tmp_path, frontend.url)], env=cli_env(),
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )
        try:
            wait_until("the download of intel_example.json",
                       lambda: "/config/intel_example.json" in frontend.requests)
            time.sleep(1)
            proc.send_signal(signal.SIGTERM)
            _, stderr = proc.communicate(timeout=10)  # a hang guard, not a speed test
        finally:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, stderr
    assert "stopped while downloading the config" in stderr
    assert "Traceback" not in stderr
    assert snapshot(tmp_path / "cfg") == before


BIG = b'{"directives": []' + b" " * (5 * 2**20) + b"}"


@pytest.mark.parametrize("sized", [True, False], ids=["content-length", "no-content-length"])
def test_a_file_over_the_size_cap_stops_serve(tmp_path, sized):
    before = previous_configs(tmp_path)
    files = {**FILES, f"directives_{NODE}_x.json": BIG}
    unsized = set() if sized else {f"directives_{NODE}_x.json"}
    with Frontend(files, unsized=unsized) as frontend:
        if sized:
            result = cli(*serve_args(tmp_path, frontend.url), "--max-config-size", "1")
        else:
            result = cli(*serve_args(tmp_path, frontend.url),
                             env={"DSIEM_MAX_CONFIG_SIZE": "1"})
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    size = f"Content-Length {len(BIG)}" if sized else "more than 1048576 bytes"
    assert (f"error: cannot download directives_{NODE}_x.json from frontend {frontend.url}: "
            f"it is larger than the 1 MB limit (--max-config-size): {size}") in result.stderr
    assert snapshot(tmp_path / "cfg") == before


def test_an_oversized_listing_stops_serve(tmp_path):
    before = previous_configs(tmp_path)
    listing = b'{"files": []' + b" " * (9 * 2**20) + b"}"
    with Frontend(FILES, listing_body=listing) as frontend:
        result = cli(*serve_args(tmp_path, frontend.url))
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert (f"error: cannot get a list of config files from frontend {frontend.url}: "
            "it is larger than 8 MB") in result.stderr
    assert frontend.requests == ["/config/"]
    assert snapshot(tmp_path / "cfg") == before


@pytest.mark.parametrize("failure", [500, "drop"])
def test_a_failure_mid_download_leaves_the_configs_as_they_were(tmp_path, failure):
    before = previous_configs(tmp_path)
    with Frontend(FILES, fail={"intel_example.json": failure}) as frontend:
        result = cli(*serve_args(tmp_path, frontend.url))
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert f"cannot download intel_example.json from frontend {frontend.url}" in result.stderr
    # the files before it were downloaded, then thrown away
    assert f"/config/directives_{NODE}_x.json" in frontend.requests
    assert snapshot(tmp_path / "cfg") == before


def test_an_invalid_download_leaves_the_configs_as_they_were(tmp_path):
    before = previous_configs(tmp_path)
    bad = json.loads(directives(1))
    bad["directives"][0]["priority"] = 9
    files = {**FILES, f"directives_{NODE}_x.json": json.dumps(bad).encode()}
    with Frontend(files) as frontend:
        result = cli(*serve_args(tmp_path, frontend.url))
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert (f"error: directives_{NODE}_x.json from frontend {frontend.url}: "
            "directive ID 1 priority must be between 1 to 5") in result.stderr
    assert snapshot(tmp_path / "cfg") == before


def test_a_download_that_clashes_with_a_local_file_leaves_the_configs_as_they_were(tmp_path):
    """The service loads every directives_*.json of --configs: the check covers them all."""
    previous_configs(tmp_path)
    (tmp_path / "cfg" / f"directives_{NODE}_a.json").write_bytes(directives(2001))
    before = snapshot(tmp_path / "cfg")
    files = {**FILES, f"directives_{NODE}_x.json": directives(1, 2001)}
    with Frontend(files) as frontend:
        result = cli(*serve_args(tmp_path, frontend.url))
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert (f"error: directives_{NODE}_x.json from frontend {frontend.url}: "
            "directive ID 2001 already exist") in result.stderr
    assert snapshot(tmp_path / "cfg") == before
