"""The HTTP endpoints of `serve`: GET /metrics (Prometheus), GET /healthz, and, with
`--enable-lifecycle`, POST /-/reload. Served by aiohttp, with bounds so that this port can
never stop correlation: at most `max_connections` open at once (more are closed at once, so
the port cannot use up the process's file descriptors), a whole request within
`request_seconds` of the connection (a slow client is cut off), one request a connection, and
aiohttp's limits on the request line and headers."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

from dsiem_sql import defaults
from dsiem_sql.adapters.http.metrics import Metrics

log = logging.getLogger(__name__)

Reload = Callable[[str], Awaitable[tuple[int, str]]]
LIFECYCLE_OFF = ("the reload endpoint is off: start serve with --enable-lifecycle to use it, "
                 "or reload with SIGHUP or dsiem-sql reload\n")


class HttpEndpoints:
    def __init__(
        self,
        metrics: Metrics,
        healthy: Callable[[], bool],
        reload: Reload | None = None,
        *,
        max_connections: int = defaults.HTTP_MAX_CONNECTIONS,
        request_seconds: float = defaults.HTTP_REQUEST_SECONDS,
    ):
        """`reload`: answers POST /-/reload with an HTTP status and a message; None: the
        endpoint is off (403)."""
        self.metrics = metrics
        self.healthy = healthy
        self.reload = reload
        self.max_connections = max_connections
        self.request_seconds = request_seconds
        self.open: dict[asyncio.Transport, asyncio.TimerHandle | None] = {}
        self.refused = 0  # connections closed at once: too many open
        self.cut_off = 0  # connections closed for not sending a whole request in time
        self._runner: web.AppRunner | None = None
        self._server: asyncio.Server | None = None

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._one_request])
        app.router.add_get("/metrics", self._metrics)
        app.router.add_get("/healthz", self._healthz)
        app.router.add_route("*", "/-/reload", self._reload)
        return app

    async def start(self, host: str, port: int) -> None:
        runner = self._runner = web.AppRunner(
            self.app(), access_log=None, handle_signals=False, keepalive_timeout=0,
            max_line_size=4096, max_field_size=4096, max_headers=64,
        )
        await runner.setup()
        loop = asyncio.get_running_loop()
        assert runner.server is not None
        handler_factory = runner.server
        self._server = await loop.create_server(
            lambda: _Guard(self, handler_factory()), host, port, backlog=128)
        log.info("metrics on http://%s:%d/metrics", host, port)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            for transport in list(self.open):
                transport.abort()
            self._server = None
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    # -- the bounds -----------------------------------------------------------------------

    def admit(self, transport: asyncio.Transport) -> bool:
        if len(self.open) >= self.max_connections:
            self.refused += 1
            return False
        self.open[transport] = asyncio.get_running_loop().call_later(
            self.request_seconds, self._cut_off, transport)
        return True

    def _cut_off(self, transport: asyncio.Transport) -> None:
        self.cut_off += 1
        self.open[transport] = None
        transport.abort()

    def left(self, transport: asyncio.Transport) -> None:
        timer = self.open.pop(transport, None)
        if timer is not None:
            timer.cancel()

    @web.middleware
    async def _one_request(self, request: web.Request, handler) -> web.StreamResponse:
        """The request arrived whole: the deadline is over; the connection closes after it."""
        timer = self.open.get(request.transport) if request.transport is not None else None
        if timer is not None:
            timer.cancel()
        response = await handler(request)
        response.force_close()
        return response

    # -- the endpoints --------------------------------------------------------------------

    async def _metrics(self, request: web.Request) -> web.Response:
        return web.Response(body=self.metrics.render(),
                            headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def _healthz(self, request: web.Request) -> web.Response:
        if self.healthy():
            return web.Response(text="ok\n")
        return web.Response(status=503, text="not ready\n")

    async def _reload(self, request: web.Request) -> web.Response:
        if request.method != "POST":
            return web.Response(status=405, text="use POST to reload\n")
        if self.reload is None:
            return web.Response(status=403, text=LIFECYCLE_OFF)
        code, message = await self.reload("POST /-/reload")
        return web.Response(status=code, text=f"{message}\n")


class _Guard(asyncio.Protocol):
    """In front of aiohttp's protocol for one connection: admits it, or closes it at once."""

    def __init__(self, endpoints: HttpEndpoints, inner: asyncio.Protocol):
        self.endpoints = endpoints
        self.inner = inner
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        if not self.endpoints.admit(transport):
            transport.abort()
            return
        self.transport = transport
        self.inner.connection_made(transport)

    def data_received(self, data: bytes) -> None:
        if self.transport is not None:
            self.inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self.inner.eof_received() if self.transport is not None else None

    def pause_writing(self) -> None:
        if self.transport is not None:
            self.inner.pause_writing()

    def resume_writing(self) -> None:
        if self.transport is not None:
            self.inner.resume_writing()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.transport is not None:
            self.endpoints.left(self.transport)
            self.inner.connection_lost(exc)
            self.transport = None
