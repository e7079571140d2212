// Slack's mrkdwn as HTML: *bold*, _italic_, ~strike~, `code`, ```blocks```, > quotes,
// <url|text> links, <@U…> people, <#C…> channels, <!here>, :emoji:.
"use strict";

const Mrkdwn = (() => {
  const EMOJI = {
    "+1": "👍", thumbsup: "👍", "-1": "👎", eyes: "👀", white_check_mark: "✅",
    heavy_check_mark: "✔️", ballot_box_with_check: "☑️", warning: "⚠️", tada: "🎉",
    heart: "❤️", pray: "🙏", wave: "👋", hourglass: "⌛", hourglass_flowing_sand: "⏳",
    busts_in_silhouette: "👥", bust_in_silhouette: "👤", speech_balloon: "💬",
    leftwards_arrow_with_hook: "↩️", wastebasket: "🗑️", rotating_light: "🚨",
    outbox_tray: "📤", inbox_tray: "📥", memo: "📝", bell: "🔔", arrows_counterclockwise: "🔄",
    robot_face: "🤖", x: "❌", no_entry: "⛔", information_source: "ℹ️", lock: "🔒",
    raised_hand: "✋", raising_hand: "🙋", handshake: "🤝", question: "❓", exclamation: "❗",
    alarm_clock: "⏰", zzz: "💤", fire: "🔥", smile: "😄", slightly_smiling_face: "🙂",
    thinking_face: "🤔", rocket: "🚀", star: "⭐", link: "🔗", mag: "🔍", pencil2: "✏️",
    large_green_circle: "🟢", red_circle: "🔴", large_yellow_circle: "🟡", sos: "🆘",
    email: "📧", envelope: "✉️", arrow_right: "➡️", white_circle: "⚪", sparkles: "✨",
    ok_hand: "👌", clap: "👏", muscle: "💪", point_right: "👉", calendar: "📅",
  };

  const escapeHtml = (s) => String(s)
    .replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;")
    .replace(/"/g, "&quot;").replace(/'/g, "&#39;");
  const unescapeSlack = (s) => s.replace(/&lt;/g, "<").replace(/&gt;/g, ">")
    .replace(/&amp;/g, "&");
  const emoji = (name) => EMOJI[name] || EMOJI[String(name).split("::")[0]] || null;

  // A Slack permalink (slack.com or the emulator's) names a channel and a message.
  function permalink(url) {
    const m = /\/archives\/([CGD][A-Z0-9]+)\/p(\d{10})(\d{6})(?:\?thread_ts=([\d.]+))?/.exec(url);
    if (!m) return null;
    return { channel: m[1], ts: `${m[2]}.${m[3]}`, thread: m[4] || null };
  }

  function userName(ctx, id, fallback) {
    const user = ctx.users && ctx.users[id];
    return user ? user.name : (fallback || id);
  }

  function token(inner, ctx) {
    const [target, label] = splitOnce(inner, "|");
    if (target.startsWith("@")) {
      const id = target.slice(1);
      const me = ctx.me === id ? " me" : "";
      return `<span class="mention${me}">@${escapeHtml(userName(ctx, id, label))}</span>`;
    }
    if (target.startsWith("#")) {
      const id = target.slice(1);
      const channel = (ctx.channels || []).find((c) => c.id === id);
      const name = channel ? channel.name : (label || id);
      return `<a href="#" class="channel-link" data-channel="${escapeHtml(id)}">#${escapeHtml(name)}</a>`;
    }
    if (target.startsWith("!")) {
      if (target.startsWith("!subteam^")) return `<span class="mention">${escapeHtml(label || "@team")}</span>`;
      if (target.startsWith("!date^")) return escapeHtml(label || "");
      return `<span class="mention">@${escapeHtml(target.slice(1))}</span>`;
    }
    const url = unescapeSlack(target);
    const text = label ? unescapeSlack(label) : url;
    const link = permalink(url);
    if (link) {
      return `<a href="#" class="permalink" data-channel="${link.channel}" data-ts="${link.ts}"` +
        ` data-thread="${link.thread || ""}">${escapeHtml(text)}</a>`;
    }
    if (!/^(https?:|mailto:)/i.test(url)) return escapeHtml(text);
    return `<a href="${escapeHtml(url)}" target="_blank" rel="noopener noreferrer">${escapeHtml(text)}</a>`;
  }

  function splitOnce(s, sep) {
    const at = s.indexOf(sep);
    return at < 0 ? [s, ""] : [s.slice(0, at), s.slice(at + 1)];
  }

  function inline(html) {
    const edge = "(^|[\\s(>\\u0001*_~])";
    const end = "(?=$|[\\s.,!?;:)<\\u0001*_~'\"])";
    return html
      .replace(new RegExp(`${edge}\\*([^*\\n]+?)\\*${end}`, "g"), "$1<b>$2</b>")
      .replace(new RegExp(`${edge}_([^_\\n]+?)_${end}`, "g"), "$1<i>$2</i>")
      .replace(new RegExp(`${edge}~([^~\\n]+?)~${end}`, "g"), "$1<s>$2</s>")
      .replace(/:([a-z0-9_+-]+(?:::[a-z0-9-]+)?):/g, (all, name) => {
        const e = emoji(name);
        return e ? `<span class="emoji" title=":${name}:">${e}</span>` : all;
      });
  }

  function format(text, ctx = {}) {
    if (!text) return "";
    const saved = [];
    const keep = (html) => `\u0001${saved.push(html) - 1}\u0002`;
    let s = String(text);
    s = s.replace(/```([\s\S]*?)```/g, (_, code) =>
      keep(`<pre class="code-block">${escapeHtml(unescapeSlack(code.replace(/^\n/, "")))}</pre>`));
    s = s.replace(/`([^`\n]+)`/g, (_, code) =>
      keep(`<code>${escapeHtml(unescapeSlack(code))}</code>`));
    s = s.replace(/<([^<>\n]+)>/g, (_, inner) => keep(token(inner, ctx)));
    s = escapeHtml(unescapeSlack(s));
    const lines = s.split("\n").map((line) => {
      const quote = /^&gt;\s?(.*)$/.exec(line);
      if (quote) return `<blockquote>${inline(quote[1])}</blockquote>`;
      return inline(line);
    });
    s = lines.join("<br>").replace(/<\/blockquote><br><blockquote>/g, "<br>")
      .replace(/<\/blockquote><br>/g, "</blockquote>");
    return s.replace(/\u0001(\d+)\u0002/g, (_, i) => saved[Number(i)]);
  }

  return { format, emoji, escapeHtml, permalink };
})();
