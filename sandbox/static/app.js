// The sandbox page: loads the workspace as the chosen person sees it, re-loads on every change
// the server announces over a WebSocket, and sends what the person does to the HTTP API.
"use strict";

const QUICK_REACTIONS = ["eyes", "white_check_mark", "+1", "tada", "heart", "pray"];

const app = {
  me: localStorage.getItem("sandbox.as") || "U0CAROL",
  state: null,
  thread: null,        // {channel, ts} of the open thread
  home: false,         // the app's Home tab is open
  tab: "replies",
  view: { key: null },
  keys: {},            // what each list last rendered, to skip needless re-renders
  loading: false,
  again: false,
  resetArmed: null,
};

const $ = (sel, root = document) => root.querySelector(sel);

// --- server ---------------------------------------------------------------------------
async function post(path, body) {
  let answer;
  try {
    const response = await fetch(path, {
      method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ as: app.me, ...body }),
    });
    answer = await response.json().catch(async () => ({ ok: false, error: await response.text() }));
    if (!response.ok && answer.ok !== false) answer = { ok: false, error: `HTTP ${response.status}` };
  } catch (error) {
    answer = { ok: false, error: `The sandbox is not reachable (${error.message}).` };
  }
  if (!answer.ok) toast(answer.error || "Something went wrong.");
  return answer;
}

async function load() {
  if (app.loading) { app.again = true; return; }
  app.loading = true;
  try {
    const response = await fetch(`/api/state?as=${encodeURIComponent(app.me)}`);
    if (response.status === 400 && app.me !== "U0CAROL") {  // a stale identity from localStorage
      app.me = "U0CAROL";
      localStorage.removeItem("sandbox.as");
      app.again = true;
    } else if (response.ok) {
      app.state = await response.json();
      render();
      if (app.thread && app.tab === "history") await loadHistory();
    }
  } catch (error) {
    toast(`Lost the sandbox (${error.message}); retrying…`);
  } finally {
    app.loading = false;
    if (app.again) { app.again = false; load(); }
  }
}

async function loadHistory() {
  const { channel, ts } = app.thread;
  const response = await fetch(`/api/history?channel=${channel}&thread_ts=${ts}`);
  const body = await response.json().catch(() => ({}));
  const key = JSON.stringify(body.conversation || null);
  if (app.keys.history === key) return;
  app.keys.history = key;
  $("#history-body").innerHTML = Render.history(body.conversation, context());
}

function connect() {
  const socket = new WebSocket(`${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/api/events`);
  socket.onmessage = () => load();
  socket.onclose = () => setTimeout(() => { connect(); load(); }, 1000);
}

// --- rendering ------------------------------------------------------------------------
function context() {
  const s = app.state || {};
  return { users: s.users || {}, channels: s.channels || [], me: app.me, bot: s.bot || {} };
}

function channelOf(id) {
  return ((app.state || {}).channels || []).find((c) => c.id === id);
}

function userName(id) {
  return ((app.state.users || {})[id] || { name: id }).name;
}

function render() {
  renderSidebar();
  renderColumns();
  renderThread();
  renderHome();
  renderModal();
}

function renderHome() {
  const pane = $("#home-pane");
  pane.hidden = !app.home;
  $("#home-link").classList.toggle("active", app.home);
  if (!app.home) return;
  document.body.classList.add("thread-open");
  const home = app.state.home;
  const html = home ? `<div class="home-view">${Render.blocks(home.blocks, context(), 'data-home="1"')}</div>`
    : `<div class="empty">Opening the Home tab…</div>`;
  setList($("#home-body"), JSON.stringify([app.me, home && home.blocks, context().users]), html);
}

async function openHome() {
  app.thread = null;
  app.home = true;
  render();
  await post("/api/home/open", {});
}

function renderSidebar() {
  const s = app.state;
  $("#identities").innerHTML = s.identities.map((i) => `
    <button type="button" class="identity${i.id === app.me ? " active" : ""}" data-identity="${i.id}"
            role="radio" aria-checked="${i.id === app.me}" title="${Render.esc(i.about)}">
      <span class="dot ${i.role}"></span><span class="identity-label">${Render.esc(i.label)}</span>
      <span class="role-tag">${i.role}</span>
    </button>`).join("");
  $("#channel-list").innerHTML = s.channels.map((c) => `
    <li><a href="#" class="channel-link${c.member ? "" : " locked"}" data-channel="${c.id}">
      <span class="hash">${c.kind === "support" ? "🔒" : "#"}</span>${Render.esc(c.name)}
      ${c.shared ? '<span class="shared" title="Slack Connect">⇄</span>' : ""}</a></li>`).join("");
  $("#model-name").innerHTML = `${Render.esc(s.model.name)}${s.model.offline
    ? ' <span class="badge offline">offline demo model</span>' : ' <span class="badge live">live model</span>'}`;
  $("#model-description").textContent = s.model.description;
  const file = /^sqlite:\/\/\/(.*)$/.exec(s.database.url);
  $("#database").textContent = s.database.kept_on_reset
    ? `Database: ${s.database.url} (not a SQLite file: reset keeps its rows)`
    : `Database: SQLite file ${file ? file[1].split("/").pop() : s.database.url}`;
  $("#database").title = s.database.url;
  if (!s.ready) $("#database").textContent = "Restarting…";
}

function columnElement(c) {
  let column = $(`.column[data-channel="${c.id}"]`);
  if (column) return column;
  column = document.createElement("section");
  column.className = "column";
  column.dataset.channel = c.id;
  column.innerHTML = `
    <header class="column-header">
      <h2><span class="hash">${c.kind === "support" ? "🔒" : "#"}</span>${Render.esc(c.name)}
        ${c.shared ? '<span class="badge ext" title="Slack Connect channel">⇄ Slack Connect</span>' : ""}
        ${c.kind === "support" ? '<span class="badge staff-only">staff</span>' : ""}</h2>
      <div class="topic">${Render.esc(c.topic)}</div>
    </header>
    <div class="message-list" aria-label="Messages in #${Render.esc(c.name)}"></div>
    <form class="composer">
      <textarea rows="1" placeholder="Message #${Render.esc(c.name)}" aria-label="Message #${Render.esc(c.name)}"></textarea>
      <button type="submit" class="send" aria-label="Send to #${Render.esc(c.name)}">➤</button>
    </form>`;
  $("#columns").appendChild(column);
  wireComposer($(".composer", column), () => ({ channel: c.id }));
  return column;
}

function setList(list, key, html) {
  if (app.keys[list.id || list.dataset.key] === key) return;
  app.keys[list.id || list.dataset.key] = key;
  const atBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 60;
  const top = list.scrollTop;
  list.innerHTML = html;
  list.scrollTop = atBottom ? list.scrollHeight : top;
}

function byTs(a, b) { return Number(a.ts) - Number(b.ts); }

function renderColumns() {
  const ctx = context();
  for (const c of app.state.channels) {
    const column = columnElement(c);
    column.classList.toggle("not-member", !c.member);
    column.classList.toggle("focused", !!app.thread && app.thread.channel === c.id);
    const list = $(".message-list", column);
    list.dataset.key = `list-${c.id}`;
    const textarea = $(".composer textarea", column);
    textarea.disabled = !c.member;
    textarea.placeholder = c.member ? `Message #${c.name}` : `${userName(app.me)} is not in #${c.name}`;
    if (!c.member) {
      setList(list, `locked-${app.me}`, `<div class="empty locked-note">🔒 <b>${Render.esc(userName(app.me))}</b> is not a member of
        #${Render.esc(c.name)}${c.kind === "support" ? " (staff only)" : ""}.<br>Switch to Sam or Sky in “You are” to see it.</div>`);
      continue;
    }
    const top = c.messages.filter((m) => !m.thread_ts || m.thread_ts === m.ts || m.subtype === "thread_broadcast");
    const mine = app.state.ephemerals.filter((e) => e.channel === c.id && !e.thread_ts);
    const items = [...top.map((m) => ({ ts: m.ts, m })), ...mine.map((e) => ({ ts: e.ts, e }))].sort(byTs);
    const html = items.length ? items.map((i) => i.m ? Render.message(i.m, ctx, c.id) : Render.ephemeral(i.e, ctx)).join("")
      : `<div class="empty">No messages yet.${c.kind === "customer" ? " Write as a customer to start a conversation." : " The bot posts cases here."}</div>`;
    setList(list, JSON.stringify([app.me, items, ctx.users]), html);
  }
}

function renderThread() {
  const pane = $("#thread-pane");
  const channel = app.thread && channelOf(app.thread.channel);
  if (!channel || !channel.member) {
    app.thread = null;
    pane.hidden = true;
    document.body.classList.toggle("thread-open", app.home);
    return;
  }
  pane.hidden = false;
  document.body.classList.add("thread-open");
  const ctx = context();
  const { ts } = app.thread;
  const root = channel.messages.find((m) => m.ts === ts);
  const replies = channel.messages.filter((m) => m.thread_ts === ts && m.ts !== ts);
  const whispers = app.state.ephemerals.filter((e) => e.channel === channel.id && e.thread_ts === ts);
  $("#thread-channel").innerHTML = `#${Render.esc(channel.name)}`;
  $("#thread-composer textarea").placeholder = `Reply in thread…`;
  for (const tab of document.querySelectorAll(".tab")) tab.classList.toggle("active", tab.dataset.tab === app.tab);
  $("#thread-body").hidden = app.tab !== "replies";
  $("#thread-composer").hidden = app.tab !== "replies";
  $("#history-body").hidden = app.tab !== "history";
  const items = [...replies.map((m) => ({ ts: m.ts, m })), ...whispers.map((e) => ({ ts: e.ts, e }))].sort(byTs);
  const count = replies.length;
  const html = (root ? Render.message(root, ctx, channel.id, { inThread: true, root: true })
      : `<div class="empty">This message was deleted.</div>`) +
    `<div class="reply-count">${count} ${count === 1 ? "reply" : "replies"}</div>` +
    items.map((i) => i.m ? Render.message(i.m, ctx, channel.id, { inThread: true }) : Render.ephemeral(i.e, ctx)).join("");
  const status = (channel.statuses || {})[ts];
  const thinking = status ? `<div class="assistant-status" role="status">${Render.esc((app.state.bot || {}).name || "bot")} ${Render.esc(status)}</div>` : "";
  setList($("#thread-body"), JSON.stringify([app.me, app.thread, root, items, ctx.users, status]), html + thinking);
}

function renderModal() {
  const views = app.state.views || [];
  const view = views[views.length - 1];
  const key = view ? JSON.stringify([view.id, view.blocks, view.title, view.submit]) : null;
  if (key === app.view.key) return;
  app.view = { key };
  $("#modal-root").innerHTML = view ? Render.modal(view, context()) : "";
  const first = $("#modal-root .field");
  if (first) first.focus();
}

function showErrors(form, errors) {
  for (const old of form.querySelectorAll(".field-error")) old.remove();
  for (const [blockId, message] of Object.entries(errors)) {
    const field = form.querySelector(`[data-block-id="${CSS.escape(blockId)}"][data-type]`);
    const box = document.createElement("div");
    box.className = "field-error";
    box.textContent = message;
    (field ? field.closest(".input-block") : $(".modal-body", form)).appendChild(box);
  }
}

// --- actions --------------------------------------------------------------------------
function openThread(channel, ts) {
  app.home = false;
  app.thread = { channel, ts };
  app.keys.history = null;
  render();
  if (app.tab === "history") loadHistory();
  $("#thread-composer textarea").focus();
}

function focusChannel(id) {
  const column = $(`.column[data-channel="${id}"]`);
  if (!column) return;
  column.scrollIntoView({ behavior: "smooth", inline: "nearest" });
  column.classList.add("flash");
  setTimeout(() => column.classList.remove("flash"), 900);
}

function wireComposer(form, where) {
  const textarea = $("textarea", form);
  const send = async () => {
    const text = textarea.value.trim();
    if (!text || textarea.disabled) return;
    textarea.value = "";
    autosize(textarea);
    const answer = await post("/api/message", { ...where(), text });
    if (!answer.ok) textarea.value = text;
  };
  form.addEventListener("submit", (event) => { event.preventDefault(); send(); });
  textarea.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) { event.preventDefault(); send(); }
  });
  textarea.addEventListener("input", () => autosize(textarea));
}

function autosize(textarea) {
  textarea.style.height = "auto";
  textarea.style.height = `${Math.min(textarea.scrollHeight, 160)}px`;
}

function openMenu(anchor, items) {
  const root = $("#menu-root");
  const rect = anchor.getBoundingClientRect();
  root.innerHTML = `<div class="menu" role="menu" style="top:${rect.bottom + 4}px;left:${Math.max(8, rect.right - 240)}px">${items.map((item, i) =>
    `<button type="button" role="menuitem" class="menu-item${item.inline ? " inline" : ""}" data-menu-item="${i}">${item.label}</button>`).join("")}</div>`;
  root.onclick = (event) => {
    const button = event.target.closest("[data-menu-item]");
    root.innerHTML = "";
    if (button) items[Number(button.dataset.menuItem)].run();
  };
}

function viewValues(form) {
  const values = {};
  for (const field of form.querySelectorAll("[data-block-id][data-type]")) {
    const { blockId, actionId, type } = field.dataset;
    let value;
    if (type === "plain_text_input") value = field.value;
    else if (type === "users_select") value = { type, selected_user: field.value || null };
    else if (type === "conversations_select") value = { type, selected_conversation: field.value || null };
    else if (type === "channels_select") value = { type, selected_channel: field.value || null };
    else if (type === "static_select" || type === "radio_buttons") {
      const option = field.selectedOptions[0];
      value = { type, selected_option: field.value ? { text: { type: "plain_text", text: option.textContent }, value: field.value } : null };
    } else if (type === "checkboxes") {
      value = { type, selected_options: [...field.querySelectorAll("input:checked")].map((i) => ({ value: i.value })) };
    } else continue;
    (values[blockId] = values[blockId] || {})[actionId] = value;
  }
  return values;
}

function toast(text) {
  const box = document.createElement("div");
  box.className = "toast";
  box.textContent = text;
  $("#toasts").appendChild(box);
  setTimeout(() => box.remove(), 6000);
}

document.addEventListener("click", async (event) => {
  const t = event.target;
  if (!t.closest("#menu-root") && !t.closest("[data-react],[data-more]")) $("#menu-root").innerHTML = "";
  let el;
  if ((el = t.closest("[data-identity]"))) {
    app.me = el.dataset.identity;
    localStorage.setItem("sandbox.as", app.me);
    app.view = { key: null };
    if (app.home) post("/api/home/open", {});  // the new person opens their own Home tab
    load();
  } else if ((el = t.closest(".permalink"))) {
    event.preventDefault();
    openThread(el.dataset.channel, el.dataset.thread || el.dataset.ts);
  } else if ((el = t.closest(".channel-link"))) {
    event.preventDefault();
    focusChannel(el.dataset.channel);
  } else if ((el = t.closest("[data-open-thread]"))) {
    openThread(el.dataset.channel, el.dataset.openThread);
  } else if ((el = t.closest("[data-home-open]"))) {
    event.preventDefault();
    openHome();
  } else if (t.closest("#home-close")) {
    app.home = false;
    render();
  } else if ((el = t.closest('.bk-button[data-action-id][data-home="1"]'))) {
    el.disabled = true;
    await post("/api/home/click", { action_id: el.dataset.actionId, block_id: el.dataset.blockId || null,
      value: el.dataset.value || null });
    el.disabled = false;
  } else if ((el = t.closest(".bk-button[data-action-id]"))) {
    if (el.dataset.view) return;
    el.disabled = true;
    await post("/api/click", { channel: el.dataset.channel, ts: el.dataset.ts, action_id: el.dataset.actionId,
      block_id: el.dataset.blockId || null, value: el.dataset.value || null, ephemeral: el.dataset.ephemeral === "1" });
    el.disabled = false;
  } else if ((el = t.closest("[data-reaction]"))) {
    post("/api/reaction", { channel: el.dataset.channel, ts: el.dataset.ts, name: el.dataset.reaction });
  } else if ((el = t.closest("[data-react]"))) {
    const { channel, react: ts } = el.dataset;
    openMenu(el, [{ inline: true, label: QUICK_REACTIONS.map((r) => `<span class="pick" data-pick="${r}" title=":${r}:">${Mrkdwn.emoji(r)}</span>`).join(""), run: () => {} }]);
    $("#menu-root").onclick = (e) => {
      const pick = e.target.closest("[data-pick]");
      $("#menu-root").innerHTML = "";
      if (pick) post("/api/reaction", { channel, ts, name: pick.dataset.pick });
    };
  } else if ((el = t.closest("[data-more]"))) {
    const { channel, more: ts } = el.dataset;
    openMenu(el, [
      ...app.state.shortcuts.map((s) => ({ label: `⚡ ${Render.esc(s.name)}`, run: () => post("/api/shortcut", { channel, ts, callback_id: s.callback_id }) })),
      { label: "💬 Reply in thread", run: () => openThread(channel, ts) },
    ]);
  } else if ((el = t.closest("[data-dismiss]"))) {
    post("/api/ephemeral/dismiss", { ts: el.dataset.dismiss });
  } else if ((el = t.closest("[data-close-view]"))) {
    post("/api/view/close", { view_id: el.dataset.closeView });
  } else if ((el = t.closest(".tab"))) {
    app.tab = el.dataset.tab;
    app.keys.history = null;
    renderThread();
    if (app.tab === "history") loadHistory();
  } else if (t.closest("#thread-close")) {
    app.thread = null;
    render();
  } else if (t.closest("#reset")) {
    const button = $("#reset");
    if (!app.resetArmed) {
      button.textContent = "Click again to reset everything";
      button.classList.add("armed");
      app.resetArmed = setTimeout(() => { app.resetArmed = null; button.textContent = "Reset sandbox"; button.classList.remove("armed"); }, 4000);
      return;
    }
    clearTimeout(app.resetArmed);
    app.resetArmed = null;
    button.textContent = "Resetting…";
    button.disabled = true;
    const answer = await post("/api/reset", {});
    button.disabled = false;
    button.textContent = "Reset sandbox";
    button.classList.remove("armed");
    if (answer.ok) {
      app.thread = null;
      app.keys = {};
      toast(answer.database_cleared ? "Sandbox reset: fresh workspace, empty database." : "Sandbox reset: fresh workspace (database kept).");
      load();
    }
  }
});

document.addEventListener("submit", async (event) => {
  const form = event.target.closest(".modal");
  if (!form) return;
  event.preventDefault();
  const answer = await post("/api/view", { view_id: form.dataset.viewId, values: viewValues(form) });
  if (answer.ok && answer.errors && Object.keys(answer.errors).length) showErrors(form, answer.errors);
});

document.addEventListener("change", (event) => {
  const select = event.target.closest(".bk-select[data-ts]");
  if (select && select.value) {
    post("/api/click", { channel: select.dataset.channel, ts: select.dataset.ts, action_id: select.dataset.actionId,
      block_id: select.dataset.blockId || null, value: select.value, ephemeral: select.dataset.ephemeral === "1" });
  }
});

document.addEventListener("keydown", (event) => {
  if (event.key === "Escape") {
    $("#menu-root").innerHTML = "";
    const view = $("#modal-root .modal");
    if (view) post("/api/view/close", { view_id: view.dataset.viewId });
  }
});

wireComposer($("#thread-composer"), () => ({ channel: app.thread.channel, thread_ts: app.thread.ts }));
load();
connect();
