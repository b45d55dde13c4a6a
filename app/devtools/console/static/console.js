// The console's page. Message bodies arrive as HTML rendered and escaped by the server
// (lucy/console/render.py, blocks.py); everything else (names, file names, labels) is set with
// textContent, never as markup. Buttons send only their position; the server reads the action.
"use strict";
(function () {
  const $ = (id) => document.getElementById(id);
  const state = { ws: null, user: null, channel: null, thread: null, view: "channel", feed: null };

  function el(tag, cls, text) {
    const node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  async function post(path, body) {
    const r = await fetch("/console/" + path, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
    });
    return r.json();
  }

  function when(ts) {
    const d = new Date(parseFloat(ts) * 1000);
    return d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" });
  }

  function renderMessage(m, where, replies) {
    const box = el("div", "msg" + (where === "ephemeral" ? " ephemeral" : ""));
    box.dataset.where = where;
    box.dataset.ts = m.ts || "";
    const meta = el("div", "meta");
    meta.appendChild(el("span", "author", where === "ephemeral" ? "Lucy" : m.author));
    if (m.bot || where === "ephemeral") meta.appendChild(el("span", "app", "APP"));
    meta.appendChild(el("span", "time", when(m.ts)));
    if (where === "ephemeral") meta.appendChild(el("span", "only-you", "  Only visible to you"));
    box.appendChild(meta);
    const body = el("div", "body");
    body.innerHTML = m.html; // server-rendered and escaped
    box.appendChild(body);
    if (m.files && m.files.length) {
      const files = el("div", "files");
      for (const f of m.files) {
        const a = el("a", "", "📎 " + f.name + " (" + f.size + " bytes)");
        a.href = "/console/files/" + encodeURIComponent(f.id);
        files.appendChild(a);
      }
      box.appendChild(files);
    }
    if (replies) {
      const link = el("button", "replies", replies + (replies === 1 ? " reply" : " replies"));
      link.type = "button";
      link.addEventListener("click", () => openThread(m.ts));
      box.appendChild(link);
    }
    return box;
  }

  function draw() {
    const feed = state.feed;
    if (!feed) return;
    $("channel-title").textContent = state.view === "home" ? "Lucy · Home"
      : (feed.channel.type === "im" ? "" : "#") + feed.channel.name;
    const top = feed.messages.filter((m) => !m.thread_ts || m.thread_ts === m.ts);
    const items = top.map((m) => ({ ts: m.ts, node: renderMessage(m, "message",
      feed.messages.filter((r) => r.thread_ts === m.ts && r.ts !== m.ts).length) }));
    for (const e of feed.ephemerals.filter((e) => !e.thread_ts)) {
      items.push({ ts: e.ts, node: renderMessage(e, "ephemeral") });
    }
    items.sort((a, b) => parseFloat(a.ts) - parseFloat(b.ts));
    const timeline = $("timeline");
    const atBottom = timeline.scrollHeight - timeline.scrollTop - timeline.clientHeight < 40;
    timeline.replaceChildren(...items.map((i) => i.node));
    if (atBottom) timeline.scrollTop = timeline.scrollHeight;
    drawThread();
    const home = $("home");
    home.replaceChildren();
    if (feed.home) {
      const box = el("div", "msg");
      box.dataset.where = "home";
      box.innerHTML = feed.home; // server-rendered and escaped
      home.appendChild(box);
    } else {
      home.appendChild(el("p", "", "Lucy's Home tab has not been published yet."));
    }
    drawModal(feed.modal);
  }

  function drawThread() {
    const feed = state.feed;
    const pane = $("thread");
    if (!state.thread || !feed) { pane.hidden = true; return; }
    pane.hidden = false;
    const items = feed.messages
      .filter((m) => m.ts === state.thread || m.thread_ts === state.thread)
      .map((m) => ({ ts: m.ts, node: renderMessage(m, "message") }));
    for (const e of feed.ephemerals.filter((e) => e.thread_ts === state.thread)) {
      items.push({ ts: e.ts, node: renderMessage(e, "ephemeral") });
    }
    items.sort((a, b) => parseFloat(a.ts) - parseFloat(b.ts));
    $("thread-messages").replaceChildren(...items.map((i) => i.node));
    const status = feed.statuses[state.thread];
    $("thread-status").textContent = status ? "Lucy " + status : "";
  }

  function drawModal(modal) {
    const box = $("modal");
    if (!modal) { box.hidden = true; return; }
    if (!box.hidden && box.dataset.shown === modal.html) return; // keep what is typed
    box.dataset.shown = modal.html;
    $("modal-title").innerHTML = modal.title; // escaped by the server
    $("modal-submit").innerHTML = modal.submit;
    $("modal-body").innerHTML = modal.html;
    $("modal-errors").textContent = "";
    box.hidden = false;
  }

  async function refresh() {
    if (!state.user || !state.channel) return;
    const q = new URLSearchParams({ user: state.user, channel: state.channel });
    const r = await fetch("/console/feed?" + q.toString());
    if (r.ok) { state.feed = await r.json(); draw(); }
  }

  function openThread(ts) { state.thread = ts; drawThread(); }

  function select(channel) {
    state.channel = channel;
    state.thread = null;
    state.view = "channel";
    $("home").hidden = true;
    $("timeline").hidden = false;
    $("composer").hidden = false;
    for (const a of document.querySelectorAll("#sidebar a")) {
      a.classList.toggle("active", a.dataset.channel === channel);
    }
    refresh();
  }

  function sidebar() {
    const ws = state.ws;
    const channels = $("channels");
    channels.replaceChildren();
    for (const c of ws.channels) {
      const a = el("a", "", "# " + c.name);
      a.href = "#";
      a.dataset.channel = c.id;
      a.addEventListener("click", (ev) => { ev.preventDefault(); select(c.id); });
      const li = el("li"); li.appendChild(a); channels.appendChild(li);
    }
    const dms = $("dms");
    dms.replaceChildren();
    const a = el("a", "", "Lucy (DM)");
    a.href = "#";
    a.dataset.channel = ws.dms[state.user];
    a.addEventListener("click", (ev) => { ev.preventDefault(); select(ws.dms[state.user]); });
    const li = el("li"); li.appendChild(a); dms.appendChild(li);
  }

  async function send(text, threadTs) {
    if (!text.trim()) return;
    const answer = await post("send", { user: state.user, channel: state.channel, text, thread_ts: threadTs });
    if (!threadTs && answer.ts && /@lucy\b/i.test(text)) openThread(answer.ts);
    refresh();
  }

  document.addEventListener("click", async (ev) => {
    const button = ev.target.closest("button[data-block]");
    if (!button) return;
    const holder = button.closest("[data-where]");
    if (!holder) return;
    button.disabled = true;
    await post("click", {
      user: state.user,
      where: holder.dataset.where,
      channel: state.channel,
      ts: holder.dataset.ts,
      block: parseInt(button.dataset.block, 10),
      element: button.dataset.el,
    });
    button.disabled = false;
    refresh();
  });

  async function start() {
    state.ws = await (await fetch("/console/workspace")).json();
    const who = $("as-user");
    for (const m of state.ws.members) {
      const option = el("option", "", m.real_name + " (" + m.role + ")");
      option.value = m.id;
      who.appendChild(option);
    }
    // The address may name who you are and where you look: #user=U0BOB&channel=C0GENERAL&thread=<ts>
    const wanted = new URLSearchParams(location.hash.slice(1));
    const known = (id) => state.ws.members.some((m) => m.id === id);
    state.user = known(wanted.get("user")) ? wanted.get("user") : state.ws.members[0].id;
    who.value = state.user;
    who.addEventListener("change", () => {
      state.user = who.value;
      sidebar();
      const dm = state.channel && state.channel.startsWith("D");
      const thread = state.thread;
      select(dm ? state.ws.dms[state.user] : state.channel);
      if (!dm && thread) openThread(thread); // the same thread, seen by someone else
    });
    const labels = $("labels");
    for (const label of state.ws.labels) labels.appendChild(el("li", "", label));
    sidebar();
    select(wanted.get("channel") || state.ws.channels[0].id);
    if (wanted.get("thread")) openThread(wanted.get("thread"));
    if (wanted.get("view") === "home") $("open-home").click();
    $("composer").addEventListener("submit", (ev) => {
      ev.preventDefault(); const t = $("message"); send(t.value); t.value = "";
    });
    $("reply-composer").addEventListener("submit", (ev) => {
      ev.preventDefault(); const t = $("reply"); send(t.value, state.thread); t.value = "";
    });
    for (const id of ["message", "reply"]) {
      $(id).addEventListener("keydown", (ev) => {
        if (ev.key === "Enter" && !ev.shiftKey) { ev.preventDefault(); ev.target.form.requestSubmit(); }
      });
    }
    $("close-thread").addEventListener("click", () => { state.thread = null; drawThread(); });
    $("open-home").addEventListener("click", async (ev) => {
      ev.preventDefault();
      state.view = "home";
      $("timeline").hidden = true; $("composer").hidden = true; $("home").hidden = false;
      $("channel-title").textContent = "Lucy · Home";
      await post("home", { user: state.user });
      refresh();
    });
    $("modal-cancel").addEventListener("click", async () => { await post("modal/close", { user: state.user }); refresh(); });
    $("modal-submit").addEventListener("click", async () => {
      const values = {};
      for (const input of $("modal-body").querySelectorAll("[data-input-block]")) {
        const block = input.dataset.inputBlock;
        values[block] = values[block] || {};
        values[block][input.dataset.action] = input.value;
      }
      const answer = await post("modal/submit", { user: state.user, values });
      if (answer.errors) $("modal-errors").textContent = Object.values(answer.errors).join(" ");
      refresh();
    });
    const stream = new EventSource("/console/stream");
    stream.onmessage = () => refresh();
    setInterval(refresh, 10000); // in case the stream drops
  }

  document.addEventListener("DOMContentLoaded", start);
})();
