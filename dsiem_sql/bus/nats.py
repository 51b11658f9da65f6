"""NATS connection with nats-py: retry forever with backoff at start, then rely on the
client's own reconnect, which is also set to never give up (§13 row 28)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import nats
from nats.aio.client import Client
from nats.aio.msg import Msg

log = logging.getLogger(__name__)

EVENTS_SUBJECT = "dsiem_events"
OVERLOAD_SUBJECT = "dsiem_overload_signals"
RECONNECT_WAIT = 1.0  # nats-py's pause between two connection attempts to the server


@dataclass(frozen=True)
class NatsOptions:
    url: str = "nats://dsiem-nats:4222"  # may carry user:password@ or token@
    token: str | None = None
    creds: str | None = None
    tls_ca: str | None = None
    tls_cert: str | None = None
    tls_key: str | None = None
    max_backoff: float = 10.0

    def tls_context(self) -> ssl.SSLContext | None:
        if not (self.tls_ca or self.tls_cert):
            return None
        context = ssl.create_default_context(cafile=self.tls_ca)
        if self.tls_cert:
            context.load_cert_chain(self.tls_cert, self.tls_key)
        return context


def _redact(url: str) -> str:
    scheme, sep, rest = url.partition("://")
    if "@" in rest:
        rest = "***@" + rest.split("@", 1)[1]
    return f"{scheme}{sep}{rest}"


class Bus:
    def __init__(self, options: NatsOptions, on_event: Callable[[bytes], None]):
        self.options = options
        self.on_event = on_event
        self.client: Client | None = None
        self.closing = False

    async def start(self, stop: asyncio.Event) -> bool:
        """Connect (retrying until `stop` is set) and subscribe.

        With `max_reconnect_attempts=-1` nats-py itself retries the first connection forever,
        so the attempt is raced against `stop`; the outer loop only handles a connect that
        gives up by raising.
        """
        delay = 0.5
        where = _redact(self.options.url)
        while not stop.is_set():
            try:
                self.client = await _unless_stopped(stop, nats.connect(
                    servers=[self.options.url],
                    token=self.options.token,
                    user_credentials=self.options.creds,
                    tls=self.options.tls_context(),
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
            except (OSError, TimeoutError, nats.errors.Error) as exc:
                log.warning("cannot connect to %s: %s; retrying in %.1fs", where, exc or
                            type(exc).__name__, delay)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), delay)
                delay = min(delay * 2, self.options.max_backoff)
        if self.client is None:
            return False
        await self.client.subscribe(
            EVENTS_SUBJECT, cb=self._on_msg, pending_msgs_limit=-1, pending_bytes_limit=-1
        )
        # a round trip, so the server has the subscription before the service says it is ready
        with contextlib.suppress(nats.errors.Error, TimeoutError):
            await self.client.flush(5)
        log.info("connected to %s, subscribed to %s", where, EVENTS_SUBJECT)
        return True

    @property
    def connected(self) -> bool:
        return self.client is not None and self.client.is_connected

    async def _on_msg(self, msg: Msg) -> None:
        self.on_event(msg.data)

    async def publish_overload(self, overloaded: bool) -> None:
        if self.client is not None and self.client.is_connected:
            await self.client.publish(OVERLOAD_SUBJECT, b"true" if overloaded else b"false")

    async def stop_intake(self) -> None:
        """Stop receiving events: unsubscribe after handing over what already arrived."""
        self.closing = True
        if self.client is not None and self.client.is_connected:
            try:
                await self.client.drain()
            except Exception as exc:  # a broken connection must not block shutdown
                log.warning("draining the NATS connection failed: %s", exc)

    async def close(self) -> None:
        self.closing = True
        if self.client is not None and not self.client.is_closed:
            await self.client.close()

    async def _on_error(self, exc: Exception) -> None:
        if self.client is None:  # still making the first connection
            log.warning("cannot connect to %s: %s; retrying in %.1fs", _redact(self.options.url),
                        exc or type(exc).__name__, RECONNECT_WAIT)
        else:
            log.warning("nats error: %s", exc)

    async def _on_disconnected(self) -> None:
        if not self.closing:
            log.warning("disconnected from NATS, reconnecting")

    async def _on_reconnected(self) -> None:
        log.info("reconnected to NATS")


async def _unless_stopped(stop: asyncio.Event, connecting: Awaitable[Client]) -> Client | None:
    """The connected client, or None if `stop` is set first (the attempt is then cancelled)."""
    task = asyncio.ensure_future(connecting)
    stopped = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({task, stopped}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopped.cancel()
        if not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
    return None if task.cancelled() else task.result()
