"""`dsiem-sql validate` warns of directives that cannot do what they were written for, one
line each naming file, directive, stage and reason; the exit code stays 0 unless --strict."""

from __future__ import annotations

import json
from pathlib import Path

import kit
import pytest
from kit import CONFIGS, rule
from typer.testing import CliRunner

from dsiem_sql.cli import app

pytestmark = pytest.mark.usefixtures("restore_root_logger")


def configs(root: Path, *directives: dict, value: int = 5) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "assets_a.json").write_text(json.dumps({"assets": [
        {"name": "home", "cidr": "10.0.0.0/8", "value": value},
        {"name": "scanner", "cidr": "10.9.9.9/32", "value": 1, "whitelisted": True}]}))
    (root / "directives_n_a.json").write_text(json.dumps({"directives": list(directives)}))
    return root


def validate(directory: Path, *flags: str):
    return CliRunner().invoke(app, ["validate", "--configs", str(directory), *flags])


# defenxor/dsiem #469: a one-stage-like directive whose risk stays below 1: alarm events, no alarm
LOW = kit.directive(469, [rule(1, reliability=1), rule(2, plugin_sid=[2], reliability=4)],
                    priority=1)


def test_a_directive_that_can_never_alarm_is_a_warning_and_an_error_with_strict(tmp_path):
    directory = configs(tmp_path, LOW)
    file = directory / "directives_n_a.json"
    warning = (f"warning: {file}: directive 469: can never raise an alarm: its risk is at most "
               f"priority 1 x reliability 4 (stage 2) x asset value 5 / 25 = 0, and an alarm "
               f"needs risk 1")
    result = validate(directory)
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[-1] == warning
    strict = validate(directory, "--strict")
    assert strict.exit_code == 1
    assert warning in strict.output
    assert "error: 1 warning (--strict)" in strict.output


def test_low_asset_values_are_named(tmp_path):
    d = kit.directive(1, [rule(1, reliability=2), rule(2, plugin_sid=[2], reliability=4)],
                      priority=2)
    result = validate(configs(tmp_path, d, value=3))
    assert "cannot raise an alarm with these assets: its risk is at most priority 2 x " \
           "reliability 4 (stage 2) x asset value 3 (the highest) / 25 = 0" in result.output


def test_an_unreachable_stage_is_named_with_its_reason(tmp_path):
    d = kit.directive(2, [rule(1, reliability=5), rule(
        2, plugin_sid=[2], occurrence=3, timeout=60, reliability=5,
        sticky_different="SRC_IP", **{"from": ":1"})], priority=3)
    directory = configs(tmp_path, d)
    result = validate(directory)
    assert result.exit_code == 0
    assert (f"warning: {directory / 'directives_n_a.json'}: directive 2, stage 2: no event "
            f"can reach it: sticky_different SRC_IP needs 3 events with different src_ip "
            f"values, but from :1 (stage 1's source) admits only 1") in result.output.splitlines()


def test_overlapping_first_stages_are_information_not_warnings(tmp_path):
    a = kit.directive(1, [rule(1, reliability=5), rule(2, reliability=5)], priority=3)
    b = kit.directive(2, [rule(1, plugin_sid=[1, 3], reliability=5),
                          rule(2, plugin_sid=[3], reliability=5)], priority=3)
    result = validate(configs(tmp_path, a, b), "--strict")
    assert result.exit_code == 0, result.output
    assert [line for line in result.output.splitlines() if line.startswith(("info", "warn"))] \
        == [f"info: {tmp_path / 'directives_n_a.json'}: directive 1, stage 1: its first stage "
            f"overlaps directive 2's first stage (plugin 1337 SID 1): such an event opens a "
            f"backlog of each"]


def test_the_examples_have_no_warning():
    result = validate(CONFIGS, "--strict")
    assert result.exit_code == 0, result.output
    assert "warning" not in result.output
