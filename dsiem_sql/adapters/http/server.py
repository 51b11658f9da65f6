"""The HTTP endpoints of `serve`: GET /metrics (Prometheus), GET /healthz, and, with
`--enable-lifecycle`, POST /-/reload. Served by aiohttp, behind bounds such that this port can
never stop correlation, nor take the file descriptors that the NATS connection and the
database need (issue 18: 1,100 connections that each sent a header line every 3 s used to take
every descriptor of a serve at the usual limit of 1,024; NATS could not reconnect).

* **At most `max_connections` open at once.** serve accepts the connections itself (one
  `sock_accept` at a time, then aiohttp's protocol on the accepted socket, through
  `connect_accepted_socket`), so it decides before a descriptor is kept, not after:

  - below the limit, a connection is admitted;
  - at the limit, a connection whose whole request is in already (looked at with
    `MSG_PEEK`, nothing read) takes the place of the open connection that has waited
    longest for its own request (evicted), and any other is reset at once, without a
    protocol, a transport or a timer being made for it;
  - when every open connection is busy with a request (none waiting for one), serve stops
    accepting until one closes: the kernel's backlog (`BACKLOG`) holds the next connections
    without using a descriptor of serve's.

  Why not only stop accepting at the limit: a few connections that never finish their
  request would then close the port for the whole deadline, and a health probe would queue
  behind all the attack's connections in the backlog (with a full backlog, the kernel
  drops its SYN, and the client retries a second or more later): /healthz would fail for as
  long as the attack lasts. Why not accept and close everything over the limit (what
  aiohttp or `create_server` would do): the probe would be closed as surely as the attack,
  and each refused connection would cost a transport, a protocol and a descriptor for a
  turn of the loop (hundreds at once). Accepting, looking and resetting costs one accept
  and a close, and lets a probe in; a client that sends its request at once (Prometheus,
  Docker's and Kubernetes' probes, curl) is answered even under attack.

  On Linux, `TCP_DEFER_ACCEPT` makes the kernel hand a connection over only once its first
  data has come (or after `DEFER_ACCEPT` seconds): a probe's request is in when it is
  accepted, and connections that send nothing cost serve nothing.
* **A whole request within `request_seconds` of the connection**, however it trickles in
  (there is no per-line timeout to keep alive by sending a line now and then); else the
  connection is closed. Once the request is in, the deadline stops while it is handled (a
  reload can take long, it is not cut off), and a new one starts for sending the answer, so
  that a client that does not read cannot keep its connection either.
* **One request a connection** (`Connection: close`); a request body is not read.
* **aiohttp's limits on the request line and the headers** (`MAX_LINE`, `MAX_HEADERS`),
  enforced as the bytes come (a line without its end is not buffered past the limit): more
  is answered with 400 and the connection closed.
* **Logs that cannot flood**: a client's bad request is a WARNING without traceback, and the
  same one again is counted (`RepeatedLog`); so are failed accepts (no descriptor left).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import socket
import struct
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from prometheus_client import CONTENT_TYPE_LATEST

from dsiem_sql import defaults
from dsiem_sql.adapters.http.metrics import Metrics
from dsiem_sql.logtext import shown
from dsiem_sql.runtime.logs import RepeatedLog

log = logging.getLogger(__name__)

Reload = Callable[[str], Awaitable[tuple[int, str]]]
LIFECYCLE_OFF = ("the reload endpoint is off: start serve with --enable-lifecycle to use it, "
                 "or reload with SIGHUP or dsiem-sql reload\n")
BACKLOG = 128  # connections the kernel holds while serve does not accept
MAX_LINE = 4096  # bytes of the request line, and of one header
MAX_HEADERS = 64
PEEK = 2 * MAX_LINE  # bytes looked at for the end of the headers in a new connection
DEFER_ACCEPT = 2  # seconds the kernel keeps a new connection that has sent nothing yet
ACCEPT_RETRY = 1.0  # seconds to wait after accept failed for want of descriptors or memory
OUT_OF_RESOURCES = (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM)


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
        self.open: dict[_Connection, None] = {}  # the oldest first
        self.refused = 0  # closed at once: no room, and no whole request in yet
        self.evicted = 0  # closed to make room for a whole request
        self.cut_off = 0  # closed for not sending a whole request (or reading the answer) in time
        self.repeated = RepeatedLog(log, 60.0)
        self._freed = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self._sockets: list[socket.socket] = []
        self._accepting: list[asyncio.Task[None]] = []

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._one_request])
        app.router.add_get("/metrics", self._metrics)
        app.router.add_get("/healthz", self._healthz)
        app.router.add_route("*", "/-/reload", self._reload)
        return app

    async def start(self, host: str, port: int) -> None:
        runner = self._runner = web.AppRunner(
            self.app(), access_log=None, handle_signals=False, shutdown_timeout=1.0,
            keepalive_timeout=0, lingering_time=0, max_line_size=MAX_LINE,
            max_field_size=MAX_LINE, max_headers=MAX_HEADERS, logger=_ClientErrors(self.repeated),
        )
        await runner.setup()
        try:
            self._sockets = await _listen(host, port, BACKLOG)
        except BaseException:
            await runner.cleanup()
            self._runner = None
            raise
        self._accepting = [asyncio.create_task(self._accept(sock), name="http-accept")
                           for sock in self._sockets]
        log.info("metrics on http://%s:%d/metrics", host, port)

    async def watch(self) -> None:
        """Raise what ended an accept loop (a bug: the port would take no connection)."""
        await asyncio.gather(*self._accepting)

    async def stop(self) -> None:
        for task in self._accepting:
            task.cancel()
        for task in self._accepting:
            with contextlib.suppress(asyncio.CancelledError, Exception):  # `watch` raised it
                await task
        self._accepting = []
        for sock in self._sockets:
            sock.close()
        self._sockets = []
        for connection in list(self.open):
            connection.abort()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        self.repeated.flush()

    # -- the bounds -----------------------------------------------------------------------

    async def _accept(self, sock: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        assert self._runner is not None and self._runner.server is not None
        make_handler = self._runner.server
        while True:
            await self._room()
            try:
                accepted, _ = await loop.sock_accept(sock)
            except OSError as exc:
                self.repeated.warning("metrics port: cannot accept a connection: %s", exc)
                if exc.errno in OUT_OF_RESOURCES:
                    await asyncio.sleep(ACCEPT_RETRY)
                continue
            if not self._make_room(accepted):
                self.refused += 1
                _reset(accepted)
                await asyncio.sleep(0)  # a flood of connections is not to hold up the loop
                continue
            connection = _Connection(self, make_handler())
            self.open[connection] = None
            try:
                await loop.connect_accepted_socket(connection.itself, accepted)
            except Exception as exc:  # e.g. the client is gone already
                self._left(connection)
                accepted.close()
                self.repeated.warning("metrics port: cannot take a connection: %s", exc)

    async def _room(self) -> None:
        """Until there is room for one more connection, or one waiting for its request
        that a whole request could evict."""
        while len(self.open) >= self.max_connections and self._oldest_waiting() is None:
            self._freed.clear()
            await self._freed.wait()

    def _make_room(self, accepted: socket.socket) -> bool:
        """Whether to admit `accepted`: there is room, or its whole request is in already
        and takes the place of the connection that has waited longest for its own."""
        if len(self.open) < self.max_connections:
            return True
        oldest = self._oldest_waiting()
        if oldest is None or not _whole_request(accepted):
            return False
        self.evicted += 1
        self._left(oldest)
        oldest.abort()
        return True

    def _oldest_waiting(self) -> _Connection | None:
        """The open connection that has waited longest for its request."""
        return next((c for c in self.open if c.waiting and c.transport is not None), None)

    def _left(self, connection: _Connection) -> None:
        if connection in self.open:
            del self.open[connection]
            connection.stop_deadline()
            self._freed.set()

    def _find(self, request: web.BaseRequest) -> _Connection | None:
        transport = request.transport
        return next((c for c in self.open if c.transport is transport), None)

    @web.middleware
    async def _one_request(self, request: web.Request, handler) -> web.StreamResponse:
        """The request is in: its deadline stops while it is handled, a new one starts for
        the answer; the connection closes after it."""
        connection = self._find(request)
        if connection is not None:
            connection.arrived()
        request.protocol.close()  # no request after this one
        try:
            response = await handler(request)
        except web.HTTPException as exc:
            exc.force_close()
            raise
        finally:
            if connection is not None:
                connection.answering()
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


class _Connection(asyncio.Protocol):
    """One admitted connection, in front of aiohttp's protocol for it (a plain
    `asyncio.Protocol`, which gets every call as is): keeps its deadline, and gives its room
    back when it closes."""

    def __init__(self, endpoints: HttpEndpoints, inner: asyncio.Protocol):
        self.endpoints = endpoints
        self.inner = inner
        self.transport: asyncio.Transport | None = None
        self.opened = asyncio.get_running_loop().time()
        self.waiting = True  # for its whole request
        self.deadline: asyncio.TimerHandle | None = None

    def itself(self) -> _Connection:
        """The protocol factory of `connect_accepted_socket`: this made protocol."""
        return self

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.deadline = asyncio.get_running_loop().call_later(
            self.endpoints.request_seconds, self._cut_off)
        self.inner.connection_made(transport)

    def data_received(self, data: bytes) -> None:
        self.inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self.inner.eof_received()

    def pause_writing(self) -> None:
        self.inner.pause_writing()

    def resume_writing(self) -> None:
        self.inner.resume_writing()

    def connection_lost(self, exc: Exception | None) -> None:
        self.endpoints._left(self)
        self.inner.connection_lost(exc)

    def arrived(self) -> None:
        self.waiting = False
        self.stop_deadline()

    def answering(self) -> None:
        self.stop_deadline()
        if self.transport is not None and not self.transport.is_closing():
            self.deadline = asyncio.get_running_loop().call_later(
                self.endpoints.request_seconds, self._cut_off)

    def stop_deadline(self) -> None:
        if self.deadline is not None:
            self.deadline.cancel()
            self.deadline = None

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()

    def _cut_off(self) -> None:
        self.deadline = None
        self.endpoints.cut_off += 1
        self.abort()


class _ClientErrors(logging.LoggerAdapter):
    """aiohttp's server logger: a request that a client got wrong (400, 431, ...) is a
    WARNING without traceback, anything else an ERROR with one; both through `repeated`, so
    the same error again is counted, not logged."""

    def __init__(self, repeated: RepeatedLog):
        super().__init__(logging.getLogger("aiohttp.server"), {})
        self.repeated = repeated

    def log(self, level: int, msg: object, *args: object, exc_info: Any = None,
            **kwargs: Any) -> None:
        if level < logging.WARNING:
            if self.logger.isEnabledFor(level):
                self.logger.log(level, msg, *args, exc_info=exc_info, **kwargs)
            return
        exc = exc_info if isinstance(exc_info, BaseException) else None
        if isinstance(exc, HttpProcessingError):
            self.repeated.warning("metrics port: bad request: %s",
                                  shown(f"{exc.code}, {exc.message}" if exc.message else exc.code))
        else:
            text = str(msg) % args if args else str(msg)
            self.repeated.log(level, "metrics port: %s%s", text,
                              f": {type(exc).__name__}: {exc}" if exc else "",
                              exc_info=exc_info)


def _whole_request(sock: socket.socket) -> bool:
    """Whether the headers of a request have all come in on `sock` (nothing is read)."""
    try:
        data = sock.recv(PEEK, socket.MSG_PEEK)
    except OSError:  # nothing yet (BlockingIOError), or reset
        return False
    return b"\r\n\r\n" in data or b"\n\n" in data


def _reset(sock: socket.socket) -> None:
    """Close `sock` with a reset: nothing of it stays behind (TIME_WAIT) on this side."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


async def _listen(host: str, port: int, backlog: int) -> list[socket.socket]:
    """Listening sockets on every address of `host`, as `loop.create_server` makes them."""
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host or None, port, type=socket.SOCK_STREAM,
                                   flags=socket.AI_PASSIVE)
    sockets: list[socket.socket] = []
    try:
        for family, kind, proto, _, address in dict.fromkeys(infos):
            sock = socket.socket(family, kind, proto)
            sockets.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            try:
                sock.bind(address)
            except OSError as exc:
                raise OSError(exc.errno, f"error while attempting to bind on address "
                                         f"{address!r}: {str(exc.strerror).lower()}") from None
            if hasattr(socket, "TCP_DEFER_ACCEPT"):  # Linux: accept once data has come
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_DEFER_ACCEPT, DEFER_ACCEPT)
            sock.listen(backlog)
            sock.setblocking(False)
    except BaseException:
        for sock in sockets:
            sock.close()
        raise
    return sockets
