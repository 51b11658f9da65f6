"""Asset lookups (docs/behaviour.md, "Assets"): HOME_NET, whitelist, value, networks and host
names."""

from __future__ import annotations

from dataclasses import dataclass

from dsiem_sql.config.netparse import IPNetwork, ip_number, net_number

_CACHE_LIMIT = 100_000


@dataclass(frozen=True, slots=True)
class Asset:
    name: str
    network: IPNetwork
    value: int
    whitelisted: bool

    @property
    def is_host(self) -> bool:
        return self.network.prefixlen == self.network.max_prefixlen


class Assets:
    """Answers per IP address (given as text). Answers are memoised per address."""

    def __init__(self, assets: list[Asset]):
        self.assets = tuple(assets)
        self.whitelist = tuple(a.network for a in assets if a.whitelisted)
        self._numbers = tuple((net_number(a.network), a) for a in assets)
        self._info: dict[str, tuple[bool, bool, int, tuple[str, ...], str | None]] = {}

    def __len__(self) -> int:
        return len(self.assets)

    def _lookup(self, ip_text: str) -> tuple[bool, bool, int, tuple[str, ...], str | None]:
        info = self._info.get(ip_text)
        if info is not None:
            return info
        ip = ip_number(ip_text)
        home = whitelisted = False
        value = 0
        networks: list[str] = []
        name = None
        if ip is not None:
            version, number = ip
            for (net_version, network, mask), a in self._numbers:
                if net_version != version or number & mask != network:
                    continue
                value = max(value, a.value)
                if a.whitelisted:
                    whitelisted = True
                    continue
                home = True
                if a.is_host:
                    name = name or a.name
                else:
                    networks.append(str(a.network))
        info = (home, whitelisted, value, tuple(networks), name)
        if len(self._info) >= _CACHE_LIMIT:
            self._info.clear()
        self._info[ip_text] = info
        return info

    def in_home_net(self, ip: str) -> bool:
        return self._lookup(ip)[0]

    def is_whitelisted(self, ip: str) -> bool:
        return bool(self.whitelist) and self._lookup(ip)[1]

    def value(self, ip: str) -> int:
        """Highest value of all assets containing `ip` (whitelisted ones too); 0 if none."""
        return self._lookup(ip)[2]

    def networks(self, ip: str) -> tuple[str, ...]:
        """Non-host, non-whitelisted asset networks containing `ip`, in file order."""
        return self._lookup(ip)[3]

    def name(self, ip: str) -> str | None:
        """Name of the first non-whitelisted host asset (/32, /128) that is `ip`."""
        return self._lookup(ip)[4]
