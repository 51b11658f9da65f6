"""The Wise and Nesd protocols: one request per term, parsed results (docs/behaviour.md,
"Enrichment")."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

import httpx

Record = tuple[str, str, str]  # provider, term, result


class CheckFailed(Exception):
    """A lookup that failed; the message says why."""


_WISE_KEYS = re.compile(r"\b(field|len|value):")
NO_VULNERABILITY = "no vulnerability found\n"
SEVERE = ("Medium", "High", "Critical")


@dataclass(frozen=True)
class Wise:
    """Intel: `GET url` with `${ip}`; the body is a JS-like array of {field, len, value}."""

    name: str
    url: str
    provider: str = "Wise"
    kind: str = "intel"

    async def check(self, client: httpx.AsyncClient, ip: str) -> list[Record]:
        response = await _get(client, self.url.replace("${ip}", ip, 1))
        body = _WISE_KEYS.sub(r'"\1":', response.text)
        try:
            entries = json.loads(body)
            records = [
                (self.provider, ip, f"{e['field']}: {e['value']}")
                for e in entries
                if int(e["len"]) >= 5
            ]
        except (ValueError, TypeError, KeyError) as exc:
            raise CheckFailed(f"error parsing wise result: {exc}") from None
        return records


@dataclass(frozen=True)
class Nesd:
    """Vulnerabilities: `GET url` with `${ip}` and `${port}`; JSON array of findings."""

    name: str
    url: str
    allow_low_severity: bool = False
    provider: str = "Nesd"
    kind: str = "vuln"

    async def check(self, client: httpx.AsyncClient, term: str) -> list[Record]:
        ip, _, port = term.rpartition(":")
        url = self.url.replace("${ip}", ip.strip("[]"), 1).replace("${port}", port, 1)
        response = await _get(client, url, accept=(418,))
        if response.status_code == 418 or response.text == NO_VULNERABILITY:
            return []
        keep = (*SEVERE, "Low") if self.allow_low_severity else SEVERE
        try:
            findings = json.loads(response.text)
            records = []
            for f in findings:
                if f["risk"] not in keep:
                    continue
                cve = f.get("cve") or ""
                result = f"{f['risk']} - {f['name']}" + (f" ({cve})" if cve else "")
                records.append((self.provider, term, result))
        except (ValueError, TypeError, KeyError) as exc:
            raise CheckFailed(f"error parsing nesd result: {exc}") from None
        return records


async def _get(client: httpx.AsyncClient, url: str, accept: tuple[int, ...] = ()) -> httpx.Response:
    try:
        response = await client.get(url)
    except httpx.TimeoutException:
        raise CheckFailed(f"deadline has elapsed: {url}") from None
    except httpx.HTTPError as exc:
        raise CheckFailed(f"get request error: {url}: {exc!r}") from None
    if response.status_code >= 400 and response.status_code not in accept:
        raise CheckFailed(f"HTTP {response.status_code} from {url}")
    return response
