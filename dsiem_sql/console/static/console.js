/* The pages of the dsiem-sql console (docs/console.md).
 *
 * Folding: a table's column descriptions go into a "What the columns mean" box, closed, so
 * that the rows come first (each column's description is also its header's tooltip). The
 * ids of the backlogs table link to their stories.
 *
 * Live pages (docs/console.md, "Live pages"):
 * Every few seconds the page asks the console for itself again and compares what it shows
 * (the rows, the counts, a story) with what is on screen: when they differ, it reloads (the
 * browser keeps the scroll position). Nothing happens while they are the same, while the
 * page is hidden, while a field has the focus, a menu is open or text is selected, or when
 * paused (click the "live" badge). The dashboard's charts are drawn by script, so it reloads
 * when the database changed (/-/dsiem/state.json) instead. A page with an SQL editor (the
 * free query page) is never reloaded.
 */
window.dsiemLive = (function () {
  "use strict";
  const PAUSED = "dsiem-live-paused";
  const OPEN = "dsiem-live-open-details";
  const PARTS = "table.rows-and-columns, .zero-results, .facet-results, h3, .dsiem-story-live";

  function signature(doc) {
    return Array.from(doc.querySelectorAll(PARTS))
      .map((el) => el.textContent.replace(/\s+/g, ""))
      .join("|");
  }

  function busy() {
    const active = document.activeElement;
    if (active && ["INPUT", "SELECT", "TEXTAREA"].includes(active.tagName)) return true;
    if (Array.from(document.querySelectorAll(".dropdown-menu"))
      .some((menu) => menu.style.display === "block")) return true;
    if (document.querySelector("details.nav-menu[open]")) return true;
    const selection = window.getSelection();
    return Boolean(selection && selection.toString());
  }

  function keepOpenDetails() {
    const open = Array.from(document.querySelectorAll("section.content details"))
      .map((el, i) => (el.open ? i : -1)).filter((i) => i >= 0);
    sessionStorage.setItem(OPEN, JSON.stringify({ path: location.href, open: open }));
  }

  function restoreOpenDetails() {
    const kept = JSON.parse(sessionStorage.getItem(OPEN) || "null");
    sessionStorage.removeItem(OPEN);
    if (!kept || kept.path !== location.href) return;
    const all = document.querySelectorAll("section.content details");
    kept.open.forEach((i) => { if (all[i]) all[i].open = true; });
  }

  function reload() {
    keepOpenDetails();
    location.reload();
  }

  function badge(seconds) {
    const el = document.createElement("button");
    el.type = "button";
    el.id = "dsiem-live";
    el.className = "dsiem-live";
    function show() {
      const paused = sessionStorage.getItem(PAUSED) === "1";
      el.textContent = paused ? "paused: click to go live"
        : `live: looks for changes every ${seconds} s`;
      el.classList.toggle("dsiem-live-paused", paused);
    }
    el.addEventListener("click", () => {
      sessionStorage.setItem(PAUSED, sessionStorage.getItem(PAUSED) === "1" ? "0" : "1");
      show();
    });
    show();
    document.body.appendChild(el);
    return el;
  }

  async function changed(settings, first) {
    if (settings.whole) {
      const response = await fetch(settings.state, { cache: "no-store" });
      if (!response.ok) return false;
      const version = (await response.json()).version;
      return version !== first.version;
    }
    const response = await fetch(location.href, { cache: "no-store" });
    if (!response.ok) return false;
    const doc = new DOMParser().parseFromString(await response.text(), "text/html");
    return signature(doc) !== first.signature;
  }

  function start(settings) {
    if (document.readyState === "loading") {
      document.addEventListener("DOMContentLoaded", () => run(settings));
    } else {
      run(settings);
    }
  }

  async function run(settings) {
    if (document.querySelector("#sql-editor")) return;
    restoreOpenDetails();
    const el = badge(settings.seconds);
    const first = { signature: signature(document), version: null };
    if (settings.whole) {
      const response = await fetch(settings.state, { cache: "no-store" });
      first.version = response.ok ? (await response.json()).version : null;
    }
    async function tick() {
      try {
        if (sessionStorage.getItem(PAUSED) !== "1" && !document.hidden && !busy()) {
          if (await changed(settings, first)) {
            reload();
            return;
          }
          el.dataset.checked = new Date().toISOString();
        }
      } catch (err) {
        el.dataset.error = String(err);  /* the console is away: try again later */
      }
      window.setTimeout(tick, settings.seconds * 1000);
    }
    window.setTimeout(tick, settings.seconds * 1000);
  }

  return { start: start, signature: signature };
})();

(function () {
  "use strict";
  /* The ids of the backlogs table link to their stories, as everywhere else (datasette
     links a primary key to its row page, which stays at /dsiem/backlogs/ID). Only the
     link changes, not the text: the live pages compare the text with the console's. */
  function storyLinks() {
    document.querySelectorAll("body.db-dsiem.table-backlogs td.col-id.type-pk a")
      .forEach((a) => {
        a.href = "/-/story/" + encodeURIComponent(a.textContent);
        a.classList.add("dsiem-story");
        a.title = "its story";
      });
  }

  function fold() {
    const list = document.querySelector("dl.column-descriptions");
    if (!list || list.closest("details")) return;
    const box = document.createElement("details");
    box.className = "dsiem-columns";
    const summary = document.createElement("summary");
    summary.textContent = "What the columns mean";
    box.appendChild(summary);
    list.parentNode.insertBefore(box, list);
    box.appendChild(list);
    document.querySelectorAll("th[data-column-description]").forEach((th) => {
      th.title = th.dataset.columnDescription;
    });
  }
  function ready() {
    storyLinks();
    fold();
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", ready);
  } else {
    ready();
  }
})();
