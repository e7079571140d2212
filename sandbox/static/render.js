// HTML of messages, Block Kit blocks, reactions, modals and the stored history.
// Pure functions of the state the server sends; app.js wires the events.
"use strict";

const Render = (() => {
  const esc = Mrkdwn.escapeHtml;
  const COLORS = ["#e8912d", "#2bac76", "#1d9bd1", "#c7376f", "#7c3085", "#4a5bd4", "#d4624a"];

  function color(id) {
    let h = 0;
    for (const c of String(id)) h = (h * 31 + c.charCodeAt(0)) >>> 0;
    return COLORS[h % COLORS.length];
  }

  function time(ts) {
    const d = new Date(Number(String(ts).split(".")[0]) * 1000);
    return d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  }

  function text(obj, ctx) {
    if (!obj) return "";
    if (typeof obj === "string") return Mrkdwn.format(obj, ctx);
    if (obj.type === "mrkdwn") return Mrkdwn.format(obj.text, ctx);
    const plain = esc(obj.text || "");
    return obj.emoji === false ? plain : plain.replace(/:([a-z0-9_+-]+):/g,
      (all, name) => Mrkdwn.emoji(name) || all);
  }

  // Who wrote a message, as Slack shows it (a bot post may carry another name).
  function author(m, ctx) {
    if (m.bot_id) {
      const bot = m.bot_id === (ctx.bot || {}).bot_id;
      const name = m.username || (bot ? ctx.bot.name : "app");
      return { id: m.username ? `name:${m.username}` : m.bot_id, name, app: true, robot: !m.username };
    }
    const user = (ctx.users || {})[m.user] || { name: m.user || "someone" };
    return { id: m.user, name: user.name, org: user.org, guest: user.guest, staff: user.staff };
  }

  function avatar(who) {
    const face = who.robot ? "🤖" : esc((who.name || "?").trim().charAt(0).toUpperCase());
    const cls = who.robot ? "avatar robot" : "avatar";
    return `<div class="${cls}" style="background:${who.robot ? "#4a154b" : color(who.id)}">${face}</div>`;
  }

  function badges(who) {
    let out = "";
    if (who.app) out += `<span class="badge app">APP</span>`;
    if (who.org) out += `<span class="badge ext" title="Slack Connect: from ${esc(who.org)}'s workspace">${esc(who.org)}</span>`;
    if (who.guest) out += `<span class="badge guest">guest</span>`;
    return out;
  }

  function button(el, attrs) {
    const style = el.style ? ` ${el.style}` : "";
    return `<button type="button" class="bk-button${style}" data-action-id="${esc(el.action_id)}"` +
      ` data-value="${esc(el.value ?? "")}" ${attrs}>${text(el.text, {})}</button>`;
  }

  function element(el, block, ctx, attrs) {
    const where = `data-block-id="${esc(block.block_id || "")}" ${attrs}`;
    if (el.type === "button") return button(el, where);
    if (el.type === "image") return `<img class="bk-image-el" src="${esc(el.image_url)}" alt="${esc(el.alt_text || "")}">`;
    if (el.type === "overflow" || el.type === "static_select") {
      const options = (el.options || []).map((o) =>
        `<option value="${esc(o.value)}">${text(o.text, {})}</option>`).join("");
      return `<select class="bk-select" data-action-id="${esc(el.action_id)}" ${where}>` +
        `<option value="">${text(el.placeholder || { text: "Choose…" }, {})}</option>${options}</select>`;
    }
    if (el.type === "mrkdwn" || el.type === "plain_text") return `<span>${text(el, ctx)}</span>`;
    return `<span class="bk-unknown">[${esc(el.type)}]</span>`;
  }

  // 👍/👎 feedback buttons (and icon buttons) of a `context_actions` block.
  function contextAction(el, block, attrs) {
    const where = `data-block-id="${esc(block.block_id || "")}" ${attrs}`;
    if (el.type === "feedback_buttons") {
      return [["positive_button", "positive"], ["negative_button", "negative"]].map(([side, kind]) => {
        const b = el[side] || {};
        return `<button type="button" class="bk-button bk-feedback ${kind}" data-action-id="${esc(el.action_id)}"` +
          ` data-value="${esc(b.value ?? "")}" title="${esc(b.accessibility_label || "")}"` +
          ` aria-label="${esc(b.accessibility_label || (b.text || {}).text || kind)}" ${where}>${text(b.text, {})}</button>`;
      }).join("");
    }
    if (el.type === "icon_button") return button(el, where);
    return `<span class="bk-unknown">[${esc(el.type)}]</span>`;
  }

  // Message blocks; `attrs` marks interactive elements with the message they belong to.
  function blocks(list, ctx, attrs = "") {
    return (list || []).map((b) => {
      switch (b.type) {
        case "section": {
          const fields = (b.fields || []).map((f) => `<div>${text(f, ctx)}</div>`).join("");
          const acc = b.accessory ? `<div class="bk-accessory">${element(b.accessory, b, ctx, attrs)}</div>` : "";
          return `<div class="bk-section"><div class="bk-section-main">${text(b.text, ctx)}` +
            `${fields ? `<div class="bk-fields">${fields}</div>` : ""}</div>${acc}</div>`;
        }
        case "context":
          return `<div class="bk-context">${(b.elements || []).map((e) =>
            e.type === "image" ? `<img src="${esc(e.image_url)}" alt="${esc(e.alt_text || "")}">`
              : `<span>${text(e, ctx)}</span>`).join("")}</div>`;
        case "actions":
          return `<div class="bk-actions">${(b.elements || []).map((e) => element(e, b, ctx, attrs)).join("")}</div>`;
        case "context_actions":
          return `<div class="bk-context-actions">${(b.elements || []).map((e) => contextAction(e, b, attrs)).join("")}</div>`;
        case "header":
          return `<div class="bk-header">${text(b.text, ctx)}</div>`;
        case "divider":
          return `<hr class="bk-divider">`;
        case "image":
          return `<img class="bk-image" src="${esc(b.image_url)}" alt="${esc(b.alt_text || "")}">`;
        default:
          return "";
      }
    }).join("");
  }

  function reactions(m, ctx, channel) {
    if (!m.reactions || !m.reactions.length) return "";
    return `<div class="reactions">${m.reactions.map((r) => {
      const mine = r.users.includes(ctx.me) ? " mine" : "";
      const who = r.users.map((u) => ((ctx.users || {})[u] || { name: u }).name).join(", ");
      return `<button type="button" class="reaction${mine}" data-reaction="${esc(r.name)}"` +
        ` data-channel="${channel}" data-ts="${m.ts}" title="${esc(who)} reacted with :${esc(r.name)}:">` +
        `${Mrkdwn.emoji(r.name) || `:${esc(r.name)}:`} <span>${r.count}</span></button>`;
    }).join("")}</div>`;
  }

  function threadSummary(m, ctx, channel) {
    if (!m.reply_count || (m.thread_ts && m.thread_ts !== m.ts)) return "";
    const faces = (m.reply_users || []).slice(0, 3).map((u) => {
      const user = (ctx.users || {})[u] || { name: u };
      const robot = u === (ctx.bot || {}).user_id;
      return avatar({ id: u, name: user.name, robot }).replace('class="avatar', 'class="avatar tiny');
    }).join("");
    const n = m.reply_count;
    return `<button type="button" class="thread-summary" data-open-thread="${m.ts}" data-channel="${channel}">` +
      `${faces}<span class="replies">${n} ${n === 1 ? "reply" : "replies"}</span>` +
      `<span class="last">Last reply ${time(m.latest_reply || m.ts)}</span></button>`;
  }

  function message(m, ctx, channel, opts = {}) {
    const who = author(m, ctx);
    const attrs = `data-channel="${channel}" data-ts="${m.ts}"`;
    // Blocks that only add buttons (a streamed answer's feedback) come under the text.
    const textual = (m.blocks || []).some((b) => b.type !== "context_actions");
    let body = textual ? blocks(m.blocks, ctx, attrs) : Mrkdwn.format(m.text, ctx) +
      (m.blocks && m.blocks.length ? blocks(m.blocks, ctx, attrs) : "");
    if (m.streaming) body += `<span class="streaming-cursor" title="Writing…" aria-label="Writing">▍</span>`;
    const edited = m.edited && m.edited.user !== (ctx.bot || {}).user_id ? ` <span class="edited">(edited)</span>` : "";
    const root = opts.root ? " root" : "";
    const tools = opts.readOnly ? "" : `<div class="hover-actions">
        <button type="button" class="icon-button" data-react="${m.ts}" data-channel="${channel}" title="Add reaction" aria-label="Add reaction">☺︎</button>
        ${opts.inThread ? "" : `<button type="button" class="icon-button" data-open-thread="${m.thread_ts || m.ts}" data-channel="${channel}" title="Reply in thread" aria-label="Reply in thread">💬</button>`}
        <button type="button" class="icon-button" data-more="${m.ts}" data-channel="${channel}" title="More actions" aria-label="More actions">⋮</button>
      </div>`;
    return `<div class="msg${root}" data-ts="${m.ts}" data-channel="${channel}">
      ${avatar(who)}
      <div class="msg-body">
        <div class="msg-meta"><span class="msg-name">${esc(who.name)}</span>${badges(who)}<span class="msg-time">${time(m.ts)}</span></div>
        <div class="msg-text">${body}${edited}</div>
        ${reactions(m, ctx, channel)}
        ${opts.inThread ? "" : threadSummary(m, ctx, channel)}
      </div>
      ${tools}
    </div>`;
  }

  function ephemeral(e, ctx) {
    const attrs = `data-channel="${e.channel}" data-ts="${e.ts}" data-ephemeral="1"`;
    const body = e.blocks && e.blocks.length ? blocks(e.blocks, ctx, attrs) : Mrkdwn.format(e.text, ctx);
    return `<div class="msg ephemeral" data-ts="${e.ts}">
      ${avatar({ id: "bot", name: "supportbot", robot: true })}
      <div class="msg-body">
        <div class="msg-meta"><span class="msg-name">${esc(e.username || (ctx.bot || {}).name || "supportbot")}</span>` +
      `<span class="badge app">APP</span><span class="msg-time">${time(e.ts)}</span></div>
        <div class="only-you">👁 Only visible to you</div>
        <div class="msg-text">${body}</div>
        <button type="button" class="dismiss" data-dismiss="${e.ts}">Dismiss</button>
      </div>
    </div>`;
  }

  function inputControl(block, ctx, error) {
    const el = block.element || {};
    const id = `${esc(block.block_id)}::${esc(el.action_id)}`;
    const common = `data-block-id="${esc(block.block_id)}" data-action-id="${esc(el.action_id)}" data-type="${esc(el.type)}" id="${id}"`;
    const placeholder = el.placeholder ? ` placeholder="${esc(el.placeholder.text || "")}"` : "";
    let control;
    if (el.type === "plain_text_input") {
      control = el.multiline
        ? `<textarea class="field" rows="4" ${common}${placeholder}>${esc(el.initial_value || "")}</textarea>`
        : `<input class="field" ${common}${placeholder} value="${esc(el.initial_value || "")}">`;
    } else if (el.type === "users_select" || el.type === "conversations_select" || el.type === "channels_select") {
      const people = el.type === "users_select";
      const items = people
        ? Object.values(ctx.users || {}).filter((u) => !u.is_bot).map((u) => [u.id, `${u.name} (${u.real_name})`])
        : (ctx.channels || []).map((c) => [c.id, `#${c.name}`]);
      const initial = el.initial_user || el.initial_conversation || el.initial_channel || "";
      control = `<select class="field" ${common}><option value="">${people ? "Choose a person…" : "Choose a channel…"}</option>` +
        items.map(([v, label]) => `<option value="${esc(v)}"${v === initial ? " selected" : ""}>${esc(label)}</option>`).join("") + `</select>`;
    } else if (el.type === "static_select" || el.type === "radio_buttons") {
      control = `<select class="field" ${common}><option value="">Choose…</option>` +
        (el.options || []).map((o) => `<option value="${esc(o.value)}">${text(o.text, {})}</option>`).join("") + `</select>`;
    } else if (el.type === "checkboxes") {
      control = `<div class="checks" ${common}>${(el.options || []).map((o) =>
        `<label><input type="checkbox" value="${esc(o.value)}"> ${text(o.text, {})}</label>`).join("")}</div>`;
    } else {
      control = `<div class="bk-unknown">[${esc(el.type)} is not supported by the sandbox]</div>`;
    }
    const hint = block.hint ? `<div class="field-hint">${text(block.hint, ctx)}</div>` : "";
    const err = error ? `<div class="field-error">${esc(error)}</div>` : "";
    return `<label class="input-block" for="${id}"><span class="input-label">${text(block.label, ctx)}` +
      `${block.optional ? ' <span class="optional">(optional)</span>' : ""}</span>${control}${hint}${err}</label>`;
  }

  function modal(view, ctx, errors = {}) {
    const body = (view.blocks || []).map((b) => b.type === "input"
      ? inputControl(b, ctx, errors[b.block_id]) : blocks([b], ctx, `data-view="${view.id}"`)).join("");
    const submit = view.submit ? `<button type="submit" class="primary-button">${text(view.submit, {})}</button>` : "";
    return `<div class="modal-backdrop"><form class="modal" data-view-id="${view.id}" role="dialog" aria-modal="true" aria-label="${esc((view.title || {}).text || "")}">
      <header class="modal-header"><h3>${text(view.title, {})}</h3>
        <button type="button" class="icon-button" data-close-view="${view.id}" aria-label="Close">✕</button></header>
      <div class="modal-body">${body}</div>
      <footer class="modal-footer"><button type="button" class="secondary-button" data-close-view="${view.id}">${text(view.close || { text: "Cancel" }, {})}</button>${submit}</footer>
    </form></div>`;
  }

  function json(value) {
    return `<pre class="json">${esc(JSON.stringify(value, null, 2))}</pre>`;
  }

  function history(conv, ctx) {
    if (!conv) {
      return `<div class="empty">The bot has stored nothing for this thread yet: it keeps a conversation once a customer writes in a customer channel.</div>`;
    }
    const who = (id) => id === "bot" ? "the bot" : id === "humans" ? "the support team (unclaimed)"
      : ((ctx.users || {})[id] || { name: id }).name;
    const rows = conv.messages.map((m) => {
      const human = m.metadata && m.metadata.provider === "human";
      const calls = (m.tool_calls || []).map((c) =>
        `<div class="tool-call"><b>${esc(c.name)}</b>(${esc(JSON.stringify(c.arguments))}) <span class="muted">${esc(c.id)}</span></div>`).join("");
      const name = m.agent_name ? ` · ${esc(m.agent_name)}` : "";
      const tool = m.role === "tool" ? ` · result of <b>${esc(m.tool_name || "")}</b> <span class="muted">${esc(m.tool_call_id || "")}</span>` : "";
      const meta = m.metadata ? `<details><summary>metadata</summary>${json(m.metadata)}</details>` : "";
      const usage = m.model ? `<span class="muted"> · ${esc(m.model)}${m.tokens ? ` · ${m.tokens.prompt}+${m.tokens.completion} tokens` : ""}</span>` : "";
      return `<li class="h-msg role-${esc(m.role)}${human ? " human" : ""}">
        <div class="h-head"><span class="role">${esc(m.role)}</span><span class="pos">${m.order}.${m.step}</span>${name}${tool}${human ? ' <span class="badge human">provider: human</span>' : ""}${usage}</div>
        ${m.text ? `<div class="h-text">${esc(m.text)}</div>` : ""}${calls}${meta}</li>`;
    }).join("");
    const requests = conv.human_requests.map((r) =>
      `<li><b>#${r.number}</b> ${esc(r.question)}<br><span class="muted">${esc(r.status)}` +
      `${r.answered_by ? ` by ${esc(r.answered_by)}: “${esc(r.answer || "")}”` : ""}` +
      `${r.reminders_sent ? ` · ${r.reminders_sent} reminder(s)` : ""}</span></li>`).join("");
    const changes = conv.assignments.map((a) =>
      `<li>${esc(who(a.from))} → <b>${esc(who(a.to))}</b> <span class="muted">by ${esc(who(a.by))}: ${esc(a.reason)}</span></li>`).join("");
    return `<div class="h-summary"><b>Case #${conv.case_number}</b> · ${esc(conv.customer || "")} · assigned to <b>${esc(who(conv.assignee))}</b> · ${esc(conv.status)}</div>
      <p class="muted">What the bot stored in its database (<code>messages</code> rows, in order): the model's context, human words marked <code>provider: human</code>.</p>
      <ol class="h-list">${rows}</ol>
      ${requests ? `<h4>askHuman requests</h4><ul class="h-plain">${requests}</ul>` : ""}
      ${changes ? `<h4>Assignment changes</h4><ul class="h-plain">${changes}</ul>` : ""}`;
  }

  return { message, ephemeral, modal, history, blocks, esc, time };
})();
