"""Suppressions over a real nats-server and serve under load: `dsiem-sql suppress add` keeps
a source from a directive as soon as it returns, others go on, hits are counted; `remove` and
expiry bring correlation back; `--from-alarm`; a suppression survives a restart."""

from __future__ import annotations

import json
import time
from pathlib import Path

import kit
from jskit import Publisher
from kit import cli, ok, rule, wait_until

NODE = "dsiem-backend-0"
SCANNER_NET, OTHER_NET, HOME = "172.16", "198.18", "10.0.0.5"  # /16s: a host per event
RATE = 400  # events a second


def write_configs(configs: Path) -> Path:
    configs.mkdir(parents=True, exist_ok=True)
    (configs / "assets_a.json").write_text(json.dumps(
        {"assets": [{"name": "home", "cidr": "10.0.0.0/8", "value": 5}]}))
    directives = [kit.directive(d, [rule(1, reliability=5), rule(
        2, occurrence=3, timeout=600, reliability=5, **{"from": ":1"})]) for d in (1, 2)]
    (configs / f"directives_{NODE}_a.json").write_text(json.dumps({"directives": directives}))
    return configs


def host(net: str, k: int) -> str:
    return f"{net}.{k // 250}.{k % 250 + 1}"


def load(seconds: float) -> list[str]:
    """Event `n` from a source of its own (so it opens a backlog of each directive): the
    scanner's net for odd `n`, another's for even `n`."""
    return [json.dumps(kit.event(f"e{n}", time.time(),
                                 host(SCANNER_NET if n % 2 else OTHER_NET, n // 2), HOME))
            for n in range(int(seconds * RATE))]


def openers(node, directive: int, net: str) -> list[int]:
    """The numbers of the events that opened a backlog of `directive` from `net`."""
    rows = node.query(
        "SELECT se.event_id FROM stage_events se JOIN backlogs b ON b.id = se.backlog_id "
        f"WHERE se.stage = 1 AND b.directive_id = {directive} AND se.src_ip LIKE '{net}.%'")
    return sorted(int(event_id[1:]) for (event_id,) in rows)


def suppress(node, *args: str) -> str:
    return ok(cli("suppress", *args, "--db", node.db)).stdout


def listed(node) -> list[dict]:
    return json.loads(suppress(node, "list", "--format", "json"))


def test_a_suppression_added_under_load_holds_once_the_command_returns(serve, nats_server,
                                                                       tmp_path):
    node = serve(configs=write_configs(tmp_path / "configs")).start()
    publisher = Publisher([nats_server.url], load(5), RATE)
    started = time.monotonic()
    publisher.start()
    time.sleep(1.5)
    asked = time.monotonic()
    out = suppress(node, "add", "--directive", "1", "--src", f"{SCANNER_NET}.0.0/16", "--ttl",
                   "1h", "--reason", "the weekly scan", "--by", "soc")
    answered = time.monotonic()
    assert out.startswith(f"suppression 1 added by the running serve (pid {node.proc.pid}): "
                          f"directive 1, from {SCANNER_NET}.0.0/16, to any destination")
    assert answered - asked < 5  # a process start, then serve answers on SIGUSR1
    # event n is sent no sooner than n / RATE after the start: from `after` on, after the
    # answer, which serve gave once the suppression was in force
    after = int((answered - started) * RATE) + 1
    publisher.join(20)
    assert publisher.error is None
    wait_until("every event correlated", lambda: node.metric(
        "dsiem_events_processed_total") >= len(publisher.lines))
    scanner_1 = openers(node, 1, SCANNER_NET)
    assert scanner_1 and max(scanner_1) < after  # directive 1: none from the scanner since
    assert max(openers(node, 2, SCANNER_NET)) >= after  # directive 2: as before
    assert max(openers(node, 1, OTHER_NET)) >= after  # other sources: as before
    wait_until("the hits", lambda: listed(node)[0]["hits"] > 0)
    [row] = listed(node)
    assert (row["id"], row["state"], row["reason"], row["added_by"]) == (
        1, "active", "the weekly scan", "soc")
    scanner_events = len(publisher.lines) // 2
    assert row["hits"] == scanner_events - len(scanner_1)  # one for each kept from directive 1
    assert node.metric('dsiem_events_suppressed_total{directive="1"}') == row["hits"]
    assert node.stop() == 0


def test_from_alarm_expiry_a_restart_and_remove(serve, nats_server, tmp_path):
    node = serve(configs=write_configs(tmp_path / "configs")).start()
    scanner = host(SCANNER_NET, 7)
    sent = [0, 0]  # events sent, and since serve started

    def took(source: str) -> set[int]:
        """Send one event from `source`: the directives whose backlogs took it."""
        sent[0] += 1
        sent[1] += 1
        event_id = f"x{sent[0]}"
        Publisher([nats_server.url], [json.dumps(kit.event(event_id, time.time(), source,
                                                           HOME))], 1000).run()
        query = ("SELECT DISTINCT b.directive_id FROM stage_events se JOIN backlogs b ON b.id "
                 f"= se.backlog_id WHERE se.event_id = '{event_id}'")
        wait_until(f"{event_id} taken", lambda: node.metric(
            "dsiem_events_processed_total") == sent[1] and node.query(query))
        return {d for (d,) in node.query(query)}

    assert took(scanner) == {1, 2}
    [alarm] = [a for (a,) in node.query("SELECT alarm_id FROM alarms WHERE directive_id = 1")]
    out = suppress(node, "add", "--from-alarm", alarm, "--ttl", "3s", "--reason", "fp")
    added = time.monotonic()
    assert out.endswith(f"directive 1, from {scanner}/32, to {HOME}/32\n")
    assert took(scanner) == {2}
    assert took(host(SCANNER_NET, 8)) == {1, 2}  # another source
    time.sleep(max(0.0, added + 3.5 - time.monotonic()))  # its TTL: 3 s
    assert listed(node)[0]["state"] == "expired"
    assert took(scanner) == {1, 2}

    suppress(node, "add", "--directive", "2", "--src", host(SCANNER_NET, 9), "--permanent",
             "--reason", "noisy")
    assert took(host(SCANNER_NET, 9)) == {1}
    node.stop()  # a restart: the suppression is still there
    node.start()
    sent[1] = 0  # the metrics count from the start
    assert took(host(SCANNER_NET, 9)) == {1}
    assert suppress(node, "remove", "2").startswith("suppression 2 removed by the running serve")
    assert took(host(SCANNER_NET, 9)) == {1, 2}
    assert [(r["id"], r["state"]) for r in listed(node)] == [(1, "expired"), (2, "removed")]
    assert node.stop() == 0
