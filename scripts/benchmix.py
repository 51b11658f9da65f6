"""The benchmarks' config and events (`bench_replay.py`, `bench_serve.py`, ...): N three-stage
PluginRule directives, and a stream of events from one of the mixes in `MIXES`.

Only the standard library: the scripts run with older checkouts of dsiem-sql too."""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

T0 = 1714557600
PLUGIN_ID = 7000
NOISE_PLUGIN_ID = 9000


def write_configs(directory: Path, n: int) -> None:
    assets = {"assets": [{"name": "home", "cidr": "10.0.0.0/8", "value": 3}]}
    (directory / "assets_bench.json").write_text(json.dumps(assets))
    directives = []
    for i in range(n):
        common = {
            "type": "PluginRule",
            "plugin_id": PLUGIN_ID,
            "plugin_sid": [i + 1],
            "port_from": "ANY",
            "port_to": "ANY",
            "protocol": "TCP",
        }
        directives.append(
            {
                "id": i + 1,
                "name": f"bench {i + 1} from SRC_IP",
                "priority": 3,
                "kingdom": "bench",
                "category": "bench",
                "rules": [
                    {
                        "name": "s1",
                        "stage": 1,
                        "occurrence": 1,
                        "from": "ANY",
                        "to": "HOME_NET",
                        "reliability": 1,
                        "timeout": 0,
                        **common,
                    },
                    {
                        "name": "s2",
                        "stage": 2,
                        "occurrence": 5,
                        "from": ":1",
                        "to": ":1",
                        "reliability": 5,
                        "timeout": 3600,
                        **common,
                    },
                    {
                        "name": "s3",
                        "stage": 3,
                        "occurrence": 20,
                        "from": ":1",
                        "to": ":1",
                        "reliability": 10,
                        "timeout": 7200,
                        **common,
                    },
                ],
            }
        )
    (directory / "directives_bench_0.json").write_text(json.dumps({"directives": directives}))


@dataclass(frozen=True)
class Mix:
    """An event mix: `share` of the events match a random directive, with one of `sources`
    source addresses of that directive; the others match none."""

    name: str
    share: float
    sources: int


MIXES = {
    # with many directives a backlog rarely gets the 6 events of stage 2 (and no alarm)
    "spread": Mix("spread", 0.1, 50),
    # a backlog reaches its last stage (and alarms fire) at any directive count once a
    # directive gets about 50 events, e.g. 500,000 events at 1,000 directives
    "alarms": Mix("alarms", 0.2, 2),
}


def write_events(
    path: Path, n_directives: int, n_events: int, seed: int = 1, t0: int = T0,
    mix: Mix = MIXES["spread"],
) -> None:
    rnd = random.Random(seed)
    with path.open("w") as f:
        for i in range(n_events):
            ts = datetime.fromtimestamp(t0 + i // 200, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            if rnd.random() < mix.share:
                d = rnd.randrange(n_directives)
                plugin_id, sid = PLUGIN_ID, d + 1
                src = f"198.51.{d % 200}.{rnd.randrange(mix.sources)}"
            else:
                plugin_id, sid = NOISE_PLUGIN_ID, rnd.randrange(1, 5000)
                src = f"203.0.113.{rnd.randrange(250)}"
            f.write(
                json.dumps(
                    {
                        "event_id": f"e{i}",
                        "timestamp": ts,
                        "title": "bench",
                        "sensor": "bench",
                        "plugin_id": plugin_id,
                        "plugin_sid": sid,
                        "src_ip": src,
                        "dst_ip": f"10.0.{d % 250 if plugin_id == PLUGIN_ID else 1}.5",
                        "src_port": 40000 + i % 1000,
                        "dst_port": 443,
                        "protocol": "TCP",
                    }
                )
                + "\n"
            )
