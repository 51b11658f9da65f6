"""Issue 14: a reload's intel and vuln sources apply to the lookups started after it, against
real local HTTP servers."""

from __future__ import annotations

import asyncio
import json

from fakeintel import FakeIntel, attack, intel_configs

from dsiem_sql.config import load_config
from dsiem_sql.engine import Changes, Engine, decode_event
from dsiem_sql.enrichment.enricher import Enricher, checkers
from dsiem_sql.enrichment.lookups import Lookups


def alarm_changes(engine: Engine, src: str) -> Changes:
    """The changes of an attack from `src` that finishes stage 1 (a lookup is asked for)."""
    changes = Changes()
    for e in attack(src, 1):
        engine.process(decode_event(json.dumps(e)), into=changes)
    assert changes.lookups
    return changes


async def test_a_lookup_started_before_a_reload_keeps_its_sources(tmp_path):
    with FakeIntel() as fake:
        old = load_config(intel_configs(tmp_path / "old", [fake.wise("500")], []))
        new = load_config(intel_configs(tmp_path / "new", [fake.wise()], []))
        engine = Engine(old)
        async with Enricher(checkers(old.intel, old.vuln)) as enricher, \
                asyncio.TaskGroup() as tasks:
            lookups = Lookups(enricher, tasks)
            lookups.start(alarm_changes(engine, "8.8.8.8"))
            enricher.use(checkers(new.intel, new.vuln))  # before the lookup's task ran
            engine.reload(new)
            lookups.start(alarm_changes(engine, "9.9.9.9"))
            await lookups.drain()
        assert fake.requests == {"wise/500/8.8.8.8": 1, "wise/ok/9.9.9.9": 1}
        results = {tuple(b.src_ips): intel for b, intel, _ in lookups.done}
        assert results == {("8.8.8.8",): [],
                           ("9.9.9.9",): [("Wise", "9.9.9.9", "description: blacklisted "
                                                             "9.9.9.9")]}


async def test_a_changed_source_is_asked_again_despite_the_cache(tmp_path):
    """The cache is keyed by the source itself: a source of the same name and place in the
    file with another URL does not answer from the old one's cache."""
    with FakeIntel() as fake:
        old = load_config(intel_configs(tmp_path / "old", [fake.wise("500")], []))
        new = load_config(intel_configs(tmp_path / "new", [fake.wise()], []))
        kept = load_config(intel_configs(tmp_path / "kept", [fake.wise()], []))
        async with Enricher(checkers(old.intel, old.vuln), cache_minutes=10) as enricher:
            assert await enricher.lookup(["8.8.8.8"], []) == ([], [])
            enricher.use(checkers(new.intel, new.vuln))
            hits, _ = await enricher.lookup(["8.8.8.8"], [])
            assert hits == [("Wise", "8.8.8.8", "description: blacklisted 8.8.8.8")]
            enricher.use(checkers(kept.intel, kept.vuln))  # the same source again: cached
            assert (await enricher.lookup(["8.8.8.8"], []))[0] == hits
        assert fake.requests == {"wise/500/8.8.8.8": 1, "wise/ok/8.8.8.8": 1}


async def test_sources_added_by_a_reload_get_a_client(tmp_path):
    with FakeIntel() as fake:
        none = load_config(intel_configs(tmp_path / "none", [], []))
        some = load_config(intel_configs(tmp_path / "some", [fake.wise()], [fake.nesd()]))
        async with Enricher(checkers(none.intel, none.vuln)) as enricher:
            assert not enricher
            enricher.use(checkers(some.intel, some.vuln))
            hits, vulns = await enricher.lookup(["8.8.8.8"], ["8.8.8.8:80"])
        assert len(hits) == 1 and len(vulns) == 1
