"""What the sandbox page shows, as JSON: the workspace as one person sees it.

`snapshot(sandbox, viewer)` lists the demo channels with their messages, the ephemeral messages
and open modals of `viewer` only, the people, and which model answers.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from sandbox import demo_workspace as demo
from sandbox.slack_state import User

if TYPE_CHECKING:
    from sandbox.run import Sandbox

MANIFEST = Path(__file__).resolve().parent.parent / "slack-manifest.yaml"
ORGS = {demo.ACME_TEAM: "Acme"}
MESSAGE_KEYS = ("ts", "thread_ts", "user", "bot_id", "username", "text", "blocks", "reactions",
                "edited", "subtype", "reply_count", "reply_users", "latest_reply", "icons",
                "streaming")


@functools.cache
def message_shortcuts() -> list[dict[str, str]]:
    """The app's message shortcuts, as slack-manifest.yaml declares them."""
    try:
        manifest = yaml.safe_load(MANIFEST.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError):
        manifest = {}
    found = [{"name": str(s["name"]), "callback_id": str(s["callback_id"])}
             for s in (manifest.get("features") or {}).get("shortcuts") or []
             if isinstance(s, dict) and s.get("type") == "message" and s.get("callback_id")]
    return found or [{"name": "Take over conversation", "callback_id": "case-take-shortcut"}]


def person(user: User, staff: set[str]) -> dict[str, Any]:
    return {"id": user.id, "name": user.display_name or user.real_name,
            "real_name": user.real_name, "handle": user.name, "is_bot": user.is_bot,
            "org": ORGS.get(user.team_id), "guest": user.is_restricted,
            "staff": user.id in staff}


def page_message(message: dict[str, Any]) -> dict[str, Any]:
    out = {key: message[key] for key in MESSAGE_KEYS if message.get(key) is not None}
    blocks = out.get("blocks") or []
    if any(block.get("type") == "rich_text" for block in blocks):
        del out["blocks"]  # a person's message: its text says the same
    return out


def snapshot(sandbox: Sandbox, viewer: str) -> dict[str, Any]:
    emulator, config = sandbox.emulator, sandbox.config
    model = sandbox.model_info
    state: dict[str, Any] = {
        "version": sandbox.version, "ready": emulator is not None, "me": viewer,
        "model": {"name": model.name, "offline": model.offline,
                  "description": model.description},
        "database": {"url": sandbox.database_label, "kept_on_reset": sandbox.keeps_database},
        "identities": [{"id": i.user_id, "label": i.label, "role": i.role, "about": i.about}
                       for i in demo.IDENTITIES],
        "command": config.slack.command if config else "/handoff",
        "shortcuts": message_shortcuts(),
        "users": {}, "channels": [], "ephemerals": [], "views": [], "home": None,
    }
    if emulator is None or config is None:
        return state
    ws = emulator.ws
    staff = set(ws.channels[demo.SUPPORT].members) - {ws.bot_user_id}
    state["users"] = {uid: person(user, staff) for uid, user in ws.users.items()}
    state["bot"] = {"user_id": ws.bot_user_id, "bot_id": ws.bot_id, "name": ws.bot_name}
    for spec in demo.CHANNELS:
        channel = ws.channels[spec.channel_id]
        state["channels"].append({
            "id": channel.id, "name": channel.name, "kind": spec.kind, "topic": spec.topic,
            "shared": channel.is_ext_shared, "member": viewer in channel.members,
            "messages": [page_message(ws.public_message(channel, m))
                         for m in ws.ordered(channel)],
            # The app's thinking status per thread (assistant.threads.setStatus).
            "statuses": {thread: status for (cid, thread), status in ws.assistant_status.items()
                         if cid == channel.id and status}})
    state["ephemerals"] = [{k: v for k, v in e.items() if v is not None}
                           for e in ws.ephemerals if e.get("user") == viewer]
    state["views"] = [{k: view.get(k) for k in ("id", "title", "submit", "close", "blocks",
                                                "callback_id", "previous_view_id")}
                      for view in ws.views.values() if view.get("user") == viewer]
    home = ws.home_views.get(viewer)
    if home is not None:  # the Home tab as the bot last published it for this person
        state["home"] = {"id": home["id"], "blocks": home.get("blocks") or [],
                         "hash": home.get("hash")}
    return state
