"""`dsiem-sql test` and `test-init` as processes: exit codes, the report, the JUnit file."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from kit import CONFIGS, EXAMPLES, cli


def test_the_example_tests_pass():
    result = cli("test", EXAMPLES / "tests")
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.splitlines()[-1] == "7 cases: 7 passed"


def test_a_failing_case_exits_1_and_names_the_field(tmp_path):
    wrong = tmp_path / "wrong.yaml"
    wrong.write_text((EXAMPLES / "tests" / "ping_flood.yaml").read_text()
                     .replace("configs: ../configs", f"configs: {CONFIGS}")
                     .replace("          risk: 2\n", "          risk: 3\n", 1))
    result = cli("test", "--junit-xml", tmp_path / "report.xml", wrong)
    assert result.returncode == 1
    assert "      alarm 1 (directive 1): risk: expected 3, got 2" in result.stdout.splitlines()
    assert result.stdout.splitlines()[-1] == "5 cases: 4 passed, 1 failed"
    root = ET.parse(tmp_path / "report.xml").getroot()
    assert (root.get("tests"), root.get("failures")) == ("5", "1")


def test_test_init_writes_a_case_that_passes(tmp_path):
    case = tmp_path / "starter.yaml"
    made = cli("test-init", "--configs", CONFIGS, "--directive", "2001", "--output", case)
    assert made.returncode == 0, made.stderr
    result = cli("test", case)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "PASS  starter.yaml: directive 2001 walks through its 3 stages" in result.stdout


def test_test_init_names_an_unknown_directive():
    result = cli("test-init", "--configs", CONFIGS, "--directive", "42")
    assert result.returncode == 1
    assert result.stderr.strip() == f"error: directive 42 is not in {CONFIGS}"


def test_a_missing_path_is_an_error():
    result = cli("test", "no/such/cases.yaml")
    assert result.returncode == 1
    assert result.stderr.strip() == "error: no/such/cases.yaml: no such file or directory"


def test_the_extension_examples_pass_and_validate_names_their_extensions():
    result = cli("test", EXAMPLES / "extensions" / "tests")
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.splitlines()[-1] == "13 cases: 13 passed"
    validated = cli("validate", "--configs", EXAMPLES / "extensions" / "configs")
    assert validated.returncode == 0, validated.stderr
    lines = validated.stdout.splitlines()
    assert "directive 9001: extensions: absence" in lines
    assert "directive 9002: extensions: sticky-different on 2 fields" in lines
    assert "directive 9003: extensions: reference from = stage 1's to" in lines
    plain = cli("validate", "--configs", CONFIGS)
    assert "extensions" not in plain.stdout
