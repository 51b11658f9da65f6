#!/usr/bin/env python
"""Take the screenshots of docs/img/ (shown in the README and docs/console.md) from the real
console in a real browser: start a nats-server, `dsiem-sql serve` on examples/configs and
`dsiem-sql console` on its database, publish examples/events.jsonl (moved to now), then let
headless Chromium (Debian's, through chromedriver: scripts/setup-browser) take the live
backlogs page, the story of the riskiest live alarm, and the dashboard.

    .venv/bin/python scripts/screenshots.py [--out docs/img]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from consolekit import Console, browser_missing, chromium  # noqa: E402
from kit import CONFIGS, EXAMPLES, cli, ok, wait_until  # noqa: E402

BIN = Path(sys.executable).parent
WIDTH = 1280


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def started(args: list[str], log: Path) -> subprocess.Popen:
    with log.open("wb") as out:
        return subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT)


def committed(db: Path) -> list[dict]:
    query = "SELECT alarm_id, risk FROM live_backlogs ORDER BY risk DESC, alarm_id"
    return json.loads(ok(cli("sql", "--db", db, "--format", "json", query)).stdout)


def viewport(browser, width: int, height: int) -> None:
    browser.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
        "width": width, "height": height, "deviceScaleFactor": 1, "mobile": False})


def shoot(browser, url: str, path: Path, ready: str, width: int, height: int) -> None:
    """A screenshot of the page at `url` once `ready` (a JavaScript expression) is true,
    `width` wide and as tall as the page, at most `height`."""
    viewport(browser, width, height)
    browser.get(url)
    wait_until(f"{url}: {ready}", lambda: browser.execute_script(f"return Boolean({ready})"),
               20)
    time.sleep(0.5)  # the charts' last drawing
    tall = browser.execute_script(
        "return Math.ceil(document.querySelector('footer').getBoundingClientRect().bottom"
        " + window.scrollY)")
    viewport(browser, width, min(max(tall, 600), height))
    time.sleep(0.3)
    browser.save_screenshot(str(path))
    print(f"{path}: {url}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "img")
    args = parser.parse_args()
    if (missing := browser_missing()) is not None:
        sys.exit(f"scripts/screenshots.py: {missing}")
    args.out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="dsiem-screenshots-"))
    db = work / "dsiem.db"
    nats_port, metrics_port = free_port(), free_port()
    procs = [started([str(BIN / "nats-server"), "-a", "127.0.0.1", "-p", str(nats_port)],
                     work / "nats.log")]
    console = None
    try:
        procs.append(started(
            [str(BIN / "dsiem-sql"), "serve", "--node", "dsiem-backend-0", "--configs",
             str(CONFIGS), "--msq", f"nats://127.0.0.1:{nats_port}", "--db", str(db),
             "--logs", str(work / "logs"), "--metrics-port", str(metrics_port)],
            work / "serve.log"))
        wait_until("serve's database", lambda: (work / "logs").is_dir() and db.exists(), 30)
        time.sleep(1)
        ok(subprocess.run([sys.executable, str(ROOT / "scripts" / "publish_events.py"), "--url",
                           f"nats://127.0.0.1:{nats_port}", "--shift-to-now",
                           str(EXAMPLES / "events.jsonl")], capture_output=True, text=True))
        live = wait_until("the backlogs", lambda: len(committed(db)) == 4 and committed(db), 30)
        console = Console(db, "--configs", CONFIGS, workdir=work / "console").start()
        with chromium(WIDTH, 900) as browser:
            shoot(browser, f"{console.url}/dsiem/live_backlogs",
                  args.out / "console-live-backlogs.png",
                  "document.querySelector('table.rows-and-columns')", 1600, 900)
            shoot(browser, f"{console.url}/-/story/{live[0]['alarm_id']}",
                  args.out / "console-story.png",
                  "document.querySelector('section.dsiem-stage')", WIDTH, 1400)
            shoot(browser, f"{console.url}/-/dashboards/dsiem",
                  args.out / "console-dashboard.png",
                  "document.querySelectorAll('.dashboard-card svg .mark-rect path').length > 3",
                  WIDTH, 1200)
    finally:
        if console is not None and console.proc is not None:
            console.stop()
        for proc in reversed(procs):
            proc.terminate()
            proc.wait(20)


if __name__ == "__main__":
    main()
