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

The clock (`JetStreamIntake`): each message moves the engine clock to the time NATS stored it,
and expiry runs whenever that clock advances, before the event is correlated; while nothing is
pending, the clock follows the wall clock (at each expiry tick). A backlog thus expires, or
takes its next event, by when that event reached NATS, whether serve was running then or
catching up after an outage.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING

import nats
import orjson
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.js import api
from nats.js.errors import APIError, NotFoundError, ServiceUnavailableError

from dsiem_sql.adapters.nats.connection import EVENTS_SUBJECT, Connection
from dsiem_sql.adapters.nats.options import NatsConfigError, StreamOptions
from dsiem_sql.engine.engine import wall_clock
from dsiem_sql.internals import Delivery, NatsClient
from dsiem_sql.runtime.correlator import EventClock, Progress
from dsiem_sql.runtime.intake import Item

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
NS = 1_000_000_000


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


class JetStreamIntake:
    """The intake of `serve --intake jetstream`: the messages of the node's consumer, in
    stream order, each once.

    The engine clock is an `EventClock` of stream timestamps (whole seconds): each message
    carries the time NATS stored it (`Item.time`), and the worker moves the clock there, and
    expires what timed out by then, before the event. At each expiry tick, if the consumer had
    nothing pending, the clock moves to the wall clock instead. After an outage the events
    are thus correlated as they were stored: a backlog whose next event reached NATS before
    its deadline takes it, one whose deadline passed first expires, just as when serve was
    running all along.

    Ordering, de-duplication and gaps are handled in `take`: a delivery that did not arrive
    makes the consumer be created anew at the next sequence wanted; a message up to the
    sequence already processed is skipped (counted as redelivered); sequences the stream's
    limits deleted are reported as lost. A commit written (`committed`) is acknowledged at the
    next turn, up to its last message.
    """

    label: str | None = None
    dropped = 0  # the stream keeps what the worker has not taken

    def __init__(self, connection: Connection, options: StreamOptions, node: str,
                 make_consumer: Callable[[NatsClient, StreamOptions, str], Consumer] = Consumer):
        """`make_consumer`: the node's `Consumer`, made once connected (tests give another)."""
        self.connection = connection
        self.options = options
        self.node = node
        self.make_consumer = make_consumer
        self.source = f"jetstream:{options.stream}"
        self.event_clock = EventClock()
        self.consumer: Consumer | None = None
        self.fed = 0  # stream sequence of the last message taken
        self.sequence = 0  # ... of the last one whose commit is written
        self.lost = 0  # events the stream's limits deleted before they were processed
        self.redelivered = 0  # messages skipped as delivered again
        self.last_stamp = 0  # stream timestamp (ns) of the last message taken
        self._taken: deque[tuple[int, Delivery]] = deque()  # the last message of each take
        self._written: Delivery | None = None  # the last message of the last commit written
        self._acked: Delivery | None = None

    @property
    def clock(self) -> Callable[[], int]:
        return self.event_clock

    @property
    def received(self) -> int:
        return self.consumer.received if self.consumer is not None else 0

    def __len__(self) -> int:
        return len(self.consumer) if self.consumer is not None else 0

    @property
    def closed(self) -> bool:
        return self.consumer is not None and self.consumer.closed and not len(self.consumer)

    async def open(self, resumed: Resumed, stop: asyncio.Event) -> bool:
        """Find or create the stream and the consumer, retrying what can pass until `stop`;
        deliver from the sequence after the one `resumed` reached."""
        self.event_clock.now = resumed.clock
        start = None
        if resumed.line:
            self.fed = resumed.line
            start = resumed.line + 1
            log.info("resuming JetStream stream %s after sequence %d", self.options.stream,
                     resumed.line)
        client = self.connection.nats
        consumer = self.consumer = self.make_consumer(client, self.options, self.node)
        delay = 0.5
        while not stop.is_set():
            try:
                start, lost = await consumer.open(start)
                break
            except TRANSIENT as exc:
                if isinstance(exc, ServiceUnavailableError | nats.errors.NoRespondersError) \
                        and not client.has_jetstream:
                    raise NatsConfigError(
                        f"NATS server {client.server()} does not have JetStream enabled, which "
                        f"--intake jetstream needs (nats-server -js, or a jetstream block in "
                        f"its config)") from None
                log.warning("JetStream is not available now (%s); retrying in %.1f s",
                            exc or type(exc).__name__, delay)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), delay)
            delay = min(delay * 2, self.connection.options.max_backoff)
        else:
            return False
        if lost:
            self._report_lost(start - lost, start)
        self.fed = self.sequence = start - 1
        return True

    async def wait(self, timeout: float) -> None:
        consumer = self._consumer
        if not consumer.closed and (consumer.gone or consumer.silent):
            await self._check_consumer(consumer)
        await consumer.request()
        await consumer.wait(timeout)
        await self._acknowledge()

    async def take(self, limit: int) -> list[Item]:
        consumer = self._consumer
        items: list[Item] = []
        last: Delivery | None = None
        for msg in consumer.take(limit):
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
            self.fed, self.last_stamp, last = seq, stamp, msg
            items.append(Item(msg.data, stamp // NS, seq))
        if last is not None:
            self._taken.append((self.fed, last))
        return items

    def tick(self) -> bool:
        return not self._consumer.pending and self.event_clock.advance(wall_clock())

    def position(self) -> Progress:
        return (self.source, self.fed, 0)

    def committed(self, progress: Progress | None) -> None:
        assert progress is not None
        self.sequence = progress[1]
        while self._taken and self._taken[0][0] <= self.sequence:
            self._written = self._taken.popleft()[1]
        self.wake()  # acknowledged at the worker's next turn

    def wake(self) -> None:
        if self.consumer is not None:
            self.consumer.wake()

    async def stop(self) -> None:
        await self._consumer.close()

    async def close(self) -> None:
        await self._acknowledge()
        with contextlib.suppress(nats.errors.Error, TimeoutError):
            await self.connection.nats.flush(2)

    def values(self) -> dict[str, float]:
        return {
            "stream_pending": self.consumer.pending if self.consumer is not None else 0,
            "stream_lag": self.lag(),
            "stream_lost": self.lost,
            "stream_redelivered": self.redelivered,
            "stream_sequence": self.sequence,
        }

    def lag(self) -> float:
        """Seconds since NATS stored the oldest message not processed yet (0 when none)."""
        if self.consumer is None or not self.consumer.pending or not self.last_stamp:
            return 0.0
        oldest = self.consumer.buffer[0] if self.consumer.buffer else None
        stamp = delivery(oldest.reply)[2] if oldest is not None else self.last_stamp
        return max(0.0, time.time() - stamp / NS)

    @property
    def _consumer(self) -> Consumer:
        assert self.consumer is not None, "open the intake first"
        return self.consumer

    async def _acknowledge(self) -> None:
        """Acknowledge the messages up to the last one whose commit is written."""
        msg = self._written
        if msg is None or msg is self._acked:
            return
        try:
            await self.connection.nats.publish(msg.reply, b"+ACK")
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
                  self.options.stream, first, end - 1)
