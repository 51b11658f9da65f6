"""serve in-process with an absence stage: the wall-clock sweep wakes up in the second after
its deadline instead of at the next 10 s tick (docs/extensions.md, "Absence stages")."""

from __future__ import annotations

import time

from kit import directive, event, rule
from servicekit import InProcess
from test_service_core import write_configs

from dsiem_sql.runtime.intake import MemoryIntake

X = "ExtendedPluginRule"


async def test_an_absence_stage_completes_without_waiting_for_the_expiry_tick(tmp_path):
    engine_time = [int(time.time())]
    configs = write_configs(tmp_path / "configs", directive(1, [
        rule(1, type=X),
        rule(2, type=X, absent=True, plugin_sid=[2], timeout=60, **{"from": ":1"}),
        rule(3, type=X, plugin_sid=[3], timeout=60, **{"from": ":1"}),
    ]))
    intake = MemoryIntake(clock=lambda: engine_time[0])
    async with InProcess(tmp_path, intake, configs=configs, expiry_interval=10) as serve:
        start = engine_time[0]
        serve.put(event("e1", start, "10.0.0.1"))
        await serve.settle()
        assert serve.query("SELECT current_stage, deadline FROM backlogs") == [(2, start + 60)]
        engine_time[0] = start + 60  # the deadline itself: nothing is due
        await serve.turn(0.1)
        await serve.settle()
        assert serve.query("SELECT current_stage FROM backlogs") == [(2,)]
        engine_time[0] = start + 61  # past it; the 10 s tick is not due
        await serve.turn(0.1)
        await serve.settle()
        assert serve.query("SELECT current_stage, state, deadline FROM backlogs") == [
            (3, "live", start + 60 + 60)]
        # stage 3 is an ordinary stage: it waits for the tick
        engine_time[0] = start + 125
        await serve.turn(0.1)
        await serve.settle()
        assert serve.query("SELECT state FROM backlogs") == [("live",)]
        await serve.turn(10.0)
        await serve.settle()
        assert serve.query("SELECT state FROM backlogs") == [("expired",)]
