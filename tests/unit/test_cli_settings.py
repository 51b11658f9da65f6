"""Flags and `DSIEM_*` variables, read by typer alone (docs/behaviour.md, "Command line"): a
flag wins over its variable, the variable over the default; `DSIEM_MAXEPS` over `MAX_EPS`."""

from __future__ import annotations

import logging
import sys

import pytest

from dsiem_sql.cli import main
from dsiem_sql.runtime import service

VARIABLES = ["DSIEM_MAXEPS", "MAX_EPS", "DSIEM_MEDRISKMIN", "DSIEM_MEDRISKMAX", "DSIEM_STATUS",
             "DSIEM_TAGS", "DSIEM_REFERENCE_MODE", "DSIEM_MATCH_PROTOCOL", "DSIEM_MAXQUEUE",
             "STATUS", "TAGS"]


@pytest.fixture
def serve(monkeypatch, capsys):
    """`dsiem-sql serve --node n ARGS` with the variables ENV, through the entry point;
    returns what serve would run with (ServeOptions, EngineOptions), or, when it stopped
    before, its exit code and error output."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    ran = []
    monkeypatch.setattr(service, "run_service", lambda *options: ran.append(options))

    def run(*args: str, **env: str):
        with monkeypatch.context() as m:
            for name in VARIABLES:
                m.delenv(name, raising=False)
            for name, value in env.items():
                m.setenv(name, value)
            m.setattr(sys, "argv", ["dsiem-sql", "serve", "--node", "n", *args])
            with pytest.raises(SystemExit) as stopped:
                main()
        if ran:
            assert stopped.value.code == 0
            return ran.pop()
        return stopped.value.code, capsys.readouterr().err

    yield run
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.mark.parametrize(("args", "env", "expected"), [
    ([], {}, 1000),
    ([], {"MAX_EPS": "500"}, 500),
    ([], {"DSIEM_MAXEPS": "600", "MAX_EPS": "500"}, 600),
    ([], {"DSIEM_MAXEPS": "", "MAX_EPS": "500"}, 500),  # empty counts as not set
    (["--max_eps", "700"], {"DSIEM_MAXEPS": "600", "MAX_EPS": "500"}, 700),
    (["-e", "800"], {"DSIEM_MAXEPS": "abc"}, 800),  # a bad variable under a flag is unread
])
def test_max_eps_flag_then_dsiem_maxeps_then_max_eps(serve, args, env, expected):
    options, _ = serve(*args, **env)
    assert options.max_eps == expected


def test_engine_settings_flag_then_variable_then_default(serve):
    _, engine = serve()
    assert (engine.med_risk_min, engine.med_risk_max, engine.status, engine.tag) == (
        3, 6, "Open", "Identified Threat")
    assert (engine.reference_mode, engine.match_protocol) == ("value", False)
    _, engine = serve(DSIEM_MEDRISKMIN="4", DSIEM_MEDRISKMAX="8", DSIEM_STATUS="Closed,Open",
                      DSIEM_TAGS="Valid Threat", DSIEM_REFERENCE_MODE="rule",
                      DSIEM_MATCH_PROTOCOL="true")
    assert (engine.med_risk_min, engine.med_risk_max, engine.status, engine.tag) == (
        4, 8, "Closed", "Valid Threat")
    assert (engine.reference_mode, engine.match_protocol) == ("rule", True)
    _, engine = serve("--med_risk_min", "5", "-s", "In-Progress", DSIEM_MEDRISKMIN="4",
                      DSIEM_STATUS="Closed")
    assert (engine.med_risk_min, engine.status) == (5, "In-Progress")


def test_only_the_dsiem_names_are_read(serve):
    """Not the setting's own name, in any case (pydantic-settings used to read those)."""
    _, engine = serve(STATUS="Closed", TAGS="Valid Threat", med_risk_min="5")
    assert (engine.status, engine.tag, engine.med_risk_min) == ("Open", "Identified Threat", 3)


@pytest.mark.parametrize(("env", "message"), [
    ({"MAX_EPS": "abc"}, "Invalid value for '-e' / '--max_eps' / '--max-eps' (env var: "
                         "'['DSIEM_MAXEPS', 'MAX_EPS']'): Input should be a valid integer"),
    ({"DSIEM_MAXEPS": "0", "MAX_EPS": "500"}, "(env var: '['DSIEM_MAXEPS', 'MAX_EPS']'): "
                                              "Input should be greater than or equal to 1"),
    ({"DSIEM_MAXQUEUE": "-1"}, "(env var: 'DSIEM_MAXQUEUE'): Input should be greater than"),
    ({"DSIEM_MEDRISKMIN": "x"}, "(env var: 'DSIEM_MEDRISKMIN'): Input should be a valid integer"),
    ({"DSIEM_MEDRISKMIN": "1"}, "error: error reading med_risk_min and med_risk_max: "
                                "invalid value provided (min 1, max 6; need 2 <= min < max <= 9)"),
    ({"DSIEM_REFERENCE_MODE": "x"}, "error: reference_mode: Input should be 'value' or 'rule'"),
])
def test_a_bad_variable_is_named(serve, env, message):
    code, stderr = serve(**env)
    assert code == 1
    assert message in stderr
    assert "Traceback" not in stderr
