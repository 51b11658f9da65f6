"""The NATS connection of `serve`, with nats-py: retry forever with backoff at start, then
rely on the client's own reconnect. A connection lost for longer than `--nats-reconnect-window`
stops the service with an ERROR naming the last error (`watch`), whatever keeps it from coming
back (the server away, refused credentials, no file descriptor left). Configuration errors
(unreadable files, a server without TLS when TLS is configured, refused credentials) stop the
start instead: retrying cannot mend them.

nats-py tries again every second and reports every failure: those warnings go through a
`RepeatedLog`, so the same failure is logged once, then as a count every half minute."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import time

import nats

from dsiem_sql.adapters.nats.options import NatsConfigError, NatsOptions, redact, ssl_reason
from dsiem_sql.internals import NatsClient, TlsNotOffered
from dsiem_sql.runtime.aio import Stopped, unless_stopped
from dsiem_sql.runtime.logs import RepeatedLog

log = logging.getLogger(__name__)

EVENTS_SUBJECT = "dsiem_events"
OVERLOAD_SUBJECT = "dsiem_overload_signals"
RECONNECT_WAIT = 1  # nats-py's pause between two connection attempts to the server
REPEATS_WINDOW = 30.0  # seconds: a warning that repeats is logged as a count this often
# -ERR texts of nats-server for credentials it does not accept
REFUSED = ("authorization violation", "authentication expired", "authentication revoked")


class NatsUnreachable(Exception):
    """The connection to NATS did not come back within the reconnect window."""


class Connection:
    def __init__(self, options: NatsOptions, monotonic=time.monotonic):
        self.options = options
        self.monotonic = monotonic
        self.lost_since: float | None = None  # monotonic time the connection was lost
        self.last_error = ""
        self.client: NatsClient | None = None
        self.started = False  # the first connection is made
        self.closing = False
        self.repeated = RepeatedLog(log, REPEATS_WINDOW)

    async def start(self, stop: asyncio.Event) -> bool:
        """Connect, retrying until `stop` is set (then False).

        With `max_reconnect_attempts=-1` nats-py itself retries the first connection forever,
        so the attempt is raced against `stop`; the outer loop only handles a connect that
        gives up by raising. Raises NatsConfigError for an error that retrying cannot mend.
        """
        tls = self.options.tls_context()
        delay = 0.5
        where = redact(self.options.url)
        while not stop.is_set():
            self.client = NatsClient(self.options.tls_wanted_by())
            try:
                await unless_stopped(stop, self.client.connect(
                    servers=[self.options.url],
                    token=self.options.token,
                    user_credentials=self.options.creds,
                    tls=tls,
                    name="dsiem-sql",
                    connect_timeout=5,
                    allow_reconnect=True,
                    max_reconnect_attempts=-1,
                    reconnect_time_wait=RECONNECT_WAIT,
                    pending_size=64 * 1024 * 1024,
                    error_cb=self._on_error,
                    disconnected_cb=self._on_disconnected,
                    reconnected_cb=self._on_reconnected,
                ))
                break
            except Stopped:
                self.client = None  # cancelled half-way: closing it could fail or hang
                return False
            except NatsConfigError:
                self.client = None  # not closed: nats-py's close hangs after a failed handshake
                raise
            except (OSError, TimeoutError, nats.errors.Error) as exc:
                self.repeated.warning("cannot connect to %s: %s; retrying in %.1fs", where,
                                      exc or type(exc).__name__, delay)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), delay)
                delay = min(delay * 2, self.options.max_backoff)
        else:
            return False
        self.started = True
        log.info("connected to %s", where)
        return True

    @property
    def nats(self) -> NatsClient:
        assert self.client is not None, "start the connection first"
        return self.client

    async def watch(self) -> None:
        """Raise NatsUnreachable once the connection stayed lost for the reconnect window.

        Lost: since nats-py reported the disconnection, or since this watch first saw the
        client not connected (should a failure keep nats-py from reporting it)."""
        window = self.options.reconnect_window
        if not window:
            return
        while True:
            await asyncio.sleep(min(1.0, window / 4))
            if self.closing:
                continue
            if self.connected:
                self.lost_since = None
                continue
            if self.lost_since is None:
                self.lost_since = self.monotonic()
            lost = self.lost_since
            if self.monotonic() - lost >= window:
                raise NatsUnreachable(
                    f"NATS server {redact(self.options.url)} not reachable again within "
                    f"{window:g} s (--nats-reconnect-window); last error: "
                    f"{self.last_error or 'none reported'}")

    @property
    def connected(self) -> bool:
        """Connected now (not reconnecting)."""
        return self.client is not None and self.client.is_connected

    async def publish_overload(self, overloaded: bool) -> None:
        if self.client is not None and self.client.is_connected:
            await self.client.publish(OVERLOAD_SUBJECT, b"true" if overloaded else b"false")

    async def drain(self) -> None:
        """Stop receiving: unsubscribe after handing over what already arrived, and close."""
        self.closing = True
        if self.client is not None and self.client.is_connected:
            try:
                await self.client.drain()
            except Exception as exc:  # a broken connection must not block shutdown
                log.warning("draining the NATS connection failed: %s", exc)

    async def close(self) -> None:
        self.closing = True
        try:
            if self.client is not None and not self.client.is_closed:
                await self.client.close()
        finally:
            self.repeated.flush()  # the repeats not counted in the log yet

    def _config_problem(self, exc: Exception) -> str | None:
        """What is wrong with the configuration if `exc` says so, else None."""
        assert self.client is not None
        server = self.client.server()
        if isinstance(exc, TlsNotOffered):
            return str(exc)
        if isinstance(exc, ssl.SSLCertVerificationError):
            return (f"NATS server {server}: its TLS certificate failed verification: "
                    f"{exc.verify_message} (check --nats-tls-ca)")
        if isinstance(exc, ssl.SSLError) and not isinstance(
                exc, ssl.SSLEOFError | ssl.SSLZeroReturnError):  # those: the connection closed
            return f"NATS server {server}: TLS failed: {ssl_reason(exc)}"
        text = str(exc).removeprefix("nats: ").strip("'")
        if isinstance(exc, nats.errors.Error) and any(r in text.lower() for r in REFUSED):
            given = self.options.credentials()
            if given:
                return f"NATS server {server} refused the credentials ({given}): {text}"
            return (f"NATS server {server} wants credentials (--nats-token, --nats-creds or "
                    f"user:password@ in --msq): {text}")
        return None

    async def _on_error(self, exc: Exception) -> None:
        problem = self._config_problem(exc)
        self.last_error = problem or f"{exc or type(exc).__name__}"
        if not self.started:
            if problem:  # nats-py's connect does not catch this: the start stops
                raise NatsConfigError(problem)
            self.repeated.warning("cannot connect to %s: %s; retrying in %.1fs",
                                  redact(self.options.url), exc or type(exc).__name__,
                                  RECONNECT_WAIT)
        elif problem:
            self.repeated.error("%s; trying again", problem)
        else:
            self.repeated.warning("nats error: %s", exc or type(exc).__name__)

    async def _on_disconnected(self) -> None:
        if not self.closing:
            if self.lost_since is None:
                self.lost_since = self.monotonic()
            self.repeated.warning("disconnected from NATS, reconnecting")

    async def _on_reconnected(self) -> None:
        self.lost_since = None
        self.repeated.log(logging.INFO, "reconnected to NATS")
