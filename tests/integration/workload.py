"""A deterministic workload for persistence tests: configs and a JSON-lines event stream."""

from __future__ import annotations

import json
import random
from pathlib import Path

from kit import T0, directive, event, rule

PLUGIN = 7000


def write_configs(directory: Path, n_directives: int = 20) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    assets = {"assets": [{"name": "home", "cidr": "10.0.0.0/8", "value": 5},
                         {"name": "dmz", "cidr": "172.16.0.0/12", "value": 3}]}
    (directory / "assets_w.json").write_text(json.dumps(assets))
    directives = []
    for i in range(n_directives):
        common = {"plugin_id": PLUGIN, "plugin_sid": [i + 1], "protocol": "TCP"}
        sticky = {"sticky_different": "DST_PORT"} if i % 3 == 0 else {}
        directives.append(directive(
            i + 1, [
                rule(1, name="s1", to="HOME_NET", **common),
                rule(2, name="s2", occurrence=4, reliability=5, timeout=120, **common, **sticky,
                     **{"from": ":1", "to": ":1"}),
                rule(3, name="s3", occurrence=12, reliability=9, timeout=600, **common,
                     **{"from": ":1"}),
            ],
            name=f"workload {i + 1} from SRC_IP", priority=2 + i % 4, kingdom="k", category="c",
            all_rules_always_active=i % 5 == 0,
        ))
    (directory / "directives_w_0.json").write_text(json.dumps({"directives": directives}))
    return directory


def events(n: int, n_directives: int = 20, seed: int = 7, start: int = 0, t0: int = T0,
           per_second: int = 40) -> list[str]:
    """`n` events from number `start` on, `per_second` events in each second of event time
    from `t0`."""
    rnd = random.Random(seed)
    lines = []
    for i in range(start, start + n):
        if rnd.random() < 0.3:
            d = rnd.randrange(n_directives)
            sid, src = d + 1, f"198.51.100.{rnd.randrange(12)}"
            dst = f"10.0.{d}.{rnd.randrange(3)}"
        else:
            sid, src, dst = 9000 + rnd.randrange(100), "203.0.113.9", "8.8.8.8"
        lines.append(json.dumps(event(
            f"e{i}", t0 + i // per_second, src, dst, title="w", sensor="w", plugin_id=PLUGIN,
            plugin_sid=sid, src_port=40000 + rnd.randrange(5),
            dst_port=rnd.choice([22, 80, 443, 8080]), protocol="TCP", custom_label1="k",
            custom_data1=rnd.choice(["a", "b", ""]),
        )))
    return lines
