"""`dsiem-sql validate --configs DIR` (docs/behaviour.md, "Config files", "Risk class")."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from kit import CONFIGS, FIXTURES, cli
from typer.testing import CliRunner

from dsiem_sql.cli import app

pytestmark = pytest.mark.usefixtures("restore_root_logger")


def validate(directory: Path):
    return CliRunner().invoke(app, ["validate", "--configs", str(directory)])


def expected_example_lines() -> list[str]:
    """The per-file lines, computed from the example files themselves."""
    lines = []
    for path in sorted(CONFIGS.glob("assets_*.json")):
        lines.append(f"{path}: {len(json.loads(path.read_text())['assets'])} assets")
    for path in sorted(CONFIGS.glob("directives_*.json")):
        directives = json.loads(path.read_text())["directives"]
        enabled = [d for d in directives if not d.get("disabled", False)]
        rules = sum(len(d["rules"]) for d in enabled)
        disabled = len(directives) - len(enabled)
        extra = f", {disabled} disabled" if disabled else ""
        lines.append(f"{path}: {len(enabled)} directives, {rules} rules{extra}")
    for kind in ("intel", "vuln"):
        for path in sorted(CONFIGS.glob(f"{kind}_*.json")):
            count = len(json.loads(path.read_text())[f"{kind}_sources"])
            lines.append(f"{path}: {count} {kind} sources")
    return lines


def test_examples_are_valid() -> None:
    result = validate(CONFIGS)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    expected = expected_example_lines()
    assert len(expected) == 4  # one line per example file
    assert lines[: len(expected)] == expected
    assert lines[-1].startswith("valid: ")
    assert result.stderr == ""


def test_examples_summary_totals() -> None:
    directives = json.loads(
        (CONFIGS / "directives_dsiem-backend-0_example.json").read_text()
    )["directives"]
    assets = json.loads((CONFIGS / "assets_example.json").read_text())["assets"]
    enabled = [d for d in directives if not d.get("disabled", False)]
    rules = sum(len(d["rules"]) for d in enabled)
    result = validate(CONFIGS)
    assert result.stdout.splitlines()[-1] == (
        f"valid: {len(enabled)} directives, {rules} rules, {len(assets)} assets"
    )


def test_disabled_directives_are_counted(tmp_path: Path) -> None:
    source = json.loads((FIXTURES / "assets" / "directives_x_test.json").read_text())
    first = source["directives"][0]
    second = {**first, "id": 2, "disabled": True}
    (tmp_path / "directives_x_test.json").write_text(json.dumps({"directives": [first, second]}))
    (tmp_path / "assets_x.json").write_text(
        (FIXTURES / "assets" / "assets_testing.json").read_text()
    )
    result = validate(tmp_path)
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        f"{tmp_path / 'assets_x.json'}: 7 assets",
        f"{tmp_path / 'directives_x_test.json'}: 1 directives, 2 rules, 1 disabled",
        "valid: 1 directives, 2 rules, 7 assets",
    ]


def test_invalid_fixture_exits_1_with_path_and_message() -> None:
    directory = FIXTURES / "directives" / "13"
    result = validate(directory)
    assert result.exit_code == 1
    path = directory / "directives_x_test.json"
    assert result.stderr == (
        f"error: {path}: Directive ID 2 rules has error: "
        "rule stage 1 port_from is invalid: 0 is not a valid TCP/UDP port number\n"
    )
    assert "port_from is invalid" in result.output
    assert result.stdout == ""
    assert "Traceback" not in result.output
    assert isinstance(result.exception, SystemExit)  # a clean exit, not an uncaught error


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("1", "missing field `rules`"),
        ("27", "cannot load any directive"),
        ("dup", "directive ID 1 already exist"),
    ],
)
def test_other_invalid_fixtures(case: str, message: str) -> None:
    result = validate(FIXTURES / "directives" / case)
    assert result.exit_code == 1
    assert result.stderr.startswith(f"error: {FIXTURES / 'directives' / case}")
    assert message in result.stderr
    assert "Traceback" not in result.output


def test_missing_directory(tmp_path: Path) -> None:
    result = validate(tmp_path / "nope")
    assert result.exit_code == 1
    assert result.stderr == f"error: {tmp_path / 'nope'}: configuration directory not found\n"


def test_real_process_reports_error_without_traceback() -> None:
    directory = FIXTURES / "directives" / "13"
    proc = cli("validate", "--configs", directory)
    assert proc.returncode == 1
    assert f"error: {directory / 'directives_x_test.json'}: " in proc.stderr
    assert "port_from is invalid" in proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    assert proc.stdout == ""


def test_real_process_accepts_examples() -> None:
    proc = cli("validate", "--configs", CONFIGS)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[:4] == expected_example_lines()
