"""Pure readers of Slack payloads: which messages matter, where they belong, what they say.

Also cleans decoded payloads of text no database can store (NUL, lone surrogates).
"""

from __future__ import annotations

from typing import Any

from bot.toolkit.mrkdwn import escape_mrkdwn

# Message subtypes that carry a person's new words; every other subtype (edits, deletions,
# joins, topic changes, bot messages) is not a new message.
_NEW_MESSAGE_SUBTYPES = frozenset({None, "thread_broadcast", "file_share"})


def is_new_human_message(event: dict[str, Any]) -> bool:
    """A person's new message: not a bot, not an edit/deletion/join, not hidden."""
    if event.get("bot_id") or event.get("bot_profile") or event.get("hidden"):
        return False
    if event.get("subtype") not in _NEW_MESSAGE_SUBTYPES:
        return False
    return bool(event.get("user")) and bool(event.get("ts"))


def thread_root_ts(event: dict[str, Any]) -> str:
    """The ts a reply must carry as `thread_ts`: the thread's root, or the message itself."""
    return str(event.get("thread_ts") or event["ts"])


def is_thread_reply(event: dict[str, Any]) -> bool:
    thread_ts = event.get("thread_ts")
    return bool(thread_ts) and thread_ts != event.get("ts")


def event_team_id(body: dict[str, Any], event: dict[str, Any]) -> str:
    """The workspace that owns the channel the event happened in (our team)."""
    return str(body.get("team_id") or event.get("team") or "")


def author_name_from_event(event: dict[str, Any]) -> str | None:
    """What the event itself says about its author (Slack Connect users may say little else)."""
    profile = event.get("user_profile") or {}
    return profile.get("display_name") or profile.get("real_name") or profile.get("name") or None


def message_dedupe_key(channel_id: str, ts: str) -> str:
    """One key per Slack message, shared by its `message` and `app_mention` deliveries."""
    return f"msg:{channel_id}:{ts}"


def event_dedupe_key(body: dict[str, Any]) -> str | None:
    event_id = body.get("event_id")
    return f"event:{event_id}" if event_id else None


def strip_bot_mention(text: str, bot_user_id: str | None) -> str:
    if bot_user_id:
        text = text.replace(f"<@{bot_user_id}>", "")
    return text.strip()


def display_name(user: dict[str, Any] | None, fallback: str) -> str:
    """The name to show for a Slack user object from users.info."""
    if not user:
        return fallback
    profile = user.get("profile") or {}
    return (profile.get("display_name") or profile.get("real_name") or user.get("real_name")
            or user.get("name") or fallback)


# --- what a message says -------------------------------------------------------------------------


def clean_text(text: str) -> str:
    """`text` without what no database can store: NUL characters are dropped, and a lone
    UTF-16 surrogate (valid JSON, invalid Unicode) becomes U+FFFD."""
    text = text.replace("\x00", "")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    return text


def clean_payload(value: Any) -> tuple[Any, bool]:
    """A copy of a decoded JSON payload with every string (keys too) passed through
    `clean_text`, and whether anything had to change."""
    if isinstance(value, str):
        cleaned = clean_text(value)
        return cleaned, cleaned != value
    if isinstance(value, dict):
        changed = False
        out: dict[Any, Any] = {}
        for key, item in value.items():
            new_key, key_changed = clean_payload(key)
            out[new_key], item_changed = clean_payload(item)
            changed = changed or key_changed or item_changed
        return out, changed
    if isinstance(value, list):
        items = [clean_payload(item) for item in value]
        return [item for item, _ in items], any(changed for _, changed in items)
    return value, False


def message_words(event: dict[str, Any]) -> str:
    """What a message says, as Slack's `text` field would carry it (mrkdwn, `<@U…>` mentions):
    its `text`, else the words of its blocks (rich text typed in a client, sections), else its
    attachments' pretext, title, text (or fallback) and fields. "" when it has no words."""
    text = event.get("text")
    if isinstance(text, str) and text.strip():
        return text
    for words in (_blocks_words(event.get("blocks")), _attachments_words(event.get("attachments"))):
        if words.strip():
            return words.strip()
    return ""


def attached_file_names(event: dict[str, Any]) -> list[str]:
    """Names of the files shared with a message (`files`), in order."""
    files = event.get("files")
    if not isinstance(files, list):
        return []
    return [str(f.get("name") or f.get("title") or "file") for f in files if isinstance(f, dict)]


def _blocks_words(blocks: Any) -> str:
    if not isinstance(blocks, list):
        return ""
    parts = []
    for block in blocks:
        if not isinstance(block, dict):
            continue
        kind = block.get("type")
        if kind == "rich_text":
            parts.append(_rich_text(block.get("elements")))
        elif kind == "markdown":
            parts.append(_str(block.get("text")))
        elif kind in ("section", "header"):
            parts.append(_text_of(block.get("text")))
            parts.extend(_text_of(field) for field in _as_list(block.get("fields")))
        elif kind == "context":
            parts.extend(_text_of(element) for element in _as_list(block.get("elements")))
    return "\n".join(part for part in parts if part.strip())


def _rich_text(elements: Any) -> str:
    """Rich text containers: sections, lists, quotes and preformatted text."""
    lines = []
    for element in _as_list(elements):
        kind = element.get("type")
        if kind == "rich_text_list":
            ordered = element.get("style") == "ordered"
            indent = "  " * int(element.get("indent") or 0)
            for number, item in enumerate(_as_list(element.get("elements")), start=1):
                bullet = f"{number}." if ordered else "•"
                lines.append(f"{indent}{bullet} {_inline(item.get('elements'))}")
        elif kind == "rich_text_quote":
            lines.extend(f"&gt; {line}" for line in _inline(element.get("elements")).split("\n"))
        elif kind == "rich_text_preformatted":
            lines.append(f"```{_inline(element.get('elements'))}```")
        else:
            lines.append(_inline(element.get("elements")))
    return "\n".join(line for line in lines if line.strip())


def _inline(elements: Any) -> str:
    """Inline rich text elements as Slack writes them in a message's `text`."""
    out = []
    for element in _as_list(elements):
        kind = element.get("type")
        if kind == "text":
            out.append(escape_mrkdwn(str(element.get("text") or "")))
        elif kind == "link":
            url, label = str(element.get("url") or ""), element.get("text")
            out.append(f"<{url}|{escape_mrkdwn(str(label))}>" if label else f"<{url}>")
        elif kind == "user":
            out.append(f"<@{element.get('user_id')}>")
        elif kind == "usergroup":
            out.append(f"<!subteam^{element.get('usergroup_id')}>")
        elif kind == "channel":
            out.append(f"<#{element.get('channel_id')}>")
        elif kind == "broadcast":
            out.append(f"<!{element.get('range')}>")
        elif kind == "emoji":
            out.append(f":{element.get('name')}:")
        elif kind == "date":
            out.append(escape_mrkdwn(str(element.get("fallback") or element.get("timestamp"))))
    return "".join(out)


def _attachments_words(attachments: Any) -> str:
    parts = []
    for attachment in _as_list(attachments):
        parts += [_str(attachment.get("pretext")), _str(attachment.get("title")),
                  _str(attachment.get("text")) or _str(attachment.get("fallback"))]
        for field in _as_list(attachment.get("fields")):
            title, value = _str(field.get("title")), _str(field.get("value"))
            parts.append(f"{title}: {value}" if title and value else title or value)
    return "\n".join(part for part in parts if part.strip())


def _text_of(item: Any) -> str:
    """The text of a text object (`{"type": "mrkdwn", "text": ...}`)."""
    if not isinstance(item, dict):
        return ""
    text = _str(item.get("text"))
    return escape_mrkdwn(text) if item.get("type") == "plain_text" else text


def _as_list(value: Any) -> list[dict[str, Any]]:
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ""
