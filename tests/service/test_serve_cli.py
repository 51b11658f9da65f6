"""The `serve` command line (docs/behaviour.md, "Command line"): every flag is there, bad
values stop it with a clear message, MAX_EPS / DSIEM_MAXEPS are read, and /healthz and
/metrics answer."""

from __future__ import annotations

import os
import pwd
import re
import shutil
import socket
import time
import urllib.request

import pytest
from kit import CONFIGS, cli, wait_until
from scenario import ping_events, wait_metric, with_args
from servekit import free_port, http_status, publish

DSIEM_FLAGS = [
    "--frontend", "--node", "--min-alarm-lifetime", "--status", "--tags", "--med_risk_min",
    "--med_risk_max", "--max_eps", "--msq", "--cache", "--max_queue", "--hold_duration",
    "--max_delay", "--intel_private_ip", "--reload-backlogs",
]
ADDED_FLAGS = [
    "--configs", "--db", "--logs", "--commit-interval", "--db-sync", "--retention-days",
    "--metrics-port", "--metrics-host", "--reference-mode", "--frontend-timeout",
    "--max-config-size", "--db-retry-window", "--enable-lifecycle", "--nats-reconnect-window",
]


def test_help_lists_every_flag():
    result = cli("serve", "--help")
    assert result.returncode == 0, result.stderr
    options = set(re.findall(r"--[a-z][a-z_-]*", result.stdout))
    assert set(DSIEM_FLAGS + ADDED_FLAGS) <= options, sorted(
        set(DSIEM_FLAGS + ADDED_FLAGS) - options)


def serve_args(tmp_path, *extra: str) -> list[str]:
    return ["serve", "--configs", str(CONFIGS), "--db", str(tmp_path / "dsiem.db"),
            "--logs", str(tmp_path / "logs"), "--msq", f"nats://127.0.0.1:{free_port()}",
            *extra]


@pytest.mark.parametrize(("extra", "env", "message"), [
    (["--node", "n", "--med_risk_max", "11"], {},
     "error reading med_risk_min and med_risk_max: invalid value provided"),
    (["--node", "n", "--med_risk_min", "5", "--med_risk_max", "5"], {},
     "error reading med_risk_min and med_risk_max: invalid value provided"),
    (["--node", "n", "--hold_duration", "0"], {}, "Invalid value for '--hold_duration'"),
    (["--node", "n", "--max_delay", "65536"], {}, "'--max_delay' / '--max-delay'"),
    (["--node", "n", "--frontend", "http://127.0.0.1:9"], {"DSIEM_FRONTEND_TIMEOUT": "0"},
     "Invalid value for '--frontend-timeout'"),
    (["--node", "n", "--max-config-size", "0"], {}, "Invalid value for '--max-config-size'"),
    (["--node", "n"], {"MAX_EPS": "abc"},
     "(env var: '['DSIEM_MAXEPS', 'MAX_EPS']'): Input should be a valid integer"),
    (["--node", "n"], {"DSIEM_MAXEPS": "abc", "MAX_EPS": "500"},
     "(env var: '['DSIEM_MAXEPS', 'MAX_EPS']'): Input should be a valid integer"),
    ([], {}, "Missing option '-n' / '--node'"),
], ids=["med_risk_max-11", "med_risk-equal", "hold_duration-0", "max_delay-65536",
        "frontend-timeout-0", "max-config-size-0", "MAX_EPS-abc", "DSIEM_MAXEPS-abc", "no-node"])
def test_a_bad_setting_stops_serve_with_a_clear_message(tmp_path, extra, env, message):
    result = cli(*serve_args(tmp_path, *extra), env=env)
    assert result.returncode != 0
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "dsiem.db").exists()  # stopped before touching anything


def test_a_taken_metrics_port_stops_serve_with_a_clear_message(tmp_path):
    with socket.socket() as taken:
        taken.bind(("0.0.0.0", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = cli(*serve_args(tmp_path, "--node", "n", "--metrics-port", str(port)))
    assert result.returncode == 1
    assert "address already in use" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("env", [{"MAX_EPS": "500"}, {"DSIEM_MAXEPS": "600"}],
                         ids=["MAX_EPS", "DSIEM_MAXEPS"])
def test_max_eps_from_the_environment_is_accepted(serve, monkeypatch, env):
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    node = serve().start()
    assert node.stop() == 0


def test_healthz_and_metrics(serve, nats_server):
    node = serve().start()
    assert http_status(node.url("/healthz")) == 200
    assert http_status(node.url("/nothing")) == 404
    publish(nats_server.url, ping_events(int(time.time()) - 300))
    node.wait_for("SELECT count(*) FROM alarm_events", [(17,)])
    for name, value in [
        ("dsiem_events_received_total", 17), ("dsiem_events_processed_total", 17),
        ("dsiem_events_invalid_total", 0), ("dsiem_events_dropped_total", 0),
        ("dsiem_alarms_written_total", 1), ("dsiem_backlogs", 2), ("dsiem_queue_length", 0),
    ]:
        wait_metric(node, name, value)
    assert node.metric("dsiem_commit_seconds_count") >= 1
    with urllib.request.urlopen(node.url("/metrics"), timeout=5) as r:
        assert r.headers["Content-Type"].startswith("text/plain")
        text = r.read().decode()
    assert 'dsiem_commit_seconds_bucket{le="+Inf"}' in text
    assert node.stop() == 0
    assert http_status(node.url("/healthz")) is None


def test_metrics_listen_on_the_metrics_host_only(serve):
    node = with_args(serve(), "--metrics-host", "127.0.0.2").start(ready=False)
    on_host = f"http://127.0.0.2:{node.metrics_port}/healthz"

    def healthy() -> bool:
        assert node.proc is not None and node.proc.poll() is None, node.log.read_text()
        return http_status(on_host) == 200

    wait_until("/healthz on 127.0.0.2", healthy)
    assert http_status(node.url("/healthz")) is None  # nothing listens on 127.0.0.1
    assert node.stop() == 0


def permissions_apply() -> list[str]:
    """A command prefix under which permission bits apply to the command: none for a normal
    user; for root, setpriv without the capabilities that override them (it stays uid 0, so
    it can still run an interpreter kept under /root)."""
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("as root, permission bits apply only under setpriv (util-linux), not found")
    return [setpriv, "--bounding-set=-dac_override,-dac_read_search", "--"]


@pytest.mark.parametrize("case", ["data", "logs", "logs-parent", "output-file"])
def test_a_directory_serve_cannot_write_stops_it_naming_directory_and_user(tmp_path, case):
    prefix = permissions_apply()
    user = f"uid {os.geteuid()} ({pwd.getpwuid(os.geteuid()).pw_name})"
    data, logs = tmp_path / "data", tmp_path / "logs"
    data.mkdir()
    db = data / "dsiem.db"
    if case == "data":
        locked = data
        expected = (f"{db}: cannot create lock file {db}.lock: Permission denied "
                    f"(directory {data} is not writable by {user})")
    elif case == "logs":
        logs.mkdir()
        locked = logs
        expected = (f"{logs}/siem_alarms.json: cannot open for appending: Permission denied "
                    f"(directory {logs} is not writable by {user})")
    elif case == "logs-parent":
        logs = tmp_path / "mount" / "logs"
        locked = logs.parent
        locked.mkdir()
        expected = (f"{logs}: cannot create directory: Permission denied "
                    f"(directory {locked} is not writable by {user})")
    else:
        logs.mkdir()
        locked = logs / "siem_alarm_events.json"
        locked.touch()
        expected = (f"{locked}: cannot open for appending: Permission denied "
                    f"(file {locked} is not writable by {user})")
    locked.chmod(0o444 if case == "output-file" else 0o555)
    args = ["serve", "--node", "dsiem-backend-0", "--configs", str(CONFIGS), "--db", str(db),
            "--logs", str(logs), "--msq", f"nats://127.0.0.1:{free_port()}"]
    # past the check, serve would wait for NATS until the timeout
    result = cli(*args, prefix=prefix, timeout=30)
    assert result.returncode == 1, result.stderr
    assert f"error: {expected}\n" in result.stderr
    assert "Traceback" not in result.stderr
