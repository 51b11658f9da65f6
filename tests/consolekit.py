"""`dsiem-sql console` as a real process, and a headless Chromium driven by selenium through
Debian's chromedriver, for the console's tests (and scripts/screenshots.py).

Nothing here imports dsiem_sql (scripts/test-wheel runs tests/acceptance against an installed
wheel), nor pytest (scripts/screenshots.py uses it)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from kit import COMMAND, cli_env, wait_until

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
# Headless, and nothing of its own on the network: this machine (and a SOC's) has no way
# out, and Chromium's background connections, refused many at a time, slow it down.
CHROMIUM_FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-dev-shm-usage",
)
INSTALL = ("apt-get install -y chromium chromium-driver (scripts/setup-browser does it as "
           "root)")


class Console:
    """One `dsiem-sql console --db DB --port 0` process; its URL is the one it prints."""

    def __init__(self, db: Path, *extra: str | Path, workdir: Path,
                 env: dict[str, str | None] | None = None):
        self.db = db
        self.args = [*COMMAND, "console", "--db", str(db), "--port", "0", *map(str, extra)]
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.stdout = workdir / "console.out"
        self.log = workdir / "console.log"
        self.env = env or {}
        self.proc: subprocess.Popen | None = None
        self.url = ""

    def start(self, timeout: float = 30) -> Console:
        with self.stdout.open("wb") as out, self.log.open("ab") as log:
            self.proc = subprocess.Popen(self.args, cwd=self.workdir, stdout=out, stderr=log,
                                         env=cli_env(**self.env))

        def announced() -> str:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise AssertionError(f"console exited {self.proc.returncode}:\n"
                                     f"{self.stdout.read_text()}{self.log.read_text()}")
            words = self.stdout.read_text().split()
            return next((w for w in words if w.startswith("http://")), "")

        self.url = wait_until("the console's URL", announced, timeout).rstrip("/")
        wait_until(lambda: f"the console at {self.url}:\n{self.log.read_text()}",
                   lambda: self.status("/-/versions.json") == 200, timeout)
        return self

    def stop(self) -> int:
        assert self.proc is not None
        self.proc.terminate()
        try:
            code = self.proc.wait(20)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
        self.proc = None
        return code

    def request(self, path: str, data: bytes | None = None, method: str | None = None,
                headers: dict[str, str] | None = None) -> tuple[int, bytes]:
        """(status, body) of a request; `path` is quoted as it is."""
        request = urllib.request.Request(self.url + path, data=data, method=method,
                                         headers=headers or {})
        try:
            with urllib.request.urlopen(request, timeout=30) as r:
                return r.status, r.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()

    def status(self, path: str) -> int | None:
        try:
            return self.request(path)[0]
        except OSError:
            return None

    def get(self, path: str) -> bytes:
        status, body = self.request(path)
        assert status == 200, f"GET {path}: {status}\n{body[:2000]!r}"
        return body

    def json(self, path: str) -> Any:
        return json.loads(self.get(path))


def browser_missing() -> str | None:
    """Why Chromium cannot run here, or None."""
    for path in (CHROMIUM, CHROMEDRIVER):
        if not (os.path.isfile(path) and os.access(path, os.X_OK)):
            return f"{path} is not installed: {INSTALL}"
    return None


@contextmanager
def chromium(width: int = 1400, height: int = 1000) -> Iterator[Any]:
    """A headless Chromium (Debian's, through its chromedriver) with a new empty profile."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="dsiem-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={profile}",
                 f"--window-size={width},{height}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def requested(driver: Any) -> list[str]:
    """Every URL the page loaded: itself and its resources (scripts, styles, fetches)."""
    return [driver.current_url, *driver.execute_script(
        "return performance.getEntriesByType('resource').map(e => e.name)")]


def wait_for(what: str, check: Any, timeout: float) -> Any:
    """wait_until for the browser tests, looking less often."""
    return wait_until(what, check, timeout, every=0.2)
