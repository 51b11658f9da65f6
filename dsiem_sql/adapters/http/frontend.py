"""Download the config files of this node from a Dsiem frontend (docs/behaviour.md,
"Config download").

Files go to a hidden staging directory inside `--configs` (which may be a mount point, so it
is never renamed itself). Only when every file arrived, and the directory as the service will
load it passes validation, are the files moved in, one `os.replace` each. Any failure, the
deadline, or a stop leaves `--configs` as it was.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import tempfile
from pathlib import Path
from urllib.parse import quote

import httpx
from pydantic import BaseModel, ValidationError

from dsiem_sql import defaults
from dsiem_sql.config.errors import ConfigError
from dsiem_sql.config.loader import load_config
from dsiem_sql.runtime.aio import Stopped, unless_stopped

log = logging.getLogger(__name__)
SHARED_PREFIXES = ("assets_", "intel_", "vuln_")
STAGING_PREFIX = ".download-"
MB = defaults.MB
MAX_LISTING = 8 * MB
REQUEST_TIMEOUT = 10.0  # connect, and each read or write; the deadline bounds the whole


class _Listed(BaseModel):
    filename: str


class _Listing(BaseModel):
    files: list[_Listed]


def wanted(filename: str, node: str) -> bool:
    """Assets, intel and vuln files, and this node's `directives_<node>_*` files."""
    return filename.startswith(SHARED_PREFIXES) or filename.startswith(f"directives_{node}_")


def unsafe(filename: str) -> str | None:
    """Why `filename` cannot be a file of the config directory, or None."""
    if "/" in filename or "\\" in filename:
        return "it contains a path separator"
    if ".." in filename:
        return "it contains '..'"
    if filename.startswith("."):
        return "it starts with a dot"
    if any(ord(c) < 32 or ord(c) == 127 for c in filename):
        return "it contains a control character"
    try:
        filename.encode("utf-8")
    except UnicodeEncodeError:
        return "it is not valid Unicode"
    return None


class TooLarge(Exception):
    pass


async def download_config(
    frontend: str,
    node: str,
    directory: Path,
    *,
    deadline: float = defaults.FRONTEND_TIMEOUT,
    max_file_size: int = defaults.MAX_CONFIG_SIZE_MB * MB,
    stop: asyncio.Event | None = None,
) -> int | None:
    """Download this node's files into `directory`; returns the file count, or None when
    `stop` was set first (then `directory` is left as it was)."""
    if stop is None:
        return await _Download(frontend, node, directory, max_file_size).run(deadline)
    try:
        return await unless_stopped(
            stop, _Download(frontend, node, directory, max_file_size).run(deadline)
        )
    except Stopped:
        log.warning(
            "stopped while downloading the config from %s; %s is unchanged", frontend, directory
        )
        return None


class _Download:
    def __init__(self, frontend: str, node: str, directory: Path, max_file_size: int):
        self.base = frontend.rstrip("/")
        self.node = node
        self.directory = directory
        self.max_file_size = max_file_size
        self.current = "the list of config files"  # for the deadline message

    async def run(self, deadline: float) -> int:
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            staging = Path(tempfile.mkdtemp(prefix=STAGING_PREFIX, dir=self.directory))
        except OSError as exc:
            raise ConfigError(
                f"cannot create a download directory: {exc.strerror}", self.directory
            ) from None
        try:
            try:
                async with asyncio.timeout(deadline):
                    names = await self._fetch_all(staging)
            except TimeoutError:
                raise ConfigError(
                    f"frontend {self.base}: {self.current} not downloaded within the "
                    f"{deadline:g} s deadline of the whole download (--frontend-timeout)"
                ) from None
            self._check(staging, names)
            for name in names:
                os.replace(staging / name, self.directory / name)
                log.info("downloaded %s from %s", name, self.base)
            return len(names)
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    async def _fetch_all(self, staging: Path) -> list[str]:
        async with httpx.AsyncClient(timeout=REQUEST_TIMEOUT) as client:
            names = self._select(await self._listing(client))
            for name in names:
                self.current = name
                await self._fetch(client, name, staging / name)
        return names

    async def _listing(self, client: httpx.AsyncClient) -> _Listing:
        where = f"cannot get a list of config files from frontend {self.base}"
        body = bytearray()
        try:
            async with client.stream("GET", f"{self.base}/config/") as response:
                if response.status_code != 200:
                    raise ConfigError(f"{where}: HTTP {response.status_code}")
                async for chunk in _limited(response, MAX_LISTING):
                    body += chunk
        except httpx.HTTPError as exc:
            raise ConfigError(f"{where}: {exc!r}") from None
        except TooLarge as exc:
            raise ConfigError(f"{where}: it is larger than {MAX_LISTING // MB} MB: {exc}") from None
        try:
            return _Listing.model_validate_json(bytes(body))
        except ValidationError as exc:
            raise ConfigError(
                f"frontend {self.base} sent a config listing that is not "
                f'{{"files": [{{"filename": ...}}]}}: {exc.errors(include_url=False)[0]["msg"]}'
            ) from None

    def _select(self, listing: _Listing) -> list[str]:
        """The wanted names, once each; a wanted name that is unsafe stops the download."""
        names: dict[str, None] = {}
        for item in listing.files:
            name = item.filename
            if not wanted(name, self.node):
                log.debug("frontend %s lists %r: not a file of this node, ignored", self.base, name)
                continue
            reason = unsafe(name)
            if reason:
                raise ConfigError(
                    f"frontend {self.base} listed an unsafe file name {name!r}: {reason}"
                )
            names[name] = None
        return list(names)

    async def _fetch(self, client: httpx.AsyncClient, name: str, target: Path) -> None:
        where = f"cannot download {name} from frontend {self.base}"
        url = f"{self.base}/config/{quote(name, safe='')}"
        try:
            async with client.stream("GET", url) as response:
                if response.status_code != 200:
                    raise ConfigError(f"{where}: HTTP {response.status_code}")
                with target.open("wb") as f:
                    async for chunk in _limited(response, self.max_file_size):
                        f.write(chunk)
        except httpx.HTTPError as exc:
            raise ConfigError(f"{where}: {exc!r}") from None
        except TooLarge as exc:
            raise ConfigError(
                f"{where}: it is larger than the {self.max_file_size / MB:g} MB limit "
                f"(--max-config-size): {exc}"
            ) from None
        except OSError as exc:
            raise ConfigError(f"{where}: cannot write it: {exc.strerror}", self.directory) from None

    def _check(self, staging: Path, names: list[str]) -> None:
        """Load `directory` as it will be after the move: the local files that the download
        does not replace (linked in) with the downloaded ones."""
        for entry in os.scandir(self.directory):
            if not entry.name.startswith(".") and entry.name not in names:
                os.symlink(os.path.abspath(entry.path), staging / entry.name)
        loader = logging.getLogger("dsiem_sql.config.loader")
        level = loader.level
        loader.setLevel(logging.ERROR)  # the service loads the directory again, and logs then
        try:
            load_config(staging)
        except ConfigError as exc:
            path = Path(exc.path) if exc.path is not None else None
            if path is not None and path.parent == staging:
                where = (f"{path.name} from frontend {self.base}" if path.name in names
                         else str(self.directory / path.name))
            else:
                where = f"{self.directory} with the files of frontend {self.base}"
            raise ConfigError(exc.message, where) from None
        finally:
            loader.setLevel(level)


async def _limited(response: httpx.Response, limit: int):
    """The body in chunks; TooLarge, saying how large, once it is over `limit` bytes."""
    length = response.headers.get("content-length", "")
    if length.isdigit() and int(length) > limit:
        raise TooLarge(f"Content-Length {int(length)}")
    size = 0
    async for chunk in response.aiter_bytes():
        size += len(chunk)
        if size > limit:
            raise TooLarge(f"more than {limit} bytes")
        yield chunk
