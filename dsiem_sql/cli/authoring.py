"""`dsiem-sql test` and `dsiem-sql test-init`: directive test cases (docs/testing.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from dsiem_sql.cli.app import app, engine_settings, fail, load
from dsiem_sql.cli.options import (
    ConfigsOpt,
    MatchProtocolOpt,
    MinAlarmLifetimeOpt,
    ReferenceModeOpt,
    TaxonomyCustomDataOpt,
)


@app.command("test")
def test_command(
    paths: Annotated[list[Path], typer.Argument(
        help="Test case files (YAML), or directories of them.")],
    configs: Annotated[Path | None, typer.Option(
        "--configs", envvar="DSIEM_CONFIGS",
        help="Config directory of the cases that name none (default: configs/ beside each "
             "file).")] = None,
    junit_xml: Annotated[Path | None, typer.Option(
        "--junit-xml", help="Also write a JUnit XML report here.")] = None,
) -> None:
    """Run directive test cases; exit 1 if any fails."""
    from dsiem_sql.authoring.suite import run_suite

    try:
        result = run_suite(paths, configs)
    except FileNotFoundError as exc:
        raise fail(str(exc)) from None
    for line in result.lines():
        typer.echo(line)
    if junit_xml is not None:
        try:
            junit_xml.write_bytes(result.junit_xml())
        except OSError as exc:
            raise fail(f"--junit-xml {junit_xml}: {exc.strerror}") from None
    if not result.passed:
        raise typer.Exit(1)


@app.command("test-init")
def test_init_command(
    ctx: typer.Context,
    configs: ConfigsOpt,
    directive: Annotated[int, typer.Option("--directive", help="The directive's id.")],
    output: Annotated[Path | None, typer.Option(
        "--output", "-o", help="Write the case here (default: standard output).")] = None,
    reference_mode: ReferenceModeOpt = None,
    min_alarm_lifetime: MinAlarmLifetimeOpt = None,
    match_protocol: MatchProtocolOpt = None,
    taxonomy_custom_data: TaxonomyCustomDataOpt = None,
) -> None:
    """Write a starter test case that walks a directive through every stage."""
    from dsiem_sql.authoring.starter import Unreachable, write_starter

    settings = engine_settings(ctx)
    try:
        text = write_starter(load(configs), configs, directive, settings, output)
    except Unreachable as exc:
        raise fail(f"directive {directive}: {exc}; no case written") from None
    except (KeyError, OSError) as exc:
        raise fail(str(exc.args[0]) if isinstance(exc, KeyError) else
                   f"{output}: {exc.strerror}") from None
    if output is None:
        typer.echo(text, nl=False)
    else:
        typer.echo(f"wrote {output}", err=True)
