// hookclient store dashboard: live updates over /api/stream (Server-Sent Events), and
// keyboard navigation of the session list. No library, no build step; every request goes
// to the store that served the page.
"use strict";

(function () {
  const state = document.getElementById("live-state");
  const feed = document.getElementById("live-events");
  const sessionId = document.body.dataset.session || null;
  let source = null;
  let retry = 1000;
  const refreshing = new Map();

  function show(text, cls) {
    if (!state) return;
    state.textContent = text;
    state.className = "live " + cls;
  }

  // Re-fetch a server-rendered part of the page (at most one fetch in flight per part,
  // and one more queued behind it), then swap it in.
  function refresh(el) {
    const pending = refreshing.get(el);
    if (pending) { pending.again = true; return; }
    const entry = { again: false };
    refreshing.set(el, entry);
    fetch(el.dataset.liveSrc, { credentials: "same-origin", headers: { "Accept": "text/html" } })
      .then((r) => (r.ok ? r.text() : Promise.reject(r.status)))
      .then((html) => { el.innerHTML = html; })
      .catch(() => {})
      .finally(() => {
        refreshing.delete(el);
        if (entry.again) refresh(el);
      });
  }

  function refreshAll() {
    document.querySelectorAll("[data-live-src]").forEach((el) => {
      if (el.id === "conversation") return; // only when its own session changes
      refresh(el);
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
    refreshAll();
    if (sessionId && data.sessionId === sessionId) {
      const conversation = document.getElementById("conversation");
      if (conversation) refresh(conversation);
    }
  }

  function connect() {
    source = new EventSource("/api/stream", { withCredentials: true });
    source.addEventListener("open", () => { retry = 1000; show("live", "on"); });
    source.addEventListener("event", onEvent);
    source.addEventListener("error", () => {
      // The browser retries by itself while the connection is merely lost; once it gives
      // up (the store answered with an error while restarting), start over with backoff.
      show("reconnecting…", "off");
      if (source.readyState === EventSource.CLOSED) {
        source = null;
        setTimeout(connect, retry);
        retry = Math.min(retry * 2, 15000);
      }
    });
  }

  // Arrow keys move between the session list's links; Enter follows one (the browser's own).
  function sessionKeys() {
    const list = document.getElementById("session-list");
    if (!list) return;
    list.addEventListener("keydown", (e) => {
      if (e.key !== "ArrowDown" && e.key !== "ArrowUp") return;
      const links = Array.from(list.querySelectorAll("a.session-link"));
      const at = links.indexOf(document.activeElement);
      if (at < 0) return;
      const next = links[at + (e.key === "ArrowDown" ? 1 : -1)];
      if (next) { next.focus(); e.preventDefault(); }
    });
  }

  sessionKeys();
  if (state) connect();
})();
