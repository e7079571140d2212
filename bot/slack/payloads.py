"""Pure readers of Slack payloads: which messages matter and where they belong."""

from __future__ import annotations

from typing import Any

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


def author_team_id(event: dict[str, Any]) -> str | None:
    """The workspace of the message's author (differs from ours for Slack Connect guests)."""
    return event.get("user_team") or event.get("team") or None


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
