"""Every default of the service and the commands comes from `dsiem_sql.defaults` (issue 18,
item 6): a setting whose default is written out again elsewhere drifts from it the day one
of the two changes (`Sources` of runtime/reload.py had 60.0 and 64 * 2**20 of its own)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from kit import ROOT

from dsiem_sql import defaults
from dsiem_sql.adapters.nats.options import NatsOptions
from dsiem_sql.runtime.correlator import Batching
from dsiem_sql.runtime.reload import Sources
from dsiem_sql.runtime.settings import EngineSettings
from dsiem_sql.runtime.worker import Timing

PACKAGE = ROOT / "dsiem_sql"
MB = defaults.MB

# the names a setting goes by in the code (fields, parameters) -> its default
SETTINGS: dict[str, object] = {
    "frontend_timeout": defaults.FRONTEND_TIMEOUT,
    "deadline": defaults.FRONTEND_TIMEOUT,  # download_config's
    "max_config_size": defaults.MAX_CONFIG_SIZE_MB * MB,
    "max_file_size": defaults.MAX_CONFIG_SIZE_MB * MB,
    "url": defaults.NATS_URL,
    "nats_url": defaults.NATS_URL,
    "msq": defaults.NATS_URL,
    "max_backoff": defaults.NATS_MAX_BACKOFF,
    "reconnect_window": defaults.NATS_RECONNECT_WINDOW,
    "max_queue": defaults.MAX_QUEUE,
    "max_delay": defaults.MAX_DELAY,
    "hold_duration": defaults.HOLD_DURATION,
    "max_eps": defaults.MAX_EPS,
    "interval_ms": defaults.COMMIT_INTERVAL_MS,
    "commit_interval": defaults.COMMIT_INTERVAL_MS,
    "changes": defaults.COMMIT_CHANGES,
    "commit_changes": defaults.COMMIT_CHANGES,
    "retention_days": defaults.RETENTION_DAYS,
    "db_retry_window": defaults.DB_RETRY_WINDOW,
    "retry_window": defaults.DB_RETRY_WINDOW,
    "cache_minutes": defaults.CACHE_MINUTES,
    "cache": defaults.CACHE_MINUTES,
    "expiry_interval": defaults.EXPIRY_INTERVAL,
    "watchdog_interval": defaults.WATCHDOG_INTERVAL,
    "max_connections": defaults.HTTP_MAX_CONNECTIONS,
    "request_seconds": defaults.HTTP_REQUEST_SECONDS,
    "metrics_host": defaults.METRICS_HOST,
    "stream": defaults.JS_STREAM,
    "replicas": defaults.JS_REPLICAS,
    "med_risk_min": defaults.MED_RISK_MIN,
    "med_risk_max": defaults.MED_RISK_MAX,
    "status": defaults.STATUS,
    "tags": defaults.TAGS,
    "min_alarm_lifetime": defaults.MIN_ALARM_LIFETIME,
    "reference_mode": defaults.REFERENCE_MODE,
    "time_limit": defaults.CONSOLE_TIME_LIMIT,
    "max_rows": defaults.CONSOLE_MAX_ROWS,
    "refresh_seconds": defaults.CONSOLE_REFRESH_SECONDS,
}


def literal(node: ast.expr) -> object:
    """The value of a default written as a literal (`60.0`, `64 * 2**20`, `64 * MB`,
    `Field(3, ge=0)`); a KeyError for anything else (`defaults.X`, a call, a name)."""
    if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "Field" and node.args:
        node = node.args[0]
    names = {"MB": MB, "__builtins__": {}}
    if not all(isinstance(n, ast.Constant | ast.BinOp | ast.UnaryOp | ast.operator
                          | ast.unaryop) or (isinstance(n, ast.Name) and n.id in names)
               or isinstance(n, ast.Load) for n in ast.walk(node)):
        raise KeyError(ast.unparse(node))
    return eval(compile(ast.Expression(node), "<default>", "eval"), names)


def written_out_defaults(path: Path) -> list[str]:
    """Fields and parameters of `path` named as a setting whose default is that setting's
    value, written out instead of taken from `dsiem_sql.defaults`."""
    tree = ast.parse(path.read_text(), str(path))
    pairs: list[tuple[str, ast.expr, int]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef):
            pairs += [(s.target.id, s.value, s.lineno) for s in node.body
                      if isinstance(s, ast.AnnAssign) and isinstance(s.target, ast.Name)
                      and s.value is not None]
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            args = node.args
            positional = [*args.posonlyargs, *args.args]
            pairs += [(a.arg, d, d.lineno)
                      for a, d in zip(positional[len(positional) - len(args.defaults):],
                                      args.defaults, strict=True)]
            pairs += [(a.arg, d, d.lineno) for a, d in zip(args.kwonlyargs, args.kw_defaults,
                                                           strict=True) if d is not None]
    found = []
    for name, value, line in pairs:
        if name not in SETTINGS:
            continue
        try:
            written = literal(value)
        except KeyError:
            continue
        if written == SETTINGS[name] and written not in (None, True, False):
            where = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path.name
            found.append(f"{where}:{line}: {name} = {ast.unparse(value)}")
    return found


def test_no_default_is_written_out_again_outside_defaults_py():
    found = [f for path in sorted(PACKAGE.rglob("*.py")) if path.name != "defaults.py"
             for f in written_out_defaults(path)]
    assert not found, "take these from dsiem_sql.defaults:\n" + "\n".join(found)


@pytest.mark.parametrize("source, found", [
    ("class Sources:\n    frontend_timeout: float = 60.0\n", True),
    ("class Sources:\n    max_config_size: int = 64 * 2**20\n", True),
    ("def f(*, max_file_size: int = 64 * MB): ...\n", True),
    ("class S:\n    med_risk_min: int = Field(3, ge=0)\n", True),
    ("def f(cache_minutes=10): ...\n", True),
    ("class T:\n    max_delay: int = 0  # off\n", False),  # another value: another meaning
    ("class Sources:\n    frontend_timeout: float = defaults.FRONTEND_TIMEOUT\n", False),
])
def test_the_check_finds_a_written_out_default(tmp_path, source, found):
    path = tmp_path / "probe.py"
    path.write_text(source)
    assert bool(written_out_defaults(path)) is found


def test_the_library_defaults_are_those_of_the_command_line():
    sources = Sources(Path("configs"), "node")
    assert (sources.frontend_timeout, sources.max_config_size) == (
        defaults.FRONTEND_TIMEOUT, defaults.MAX_CONFIG_SIZE_MB * MB)
    assert (Batching().interval_ms, Batching().changes) == (
        defaults.COMMIT_INTERVAL_MS, defaults.COMMIT_CHANGES)
    assert (Timing().expiry_interval, Timing().retention_days) == (
        defaults.EXPIRY_INTERVAL, defaults.RETENTION_DAYS)
    assert NatsOptions().url == defaults.NATS_URL
    settings = EngineSettings()
    assert (settings.med_risk_min, settings.med_risk_max, settings.status, settings.tags) == (
        defaults.MED_RISK_MIN, defaults.MED_RISK_MAX, defaults.STATUS, defaults.TAGS)
