"""serve enriches alarms without stalling, and waits for lookups in flight when it stops."""

from __future__ import annotations

import json
import threading
import time

from fakeintel import FakeIntel, attack, intel_configs
from kit import wait_until
from servekit import publish


def test_lookups_in_flight_are_recorded_before_serve_exits(tmp_path, serve, nats_server):
    with FakeIntel() as fake:
        configs = intel_configs(tmp_path / "cfg", [fake.wise("hang")], [fake.nesd()])
        node = serve(configs=configs).start()
        publish(nats_server.url, attack("8.8.8.8", 3, base=int(time.time()) - 10))
        node.wait_for("SELECT count(*) FROM alarm_events", [(3,)])
        wait_until("a lookup in flight", lambda: fake.open >= 1)  # the lookup hangs...
        threading.Timer(1.0, fake.release.set).start()  # ...until after the stop signal
        assert node.stop() == 0
        lines = [json.loads(x) for x in (node.logs / "siem_alarms.json").read_text().splitlines()]
        assert lines[-1]["intel_hits"] == [{"provider": "Wise", "term": "8.8.8.8",
                                            "result": "description: blacklisted 8.8.8.8"}]
        assert node.query("SELECT term FROM alarm_intel") == [("8.8.8.8",)]
        assert len(node.query("SELECT term FROM alarm_vulns")) == 2
