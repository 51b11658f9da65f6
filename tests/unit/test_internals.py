"""The private APIs of nats-py and aiosqlite that dsiem_sql/internals.py uses are there as
it expects; a release that moved them fails here, naming what changed, rather than in serve."""

from __future__ import annotations

import aiosqlite
import nats.aio.client

from dsiem_sql import internals


def test_the_private_apis_used_are_there():
    assert internals.problems() == [], (
        "a dependency changed the private API that dsiem_sql/internals.py uses; adapt that "
        "module (or pin the old release in pyproject.toml):\n" + "\n".join(internals.problems()))


def test_a_missing_private_api_is_named(monkeypatch):
    monkeypatch.delattr(nats.aio.client.Client, "_process_info")
    monkeypatch.delattr(aiosqlite.Connection, "_execute")
    assert internals.problems() == [
        "nats.aio.client.Client._process_info is gone",
        "aiosqlite.core.Connection._execute is gone",
    ]


def test_a_changed_signature_is_named(monkeypatch):
    async def _process_msg(self, sid, subject, reply, data):  # headers gone
        pass

    monkeypatch.setattr(nats.aio.client.Client, "_process_msg", _process_msg)
    assert internals.problems() == [
        "nats.aio.client.Client._process_msg takes ['self', 'sid', 'subject', 'reply', 'data'], "
        "not ['self', 'sid', 'subject', 'reply', 'data', 'headers']"]


def test_no_other_module_uses_a_private_api_of_those_packages():
    from pathlib import Path

    private = ("._process_msg", "._process_info", "._sid", "._id", "._server_info",
               "._current_server", "._execute", "._conn")
    package = Path(internals.__file__).parent
    found = [
        f"{path.relative_to(package)}: {name}"
        for path in package.rglob("*.py") if path.name != "internals.py"
        for name in private if name in path.read_text()
    ]
    assert found == []
