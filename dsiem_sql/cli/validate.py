"""`dsiem-sql validate`."""

from __future__ import annotations

from typing import Annotated

import typer

from dsiem_sql.cli.app import app, fail, load
from dsiem_sql.cli.options import ConfigsOpt


@app.command()
def validate(
    configs: ConfigsOpt,
    strict: Annotated[bool, typer.Option(
        "--strict", help="Exit 1 if there is any warning, as for an error.")] = False,
) -> None:
    """Load and validate a config directory; print what it holds, and what its directives
    cannot do (warnings)."""
    from dsiem_sql.authoring.warnings import findings
    from dsiem_sql.config.extensions import directive_extensions

    config = load(configs)
    for f in config.files:
        if f.kind == "directives":
            extra = f", {f.disabled} disabled" if f.disabled else ""
            typer.echo(f"{f.path}: {f.directives} directives, {f.rules} rules{extra}")
        elif f.kind == "assets":
            typer.echo(f"{f.path}: {f.assets} assets")
        else:
            typer.echo(f"{f.path}: {f.sources} {f.kind} sources")
    for d in config.directives:
        if names := directive_extensions(d):
            typer.echo(f"directive {d.id}: extensions: {', '.join(names)}")
    typer.echo(
        f"valid: {len(config.directives)} directives, "
        f"{sum(len(d.rules) for d in config.directives)} rules, {len(config.assets)} assets"
    )
    found = findings(config)
    for finding in found:
        typer.echo(str(finding))
    warnings = sum(1 for f in found if not f.info)
    if warnings and strict:
        raise fail(f"{warnings} warning{'s' if warnings > 1 else ''} (--strict)")
