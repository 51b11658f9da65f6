"""`dsiem-sql suppress add|list|remove`: suppressions, checked, and made by the one writer of
the database: the running `serve` that holds it (asked through `runtime/requests.py`), or
this command itself when none runs (docs/behaviour.md, "Suppressions")."""

from __future__ import annotations

import asyncio
import json
import re
import time
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from dsiem_sql.config import ConfigError, load_config
from dsiem_sql.engine.suppressions import network
from dsiem_sql.runtime.requests import RequestError, ask
from dsiem_sql.store.database import lock_holder
from dsiem_sql.store.errors import StoreError
from dsiem_sql.store.query import read_query
from dsiem_sql.store.suppressions import NewSuppression

DURATION = re.compile(r"^(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s?)?$")
ANSWER_WITHIN = 10.0  # seconds a running serve has to answer


class SuppressError(Exception):
    """What is wrong with a suppress command; the message names the option."""


def ttl_seconds(text: str) -> int:
    """Seconds of `24h`, `90m`, `2d`, `1h30m`, `3600s` or `3600`."""
    found = DURATION.match(text.strip())
    if not text.strip() or not found or not any(found.groups()):
        raise SuppressError(f"--ttl {text!r}: give a duration like 24h, 90m, 2d or 1h30m")
    d, h, m, s = (int(g or 0) for g in found.groups())
    seconds = ((d * 24 + h) * 60 + m) * 60 + s
    if seconds <= 0:
        raise SuppressError(f"--ttl {text!r}: must be longer than 0 s")
    return seconds


def until_epoch(text: str) -> int:
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise SuppressError(f"--until {text!r}: give a time like 2026-12-31T18:00:00Z") from None
    return int((moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp())


def _network(option: str, text: str | None) -> str | None:
    if text is None:
        return None
    try:
        return str(network(text))
    except ValueError as exc:
        raise SuppressError(f"{option} {exc}") from None


def new_suppression(
    db: Path, *, directive: int | None = None, src: str | None = None, dst: str | None = None,
    custom_data: str | None = None, ttl: str | None = None, until: str | None = None,
    permanent: bool = False, reason: str = "", by: str = "", every: bool = False,
    from_alarm: str | None = None, now: float | None = None,
) -> NewSuppression:
    """The suppression that `suppress add`'s options describe, checked."""
    now = time.time() if now is None else now
    if sum((ttl is not None, until is not None, permanent)) != 1:
        raise SuppressError("give one of --ttl, --until and --permanent: a suppression "
                            "expires unless said otherwise")
    if not reason.strip():
        raise SuppressError("--reason is required: say why, for the next analyst")
    if from_alarm is not None:
        alarm_directive, alarm_src, alarm_dst = _alarm_scope(db, from_alarm)
        directive = alarm_directive if directive is None else directive
        src = alarm_src if src is None else src
        dst = alarm_dst if dst is None else dst
    src, dst = _network("--src", src), _network("--dst", dst)
    if directive is None and src is None and dst is None and not every:
        raise SuppressError("a suppression needs a directive (--directive), a source (--src) "
                            "or a destination (--dst); --all silences every directive for "
                            "what remains")
    expires = None if permanent else (int(now) + ttl_seconds(ttl) if ttl is not None
                                      else until_epoch(until or ""))
    if expires is not None and expires <= now:
        raise SuppressError(f"--until {until}: that time has passed")
    return NewSuppression(directive, src, dst, custom_data, reason.strip(), by, expires)


def _alarm_scope(db: Path, alarm_id: str) -> tuple[int, str | None, str | None]:
    """The directive of the alarm, and its source and destination if it has one each."""
    try:
        _, found = read_query(db, "SELECT directive_id, src_ips, dst_ips FROM backlogs WHERE "
                                  "id = ?", [alarm_id])
    except StoreError as exc:
        raise SuppressError(str(exc)) from None
    if not found:
        raise SuppressError(f"--from-alarm {alarm_id}: no such alarm in {db} (dsiem-sql sql "
                            f"--db {db} 'SELECT id, title FROM alarms' lists them)")
    directive_id, src_ips, dst_ips = found[0]
    sources, destinations = json.loads(src_ips), json.loads(dst_ips)
    return (directive_id, sources[0] if len(sources) == 1 else None,
            destinations[0] if len(destinations) == 1 else None)


def known_directives(db: Path, configs: Path | None) -> set[int]:
    """The directive ids of `configs`, or of the config that serve last loaded."""
    if configs is None:
        try:
            _, found = read_query(db, "SELECT configs FROM reloads WHERE result = 'success' "
                                      "ORDER BY id DESC LIMIT 1")
        except StoreError:
            found = []
        if not found:
            raise SuppressError("cannot tell whether the directive exists: give --configs DIR")
        configs = Path(found[0][0])
    try:
        return {d.id for d in load_config(configs).directives}
    except ConfigError as exc:
        raise SuppressError(f"cannot check the directive: {exc}") from None


def add(db: Path, new: NewSuppression, configs: Path | None = None) -> tuple[int, str]:
    """Make the suppression; (its id, who made it: serve or this command)."""
    holder = _serve_or_none(db)
    if holder is not None:
        reply = _ask(db, holder, {"op": "add", "suppression": asdict(new)})
        return reply["id"], f"the running serve (pid {holder.pid})"
    if new.directive_id is not None and new.directive_id not in known_directives(db, configs):
        raise SuppressError(f"--directive {new.directive_id}: no such directive")
    suppression_id = asyncio.run(_in_store(db, lambda s: s.add_suppression(new, int(
        time.time()))))
    return suppression_id, str(db)


def remove(db: Path, suppression_id: int) -> str:
    holder = _serve_or_none(db)
    if holder is not None:
        _ask(db, holder, {"op": "remove", "id": suppression_id})
        return f"the running serve (pid {holder.pid})"
    if not asyncio.run(_in_store(db, lambda s: s.remove_suppression(suppression_id,
                                                                      int(time.time())))):
        raise SuppressError(f"no suppression {suppression_id} in force in {db}")
    return str(db)


def listing(db: Path) -> tuple[list[str], list[tuple[Any, ...]]]:
    """The `suppressions` view: every suppression, with its state, hits and time left."""
    return read_query(db, "SELECT * FROM suppressions")


def _serve_or_none(db: Path):
    holder = lock_holder(db)
    if holder is not None and holder.role != "serve":
        raise SuppressError(f"{db}: held by a dsiem-sql {holder.role or 'command'} (pid "
                            f"{holder.pid}); try again once it is done")
    return holder


def _ask(db: Path, holder, request: dict[str, Any]) -> dict[str, Any]:
    try:
        reply = ask(db, holder, request, ANSWER_WITHIN)
    except RequestError as exc:
        raise SuppressError(str(exc)) from None
    if not reply.get("ok"):
        raise SuppressError(str(reply.get("error", "serve refused it")))
    return reply


async def _in_store(db: Path, do):
    from dsiem_sql.store.store import Store

    store = Store(db, None)
    await store.open()
    try:
        return await do(store)
    finally:
        await store.close()
