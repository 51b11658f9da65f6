"""`dsiem-sql validate`."""

from __future__ import annotations

import typer

from dsiem_sql.cli.app import app, load
from dsiem_sql.cli.options import ConfigsOpt


@app.command()
def validate(configs: ConfigsOpt) -> None:
    """Load and validate a config directory; print what it holds."""
    config = load(configs)
    for f in config.files:
        if f.kind == "directives":
            extra = f", {f.disabled} disabled" if f.disabled else ""
            typer.echo(f"{f.path}: {f.directives} directives, {f.rules} rules{extra}")
        elif f.kind == "assets":
            typer.echo(f"{f.path}: {f.assets} assets")
        else:
            typer.echo(f"{f.path}: {f.sources} {f.kind} sources")
    typer.echo(
        f"valid: {len(config.directives)} directives, "
        f"{sum(len(d.rules) for d in config.directives)} rules, {len(config.assets)} assets"
    )
