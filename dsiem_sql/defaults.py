"""Every default of the service and the commands, in one place: the command line shows and
uses these, and so do the option classes (`ServeOptions`, `NatsOptions`, `ReplayRun`, ...)
when a library caller leaves a field out."""

from __future__ import annotations

from pathlib import Path
from typing import Final

MB = 2**20

# where serve finds and keeps things
NODE_CONFIGS = Path("configs")
DB = Path("dsiem.db")
LOGS = Path("logs")

# the frontend's config download
FRONTEND_TIMEOUT = 60  # seconds for the whole download
MAX_CONFIG_SIZE_MB = 64  # one downloaded file

# NATS
NATS_URL = "nats://dsiem-nats:4222"
NATS_MAX_BACKOFF = 10.0  # seconds between two attempts of the first connection, at most
NATS_RECONNECT_WINDOW = 120  # seconds serve waits for a lost NATS connection to come back

# JetStream (`--intake jetstream`)
INTAKE = "core"
JS_STREAM = "DSIEM_EVENTS"
JS_MAX_AGE_HOURS = 24.0
JS_MAX_BYTES = "0"  # no limit
JS_REPLICAS = 1

# the intake queue and the overload signal (Dsiem's own defaults)
MAX_QUEUE = 25000
MAX_DELAY = 180  # seconds
HOLD_DURATION = 10  # seconds
MAX_EPS = 1000

# committing and keeping state
COMMIT_INTERVAL_MS = 100
COMMIT_CHANGES = 2000
DB_SYNC = "normal"
RETENTION_DAYS = 7
DB_RETRY_WINDOW = 60  # seconds

# enrichment
CACHE_MINUTES = 10

# the engine settings (Dsiem's own defaults; `EngineSettings` checks them together)
REFERENCE_MODE: Final = "value"  # or "rule"
MIN_ALARM_LIFETIME = 0  # minutes
STATUS = "Open,In-Progress,Closed"
TAGS = "Identified Threat,False Positive,Valid Threat,Security Incident"
MED_RISK_MIN = 3
MED_RISK_MAX = 6

# the HTTP endpoints (metrics, health, reload)
METRICS_HOST = "0.0.0.0"
HTTP_MAX_CONNECTIONS = 64  # open at once; more are closed at once
HTTP_REQUEST_SECONDS = 5.0  # for a whole request, from the connection on

# the worker's ticks
EXPIRY_INTERVAL = 10.0  # seconds between two expiry sweeps on the wall clock
WATCHDOG_INTERVAL = 10.0  # seconds between two watchdog reports

# read-only queries (`dsiem-sql sql`)
QUERY_TIMEOUT = 30.0

# `dsiem-sql reload`
RELOAD_TIMEOUT = 120.0

# `dsiem-sql console` (docs/console.md)
CONSOLE_HOST = "127.0.0.1"  # this machine only: docs/console.md says how to expose it
CONSOLE_PORT = 8001
CONSOLE_TIME_LIMIT = 1.0  # seconds: a query that runs longer is stopped
CONSOLE_MAX_ROWS = 1000  # the most rows a query or page returns
CONSOLE_REFRESH_SECONDS = 5.0  # how often live pages look for changes
