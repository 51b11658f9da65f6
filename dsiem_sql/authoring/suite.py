"""`dsiem-sql test`: the case files of the paths given, run and reported."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from dsiem_sql.authoring import report
from dsiem_sql.authoring.cases import Case, CaseError, load_cases
from dsiem_sql.authoring.runner import Configs, Outcome, run_cases

SUFFIXES = (".yaml", ".yml")


@dataclass
class SuiteResult:
    outcomes: list[Outcome] = field(default_factory=list)
    file_errors: list[tuple[Path, str]] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.file_errors and all(o.passed for o in self.outcomes)

    def lines(self) -> list[str]:
        out = [f"ERROR {message}" for _, message in self.file_errors]
        return out + list(report.lines(self.outcomes))

    def junit_xml(self) -> bytes:
        return report.junit_xml(self.outcomes, self.file_errors)


def case_files(paths: list[Path]) -> list[Path]:
    """The files named, and the YAML files below the directories named, in name order."""
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files.extend(sorted(p for p in path.rglob("*") if p.suffix in SUFFIXES))
        elif path.exists():
            files.append(path)
        else:
            raise FileNotFoundError(f"{path}: no such file or directory")
    return files


def run_suite(paths: list[Path], configs: Path | None = None) -> SuiteResult:
    result = SuiteResult()
    cases: list[Case] = []
    for path in case_files(paths):
        try:
            cases.extend(load_cases(path, configs))
        except CaseError as exc:
            result.file_errors.append((path, str(exc)))
    result.outcomes = run_cases(cases, Configs())
    return result
