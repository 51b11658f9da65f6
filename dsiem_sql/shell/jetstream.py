"""`serve --intake jetstream`: the events from a JetStream stream, through a durable pull
consumer per node, with exactly-once effects.

The Dsiem frontend publishes on `dsiem_events` with plain core NATS; a stream whose subjects
capture that subject stores the events, and each node reads them all through its own
consumer `dsiem-sql-<node>`.

Exactly once: each commit stores the stream sequence of the last event whose effects it holds
in `input_progress` (source `jetstream:<stream>`, the sequence in `line`), in the same
transaction as those effects. Messages are acknowledged only once that commit is written, with
one acknowledgement per commit (ack policy `all`). A message that comes again with a sequence
up to the one reached is skipped. This needs the messages in stream order: the consumer is
recreated at the next sequence wanted whenever its deliveries cannot be in order (a delivery
lost on the way, a consumer still waiting for the acknowledgements of a killed process).

The clock (`StreamService`): each message moves the engine clock to the time NATS stored it,
and expiry runs whenever that clock advances, before the event is correlated; while nothing is
pending, the clock follows the wall clock (at each expiry tick). A backlog thus expires, or
takes its next event, by when that event reached NATS, whether serve was running then or
catching up after an outage.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING

import nats
import orjson
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.js import api
from nats.js.errors import APIError, NotFoundError, ServiceUnavailableError

from dsiem_sql.engine import Changes
from dsiem_sql.engine.engine import wall_clock
from dsiem_sql.shell.bus import (
    EVENTS_SUBJECT,
    Bus,
    Delivery,
    NatsClient,
    NatsConfigError,
    StreamOptions,
)
from dsiem_sql.shell.correlator import Correlator, EventClock
from dsiem_sql.shell.overload import Overload
from dsiem_sql.shell.service import DAY, TAKE, Service

if TYPE_CHECKING:
    from dsiem_sql.store.resume import Resumed

log = logging.getLogger(__name__)

BATCH = 2000  # messages asked for by one pull request
WINDOW = 10000  # at most this many messages asked for or delivered and not yet taken
EXPIRES = 10.0  # seconds a pull request waits for messages
HEARTBEAT = 1.0  # seconds between the server's idle heartbeats to a waiting pull request
SILENCE = 3 * HEARTBEAT  # no word from the server for this long: the requests are lost
ACK_WAIT = 300.0  # seconds before the server delivers an unacknowledged message again
MAX_ACK_PENDING = 20000
API_TIMEOUT = 5.0
# errors of a JetStream API call that can pass: no leader yet, a reconnect, a slow server
TRANSIENT = (ServiceUnavailableError, nats.errors.TimeoutError, TimeoutError,
             nats.errors.ConnectionClosedError, nats.errors.ConnectionReconnectingError,
             nats.errors.NoRespondersError, nats.errors.StaleConnectionError)
BAD_NAME = re.compile(r"[\s.*>/\\]")
NS = 1_000_000_000


def check_names(options: StreamOptions, node: str) -> None:
    """Raise NatsConfigError if the stream or the consumer of `node` cannot be named so."""
    if not options.stream or BAD_NAME.search(options.stream):
        raise NatsConfigError(f"--js-stream {options.stream!r}: a stream name cannot be empty "
                              f"or hold spaces, '.', '*', '>', '/' or '\\'")
    if BAD_NAME.search(node):
        raise NatsConfigError(f"--node {node!r}: names the JetStream consumer dsiem-sql-{node}, "
                              f"which cannot hold spaces, '.', '*', '>', '/' or '\\'")


def subject_matches(pattern: str, subject: str) -> bool:
    """Whether a stream subject (with `*` and `>` wildcards) captures `subject`."""
    tokens, wanted = pattern.split("."), subject.split(".")
    for i, token in enumerate(tokens):
        if token == ">":
            return len(wanted) > i
        if i >= len(wanted) or token not in ("*", wanted[i]):
            return False
    return len(tokens) == len(wanted)


def delivery(reply: str) -> tuple[int, int, int, int]:
    """(stream sequence, consumer sequence, stream timestamp in ns, messages pending after
    it) from a JetStream message's reply subject: `$JS.ACK.<stream>.<consumer>.<delivered>.
    <sseq>.<cseq>.<ns>.<pending>`, or the form with `<domain>.<account hash>.` before the
    stream and a token after `<pending>`."""
    t = reply.split(".")
    i = 5 if len(t) == 9 else 7
    return int(t[i]), int(t[i + 1]), int(t[i + 2]), int(t[i + 3])


class Consumer:
    """The durable pull consumer of one node on the stream, and the messages it delivered that
    the worker has not taken yet (at most `WINDOW`: the rest waits in the stream)."""

    def __init__(self, client: NatsClient, options: StreamOptions, node: str):
        self.client = client
        self.js = client.jetstream(timeout=API_TIMEOUT)
        self.stream = options.stream
        self.options = options
        self.name = f"dsiem-sql-{node}"
        self.next_subject = f"$JS.API.CONSUMER.MSG.NEXT.{self.stream}.{self.name}"
        self.buffer: deque[Delivery] = deque()
        self.received = 0
        self.dropped = 0  # never: the watchdog's field
        self.credit = 0  # messages asked for and not delivered yet
        self.heard = time.monotonic()  # the last message or status from the server
        self.next_cseq = 1  # the consumer sequence the next delivery must have
        self.undelivered = 0  # messages in the stream after the newest one received
        self.only_events = True  # the stream captures no other subject
        self.gone = False  # the server said the consumer was deleted
        self.closed = False
        self._sub: Subscription | None = None
        self._ready = asyncio.Event()

    def __len__(self) -> int:
        return len(self.buffer)

    @property
    def pending(self) -> int:
        """Messages of the stream not processed yet: received ones, then the rest."""
        return len(self.buffer) + self.undelivered

    # -- the stream and the consumer --------------------------------------------------------

    async def open(self, start: int | None) -> tuple[int, int]:
        """Find or create the stream, then the consumer, to deliver from stream sequence
        `start` on (None: from the next message stored). Returns (the sequence it delivers
        from, the number of messages before it that the stream's limits deleted)."""
        info = await self._stream()
        first, last = info.state.first_seq, info.state.last_seq
        lost = 0
        if start is None:
            start = await self._consumer_start(last)
        elif start > last + 1:
            log.warning(
                "JetStream stream %s ends at sequence %d, but the database has processed it "
                "up to %d: the stream was created anew; starting at its first message (%d)",
                self.stream, last, start - 1, first)
            start = first
        if start < first:
            lost, start = first - start, first
        await self._bind(start)
        return start, lost

    async def _stream(self) -> api.StreamInfo:
        o = self.options
        try:
            info = await self.js.stream_info(o.stream)
        except NotFoundError:
            config = api.StreamConfig(
                name=o.stream, subjects=[EVENTS_SUBJECT], storage=api.StorageType.FILE,
                retention=api.RetentionPolicy.LIMITS, discard=api.DiscardPolicy.OLD,
                max_age=o.max_age or None, max_bytes=o.max_bytes, num_replicas=o.replicas,
                description="Dsiem events for dsiem-sql serve --intake jetstream",
            )
            try:
                info = await self.js.add_stream(config)
            except TRANSIENT:
                raise
            except APIError as exc:
                raise NatsConfigError(
                    f"cannot create JetStream stream {o.stream}: {exc.description} (err_code "
                    f"{exc.err_code})") from None
            log.info("created JetStream stream %s: subject %s, file storage, max age %s, "
                     "max bytes %s, %d replicas", o.stream, EVENTS_SUBJECT,
                     f"{o.max_age:g} s" if o.max_age else "none",
                     o.max_bytes if o.max_bytes > 0 else "none", o.replicas)
            return info
        subjects = info.config.subjects or []
        if not any(subject_matches(s, EVENTS_SUBJECT) for s in subjects):
            raise NatsConfigError(
                f"JetStream stream {o.stream} (subjects: {', '.join(subjects) or 'none'}) does "
                f"not capture {EVENTS_SUBJECT}, where the frontend publishes the events; add "
                f"{EVENTS_SUBJECT} to its subjects, or name another stream with --js-stream")
        self.only_events = subjects == [EVENTS_SUBJECT]
        c = info.config
        log.info("using JetStream stream %s: subjects %s, %s storage, max age %s, %s replicas, "
                 "sequences %d..%d", o.stream, ", ".join(subjects), c.storage,
                 f"{c.max_age:g} s" if c.max_age else "none", c.num_replicas,
                 info.state.first_seq, info.state.last_seq)
        if c.storage != api.StorageType.FILE:
            log.warning("JetStream stream %s keeps its messages in memory: a NATS restart "
                        "loses the events not processed yet", o.stream)
        return info

    async def _consumer_start(self, last: int) -> int:
        """Where a node without a stored sequence starts: where its consumer has acknowledged
        up to, or with the next message stored."""
        try:
            info = await self.js.consumer_info(self.stream, self.name)
        except NotFoundError:
            return last + 1
        return info.ack_floor.stream_seq + 1 if info.ack_floor else last + 1

    async def _bind(self, start: int) -> None:
        """Keep the consumer if it delivers in order from `start`, else create it anew there;
        then listen on a new inbox."""
        try:
            info = await self.js.consumer_info(self.stream, self.name)
        except NotFoundError:
            info = None
        if info is not None and _in_order_from(info, start):
            self.next_cseq = info.delivered.consumer_seq + 1
            self.undelivered = info.num_pending or 0
            log.info("JetStream consumer %s on %s: delivering from sequence %d", self.name,
                     self.stream, start)
        else:
            if info is not None:
                with contextlib.suppress(NotFoundError):
                    await self.js.delete_consumer(self.stream, self.name)
            created = await self.js.add_consumer(self.stream, api.ConsumerConfig(
                name=self.name, durable_name=self.name,
                description="dsiem-sql serve: events in stream order, one ack per commit",
                deliver_policy=api.DeliverPolicy.BY_START_SEQUENCE, opt_start_seq=start,
                ack_policy=api.AckPolicy.ALL, ack_wait=ACK_WAIT,
                max_ack_pending=MAX_ACK_PENDING, filter_subject=EVENTS_SUBJECT,
                replay_policy=api.ReplayPolicy.INSTANT,
            ))
            self.next_cseq = 1
            self.undelivered = created.num_pending or 0
            log.info("JetStream consumer %s on %s %s at sequence %d", self.name, self.stream,
                     "created" if info is None else "created anew", start)
        self.gone = False
        await self._listen()

    async def _listen(self) -> None:
        """A new inbox: deliveries asked for by earlier requests are not taken any more."""
        if self._sub is not None:
            with contextlib.suppress(nats.errors.Error):
                await self.client.unsubscribe_fast(self._sub)
        self.buffer.clear()
        self.credit = 0
        self.heard = time.monotonic()
        self.inbox = self.client.new_inbox()
        self._sub = await self.client.subscribe_fast(self.inbox, self._delivered, self._on_msg)

    async def reset(self, start: int, why: str) -> None:
        """Create the consumer anew at `start` (retrying until it works or the intake is
        closed): the way back to stream order."""
        log.warning("JetStream consumer %s: %s; creating it anew at sequence %d", self.name,
                    why, start)
        delay = 0.5
        while not self.closed:
            try:
                await self._bind(start)
                return
            except TRANSIENT as exc:
                log.warning("cannot create JetStream consumer %s: %s; retrying in %.1f s",
                            self.name, exc or type(exc).__name__, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)

    async def lost_before(self, seq: int, expected: int) -> int:
        """How many events the stream's limits deleted among the sequences `expected` to
        `seq` - 1 that the consumer passed over (a stream with other subjects: only those
        before its first sequence count)."""
        if self.only_events:
            return seq - expected
        try:
            info = await self.js.stream_info(self.stream)
        except TRANSIENT:
            return 0
        return max(0, min(seq, info.state.first_seq) - expected)

    # -- pulling ------------------------------------------------------------------------------

    def _delivered(self, delivery: Delivery) -> None:
        self.heard = time.monotonic()
        self.buffer.append(delivery)
        self.received += 1
        self.credit -= 1
        self._ready.set()

    async def _on_msg(self, msg: Msg) -> None:
        """A message with headers: a status (heartbeat, end of a request), or an event
        published with headers (a message id)."""
        headers = msg.headers
        status = headers.get(api.Header.STATUS) if headers else None
        if status is None:
            self._delivered(Delivery(msg.data, msg.reply))
            return
        self.heard = time.monotonic()
        if status == "100":  # idle heartbeat
            return
        assert headers is not None
        unanswered = headers.get("Nats-Pending-Messages")
        if unanswered is not None:  # a request ended: expired, or cut short
            self.credit -= int(unanswered)
        else:
            self.credit = 0
        description = str(headers.get(api.Header.DESCRIPTION, ""))
        # 409 Consumer Deleted; 503: no responders, the consumer is not there
        if status == "503" or (status == "409" and "deleted" in description.lower()):
            self.gone = True
            self._ready.set()
        elif status not in ("404", "408", "409"):
            log.warning("JetStream consumer %s: status %s %s", self.name, status, description)

    async def request(self) -> None:
        """Ask for more messages while fewer than `WINDOW` are asked for or waiting."""
        if self.closed or not self.client.is_connected:
            return
        self.credit = max(self.credit, 0)
        while self.credit + len(self.buffer) <= WINDOW - BATCH:
            request = {"batch": BATCH, "expires": int(EXPIRES * NS),
                       "idle_heartbeat": int(HEARTBEAT * NS)}
            if not self.credit:
                self.heard = time.monotonic()
            await self.client.publish(self.next_subject, orjson.dumps(request),
                                      reply=self.inbox)
            self.credit += BATCH

    @property
    def silent(self) -> bool:
        """Pull requests are out and the server has not answered them for a while."""
        return self.credit > 0 and time.monotonic() - self.heard > SILENCE

    async def exists(self) -> bool | None:
        """Whether the consumer exists; None if the server cannot say now."""
        try:
            await self.js.consumer_info(self.stream, self.name)
        except NotFoundError:
            return False
        except TRANSIENT:
            return None
        return True

    def take(self, limit: int) -> list[Delivery]:
        n = min(limit, len(self.buffer))
        taken = [self.buffer.popleft() for _ in range(n)]
        if not self.buffer and not self.closed:
            self._ready.clear()
        return taken

    async def wait(self, timeout: float) -> None:
        """Until a message is delivered, something needs the worker, or `timeout` passed."""
        if self.buffer or self.closed or self.gone:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._ready.wait(), timeout)

    def wake(self) -> None:
        self._ready.set()

    async def close(self) -> None:
        """Take no more messages; those delivered can still be taken."""
        self.closed = True
        self._ready.set()
        if self._sub is not None:
            with contextlib.suppress(nats.errors.Error):
                await self.client.unsubscribe_fast(self._sub)
            self._sub = None


def _in_order_from(info: api.ConsumerInfo, start: int) -> bool:
    """A consumer of ours that would deliver the first message at or after `start` next."""
    c = info.config
    return (c.ack_policy == api.AckPolicy.ALL and c.deliver_subject is None
            and c.filter_subject == EVENTS_SUBJECT and not info.num_ack_pending
            and info.delivered is not None and info.delivered.stream_seq == start - 1)


class StreamService(Service):
    """`serve` with `--intake jetstream`: as `Service`, with the events of the consumer.

    The engine clock is an `EventClock` of stream timestamps (whole seconds): before each
    message it is moved to the time NATS stored that message, and the backlogs that timed out
    by then expire first (as `replay` does with event times). At each expiry tick
    (`--expiry-interval`, 10 s), if the consumer had nothing pending, it is moved to the wall
    clock instead. After an outage the backlog of events is thus correlated as it was stored:
    a backlog whose next event reached NATS before its deadline takes it, one whose deadline
    passed first expires, just as when serve was running all along.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.clock = EventClock()
        self.source = self.progress = f"jetstream:{self.options.jetstream.stream}"
        self.consumer: Consumer | None = None
        self.fed = 0  # stream sequence of the last message handed to the correlator
        self.committed = 0  # ... of the last commit asked for
        self.lost = 0  # events the stream's limits deleted before they were processed
        self.redelivered = 0  # messages skipped as delivered again
        self.last_stamp = 0  # stream timestamp (ns) of the last message taken
        self._commits: deque[tuple[int, Delivery | None]] = deque()  # (sequence, its message)
        self._written: Delivery | None = None  # the last message of the last commit written
        self._acked: Delivery | None = None
        self._start: int | None = None

    # -- the hooks of Service ----------------------------------------------------------------

    def _engine_clock(self) -> Callable[[], int]:
        return self.clock

    def _bus(self) -> Bus:
        return Bus(self.options.nats, None)

    def _resumed(self, resumed: Resumed) -> None:
        self.clock.now = resumed.clock
        if resumed.line:
            self.fed = self.committed = resumed.line
            self._start = resumed.line + 1
            log.info("resuming JetStream stream %s after sequence %d", self.options.jetstream
                     .stream, resumed.line)

    async def _open_intake(self, stop: asyncio.Event) -> bool:
        """Find or create the stream and the consumer, retrying what can pass until `stop`."""
        assert self.bus is not None and self.bus.client is not None
        client = self.bus.client
        self.consumer = Consumer(client, self.options.jetstream, self.options.node)
        delay = 0.5
        while not stop.is_set():
            try:
                start, lost = await self.consumer.open(self._start)
                break
            except TRANSIENT as exc:
                if isinstance(exc, ServiceUnavailableError | nats.errors.NoRespondersError) \
                        and not client._server_info.get("jetstream"):
                    raise NatsConfigError(
                        f"NATS server {_server(client)} does not have JetStream enabled, which "
                        f"--intake jetstream needs (nats-server -js, or a jetstream block in "
                        f"its config)") from None
                log.warning("JetStream is not available now (%s); retrying in %.1f s",
                            exc or type(exc).__name__, delay)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), delay)
            delay = min(delay * 2, self.options.nats.max_backoff)
        else:
            return False
        if lost:
            self._report_lost(start - lost, start)
        self.fed = start - 1
        return True

    async def _stop_intake(self) -> None:
        assert self.consumer is not None
        await self.consumer.close()

    @property
    def queue(self) -> Consumer:
        assert self.consumer is not None
        return self.consumer

    def _live(self) -> dict[str, float]:
        values = super()._live()
        c = self.consumer
        values.update(
            received=c.received if c is not None else 0,
            queue_length=len(c) if c is not None else 0,
            stream_pending=c.pending if c is not None else 0,
            stream_lag=self.lag(),
            stream_lost=self.lost,
            stream_redelivered=self.redelivered,
            stream_sequence=self.committed,
        )
        return values

    def lag(self) -> float:
        """Seconds since NATS stored the oldest message not processed yet (0 when none)."""
        if self.consumer is None or not self.consumer.pending or not self.last_stamp:
            return 0.0
        oldest = self.consumer.buffer[0] if self.consumer.buffer else None
        stamp = delivery(oldest.reply)[2] if oldest is not None else self.last_stamp
        return max(0.0, time.time() - stamp / NS)

    def _committed(self, seconds: float, changes: Changes) -> None:
        super()._committed(seconds, changes)
        self._written = self._commits.popleft()[1] or self._written
        if self.consumer is not None:
            self.consumer.wake()

    # -- the worker ----------------------------------------------------------------------------

    async def _work(self, correlator: Correlator, overload: Overload) -> None:
        o = self.options
        consumer = self.consumer
        assert consumer is not None
        store = self.store
        assert store is not None
        now = self.monotonic()
        next_expiry, next_prune = now, now + 3600
        while True:
            now = self.turned = self.monotonic()
            if not consumer.closed and (consumer.gone or consumer.silent):
                await self._check_consumer(consumer)
            await consumer.request()
            await consumer.wait(min(next_expiry - now, correlator.seconds_to_due(1.0)))
            await self._acknowledge()
            started = time.perf_counter()
            for msg in consumer.take(TAKE):
                seq, cseq, stamp, undelivered = delivery(msg.reply)
                if cseq != consumer.next_cseq:  # a delivery did not arrive
                    await consumer.reset(self.fed + 1, f"delivery {consumer.next_cseq} did not "
                                                       f"arrive (got {cseq})")
                    break  # the messages delivered after it are dropped
                consumer.next_cseq, consumer.undelivered = cseq + 1, undelivered
                if seq <= self.fed:
                    self.redelivered += 1
                    continue
                if seq > self.fed + 1:
                    lost = await consumer.lost_before(seq, self.fed + 1)
                    if lost:
                        self._report_lost(self.fed + 1, self.fed + 1 + lost)
                self._take(msg, seq, stamp, correlator, overload)
            self.counters.proc_seconds += time.perf_counter() - started
            self.reloader.take_pending()  # a reloaded config, between two events
            now = self.monotonic()
            if now >= next_expiry:
                if not consumer.pending and self.clock.advance(wall_clock()):
                    correlator.expire()
                next_expiry = now + o.expiry_interval
                if await store.checkpoint():
                    log.info("%s: the WAL, grown while a reader held it, is truncated", o.db)
            if consumer.closed and not len(consumer):
                self._commits.append((self.fed, self._last))
                await correlator.finish((self.progress, self.fed, 0))
                self.committed = self.fed
                await self._acknowledge()
                with contextlib.suppress(nats.errors.Error, TimeoutError):
                    await consumer.client.flush(2)
                self.invalid_log.flush(force=True)
                return
            if correlator.due(empty=self.fed > self.committed):
                self._commits.append((self.fed, self._last))
                await correlator.commit((self.progress, self.fed, 0))
                self.committed = self.fed
            if now >= next_prune:
                await store.prune(wall_clock() - o.retention_days * DAY)
                next_prune = now + 3600
            self.invalid_log.flush()
            await asyncio.sleep(0)

    _last: Delivery | None = None  # the last message handed to the correlator

    def _take(self, msg: Delivery, seq: int, stamp: int, correlator: Correlator,
              overload: Overload) -> None:
        """Correlate the message after the last one, as of the time NATS stored it."""
        self.fed, self._last, self.last_stamp = seq, msg, stamp
        if self.clock.advance(stamp // NS):
            correlator.expire()
        max_delay = self.options.max_delay
        if max_delay and time.time_ns() - stamp > max_delay * NS:
            overload.signal()
        event = self._decode(msg.data)
        if event is not None:
            correlator.feed(event)
            self.counters.processed += 1

    async def _acknowledge(self) -> None:
        """Acknowledge the messages up to the last one whose commit is written."""
        msg = self._written
        if msg is None or msg is self._acked:
            return
        assert self.consumer is not None
        try:
            await self.consumer.client.publish(msg.reply, b"+ACK")
        except nats.errors.Error as exc:  # redelivered later, and skipped then
            log.debug("cannot acknowledge: %s", exc)
            return
        self._acked = msg

    async def _check_consumer(self, consumer: Consumer) -> None:
        if consumer.gone or await consumer.exists() is False:
            await consumer.reset(self.fed + 1, "it was deleted")
        else:  # the requests were lost (a reconnect, a new leader): ask again
            log.debug("no answer to the pull requests of %s for %.0f s; asking again",
                      consumer.name, SILENCE)
            consumer.credit = 0

    def _report_lost(self, first: int, end: int) -> None:
        self.lost += end - first
        log.error("%d events lost: stream %s deleted sequences %d..%d (its limits: --js-max-age, "
                  "--js-max-bytes) before they were processed", end - first,
                  self.options.jetstream.stream, first, end - 1)


def _server(client: Client) -> str:
    uri = getattr(client, "_current_server", None)
    return f"{uri.uri.scheme}://{uri.uri.netloc.rpartition('@')[2]}" if uri else "?"
