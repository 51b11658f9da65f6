"""Runs the intel and vuln checkers for an alarm, concurrently, without blocking the engine.

One shared `httpx.AsyncClient`, a per-request timeout, a bound on requests in flight, a TTL
cache keyed by (checker, term) honouring `--cache`, and per-checker isolation: a checker
that fails or times out is logged and the others' results still count (docs/behaviour.md,
"Enrichment").
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import time
from collections.abc import Sequence

import httpx

from dsiem_sql import defaults
from dsiem_sql.config.loader import PluginSetup
from dsiem_sql.config.models import NesdConfig, WiseConfig
from dsiem_sql.enrichment.checkers import CheckFailed, Nesd, Record, Wise
from dsiem_sql.logtext import shown

log = logging.getLogger(__name__)
Checker = Wise | Nesd


def checkers(intel: Sequence[PluginSetup], vuln: Sequence[PluginSetup]) -> list[Checker]:
    """One checker per enabled source (the loader keeps only enabled ones)."""
    made: list[Checker] = []
    for setup in (*intel, *vuln):
        c = setup.config
        if isinstance(c, WiseConfig):
            made.append(Wise(setup.source.name, c.url))
        elif isinstance(c, NesdConfig):
            made.append(Nesd(setup.source.name, c.url, c.allow_low_severity))
    return made


def is_global(ip: str) -> bool:
    try:
        return ipaddress.ip_address(ip).is_global
    except ValueError:
        return False


class Enricher:
    def __init__(
        self,
        checkers: list[Checker],
        cache_minutes: int = defaults.CACHE_MINUTES,
        private_ips: bool = False,
        timeout: float = 10.0,
        concurrency: int = 16,
    ):
        self.checkers = checkers
        self.ttl = cache_minutes * 60
        self.private_ips = private_ips
        self.timeout = timeout
        self._slots = asyncio.Semaphore(concurrency)
        # keyed by the checker itself (its name and config), so that a reload that keeps a
        # source keeps its answers, and one that changes it starts afresh
        self._cache: dict[tuple[Checker, str], tuple[float, list[Record]]] = {}
        # requests under way: a concurrent lookup of the same (checker, term) waits for it
        self._inflight: dict[tuple[Checker, str], asyncio.Future[list[Record]]] = {}
        self._client: httpx.AsyncClient | None = None

    def __bool__(self) -> bool:
        return bool(self.checkers)

    async def __aenter__(self) -> Enricher:
        if self.checkers:  # a client costs a TLS context: none without a source
            self._client = httpx.AsyncClient(timeout=self.timeout)
        return self

    def use(self, checkers: list[Checker]) -> None:
        """The sources of a reloaded config, for the lookups started from now on (those under
        way finish with the sources they started with)."""
        self.checkers = checkers
        if checkers and self._client is None:
            self._client = httpx.AsyncClient(timeout=self.timeout)

    async def __aexit__(self, *exc: object) -> None:
        if self._client is not None:
            await self._client.aclose()

    async def lookup(
        self, ips: Sequence[str], sockets: Sequence[str], checkers: Sequence[Checker] | None = None
    ) -> tuple[list[Record], list[Record]]:
        """(intel hits, vulnerabilities) for these addresses and `ip:port` terms, from
        `checkers` (by default the current ones)."""
        jobs = []
        for checker in self.checkers if checkers is None else checkers:
            terms = ips if checker.kind == "intel" else sockets
            for term in terms:
                address = term.rpartition(":")[0].strip("[]") if checker.kind == "vuln" else term
                if checker.kind == "intel" and not self.private_ips and not is_global(address):
                    continue
                jobs.append(self._check(checker, term))
        intel: list[Record] = []
        vulns: list[Record] = []
        for checker_kind, records in await asyncio.gather(*jobs):
            (intel if checker_kind == "intel" else vulns).extend(records)
        return intel, vulns

    async def _check(self, checker: Checker, term: str) -> tuple[str, list[Record]]:
        key = (checker, term)
        cached = self._cache.get(key)
        if cached is not None and cached[0] > time.monotonic():
            return checker.kind, cached[1]
        if self.ttl and key in self._inflight:
            return checker.kind, await asyncio.shield(self._inflight[key])
        future: asyncio.Future[list[Record]] = asyncio.get_running_loop().create_future()
        if self.ttl:
            self._inflight[key] = future
        records: list[Record] = []
        try:
            records = await self._request(checker, term)
            if self.ttl:
                self._cache[key] = (time.monotonic() + self.ttl, records)
        finally:
            self._inflight.pop(key, None)
            future.set_result(records)
        return checker.kind, records

    async def _request(self, checker: Checker, term: str) -> list[Record]:
        assert self._client is not None, "use `async with Enricher(...)`"
        async with self._slots:
            try:
                return await checker.check(self._client, term)
            except CheckFailed as exc:
                log.warning(
                    "%s check error (%s %s): %s", checker.kind, checker.name, term, shown(exc)
                )
                return []
