// hookclient store dashboard: live updates over /api/stream (Server-Sent Events), and
// keyboard navigation of the session list. No library, no build step; every request goes
// to the store that served the page.
"use strict";

(function () {
  const state = document.getElementById("live-state");
  const feed = document.getElementById("live-events");
  const sessionId = document.body.dataset.session || null;
  // The most often a part of the page is fetched again while events stream in (ms):
  // the figures need not follow every event, and each fetch is a query on the store.
  const SPACING = { panels: 2000, conversation: 1000 };
  let retry = 1000;
  const parts = new Map();

  function show(text, cls) {
    if (!state) return;
    state.textContent = text;
    state.className = "live " + cls;
  }

  function signInAgain() {
    const here = location.pathname + location.search;
    location.assign("/login?next=" + encodeURIComponent(here));
  }

  // What the reader unfolded (thinking, tool calls) stays unfolded across a refresh.
  function swap(el, html) {
    const open = new Set(Array.from(el.querySelectorAll("details[open][id]"), (d) => d.id));
    const shut = new Set(
      Array.from(el.querySelectorAll("details[id]:not([open])"), (d) => d.id)
    );
    el.innerHTML = html;
    el.querySelectorAll("details[id]").forEach((d) => {
      if (open.has(d.id)) d.open = true;
      else if (shut.has(d.id)) d.open = false;
    });
  }

  // Fetch a server-rendered part of the page again, at most once per its spacing: an
  // event during a fetch or within the spacing gets one more fetch after it.
  function refresh(el) {
    const part = parts.get(el) || { busy: false, again: false, last: 0 };
    parts.set(el, part);
    if (part.busy) { part.again = true; return; }
    const wait = part.last + (SPACING[el.id] || 2000) - Date.now();
    if (wait > 0) {
      if (!part.timer) part.timer = setTimeout(() => { part.timer = null; refresh(el); }, wait);
      return;
    }
    part.busy = true;
    part.last = Date.now();
    fetch(el.dataset.liveSrc, { credentials: "same-origin", headers: { "Accept": "text/html" } })
      .then((r) => {
        if (r.status === 401) { signInAgain(); return null; }
        return r.ok ? r.text() : null;
      })
      .then((html) => { if (html !== null) swap(el, html); })
      .catch(() => {})
      .finally(() => {
        part.busy = false;
        if (part.again) { part.again = false; refresh(el); }
      });
  }

  function link(href, text) {
    const a = document.createElement("a");
    a.href = href;
    a.textContent = text;
    return a;
  }

  function onEvent(msg) {
    const data = JSON.parse(msg.data);
    if (feed) {
      const empty = document.getElementById("live-empty");
      if (empty) empty.remove();
      const li = document.createElement("li");
      li.className = "fresh";
      li.dataset.requestId = data.requestId;
      li.append(document.createTextNode((data.receivedAt || "") + " " + (data.event || "") + " "));
      li.append(link("/trace/" + encodeURIComponent(data.requestId), data.requestId));
      if (data.sessionId) {
        li.append(document.createTextNode(" in "));
        li.append(link("/sessions/" + encodeURIComponent(data.sessionId), data.sessionId));
      }
      feed.prepend(li);
      setTimeout(() => li.classList.remove("fresh"), 3000);
      while (feed.children.length > 100) feed.lastElementChild.remove();
    }
    const panels = document.getElementById("panels");
    if (panels) refresh(panels);
    if (sessionId && data.sessionId === sessionId) {
      const conversation = document.getElementById("conversation");
      if (conversation) refresh(conversation);
    }
  }

  function connect() {
    const source = new EventSource("/api/stream", { withCredentials: true });
    source.addEventListener("open", () => { retry = 1000; show("live", "on"); });
    source.addEventListener("event", onEvent);
    source.addEventListener("error", () => {
      // The browser retries by itself while the connection is merely lost. Once it gives
      // up (the stream ended or was refused), ask whether the sign-in still holds: if it
      // does, the store is restarting, so start over with backoff; if not, sign in.
      show("reconnecting…", "off");
      if (source.readyState !== EventSource.CLOSED) return;
      fetch("/signed-in", { credentials: "same-origin" })
        .then((r) => { if (r.status === 401) signInAgain(); else throw new Error("retry"); })
        .catch(() => {
          setTimeout(connect, retry);
          retry = Math.min(retry * 2, 15000);
        });
    });
  }

  // Arrow keys move between the session list's links, and ArrowDown from the search box
  // or the page itself enters the list; Enter follows a link (the browser's own).
  function sessionKeys() {
    const list = document.getElementById("session-list");
    if (!list) return;
    document.addEventListener("keydown", (e) => {
      if (e.key !== "ArrowDown" && e.key !== "ArrowUp") return;
      const links = Array.from(list.querySelectorAll("a.session-link"));
      const here = document.activeElement;
      const at = links.indexOf(here);
      const outside = here === document.body || (here && here.id === "q");
      if (at < 0 && !(outside && e.key === "ArrowDown")) return;
      const next = at < 0 ? links[0] : links[at + (e.key === "ArrowDown" ? 1 : -1)];
      if (next) { next.focus(); e.preventDefault(); }
    });
  }

  sessionKeys();
  if (state) connect();
})();
