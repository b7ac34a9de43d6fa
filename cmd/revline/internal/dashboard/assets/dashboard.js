// Revline dashboard: live updates, relative times and the confirmation
// dialogs. Plain JavaScript, no dependencies; pages work without it too,
// except for actions and live updates.
"use strict";
(function () {
  const live = document.getElementById("live");
  if (!live) return;
  const app = live.dataset.app || "";
  const conn = document.getElementById("conn");
  const notice = document.getElementById("notice");

  // Relative times: "5 min ago" and uptimes, kept current.
  function roughly(ms) {
    const s = Math.max(0, Math.floor(ms / 1000));
    if (s < 10) return "a few seconds";
    if (s < 60) return s + " s";
    if (s < 3600) return Math.floor(s / 60) + " min";
    if (s < 48 * 3600) return Math.floor(s / 3600) + " h";
    return Math.floor(s / 86400) + " days";
  }
  function updateTimes(root) {
    const now = Date.now();
    for (const el of (root || document).querySelectorAll("time[data-rel]")) {
      const d = now - Date.parse(el.getAttribute("datetime"));
      el.textContent = el.dataset.rel === "since" ? roughly(d) : roughly(d) + " ago";
    }
  }
  setInterval(() => updateTimes(document), 15000);

  function say(text, bad) {
    notice.textContent = text;
    notice.classList.toggle("bad", !!bad);
    notice.hidden = false;
    clearTimeout(say.timer);
    say.timer = setTimeout(() => { notice.hidden = true; }, bad ? 10000 : 5000);
  }

  // Refresh: fetch this page again (as of at least sequence seq) and swap
  // its live region, keeping the focus where it was.
  let refreshing = false, wanted = 0, pending = false;
  function focusKey(el) {
    if (!el || !live.contains(el) || el === live) return null;
    for (const attr of ["data-action", "href"]) {
      if (el.hasAttribute(attr)) {
        let sel = "[" + attr + '="' + CSS.escape(el.getAttribute(attr)) + '"]';
        if (el.dataset.revision) sel += '[data-revision="' + CSS.escape(el.dataset.revision) + '"]';
        if (el.dataset.force) sel += '[data-force="' + CSS.escape(el.dataset.force) + '"]';
        return sel;
      }
    }
    return null;
  }
  async function refresh(seq) {
    wanted = Math.max(wanted, seq || 0);
    if (refreshing) { pending = true; return; }
    refreshing = true;
    try {
      do {
        pending = false;
        const url = new URL(location.href);
        if (wanted) url.searchParams.set("min_sequence", String(wanted));
        const resp = await fetch(url, { headers: { "X-Revline-Dashboard": "1" }, cache: "no-store" });
        if (!resp.ok) throw new Error("refresh: " + resp.status);
        const doc = new DOMParser().parseFromString(await resp.text(), "text/html");
        const fresh = doc.getElementById("live");
        if (!fresh) break;
        live.dataset.after = fresh.dataset.after;
        // Most events (a runner's report) change nothing on the page:
        // leave it alone then, for the focus and screen readers' sake.
        updateTimes(fresh);
        if (fresh.innerHTML === live.innerHTML) continue;
        const key = focusKey(document.activeElement);
        live.innerHTML = fresh.innerHTML;
        if (key) { const el = live.querySelector(key); if (el) el.focus(); }
      } while (pending);
    } catch (err) {
      console.warn(err);
    } finally {
      refreshing = false;
    }
  }

  // Live updates: every event of the app (or of every app, on the apps
  // page) refreshes the page. The browser reconnects by itself and sends
  // the last event id, from which the server resumes: nothing is missed.
  function connect() {
    const url = new URL("/ui/events", location.origin);
    url.searchParams.set("after", live.dataset.after || "0");
    if (app) url.searchParams.set("app", app);
    const source = new EventSource(url);
    let dropped = false;
    source.addEventListener("open", () => {
      conn.dataset.state = "live";
      conn.textContent = "Live";
      if (dropped) refresh(0);
      dropped = false;
    });
    source.addEventListener("error", () => {
      dropped = true;
      conn.dataset.state = "offline";
      conn.textContent = "Reconnecting…";
    });
    source.addEventListener("change", (e) => {
      const ev = JSON.parse(e.data);
      refresh(ev.sequence);
    });
  }
  connect();

  // Requests in flight are live state, not events: the runners page asks
  // for them every two seconds while it is visible.
  if (document.querySelector('.tabs a[aria-current="page"][href$="/runners"]')) {
    setInterval(() => { if (!document.hidden) refresh(0); }, 2000);
  }

  // Dialogs.
  const dialog = document.getElementById("confirm");
  const form = document.getElementById("confirm-form");
  const title = document.getElementById("confirm-title");
  const body = document.getElementById("confirm-body");
  const reasonField = document.getElementById("reason-field");
  const reason = document.getElementById("confirm-reason");
  const error = document.getElementById("confirm-error");
  const ok = document.getElementById("confirm-ok");
  const cancel = document.getElementById("confirm-cancel");
  // opener is the button that opened the dialog, by selector: a live
  // refresh may have replaced the element meanwhile.
  let opener = null, current = null;

  function text(tag, content) {
    const el = document.createElement(tag);
    el.textContent = content;
    return el;
  }
  function open(spec) {
    opener = focusKey(document.activeElement);
    current = spec;
    title.textContent = spec.title;
    body.replaceChildren(...spec.body);
    reasonField.hidden = !spec.reason;
    reason.value = "";
    error.hidden = true;
    ok.textContent = spec.confirm;
    ok.disabled = !!spec.load;
    ok.classList.toggle("danger", !!spec.danger);
    dialog.showModal();
    (spec.reason ? reason : cancel).focus();
    if (spec.load) spec.load();
  }
  cancel.addEventListener("click", () => dialog.close("cancel"));
  dialog.addEventListener("close", () => {
    // The close event comes in a task of its own: when the dialog was
    // opened again meanwhile, it is stale and must not undo the new one.
    if (dialog.open) return;
    current = null;
    const el = opener && live.querySelector(opener);
    if (el) el.focus();
  });

  async function post(path, payload) {
    const resp = await fetch(path, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(payload),
    });
    let answer = {};
    try { answer = await resp.json(); } catch (_) { /* not JSON: use the status */ }
    if (!resp.ok) throw new Error(answer.error || answer.detail || "request failed: " + resp.status);
    return answer.message || "Done.";
  }
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    if (!current) return;
    const spec = current;
    ok.disabled = true;
    error.hidden = true;
    try {
      const message = await post(spec.path, spec.payload());
      dialog.close("ok");
      say(message);
      refresh(0);
    } catch (err) {
      error.textContent = err.message;
      error.hidden = false;
      ok.disabled = false;
    }
  });

  // Log out: the server forgets the session; the login page follows.
  const logout = document.getElementById("logout");
  if (logout) logout.addEventListener("click", async () => {
    try { await post("/ui/logout", {}); } catch (_) { /* gone already */ }
    location.assign("/ui/login");
  });

  const base = "/ui/apps/" + encodeURIComponent(app);
  document.addEventListener("click", (e) => {
    const button = e.target.closest("button[data-action]");
    if (!button || !live.contains(button)) return;
    const rev = button.dataset.revision, label = button.dataset.name;
    switch (button.dataset.action) {
    case "rollback":
      open({
        title: "Roll back " + app + " to " + label + "?",
        body: [text("p", "Loading what will change…")],
        confirm: "Roll back",
        reason: true,
        path: base + "/rollback",
        payload: () => ({ revision: rev, reason: reason.value }),
        load: async () => {
          try {
            const resp = await fetch(base + "/rollback-preview?revision=" + encodeURIComponent(rev),
              { headers: { "X-Revline-Dashboard": "1" }, cache: "no-store" });
            if (!resp.ok) throw new Error((await resp.json()).error || "preview failed: " + resp.status);
            body.innerHTML = await resp.text();
            ok.disabled = !!body.querySelector("#preview-refusal");
          } catch (err) {
            body.replaceChildren(text("p", err.message));
          }
        },
      });
      break;
    case "delete":
      open({
        title: "Delete revision " + label + "?",
        body: [text("p", "Revision " + label + " leaves the revision list and can no longer be rolled back to. The history keeps it. This cannot be undone.")],
        confirm: "Delete",
        danger: true,
        path: base + "/delete-revision",
        payload: () => ({ revision: rev }),
      });
      break;
    case "rollout": {
      const force = button.dataset.force === "true";
      open({
        title: (force ? "Force rollout" : "Rollout") + " of " + app + "?",
        body: [text("p", force
          ? "Every runner is killed at once and replaced; the requests they are handling are dropped."
          : "Every runner is replaced: each stops taking new requests, finishes those in flight, then stops, after its replacement is up.")],
        confirm: force ? "Force rollout" : "Roll out",
        danger: force,
        path: base + "/rollout",
        payload: () => ({ force: force }),
      });
      break;
    }
    }
  });
})();
