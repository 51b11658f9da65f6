"""The options that several commands share, with their flags, `DSIEM_*` variables and help;
the defaults come from `dsiem_sql.defaults`. The engine settings default to None, which
stands for `EngineSettings`' default (`runtime/settings.py`), so that they are checked
together."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from dsiem_sql import defaults


class Intake(StrEnum):
    core = "core"
    jetstream = "jetstream"


class DbSync(StrEnum):
    normal = "normal"
    full = "full"


DEFAULT_INTAKE = Intake(defaults.INTAKE)
DEFAULT_DB_SYNC = DbSync(defaults.DB_SYNC)


class OutputFormat(StrEnum):
    table = "table"
    json = "json"
    csv = "csv"


class ExplainFormat(StrEnum):
    text = "text"
    json = "json"


ConfigsOpt = Annotated[
    Path,
    typer.Option("--configs", envvar="DSIEM_CONFIGS", help="Directory of Dsiem config files."),
]
DbOpt = Annotated[Path, typer.Option("--db", envvar="DSIEM_DB", help="SQLite database.")]

ReferenceModeOpt = Annotated[str | None, typer.Option(
    "--reference-mode", envvar="DSIEM_REFERENCE_MODE",
    help=f"value or rule (Go Dsiem) (default {defaults.REFERENCE_MODE})")]
MinAlarmLifetimeOpt = Annotated[int | None, typer.Option(
    "-l", "--min-alarm-lifetime", envvar="DSIEM_MINALARMLIFETIME",
    help=f"Minutes added to deadlines (default {defaults.MIN_ALARM_LIFETIME})")]
StatusOpt = Annotated[str | None, typer.Option(
    "-s", "--status", envvar="DSIEM_STATUS",
    help=f"Alarm statuses, the first for new alarms (default {defaults.STATUS})")]
TagsOpt = Annotated[str | None, typer.Option(
    "-t", "--tags", envvar="DSIEM_TAGS",
    help=f"Alarm tags, the first for new alarms (default {defaults.TAGS})")]
MedRiskMinOpt = Annotated[int | None, typer.Option(
    "--med_risk_min", "--med-risk-min", envvar="DSIEM_MEDRISKMIN",
    help=f"Lowest Medium risk, 2..8 (default {defaults.MED_RISK_MIN})")]
MedRiskMaxOpt = Annotated[int | None, typer.Option(
    "--med_risk_max", "--med-risk-max", envvar="DSIEM_MEDRISKMAX",
    help=f"Highest Medium risk, 3..9 (default {defaults.MED_RISK_MAX})")]
MatchProtocolOpt = Annotated[bool | None, typer.Option(
    "--match-protocol", envvar="DSIEM_MATCH_PROTOCOL", help="Match rule protocols exactly.")]
TaxonomyCustomDataOpt = Annotated[bool | None, typer.Option(
    "--taxonomy-custom-data", envvar="DSIEM_TAXONOMY_CUSTOM_DATA",
    help="Check custom data on TaxonomyRules.")]
CacheOpt = Annotated[int, typer.Option(
    "-c", "--cache", envvar="DSIEM_CACHEDURATION", min=0, max=255,
    help="Intel/vuln cache minutes; 0 = no cache.")]
IntelPrivateIpOpt = Annotated[bool, typer.Option(
    "--intel_private_ip", "--intel-private-ip", envvar="DSIEM_INTELPRIVATEIP",
    help="Also look up private addresses in the intel sources.")]
DbSyncOpt = Annotated[DbSync, typer.Option(
    "--db-sync", envvar="DSIEM_DB_SYNC",
    help="normal: survives a process crash; full: also a power loss (slower).")]
CommitIntervalOpt = Annotated[int, typer.Option(
    "--commit-interval", min=1, envvar="DSIEM_COMMIT_INTERVAL",
    help="Group commit every this many ms.")]
RetentionDaysOpt = Annotated[int, typer.Option(
    "--retention-days", min=0, envvar="DSIEM_RETENTION_DAYS",
    help="Delete ended backlogs this many days after they ended.")]
