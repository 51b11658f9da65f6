"""Normalized events: decoding and validity (docs/behaviour.md, "Events", "Event validity").

Decoding is strict (a port given as a string drops the event) except that JSON `null` means
"absent". Addresses are kept as canonical text. The validity rule is dsiem-rs's without the
title, which may be empty as in dsiem-backend and Go Dsiem ("Event title").
"""

from __future__ import annotations

import json
import math
from functools import lru_cache
from typing import Annotated

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
)

from dsiem_sql.config.netparse import canonical_ip
from dsiem_sql.logtext import shown

U16 = Annotated[int, Field(ge=0, le=65535)]
U64 = Annotated[int, Field(ge=0, le=2**64 - 1)]


# The validators below are memoised themselves: pydantic then calls the cache, and a value
# seen before costs no Python call.


@lru_cache(maxsize=65536)
def _canonical_ip(text: str) -> str:
    canonical = canonical_ip(text)
    if canonical is None:
        raise ValueError(f"{shown(repr(text))} is not a valid IP address")
    return canonical


IPText = Annotated[str, AfterValidator(_canonical_ip)]
_RFC3339 = TypeAdapter(AwareDatetime)


@lru_cache(maxsize=65536)
def epoch_seconds(timestamp: str) -> int:
    """Whole epoch seconds of an RFC 3339 time with offset; ValueError if it is not one."""
    try:
        return math.floor(_RFC3339.validate_strings(timestamp).timestamp())
    except ValidationError as exc:
        raise ValueError(exc.errors(include_url=False)[0]["msg"]) from None


@lru_cache(maxsize=65536)
def _check_timestamp(text: str) -> str:
    epoch_seconds(text)
    return text


Timestamp = Annotated[str, AfterValidator(_check_timestamp)]


class Event(BaseModel):
    model_config = ConfigDict(strict=True, extra="ignore")

    event_id: str
    timestamp: Timestamp
    title: str = ""
    sensor: str = ""
    src_ip: IPText
    dst_ip: IPText
    src_port: U16 = 0
    dst_port: U16 = 0
    protocol: str = ""
    plugin_id: U64 = 0
    plugin_sid: U64 = 0
    product: str = ""
    category: str = ""
    subcategory: str = ""
    custom_label1: str = ""
    custom_label2: str = ""
    custom_label3: str = ""
    custom_data1: str = ""
    custom_data2: str = ""
    custom_data3: str = ""
    conn_id: U64 = 0
    rcvd_time: int = 0

    @property
    def ts(self) -> int:
        """Event time in whole epoch seconds."""
        return epoch_seconds(self.timestamp)

    def validity_error(self) -> str | None:
        """Why the event is not valid, or None."""
        if self.event_id == "":
            return "event_id is empty"
        if self.sensor == "":
            return "sensor is empty"
        if (self.plugin_id and self.plugin_sid) or (self.product and self.category):
            return None
        return "needs plugin_id and plugin_sid, or product and category"


_validate_json = Event.__pydantic_validator__.validate_json  # Event.model_validate_json, bare


class InvalidEvent(ValueError):
    """An event that cannot be used; the message says why."""


def _drop_nulls(data: str | bytes) -> str | None:
    """The event with its `null` values removed (null means absent), or None if it has none."""
    if not (b"null" in data if isinstance(data, bytes) else "null" in data):
        return None
    try:
        obj = json.loads(data)
    except ValueError:
        return None
    if not isinstance(obj, dict) or None not in obj.values():
        return None
    return json.dumps({k: v for k, v in obj.items() if v is not None})


def decode_event(data: str | bytes) -> Event:
    """Decode and validate one event, raising `InvalidEvent` with the reason."""
    try:
        try:
            event = _validate_json(data)
        except ValidationError:
            without_nulls = _drop_nulls(data)
            if without_nulls is None:
                raise
            event = _validate_json(without_nulls)
    except ValidationError as exc:
        err = exc.errors(include_url=False)[0]
        where = ".".join(str(p) for p in err["loc"])
        if err["type"] == "json_invalid":
            raise InvalidEvent(f"cannot parse event: {err['msg']}") from None
        if not where:  # the whole input, e.g. not an object
            raise InvalidEvent(f"cannot parse event: {err['msg']}") from None
        raise InvalidEvent(f"cannot parse event: {where}: {err['msg']}") from None
    except Exception as exc:  # whatever else the input provokes, e.g. RecursionError
        raise InvalidEvent(f"cannot parse event: {type(exc).__name__}: {exc}") from None
    reason = event.validity_error()
    if reason is not None:
        raise InvalidEvent(f"event {shown(event.event_id)} is not valid: {reason}")
    return event
