"""Every use of another package's private API, in one place, with why it is needed.

nats-py (`NatsClient`):
* `Client._process_msg`, overridden: a message without headers of a `subscribe_fast`
  subscription goes straight from the parser to its handler, in arrival order, without the
  message object, queue and task hop per message that cost a third of nats-py's time.
* `Client._process_info`, overridden: it sees the server's INFO before nats-py answers with
  CONNECT (and the credentials), the only place to refuse plain text when TLS is wanted;
  nats-py itself upgrades only when the server says `tls_required`.
* `Client._sid`: the id the next subscription gets, so that its handler is registered before
  its first message can arrive; `Subscription._id`: to drop that handler again.
* `Client._server_info`: whether the server has JetStream enabled, to say so instead of
  retrying a JetStream call forever.
* `Client._current_server`: the server connected to, to name it in messages.

aiosqlite (`run_on_thread`):
* `Connection._execute(fn, *args)` and `Connection._conn`: run a whole transaction on the
  connection's thread as one job (one hop), with the `sqlite3` connection; the public calls
  are one hop per statement, each waiting for the event loop's next turn.

pyproject.toml bounds both packages from above; `problems()` says what changed if a new
release moved any of these (tests/unit/test_internals.py runs it).
"""

from __future__ import annotations

import inspect
import sqlite3
from collections.abc import Awaitable, Callable
from typing import Any, NamedTuple, TypeVar

import aiosqlite
import nats.errors
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

T = TypeVar("T")


class Delivery(NamedTuple):
    """A message taken straight from nats-py's parser: its payload and reply subject."""

    data: bytes
    reply: str


class TlsNotOffered(nats.errors.Error):
    def __init__(self, server: str, wanted_by: str):
        super().__init__(f"NATS server {server} does not offer TLS, but TLS is configured "
                         f"({wanted_by}); refusing to connect in plain text")


class NatsClient(Client):
    """A nats-py client with the fast route for messages without headers (`subscribe_fast`),
    and that never sends CONNECT in plain text when TLS is wanted (`tls_wanted_by`)."""

    def __init__(self, tls_wanted_by: str = ""):
        super().__init__()
        self.tls_wanted_by = tls_wanted_by
        self.fast: dict[int, Callable[[Delivery], None]] = {}  # subscription id -> handler

    async def subscribe_fast(
        self, subject: str, handler: Callable[[Delivery], None],
        cb: Callable[[Msg], Awaitable[None]] | None = None,
    ) -> Subscription:
        """Messages without headers go to `handler`, the others to `cb`."""
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

    async def _process_info(self, info: dict[str, Any], initial_connection: bool = False
                            ) -> None:
        # called with the server's INFO before nats-py answers CONNECT; the TLS upgrade that
        # follows reads the same dict
        if initial_connection and self.tls_wanted_by and not info.get("tls_required"):
            if not info.get("tls_available"):
                raise TlsNotOffered(self.server(), self.tls_wanted_by)
            info["tls_required"] = True  # TLS is optional there: upgrade
        await super()._process_info(info, initial_connection)

    def server(self) -> str:
        """The server being connected to, without credentials."""
        if self._current_server is None:
            return "?"
        uri = self._current_server.uri
        return f"{uri.scheme}://{uri.netloc.rpartition('@')[2]}"

    @property
    def has_jetstream(self) -> bool:
        """Whether the server's INFO says it has JetStream enabled."""
        return bool(self._server_info.get("jetstream"))


async def run_on_thread(db: aiosqlite.Connection, job: Callable[[sqlite3.Connection], T]) -> T:
    """Run `job(connection)` on the aiosqlite connection's thread, as one job."""
    return await db._execute(job, db._conn)


def problems() -> list[str]:
    """What of the private API above is not there as expected (empty when all is)."""
    found: list[str] = []

    def parameters(owner: type, name: str, wanted: list[str]) -> None:
        member = getattr(owner, name, None)
        if member is None:
            found.append(f"{owner.__module__}.{owner.__qualname__}.{name} is gone")
            return
        if isinstance(member, property):
            return
        got = list(inspect.signature(member).parameters)
        if got[:len(wanted)] != wanted:
            found.append(f"{owner.__module__}.{owner.__qualname__}.{name} takes {got}, "
                         f"not {wanted}")

    parameters(Client, "_process_msg", ["self", "sid", "subject", "reply", "data", "headers"])
    parameters(Client, "_process_info", ["self", "info", "initial_connection"])
    parameters(aiosqlite.Connection, "_execute", ["self", "fn"])
    parameters(aiosqlite.Connection, "_conn", [])
    client = Client()
    for name, kind in (("_sid", int), ("_server_info", dict)):
        if not isinstance(getattr(client, name, None), kind):
            found.append(f"nats.aio.client.Client().{name} is not a {kind.__name__}")
    if not hasattr(client, "_current_server"):
        found.append("nats.aio.client.Client()._current_server is gone")
    if getattr(Subscription(client, id=7), "_id", None) != 7:
        found.append("nats.aio.subscription.Subscription(id=7)._id is not 7")
    return found
