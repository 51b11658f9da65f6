"""`dsiem-sql import-backlogs`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from dsiem_sql.cli.app import app, engine_settings, fail, load
from dsiem_sql.cli.options import ConfigsOpt, DbOpt, StatusOpt, TagsOpt
from dsiem_sql.store.errors import StoreError


@app.command("import-backlogs")
def import_backlogs_command(
    ctx: typer.Context,
    paths: Annotated[list[Path], typer.Argument(
        help="Saved backlog files (<directive_id>.json) or directories of them.")],
    configs: ConfigsOpt,
    db: DbOpt,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Check and report; write nothing.")
                       ] = False,
    remove: Annotated[bool, typer.Option("--remove", help="Delete fully imported files.")
                      ] = False,
    status: StatusOpt = None,
    tags: TagsOpt = None,
) -> None:
    """Import legacy /logs/backlogs/*.json snapshots (of dsiem-backend and dsiem-rs) as live
    backlogs."""
    import asyncio

    from rich.console import Console
    from rich.progress import Progress

    from dsiem_sql.cli.tables import print_import
    from dsiem_sql.engine import Engine
    from dsiem_sql.legacy.importer import backlog_files, import_into

    settings = engine_settings(ctx)
    config = load(configs)
    files = backlog_files(paths)
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        raise fail(f"no such file or directory: {', '.join(missing)}")
    engine = Engine(config, settings.engine_options())
    with Progress(console=Console(stderr=True), transient=True) as progress:
        task = progress.add_task("importing", total=len(files))
        try:
            results = asyncio.run(import_into(db, files, engine, dry_run=dry_run, remove=remove,
                                              on_file=lambda _: progress.advance(task)))
        except StoreError as exc:
            raise fail(str(exc)) from None
    print_import(results, dry_run)
    if any(r.error for r in results):
        raise typer.Exit(1)
