"""What the tests share: the paths of the source tree, `dsiem-sql` as a real process, waiting
for a condition, and builders of rules, directives and events as plain dicts (the JSON of the
config and event files).

tests/conftest.py puts this directory on sys.path, so every test module can `import kit`.
Nothing here imports dsiem_sql: scripts/test-wheel runs tests/acceptance, which uses this
module, against an installed wheel from an empty directory."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
CONFIGS = EXAMPLES / "configs"  # the example configuration directory
FIXTURES = ROOT / "tests" / "fixtures"

T0 = 1714557600  # 2024-05-01T10:00:00Z
WAIT = 20.0  # seconds: how long wait_until waits by default

# -- the command line ---------------------------------------------------------------------

# `python -m dsiem_sql` of the interpreter that runs the tests (the editable install of
# scripts/setup), or the `dsiem-sql` named by DSIEM_SQL_TEST_CLI: scripts/test-wheel sets it to
# the command of a fresh venv where the built wheel is installed.
INSTALLED_CLI = os.environ.get("DSIEM_SQL_TEST_CLI")
COMMAND = [INSTALLED_CLI] if INSTALLED_CLI else [sys.executable, "-m", "dsiem_sql"]


def cli_env(**extra: str | None) -> dict[str, str]:
    """The environment without DSIEM_* / MAX_EPS settings, unbuffered, with a wide terminal
    (help and tables on one line), plus `extra` (None removes a variable)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DSIEM_") and k != "MAX_EPS"}
    env = {**env, "COLUMNS": "200", "PYTHONUNBUFFERED": "1", **extra}
    return {k: v for k, v in env.items() if v is not None}


def cli(*args: str | Path, input: str | None = None, env: dict[str, str | None] | None = None,
        prefix: tuple[str, ...] | list[str] = (), timeout: float = 60,
        cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """`dsiem-sql ARGS` as a real process, to its exit. `env`: more environment variables
    (see cli_env); `prefix`: a command that runs it, such as setpriv; `timeout` only guards
    against a hang; `cwd`: the directory it runs in (relative paths are relative to it)."""
    return subprocess.run(
        [*prefix, *COMMAND, *map(str, args)], input=input, capture_output=True, text=True,
        env=cli_env(**(env or {})), timeout=timeout, cwd=cwd,
    )


def ok(proc: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    """`proc`, which exited 0 (else the test fails with its output)."""
    assert proc.returncode == 0, f"exit {proc.returncode}:\n{proc.stdout}{proc.stderr}"
    return proc


def replay(configs: Path, out: Path, events: Path | str, *extra: str | Path,
           **kw: Any) -> subprocess.CompletedProcess[str]:
    """`dsiem-sql replay --configs CONFIGS --out OUT EXTRA EVENTS` (EVENTS "-" is stdin)."""
    return cli("replay", "--configs", configs, "--out", out, *extra, events, **kw)


# -- waiting ------------------------------------------------------------------------------

T = TypeVar("T")


def wait_until(what: str | Callable[[], str], check: Callable[[], T],
               timeout: float = WAIT, every: float = 0.05) -> T:
    """Call `check` every `every` seconds until it returns something true, and return that.
    After `timeout` seconds the test fails with `what` (a callable builds the message then,
    with what it saw)."""
    deadline = time.monotonic() + timeout
    while True:
        got = check()
        if got:
            return got
        if time.monotonic() >= deadline:
            message = what if isinstance(what, str) else what()
            raise AssertionError(f"timed out waiting for {message}")
        time.sleep(every)


# -- rules, directives and events ---------------------------------------------------------


def rule(stage: int, **changes: Any) -> dict[str, Any]:
    """A rule of a directives file: PluginRule 1337/[1] ANY -> ANY, once, reliability 1, no
    timeout, with `changes` (the key `from` through `**{"from": ...}`). With
    type="TaxonomyRule" it has no plugin ids unless `changes` gives them."""
    plugin = {} if changes.get("type") == "TaxonomyRule" else {"plugin_id": 1337,
                                                              "plugin_sid": [1]}
    return {
        "name": f"stage {stage}", "stage": stage, "type": "PluginRule", **plugin,
        "occurrence": 1, "from": "ANY", "to": "ANY", "port_from": "ANY", "port_to": "ANY",
        "protocol": "ANY", "reliability": 1, "timeout": 0, **changes,
    }


def directive(id: int, rules: list[dict[str, Any]], **changes: Any) -> dict[str, Any]:
    """A directive of a directives file with `rules` and `changes`."""
    return {
        "id": id, "name": f"directive {id}", "priority": 3,
        "kingdom": "Reconnaissance & Probing", "category": "Misc Activity",
        "rules": rules, **changes,
    }


def iso(epoch: float) -> str:
    """An event timestamp: RFC 3339 in UTC."""
    return datetime.fromtimestamp(epoch, UTC).isoformat().replace("+00:00", "Z")


def event(event_id: str, ts: float, src: str = "0.0.0.0", dst: str = "0.0.0.0",
          **changes: Any) -> dict[str, Any]:
    """A normalized event at epoch `ts` from `src` to `dst`: plugin 1337/1 (what rule()
    matches), with `changes` (a value None is JSON null: the key counts as absent)."""
    return {
        "event_id": event_id, "timestamp": iso(ts), "title": "test event",
        "sensor": "sensor-1", "plugin_id": 1337, "plugin_sid": 1,
        "src_ip": src, "dst_ip": dst, **changes,
    }


def ping_events(base: int, numbers=range(1, 18), **changes: Any) -> list[dict[str, Any]]:
    """The Ping Flood sequence of the examples: ping n at base + 10 n, ping 3 from another
    source. Against the example directive 1 it gives one alarm (risk 2, Low) and a second
    backlog that never alarms."""
    return [
        event(f"ping-{n:02d}", base + 10 * n, "10.0.0.2" if n == 3 else "10.0.0.1",
              f"10.0.0.{2 + n % 3}", title="ET SCAN ICMP PING", sensor="suricata-01",
              plugin_id=1001, plugin_sid=2100384, protocol="ICMP",
              custom_label1="icmp_type", custom_data1="8", **changes)
        for n in numbers
    ]
