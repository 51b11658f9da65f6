"""Lookups in flight. They start from `Changes.lookups` and run as tasks of the caller's task
group while the engine goes on (a lookup that fails fails the group); their results are
applied on the engine's own task, through `Engine.enrich`."""

from __future__ import annotations

import asyncio

from dsiem_sql.engine import Backlog, Changes, Engine
from dsiem_sql.enrichment.enricher import Checker, Enricher

Result = tuple[Backlog, list[tuple[str, str, str]], list[tuple[str, str, str]]]


class Lookups:
    def __init__(self, enricher: Enricher, tasks: asyncio.TaskGroup):
        self.enricher = enricher
        self.tasks = tasks
        self.pending: set[asyncio.Task] = set()
        self.done: list[Result] = []

    def start(self, changes: Changes) -> None:
        """Start the lookups `changes` asked for (a no-op without intel or vuln sources), with
        the sources configured now."""
        if self.enricher:
            checkers = self.enricher.checkers
            for b in changes.lookups.values():
                ips = list(b.ips())
                sockets = list(dict.fromkeys([*b.src_sockets, *b.dst_sockets]))
                task = self.tasks.create_task(self._run(b, ips, sockets, checkers))
                self.pending.add(task)
                task.add_done_callback(self.pending.discard)
        changes.lookups.clear()

    async def _run(self, b: Backlog, ips: list[str], sockets: list[str],
                   checkers: list[Checker]) -> None:
        intel, vulns = await self.enricher.lookup(ips, sockets, checkers)
        self.done.append((b, intel, vulns))

    def apply(self, engine: Engine, into: Changes) -> None:
        """Merge the results that arrived into their alarms."""
        for b, intel, vulns in self.done:
            engine.enrich(b, intel, vulns, into=into)
        self.done.clear()

    async def drain(self) -> None:
        """Wait for the lookups in flight: at most about one request timeout."""
        if self.pending:
            await asyncio.wait(set(self.pending), timeout=self.enricher.timeout + 1)

    def cancel(self) -> None:
        """Give up the lookups still in flight (after `drain`)."""
        for task in self.pending:
            task.cancel()
