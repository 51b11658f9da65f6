"""What a reload needs of the database (issue 14): directive versions stay right when
definitions come and go, and each reload is recorded and shown in `config_reloads`."""

from __future__ import annotations

import gc
import hashlib
import json
import sqlite3

import kit
from kit import CONFIGS, T0, ok, rule

from dsiem_sql.config import load_config
from dsiem_sql.config.models import DirectiveConfig
from dsiem_sql.store.rows import definition_json
from dsiem_sql.store.store import ReloadRecord, ShaOf, Store


def stage_directive(occurrence: int) -> DirectiveConfig:
    return DirectiveConfig.model_validate(
        kit.directive(1, [rule(1), rule(2, occurrence=occurrence, timeout=60)]))


def sha(definition: DirectiveConfig) -> str:
    return hashlib.sha256(definition_json(definition).encode()).hexdigest()


def test_a_freed_definition_never_lends_its_version_to_a_new_one():
    """After a reload, an old definition can be freed and a new one created at the same
    address: the store must not take the new one for the old (backlog rows name their
    definition's `directive_versions` row by this sha256)."""
    sha_of = ShaOf()
    old = stage_directive(3)
    old_sha = sha(old)
    assert sha_of(old) == old_sha
    assert len(sha_of) == 1
    address = id(old)
    del old
    gc.collect()
    assert len(sha_of) == 0  # gone with its definition
    reused = None
    for _ in range(2000):  # CPython may soon give the freed memory to a new object
        candidate = stage_directive(5)
        if id(candidate) == address:
            reused = candidate
            break
    new = reused or stage_directive(5)
    assert sha_of(new) == sha(new) != old_sha
    assert sha_of(stage_directive(3)) == old_sha


async def test_reloads_are_recorded_with_a_hash_per_file(tmp_path):
    config = load_config(CONFIGS)
    files = tuple((f.path.name, f.sha256) for f in config.files)
    store = Store(tmp_path / "state.db", None)
    await store.open()
    try:
        await store.record_reload(ReloadRecord(
            started=T0 + 0.25, seconds=0.01, trigger="start", result="success",
            message="loaded", configs=str(CONFIGS), files=files))
        await store.record_reload(ReloadRecord(
            started=T0 + 60, seconds=0.02, trigger="SIGHUP", result="failure",
            message="directives_x.json: bad", configs=str(CONFIGS)))
    finally:
        await store.close()
    con = sqlite3.connect(tmp_path / "state.db")
    rows = con.execute("SELECT * FROM config_reloads").fetchall()
    con.close()
    assert [r[:6] for r in rows] == [
        (1, "2024-05-01T10:00:00.250Z", "start", "success", "loaded", str(CONFIGS)),
        (2, "2024-05-01T10:01:00.000Z", "SIGHUP", "failure", "directives_x.json: bad",
         str(CONFIGS)),
    ]
    recorded = json.loads(rows[0][6])
    assert recorded == {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest()
        for p in CONFIGS.glob("*.json")
    }
    assert json.loads(rows[1][6]) == {}
    assert [r[7] for r in rows] == [0.01, 0.02]



def test_a_resumed_backlog_gets_the_events_of_its_own_definition(tmp_path):
    """A restart after the config changed (or after a reload): the backlog resumed with its
    stored definition still receives the plugin SID that definition waits for, though the
    loaded directive now waits for another."""
    configs, db, out = tmp_path / "configs", tmp_path / "state.db", tmp_path / "out"
    configs.mkdir()
    (configs / "assets_x.json").write_text(json.dumps(
        {"assets": [{"name": "lan", "cidr": "10.0.0.0/8", "value": 5}]}))

    def directives(sid2: int) -> None:
        d = kit.directive(1, [rule(1), rule(2, plugin_sid=[sid2], occurrence=2, timeout=3600,
                                           **{"from": ":1"})])
        (configs / "directives_x.json").write_text(json.dumps({"directives": [d]}))

    def run(name: str, *events: dict) -> None:
        path = tmp_path / f"{name}.jsonl"
        path.write_text("".join(json.dumps(e) + "\n" for e in events))
        ok(kit.replay(configs, out, path, "--db", db))

    directives(sid2=2)
    run("first", kit.event("open", T0, "10.0.0.1", "10.0.0.2"))
    directives(sid2=3)
    run("second", *(kit.event(f"old-{n}", T0 + n, "10.0.0.1", "10.0.0.2", plugin_sid=2)
                    for n in (1, 2)))
    con = sqlite3.connect(db)
    try:
        assert con.execute("SELECT state FROM backlogs").fetchall() == [("finished",)]
        assert con.execute("SELECT stage, event_id FROM stage_events ORDER BY id").fetchall() \
            == [(1, "open"), (2, "old-1"), (2, "old-2")]
    finally:
        con.close()
