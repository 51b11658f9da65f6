"""What `dsiem-sql test` prints (a line a case, its failures below it, a summary), and the
JUnit XML report that CI systems read."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

from dsiem_sql.authoring.runner import Outcome


def lines(outcomes: list[Outcome]) -> Iterator[str]:
    for o in outcomes:
        if o.passed:
            yield f"PASS  {o.case.title}"
        elif o.error is not None:
            yield f"ERROR {o.case.title}"
            yield f"      {o.error}"
        else:
            yield f"FAIL  {o.case.title}"
            yield from (f"      {failure}" for failure in o.failures)
    yield summary(outcomes)


def summary(outcomes: list[Outcome]) -> str:
    failed = sum(1 for o in outcomes if o.failures and o.error is None)
    errors = sum(1 for o in outcomes if o.error is not None)
    passed = len(outcomes) - failed - errors
    text = f"{len(outcomes)} case{'s' if len(outcomes) != 1 else ''}: {passed} passed"
    if failed:
        text += f", {failed} failed"
    if errors:
        text += f", {errors} could not run"
    return text


def junit_xml(outcomes: list[Outcome], file_errors: list[tuple[Path, str]]) -> bytes:
    """One test suite per case file; a case file that could not be read is a suite with
    one error."""
    root = ET.Element("testsuites", name="dsiem-sql test")
    suites: dict[Path, ET.Element] = {}

    def suite(path: Path) -> ET.Element:
        if path not in suites:
            suites[path] = ET.SubElement(root, "testsuite", name=str(path))
        return suites[path]

    for o in outcomes:
        case = ET.SubElement(suite(o.case.file), "testcase", classname=str(o.case.file),
                             name=o.case.name, time=f"{o.seconds:.4f}")
        if o.error is not None:
            ET.SubElement(case, "error", message=o.error).text = o.error
        elif o.failures:
            ET.SubElement(case, "failure", message=o.failures[0]).text = "\n".join(o.failures)
    for path, message in file_errors:
        case = ET.SubElement(suite(path), "testcase", classname=str(path), name=path.name)
        ET.SubElement(case, "error", message=message).text = message
    for element in [root, *suites.values()]:
        cases = element.iter("testcase")
        counted = [(c.find("failure") is not None, c.find("error") is not None) for c in cases]
        element.set("tests", str(len(counted)))
        element.set("failures", str(sum(f for f, _ in counted)))
        element.set("errors", str(sum(e for _, e in counted)))
    ET.indent(root)
    return ET.tostring(root, encoding="utf-8", xml_declaration=True)
