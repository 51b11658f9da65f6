"""Download the config files of this node from a Dsiem frontend (SPEC §3.2)."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import httpx
from pydantic import BaseModel, ValidationError

from dsiem_sql.config.errors import ConfigError

log = logging.getLogger(__name__)
SHARED_PREFIXES = ("assets_", "intel_", "vuln_")


class _Listed(BaseModel):
    filename: str


class _Listing(BaseModel):
    files: list[_Listed]


def wanted(filename: str, node: str) -> bool:
    """Assets, intel and vuln files, and this node's `directives_<node>_*` files."""
    return filename.startswith(SHARED_PREFIXES) or filename.startswith(f"directives_{node}_")


def unsafe(filename: str) -> bool:
    return "/" in filename or "\\" in filename or ".." in filename or filename.startswith(".")


async def download_config(frontend: str, node: str, directory: Path, timeout: float = 10) -> int:
    """Fetch the listing, then every wanted file into `directory`; returns the file count."""
    base = frontend.rstrip("/")
    directory.mkdir(parents=True, exist_ok=True)
    async with httpx.AsyncClient(timeout=timeout) as client:
        try:
            response = await client.get(f"{base}/config/")
        except httpx.HTTPError as exc:
            raise ConfigError(
                f"cannot get a list of config files from frontend {base}: {exc!r}"
            ) from None
        if response.status_code != 200:
            raise ConfigError(
                f"cannot get a list of config files from frontend {base}: "
                f"HTTP {response.status_code}"
            )
        try:
            listing = _Listing.model_validate_json(response.content)
        except ValidationError as exc:
            raise ConfigError(
                f"frontend {base} sent a config listing that is not "
                f'{{"files": [{{"filename": ...}}]}}: {exc.errors(include_url=False)[0]["msg"]}'
            ) from None
        count = 0
        for item in listing.files:
            name = item.filename
            if unsafe(name):
                raise ConfigError(f"frontend {base} listed an unsafe file name {name!r}")
            if not wanted(name, node):
                continue
            try:
                got = await client.get(f"{base}/config/{name}")
            except httpx.HTTPError as exc:
                raise ConfigError(f"cannot download {name} from frontend {base}: {exc!r}") from None
            if got.status_code != 200:
                raise ConfigError(
                    f"cannot download {name} from frontend {base}: HTTP {got.status_code}"
                )
            target = directory / name
            partial = directory / f".{name}.part"
            partial.write_bytes(got.content)
            os.replace(partial, target)
            log.info("downloaded %s from %s", name, base)
            count += 1
    return count
