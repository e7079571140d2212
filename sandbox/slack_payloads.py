"""Builders of what Slack sends to an app: Events API envelopes, slash command forms and
interactivity payloads (block_actions, message_action, view_submission), in Slack's shapes.
"""

from __future__ import annotations

import base64
import copy
import json
import re
import secrets
import time
from typing import Any

from sandbox.slack_state import Channel, Workspace

MENTION = re.compile(r"<@([A-Z0-9]+)>")


def rich_text_blocks(text: str) -> list[dict[str, Any]]:
    """The rich_text block Slack clients attach to a typed message (mentions as user elements)."""
    elements: list[dict[str, Any]] = []
    pos = 0
    for match in MENTION.finditer(text):
        if match.start() > pos:
            elements.append({"type": "text", "text": text[pos:match.start()]})
        elements.append({"type": "user", "user_id": match.group(1)})
        pos = match.end()
    if pos < len(text):
        elements.append({"type": "text", "text": text[pos:]})
    return [{"type": "rich_text", "block_id": secrets.token_hex(3),
             "elements": [{"type": "rich_text_section", "elements": elements}]}]


def user_ref(ws: Workspace, user_id: str) -> dict[str, Any]:
    """The `user` object of interactivity payloads."""
    user = ws.users.get(user_id)
    name = user.name if user else user_id
    return {"id": user_id, "username": name, "name": name, "team_id": ws.team_of(user_id)}


def team_ref(ws: Workspace) -> dict[str, Any]:
    return {"id": ws.team_id, "domain": ws.team_domain}


def channel_ref(channel: Channel) -> dict[str, Any]:
    return {"id": channel.id, "name": channel.name}


def event_callback(ws: Workspace, event: dict[str, Any], *, event_id: str,
                   channel: Channel | None = None) -> dict[str, Any]:
    """The Events API outer envelope (`type: event_callback`)."""
    context = {"team_id": ws.team_id, "app_id": ws.app_id}
    return {
        "token": "emulator-verification-token",
        "team_id": ws.team_id,
        "context_team_id": ws.team_id,
        "context_enterprise_id": None,
        "api_app_id": ws.app_id,
        "event": event,
        "type": "event_callback",
        "event_id": event_id,
        "event_time": int(time.time()),
        "authorizations": [{"enterprise_id": None, "team_id": ws.team_id,
                            "user_id": ws.bot_user_id, "is_bot": True,
                            "is_enterprise_install": False}],
        "is_ext_shared_channel": bool(channel and channel.is_ext_shared),
        "event_context": "4-" + base64.b64encode(json.dumps(context).encode()).decode(),
    }


def _event_message(ws: Workspace, message: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(message)
    out.pop("reactions", None)
    if out.get("user") and not out.get("bot_id"):
        team = ws.team_of(out["user"])
        out.setdefault("team", team)
        out.update(user_team=team, source_team=team)
    return out


def message_event(ws: Workspace, channel: Channel, message: dict[str, Any]) -> dict[str, Any]:
    """A `message` event for a new message (a person's, or the app's own with `bot_id`)."""
    event = _event_message(ws, message)
    event.update(channel=channel.id, event_ts=message["ts"], channel_type=channel.channel_type)
    return event


def app_mention_event(ws: Workspace, channel: Channel, message: dict[str, Any]
                      ) -> dict[str, Any]:
    """The separate `app_mention` event Slack sends when a message mentions the bot."""
    keep = ("client_msg_id", "user", "text", "ts", "team", "thread_ts", "blocks",
            "user_team", "source_team", "parent_user_id")
    base = _event_message(ws, message)
    event = {"type": "app_mention", **{k: base[k] for k in keep if k in base}}
    event.update(channel=channel.id, event_ts=message["ts"])
    return event


def changed_event(ws: Workspace, channel: Channel, message: dict[str, Any],
                  previous: dict[str, Any], event_ts: str) -> dict[str, Any]:
    return {"type": "message", "subtype": "message_changed", "hidden": True,
            "channel": channel.id, "ts": event_ts, "event_ts": event_ts,
            "message": _event_message(ws, message),
            "previous_message": _event_message(ws, previous),
            "channel_type": channel.channel_type}


def deleted_event(ws: Workspace, channel: Channel, previous: dict[str, Any], event_ts: str
                  ) -> dict[str, Any]:
    event = {"type": "message", "subtype": "message_deleted", "hidden": True,
             "channel": channel.id, "ts": event_ts, "deleted_ts": previous["ts"],
             "event_ts": event_ts, "previous_message": _event_message(ws, previous),
             "channel_type": channel.channel_type}
    if previous.get("thread_ts"):
        event["thread_ts"] = previous["thread_ts"]
    return event


def reaction_event(kind: str, channel: Channel, message: dict[str, Any], reaction: str,
                   user: str, event_ts: str) -> dict[str, Any]:
    """`reaction_added` / `reaction_removed` on a message."""
    return {"type": kind, "user": user, "reaction": reaction,
            "item_user": message.get("user"),
            "item": {"type": "message", "channel": channel.id, "ts": message["ts"]},
            "event_ts": event_ts}


def slash_command(ws: Workspace, *, command: str, text: str, user: str, channel: Channel,
                  response_url: str, trigger_id: str) -> dict[str, str]:
    """Slash command fields (form-encoded over HTTP, a JSON object over Socket Mode)."""
    return {
        "token": "emulator-verification-token",
        "team_id": ws.team_id,
        "team_domain": ws.team_domain,
        "channel_id": channel.id,
        "channel_name": channel.name,
        "user_id": user,
        "user_name": ws.users[user].name if user in ws.users else user,
        "command": command,
        "text": text,
        "api_app_id": ws.app_id,
        "is_enterprise_install": "false",
        "response_url": response_url,
        "trigger_id": trigger_id,
    }


def find_element(blocks: list[dict[str, Any]], action_id: str, block_id: str | None
                 ) -> tuple[str, dict[str, Any]]:
    """The interactive element with `action_id` in message blocks (and its block id)."""
    for block in blocks:
        if block_id and block.get("block_id") != block_id:
            continue
        candidates = list(block.get("elements") or [])
        if block.get("accessory"):
            candidates.append(block["accessory"])
        for element in candidates:
            if isinstance(element, dict) and element.get("action_id") == action_id:
                return block.get("block_id", ""), element
    raise ValueError(f"no element with action_id={action_id!r} in the message blocks")


def block_actions(ws: Workspace, *, user: str, channel: Channel, message: dict[str, Any],
                  action: dict[str, Any], response_url: str, trigger_id: str
                  ) -> dict[str, Any]:
    container: dict[str, Any] = {"type": "message", "message_ts": message["ts"],
                                 "channel_id": channel.id, "is_ephemeral": False}
    if message.get("thread_ts"):
        container["thread_ts"] = message["thread_ts"]
    return {
        "type": "block_actions",
        "user": user_ref(ws, user),
        "api_app_id": ws.app_id,
        "token": "emulator-verification-token",
        "container": container,
        "trigger_id": trigger_id,
        "team": team_ref(ws),
        "enterprise": None,
        "is_enterprise_install": False,
        "channel": channel_ref(channel),
        "message": copy.deepcopy(message),
        "state": {"values": {}},
        "response_url": response_url,
        "actions": [action],
    }


def home_block_actions(ws: Workspace, *, user: str, view: dict[str, Any],
                       action: dict[str, Any], trigger_id: str) -> dict[str, Any]:
    """A click on a Home tab: the container is the view; there is no channel, message or
    response_url."""
    return {
        "type": "block_actions",
        "user": user_ref(ws, user),
        "api_app_id": ws.app_id,
        "token": "emulator-verification-token",
        "container": {"type": "view", "view_id": view["id"]},
        "trigger_id": trigger_id,
        "team": team_ref(ws),
        "enterprise": None,
        "is_enterprise_install": False,
        "view": view,
        "actions": [action],
    }


def message_action(ws: Workspace, *, callback_id: str, user: str, channel: Channel,
                   message: dict[str, Any], response_url: str, trigger_id: str
                   ) -> dict[str, Any]:
    """A message shortcut (`type: message_action`)."""
    return {
        "type": "message_action",
        "token": "emulator-verification-token",
        "action_ts": f"{time.time():.6f}",
        "team": team_ref(ws),
        "user": user_ref(ws, user),
        "channel": channel_ref(channel),
        "is_enterprise_install": False,
        "enterprise": None,
        "callback_id": callback_id,
        "trigger_id": trigger_id,
        "response_url": response_url,
        "message_ts": message["ts"],
        "message": copy.deepcopy(message),
    }


def state_values(values: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """`view.state.values`; a plain string value stands for a plain_text_input's value."""
    out: dict[str, dict[str, Any]] = {}
    for block_id, actions in values.items():
        out[block_id] = {}
        for action_id, value in actions.items():
            if isinstance(value, dict):
                out[block_id][action_id] = value
            else:
                out[block_id][action_id] = {"type": "plain_text_input", "value": value}
    return out


def view_submission(ws: Workspace, *, user: str, view: dict[str, Any], trigger_id: str
                    ) -> dict[str, Any]:
    public = copy.deepcopy(view)
    public.pop("user", None)
    return {
        "type": "view_submission",
        "team": team_ref(ws),
        "user": user_ref(ws, user),
        "api_app_id": ws.app_id,
        "token": "emulator-verification-token",
        "trigger_id": trigger_id,
        "view": public,
        "response_urls": [],
        "is_enterprise_install": False,
        "enterprise": None,
    }
