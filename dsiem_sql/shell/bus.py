"""NATS connection with nats-py: retry forever with backoff at start, then rely on the
client's own reconnect, which is also set to never give up (§13 row 28). Configuration errors
(unreadable files, a server without TLS when TLS is configured, refused credentials) stop
the start instead: retrying cannot mend them."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, NamedTuple
from urllib.parse import urlparse

import nats
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

from dsiem_sql.shell.aio import Stopped, unless_stopped

log = logging.getLogger(__name__)

EVENTS_SUBJECT = "dsiem_events"
OVERLOAD_SUBJECT = "dsiem_overload_signals"
RECONNECT_WAIT = 1  # nats-py's pause between two connection attempts to the server
# -ERR texts of nats-server for credentials it does not accept
REFUSED = ("authorization violation", "authentication expired", "authentication revoked")


@dataclass(frozen=True)
class StreamOptions:
    """`serve --intake jetstream`: the stream to read events from, and the limits it is
    created with when it is missing (an existing stream is used as it is)."""

    stream: str = "DSIEM_EVENTS"
    max_age: float = 24 * 3600.0  # seconds; 0: no limit
    max_bytes: int = -1  # -1: no limit
    replicas: int = 1


class NatsConfigError(Exception):
    """The NATS options cannot work as given; the message names the option or the server."""


class TlsNotOffered(nats.errors.Error):
    def __init__(self, server: str, wanted_by: str):
        super().__init__(f"NATS server {server} does not offer TLS, but TLS is configured "
                         f"({wanted_by}); refusing to connect in plain text")


@dataclass(frozen=True)
class NatsOptions:
    url: str = "nats://dsiem-nats:4222"  # may carry user:password@ or token@
    token: str | None = None
    creds: str | None = None
    tls_ca: str | None = None
    tls_cert: str | None = None
    tls_key: str | None = None
    max_backoff: float = 10.0

    def check(self) -> None:
        """Raise NatsConfigError for a malformed URL or an unusable TLS or creds file."""
        _check_url(self.url)
        self.tls_context()
        if self.creds:
            _check_creds(self.creds)

    def tls_wanted_by(self) -> str:
        """Which options ask for TLS, comma-separated; empty if none does."""
        wanted = [option for option, value in (
            ("--nats-tls-ca", self.tls_ca), ("--nats-tls-cert", self.tls_cert),
            ("--nats-tls-key", self.tls_key),
            ("tls:// in --msq", self.url.lower().startswith("tls://"))) if value]
        return ", ".join(wanted)

    def credentials(self) -> str:
        given = [option for option, value in (
            ("--nats-token", self.token), (f"--nats-creds {self.creds}", self.creds),
            ("user:password@ or token@ in --msq", "@" in self.url.partition("://")[2]))
            if value]
        return ", ".join(given)

    def tls_context(self) -> ssl.SSLContext | None:
        if self.tls_key and not self.tls_cert:
            raise NatsConfigError("--nats-tls-key needs --nats-tls-cert")
        if not (self.tls_ca or self.tls_cert):
            return None
        if self.tls_ca:
            _read("--nats-tls-ca", self.tls_ca)
        try:
            context = ssl.create_default_context(cafile=self.tls_ca)
        except ssl.SSLError as exc:
            raise NatsConfigError(f"--nats-tls-ca {self.tls_ca}: no PEM certificate in it "
                                  f"({_ssl_reason(exc)})") from None
        if self.tls_cert:
            _load_cert_chain(context, self.tls_cert, self.tls_key)
        return context


def _read(option: str, path: str) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as exc:
        raise NatsConfigError(f"{option} {path}: {exc.strerror}") from None


def _ssl_reason(exc: ssl.SSLError) -> str:
    # "[X509: KEY_VALUES_MISMATCH] key values mismatch (_ssl.c:3926)" -> "key values mismatch"
    text = str(exc.args[1] if len(exc.args) > 1 else exc)
    return re.sub(r"^\[[^]]*\]\s*|\s*\(_ssl\.c:\d+\)$", "", text) or text


class _EncryptedKey(Exception):
    pass


def _load_cert_chain(context: ssl.SSLContext, cert: str, key: str | None) -> None:
    # OpenSSL says only "PEM lib" for a file that holds no certificate or no key, so the
    # files are looked at first, to name the one at fault.
    cert_pem = _read("--nats-tls-cert", cert)
    try:
        ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT).load_verify_locations(
            cadata=cert_pem.decode("ascii", "replace"))
    except ssl.SSLError:
        raise NatsConfigError(f"--nats-tls-cert {cert}: no PEM certificate in it") from None
    if key is None:
        if b"PRIVATE KEY-----" not in cert_pem:
            raise NatsConfigError(f"--nats-tls-cert {cert}: no private key in it; give the "
                                  f"key file with --nats-tls-key")
    elif b"PRIVATE KEY-----" not in _read("--nats-tls-key", key):
        raise NatsConfigError(f"--nats-tls-key {key}: no PEM private key in it")

    def no_password() -> str:
        raise _EncryptedKey

    try:
        context.load_cert_chain(cert, key, password=no_password)
    except _EncryptedKey:
        raise NatsConfigError(f"{'--nats-tls-key ' + key if key else '--nats-tls-cert ' + cert}"
                              f": the private key is encrypted; give an unencrypted one"
                              ) from None
    except ssl.SSLError as exc:
        files = f"--nats-tls-cert {cert}" + (f" with --nats-tls-key {key}" if key else "")
        raise NatsConfigError(f"{files}: {_ssl_reason(exc)}") from None


def _check_creds(path: str) -> None:
    """The blocks nats-py reads: the user JWT and the user nkey seed, each on the line after
    its BEGIN line (nats-py loops forever on a file without the JWT block)."""
    import nkeys

    lines = _read("--nats-creds", path).decode("utf-8", "replace").splitlines()

    def after(marker: str) -> str:
        for i, line in enumerate(lines[:-1]):
            if marker in line and lines[i + 1].strip():
                return lines[i + 1].strip()
        raise NatsConfigError(f"--nats-creds {path}: no '-----{marker}-----' block; is it "
                              f"a NATS .creds file?")

    after("BEGIN NATS USER JWT")
    seed = after("BEGIN USER NKEY SEED")
    try:
        nkeys.from_seed(bytearray(seed.encode()))
    except (nkeys.NkeysError, ValueError):
        raise NatsConfigError(f"--nats-creds {path}: the user nkey seed is not valid"
                              ) from None


def _check_url(url: str) -> None:
    """The URL forms nats-py takes: scheme://host:port or host[:port]; scheme nats or tls
    (websockets would need aiohttp)."""
    where = f"--msq {_redact(url)}"
    uri = urlparse(url if "://" in url else f"nats://{url}")
    if uri.scheme not in ("nats", "tls"):
        raise NatsConfigError(f"{where}: the scheme must be nats:// or tls://")
    if not uri.hostname:
        raise NatsConfigError(f"{where}: no host name")
    try:
        uri.port  # noqa: B018 - raises for a port that is not a number in 0..65535
    except ValueError as exc:
        raise NatsConfigError(f"{where}: {exc}") from None


def _redact(url: str) -> str:
    scheme, sep, rest = url.partition("://")
    if "@" in rest:
        rest = "***@" + rest.split("@", 1)[1]
    return f"{scheme}{sep}{rest}"


class Delivery(NamedTuple):
    """A message taken straight from nats-py's parser: its payload and reply subject."""

    data: bytes
    reply: str


class NatsClient(Client):
    """A nats-py client that never sends CONNECT (with the credentials) in plain text when
    TLS is wanted: nats-py itself upgrades only when the server's INFO says tls_required.

    The messages without headers of a `subscribe_fast` subscription go straight to its
    handler, in the order they arrive: no message object, queue and task hop per message,
    which cost a third of nats-py's time. The others take nats-py's usual way, to `cb`."""

    def __init__(self, tls_wanted_by: str):
        super().__init__()
        self.tls_wanted_by = tls_wanted_by
        self.fast: dict[int, Callable[[Delivery], None]] = {}  # subscription id -> handler

    async def subscribe_fast(
        self, subject: str, handler: Callable[[Delivery], None],
        cb: Callable[[Msg], Awaitable[None]] | None = None,
    ) -> Subscription:
        sid = self._sid + 1  # the id `subscribe` is about to give it
        self.fast[sid] = handler
        sub = await self.subscribe(subject, cb=cb, pending_msgs_limit=-1,
                                   pending_bytes_limit=-1)
        assert sub._id == sid
        return sub

    async def unsubscribe_fast(self, sub: Subscription) -> None:
        self.fast.pop(sub._id, None)
        await sub.unsubscribe()

    async def _process_msg(self, sid: int, subject: bytes, reply: bytes, data: bytes,
                           headers: bytes) -> None:
        handler = self.fast.get(sid)
        if handler is None or headers:
            return await super()._process_msg(sid, subject, reply, data, headers)
        self.stats["in_msgs"] += 1
        self.stats["in_bytes"] += len(data)
        handler(Delivery(data, reply.decode()))

    def server(self) -> str:
        """The server being connected to, without credentials."""
        if self._current_server is None:
            return "?"
        uri = self._current_server.uri
        return f"{uri.scheme}://{uri.netloc.rpartition('@')[2]}"

    # nats-py calls this with the server's INFO before it answers CONNECT; the TLS upgrade that
    # follows reads the same dict.
    async def _process_info(self, info: dict[str, Any], initial_connection: bool = False
                            ) -> None:
        if initial_connection and self.tls_wanted_by and not info.get("tls_required"):
            if not info.get("tls_available"):
                raise TlsNotOffered(self.server(), self.tls_wanted_by)
            info["tls_required"] = True  # TLS is optional there: upgrade
        await super()._process_info(info, initial_connection)


class Bus:
    def __init__(self, options: NatsOptions, on_event: Callable[[bytes], None] | None):
        """`on_event`: called with each event of the core subscription to `dsiem_events`;
        None for no subscription (the JetStream intake reads the events itself)."""
        self.options = options
        self.on_event = on_event
        self.client: NatsClient | None = None
        self.started = False  # the first connection is made
        self.closing = False

    async def start(self, stop: asyncio.Event) -> bool:
        """Connect (retrying until `stop` is set) and subscribe.

        With `max_reconnect_attempts=-1` nats-py itself retries the first connection forever,
        so the attempt is raced against `stop`; the outer loop only handles a connect that
        gives up by raising. Raises NatsConfigError for an error that retrying cannot mend.
        """
        tls = self.options.tls_context()
        delay = 0.5
        where = _redact(self.options.url)
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
                log.warning("cannot connect to %s: %s; retrying in %.1fs", where, exc or
                            type(exc).__name__, delay)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), delay)
                delay = min(delay * 2, self.options.max_backoff)
        else:
            return False
        self.started = True
        if self.on_event is None:
            log.info("connected to %s", where)
            return True
        on_event = self.on_event
        await self.client.subscribe_fast(EVENTS_SUBJECT, lambda d: on_event(d.data))
        # a round trip, so the server has the subscription before the service says it is ready
        with contextlib.suppress(nats.errors.Error, TimeoutError):
            await self.client.flush(5)
        log.info("connected to %s, subscribed to %s", where, EVENTS_SUBJECT)
        return True

    @property
    def connected(self) -> bool:
        """Connected now (not reconnecting)."""
        return self.client is not None and self.client.is_connected

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
            return f"NATS server {server}: TLS failed: {_ssl_reason(exc)}"
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
        if not self.started:
            if problem:  # nats-py's connect does not catch this: the start stops
                raise NatsConfigError(problem)
            log.warning("cannot connect to %s: %s; retrying in %.1fs", _redact(self.options.url),
                        exc or type(exc).__name__, RECONNECT_WAIT)
        elif problem:
            log.error("%s; trying again", problem)
        else:
            log.warning("nats error: %s", exc)

    async def _on_disconnected(self) -> None:
        if not self.closing:
            log.warning("disconnected from NATS, reconnecting")

    async def _on_reconnected(self) -> None:
        log.info("reconnected to NATS")
