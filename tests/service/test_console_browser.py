"""The console in a real browser (issue 20): headless Chromium (Debian's chromium and
chromium-driver) driven by selenium, on the console of a `dsiem-sql serve` process that
correlates events published on a real nats-server. The live backlogs page shows a new backlog
by itself, clicking its id opens its story, the dashboard draws its charts, a write through
the SQL box is refused, and nothing is loaded from anywhere but the console.

Skipped, saying why, where Chromium or chromedriver is missing (scripts/setup-browser
installs them when run as root; CI does)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from consolekit import Console, browser_missing, chromium, requested, wait_for
from kit import cli, ok, ping_events
from servekit import NatsServer, Serve, free_port, publish

missing = browser_missing()
pytestmark = pytest.mark.skipif(missing is not None, reason=f"no browser: {missing}")

TITLE = "Ping Flood from 10.0.0.1"  # the alarm of ping_events on the example configs


class Live:
    """nats-server, serve, the console and a browser, for the tests of this module."""

    def __init__(self, nats_url: str, serve: Serve, console: Console, browser: Any):
        self.nats_url = nats_url
        self.serve = serve
        self.console = console
        self.browser = browser
        self.published = 0.0  # when the events were published (0: not yet)
        self.loaded: set[str] = set()  # every URL the browser loaded

    def open(self, path: str) -> None:
        self.browser.get(self.console.url + path)
        self.loaded.update(requested(self.browser))

    def publish(self) -> None:
        if not self.published:
            base = int(time.time()) - 175  # the last one now, none older than --max-delay
            publish(self.nats_url, ping_events(base))
            self.published = time.monotonic()

    def alarm_id(self) -> str:
        """The id of the alarm of the events, once serve committed all of them."""
        self.publish()
        self.serve.wait_for("SELECT count(*) FROM stage_events", [(17,)])
        [(alarm_id,)] = self.serve.query(f"SELECT id FROM backlogs WHERE title = '{TITLE}'")
        return alarm_id

    def text(self) -> str:
        """What the page shows now (in one call: the page may be reloading itself)."""
        return self.browser.execute_script("return document.body.innerText")

    def unchanged(self) -> bool:
        """Whether the page, asked for again, shows what the page on screen shows (what the
        live page compares), once the browser's scripts have changed the one on screen."""
        return self.browser.execute_async_script("""
            const done = arguments[arguments.length - 1];
            fetch(location.href, {cache: "no-store"}).then((r) => r.text()).then((html) => {
              const doc = new DOMParser().parseFromString(html, "text/html");
              done(dsiemLive.signature(doc) === dsiemLive.signature(document));
            });""")

    def click(self, link_text: str) -> None:
        """Click the link, found again if the page reloaded itself meanwhile."""
        from selenium.common.exceptions import StaleElementReferenceException

        def clicked() -> bool:
            try:
                links = self.browser.find_elements("link text", link_text)
                if links:
                    links[0].click()
                return bool(links)
            except StaleElementReferenceException:
                return False

        wait_for(f"a link {link_text}", clicked, 10)


@pytest.fixture(scope="module")
def live(tmp_path_factory) -> Iterator[Live]:
    work = tmp_path_factory.mktemp("browser")
    nats = NatsServer(free_port())
    nats.start()
    serve = Serve(work / "serve", nats.url).start()
    console = Console(serve.db, workdir=work / "console").start()
    try:
        with chromium() as browser:
            yield Live(nats.url, serve, console, browser)
    finally:
        console.stop()
        serve.stop()
        nats.stop()


def test_the_live_backlogs_page_shows_a_new_backlog_by_itself(live):
    live.open("/dsiem/live_backlogs")
    assert "0 rows" in live.text() or TITLE not in live.text()
    live.browser.execute_script("window.dsiemMark = 'still this page'")
    live.publish()
    wait_for(f"{TITLE} on the live backlogs page", lambda: TITLE in live.text(), 10)
    seconds = time.monotonic() - live.published
    assert seconds < 10
    # the page reloaded itself (the browser did not get it again from the test)
    assert live.browser.execute_script("return window.dsiemMark || null") is None
    assert live.browser.find_element("css selector", "#dsiem-live").text.startswith("live")
    assert live.unchanged()  # nothing changes now: the page stays as it is
    live.loaded.update(requested(live.browser))


def test_clicking_an_alarm_id_opens_its_story(live):
    alarm_id = live.alarm_id()
    live.open("/dsiem/live_backlogs")
    live.click(alarm_id)
    wait_for("the story page", lambda: "/-/story/" in live.browser.current_url, 10)
    live.loaded.update(requested(live.browser))
    title = live.browser.find_element("css selector", "h1").text
    assert title == f"{alarm_id}: {TITLE}"
    stages = live.browser.find_elements("css selector", "section.dsiem-stage")
    assert [s.find_element("css selector", "h2").text for s in stages] == [
        "Stage 1: ICMP Ping finished 1/1", "Stage 2: ICMP Ping finished 5/5",
        "Stage 3: ICMP Ping active 10/500"]
    events = [row.text.split()[0] for row in
              live.browser.find_elements("css selector", "table.dsiem-events tbody tr")]
    assert events == [f"ping-{n:02d}" for n in range(1, 18) if n != 3]
    assert "10.0.0.1" in stages[0].text and "10.0.0.3" in stages[0].text
    waits = live.browser.find_element("css selector", "dd.dsiem-waiting").text
    assert waits.startswith('stage 3 ("ICMP Ping"): 490 more events (10/500 taken)')
    assert "left by the wall clock" in live.text()  # serve writes this database
    live.open("/dsiem/backlogs")  # also from the table, whose ids datasette links to rows
    assert live.unchanged()
    live.click(alarm_id)
    wait_for("the story page", lambda: live.browser.current_url.endswith(
        f"/-/story/{alarm_id}"), 10)


def test_the_dashboard_draws_its_charts(live):
    live.alarm_id()
    live.open("/-/dashboards/dsiem")

    def marks() -> dict[str, int]:
        return live.browser.execute_script("""
            const found = {};
            for (const slug of ['alarms-per-hour', 'live-per-directive', 'progress']) {
              found[slug] = document.querySelectorAll(
                `#chart-${slug} svg .mark-rect path`).length;
            }
            return found;""")

    drawn = wait_for("the charts", lambda: all(marks().values()) and marks(), 15)
    assert drawn["alarms-per-hour"] >= 1 and drawn["live-per-directive"] >= 1
    assert drawn["progress"] >= 1
    metrics = [live.browser.find_element("css selector", f"#chart-{slug}").text
               for slug in ("live-count", "alarms-count")]
    assert metrics == ["2", "1"]  # two live Ping Flood backlogs, one of them an alarm
    live.loaded.update(requested(live.browser))


def test_a_write_through_the_sql_box_is_refused(live):
    alarm_id = live.alarm_id()
    before = live.serve.query("SELECT count(*) FROM backlogs")
    for statement, refusal in (
            ("DELETE FROM backlogs", "Statement must be a SELECT"),
            ("WITH x AS (SELECT 1) DELETE FROM backlogs",
             "attempt to write a readonly database"),
            (f"UPDATE backlogs SET risk = 10 WHERE id = '{alarm_id}'",
             "Statement must be a SELECT")):
        live.open("/dsiem")
        live.browser.execute_script(
            "document.querySelector('.CodeMirror').CodeMirror.setValue(arguments[0])", statement)
        live.browser.find_element("css selector", "form.sql input[type=submit]").click()
        wait_for(refusal, lambda r=refusal: r in live.text(), 10)
        live.loaded.update(requested(live.browser))
    assert live.serve.query("SELECT count(*) FROM backlogs") == before
    assert live.serve.query(f"SELECT risk FROM backlogs WHERE id = '{alarm_id}'") == [(2,)]


def test_the_json_of_live_backlogs_is_what_dsiem_sql_sql_gives(live):
    live.alarm_id()
    query = "SELECT * FROM live_backlogs ORDER BY alarm_id"
    console = live.console.json("/dsiem.json?sql=" + query.replace(" ", "+") + "&_shape=array")
    table = live.console.json("/dsiem/live_backlogs.json?_shape=array&_sort=alarm_id")
    sql = json.loads(ok(cli("sql", "--db", live.serve.db, "--format", "json", query)).stdout)
    assert console == sql == table
    assert len(sql) == 2


def test_nothing_was_loaded_from_elsewhere_than_the_console(live):
    assert live.loaded, "the other tests loaded nothing"
    elsewhere = sorted(url for url in live.loaded if not url.startswith(live.console.url + "/"))
    assert not elsewhere
    assert any(url.endswith("/vega-lite.min.js") for url in live.loaded)
