"""Output lines are serialized by orjson (`to_json_line`), byte for byte as `json.dumps` with
`ensure_ascii=False` and compact separators wrote them before: every scenario checks its lines
(`harness.check_json_lines`), and so do these tests, on the examples and on odd text."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from harness import T0, Harness, directive, event, json_dumps_line, rule
from hypothesis import given
from hypothesis import strategies as st

from dsiem_sql.config import load_config
from dsiem_sql.engine import Engine
from dsiem_sql.engine.alarm import to_json_line
from dsiem_sql.runtime.correlator import EventClock
from dsiem_sql.runtime.replay import ReplayRun, replay_file
from dsiem_sql.store.outbox import FILES

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

# what output records are made of: no floats, and strings from pydantic's JSON parser, which
# rejects lone surrogates
TEXT = st.text(st.characters(exclude_categories=["Cs"]))
RECORDS = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | TEXT,
    lambda inner: st.lists(inner) | st.dictionaries(TEXT, inner),
)
ODD = 'é ü ß – € 😀 ラベル \u2028\u2029 \ufeff \x00\x01\x1f\x7f \t\n\r " \\ / <>&\''


@given(RECORDS)
def test_same_bytes_as_json_dumps(record) -> None:
    assert to_json_line(record) == json_dumps_line(record)


def scalars(value) -> list:
    if isinstance(value, dict):
        return [s for v in value.values() for s in scalars(v)]
    if isinstance(value, list):
        return [s for v in value for s in scalars(v)]
    return [value]


def test_the_examples_replay_writes_the_same_bytes(tmp_path) -> None:
    config = load_config(EXAMPLES / "configs")
    clock = EventClock()
    run = ReplayRun(file=str(EXAMPLES / "events.jsonl"), out=str(tmp_path))
    asyncio.run(replay_file(run, Engine(config, clock=clock), clock, config))
    lines = {name: (tmp_path / name).read_text(encoding="utf-8").splitlines()
             for name in (FILES["alarms"], FILES["alarm_events"])}
    assert len(lines[FILES["alarms"]]) == 8 and len(lines[FILES["alarm_events"]]) == 34
    for line in lines[FILES["alarms"]] + lines[FILES["alarm_events"]]:
        record = json.loads(line)
        assert line == json_dumps_line(record)
        assert {type(s) for s in scalars(record)} <= {str, int}  # no float ever


def test_non_ascii_and_control_characters_are_written_as_before() -> None:
    d = directive(1, [rule(1, to="HOME_NET", custom_label1=ODD),
                      rule(2, reliability=10, timeout=60, **{"from": ":1", "to": ":1"})],
                  name=f"{ODD} from SRC_IP", priority=5)
    h = Harness([d])
    h.feed(event(ODD, T0, "8.8.8.8", "192.168.0.1", custom_label1=ODD, custom_data1=ODD),
           event("2", T0 + 5, "8.8.8.8", "192.168.0.1"))  # checked in `feed`
    line = h.changes.alarms[-1]
    assert line == json_dumps_line(json.loads(line))
    assert json.loads(line)["title"] == f"{ODD} from 8.8.8.8"
    assert "é ü ß – € 😀 ラベル \u2028\u2029 \ufeff" in line  # as they are, not \u escapes
    assert "\\u0000\\u0001\\u001f\x7f \\t\\n\\r \\\" \\\\ /" in line
