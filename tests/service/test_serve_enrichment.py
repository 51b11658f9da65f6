"""serve enriches alarms without stalling, and waits for lookups in flight when it stops."""

from __future__ import annotations

import json
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

from servekit import publish

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration"))
from fakeintel import FakeIntel
from test_enrichment import write_configs


def attack(n: int) -> list[dict]:
    now = int(time.time())
    return [{
        "event_id": f"a{i}", "timestamp": datetime.fromtimestamp(now - 10 + i, UTC).isoformat(),
        "title": "t", "sensor": "s", "plugin_id": 1, "plugin_sid": 1, "src_ip": "8.8.8.8",
        "dst_ip": "192.168.0.5", "src_port": 40000, "dst_port": 80, "protocol": "TCP",
    } for i in range(n)]


def test_lookups_in_flight_are_recorded_before_serve_exits(tmp_path, serve, nats_server):
    with FakeIntel() as fake:
        configs = write_configs(tmp_path / "cfg", [fake.wise("hang")], [fake.nesd()])
        node = serve(configs=configs).start()
        publish(nats_server.url, attack(3))
        node.wait_for("SELECT count(*) FROM alarm_events", [(3,)])
        deadline = time.monotonic() + 10
        while fake.open == 0 and time.monotonic() < deadline:  # the lookup hangs...
            time.sleep(0.05)
        assert fake.open >= 1
        threading.Timer(1.0, fake.release.set).start()  # ...until after the stop signal
        assert node.stop() == 0
        lines = [json.loads(x) for x in (node.logs / "siem_alarms.json").read_text().splitlines()]
        assert lines[-1]["intel_hits"] == [{"provider": "Wise", "term": "8.8.8.8",
                                            "result": "description: blacklisted 8.8.8.8"}]
        assert node.query("SELECT term FROM alarm_intel") == [("8.8.8.8",)]
        assert len(node.query("SELECT term FROM alarm_vulns")) == 2
