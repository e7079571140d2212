"""Slack Web API methods of the emulator: parameters in, Slack-shaped response dicts out.

Each handler takes the merged request parameters (query string, form or JSON body) and returns
the response body, or raises `SlackError(code)`. Changes that Slack would announce to the app
(messages posted, edited, deleted, reactions) are reported through the `on_change` callback.
"""

from __future__ import annotations

import base64
import copy
import json
import secrets
from collections.abc import Callable
from typing import Any

from sandbox.slack_state import Channel, SlackError, Workspace, ts_key
from sandbox.slack_views import ViewsApi

Handler = Callable[[dict[str, Any]], dict[str, Any]]
OnChange = Callable[[str, Channel, dict[str, Any], dict[str, Any] | None], None]

MAX_TEXT = 40_000
MAX_BLOCKS = 50
MAX_STREAM_TEXT = 12_000  # markdown_text of one startStream / appendStream / stopStream call
# Elements Slack accepts in a `context_actions` block.
CONTEXT_ACTIONS_ELEMENTS = ("feedback_buttons", "icon_button")


def truthy(value: Any) -> bool:
    """Slack's boolean parameters: true/1 (strings from forms and query strings too)."""
    return value is True or str(value).lower() in ("1", "true")


def json_param(value: Any, error: str) -> Any:
    """A parameter that may arrive as JSON text (form-encoded) or already decoded (JSON body)."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError as exc:
            raise SlackError(error) from exc
    return value


def encode_cursor(offset: int) -> str:
    return base64.b64encode(f"offset:{offset}".encode()).decode()


def decode_cursor(cursor: Any) -> int:
    if not cursor:
        return 0
    try:
        kind, _, num = base64.b64decode(str(cursor)).decode().partition(":")
        if kind != "offset":
            raise ValueError(kind)
        return int(num)
    except ValueError as exc:
        raise SlackError("invalid_cursor") from exc


def paginate(items: list[Any], params: dict[str, Any], default_limit: int
             ) -> tuple[list[Any], str]:
    """Slice `items` by `cursor` and `limit`; returns the page and the next cursor ("" at end)."""
    start = decode_cursor(params.get("cursor"))
    limit = int(params.get("limit") or default_limit) or default_limit
    page = items[start:start + limit]
    more = start + limit < len(items)
    return page, encode_cursor(start + limit) if more else ""


class WebApi:
    """The Web API methods, bound to one workspace."""

    def __init__(self, ws: Workspace, on_change: OnChange) -> None:
        self.ws = ws
        self.on_change = on_change
        self.views = ViewsApi(ws)
        self.methods: dict[str, Handler] = {
            "auth.test": self.auth_test,
            "chat.postMessage": self.chat_post_message,
            "chat.update": self.chat_update,
            "chat.delete": self.chat_delete,
            "chat.postEphemeral": self.chat_post_ephemeral,
            "chat.getPermalink": self.chat_get_permalink,
            "conversations.replies": self.conversations_replies,
            "conversations.history": self.conversations_history,
            "conversations.info": self.conversations_info,
            "conversations.members": self.conversations_members,
            "users.info": self.users_info,
            "usergroups.users.list": self.usergroups_users_list,
            "reactions.add": self.reactions_add,
            "reactions.remove": self.reactions_remove,
            "views.open": self.views.views_open,
            "views.update": self.views.views_update,
            "views.push": self.views.views_push,
            "views.publish": self.views.views_publish,
            "assistant.threads.setStatus": self.assistant_set_status,
            "chat.startStream": self.chat_start_stream,
            "chat.appendStream": self.chat_append_stream,
            "chat.stopStream": self.chat_stop_stream,
        }

    # helpers -----------------------------------------------------------------------------
    def _bot_channel(self, params: dict[str, Any], key: str = "channel") -> Channel:
        channel = self.ws.channel(params.get(key))
        if channel.is_private and self.ws.bot_user_id not in channel.members:
            raise SlackError("channel_not_found")
        return channel

    def _content(self, params: dict[str, Any]) -> dict[str, Any]:
        """Validated text / blocks / attachments / metadata of a message being written."""
        out: dict[str, Any] = {}
        text = params.get("text")
        blocks = json_param(params.get("blocks"), "invalid_blocks_format")
        attachments = json_param(params.get("attachments"), "invalid_attachments")
        metadata = json_param(params.get("metadata"), "invalid_metadata_format")
        if text is not None:
            if len(str(text)) > MAX_TEXT:
                raise SlackError("msg_too_long")
            out["text"] = str(text)
        if blocks is not None:
            if (not isinstance(blocks, list) or len(blocks) > MAX_BLOCKS
                    or not all(isinstance(b, dict) and b.get("type") for b in blocks)):
                raise SlackError("invalid_blocks")
            blocks = copy.deepcopy(blocks)
            for block in blocks:
                check_block(block)
                block.setdefault("block_id", secrets.token_hex(3))
            out["blocks"] = blocks
        if attachments is not None:
            out["attachments"] = attachments
        if metadata is not None:
            if (not isinstance(metadata, dict) or not isinstance(metadata.get("event_type"), str)
                    or not isinstance(metadata.get("event_payload", {}), dict)):
                raise SlackError("invalid_metadata_format")
            out["metadata"] = {"event_type": metadata["event_type"],
                               "event_payload": metadata.get("event_payload", {})}
        return out

    # auth / chat -------------------------------------------------------------------------
    def auth_test(self, params: dict[str, Any]) -> dict[str, Any]:
        ws = self.ws
        return {"ok": True, "url": f"https://{ws.team_domain}.slack.com/",
                "team": "Emulated Workspace", "user": ws.bot_name, "team_id": ws.team_id,
                "user_id": ws.bot_user_id, "bot_id": ws.bot_id,
                "is_enterprise_install": False}

    def chat_post_message(self, params: dict[str, Any]) -> dict[str, Any]:
        ws = self.ws
        channel = self._bot_channel(params)
        if ws.bot_user_id not in channel.members:
            raise SlackError("not_in_channel")
        content = self._content(params)
        if not content.get("text") and not content.get("blocks") and not content.get(
                "attachments"):
            raise SlackError("no_text")
        message: dict[str, Any] = {
            "type": "message", "ts": ws.next_ts(), "user": ws.bot_user_id,
            "bot_id": ws.bot_id, "app_id": ws.app_id, "text": content.pop("text", ""),
            "team": ws.team_id, "bot_profile": ws.bot_profile(), **content,
        }
        if params.get("username"):
            message["username"] = str(params["username"])
        if params.get("icon_emoji"):
            message["icons"] = {"emoji": str(params["icon_emoji"])}
        elif params.get("icon_url"):
            message["icons"] = {"image_48": str(params["icon_url"])}
        if params.get("thread_ts"):
            message["thread_ts"] = str(params["thread_ts"])
            if truthy(params.get("reply_broadcast")):
                message["subtype"] = "thread_broadcast"
        ws.store(channel, message)
        self._status_cleared_by(channel, message)
        self.on_change("posted", channel, message, None)
        return {"ok": True, "channel": channel.id, "ts": message["ts"],
                "message": ws.public_message(channel, message)}

    def _status_cleared_by(self, channel: Channel, message: dict[str, Any]) -> None:
        """Slack clears a thread's assistant status when the app replies in it."""
        thread_ts = message.get("thread_ts")
        if thread_ts:
            self.ws.assistant_status.pop((channel.id, str(thread_ts)), None)
            self.ws.assistant_loading.pop((channel.id, str(thread_ts)), None)

    # streaming ---------------------------------------------------------------------------
    def _stream_text(self, params: dict[str, Any], *, required: bool) -> str:
        text = params.get("markdown_text")
        if text is None or text == "":
            if required and not params.get("chunks"):
                raise SlackError("invalid_arguments")
            return ""
        if len(str(text)) > MAX_STREAM_TEXT:
            raise SlackError("msg_too_long")
        return str(text)

    def _streaming_message(self, params: dict[str, Any]) -> tuple[Channel, dict[str, Any]]:
        if not params.get("channel") or not params.get("ts"):
            raise SlackError("invalid_arguments")
        channel = self._bot_channel(params)
        message = self.ws.message(channel, params.get("ts"))
        if message.get("bot_id") != self.ws.bot_id or not message.get("streaming"):
            raise SlackError("message_not_in_streaming_state")
        return channel, message

    def chat_start_stream(self, params: dict[str, Any]) -> dict[str, Any]:
        """A message that grows with `chat.appendStream` until `chat.stopStream`. In a channel
        (not a DM) Slack requires the user and team the text streams to."""
        ws = self.ws
        if not params.get("channel"):
            raise SlackError("invalid_arguments")
        channel = self._bot_channel(params)
        if ws.bot_user_id not in channel.members:
            raise SlackError("not_in_channel")
        if channel.id in ws.streaming_refused:
            raise SlackError("channel_type_not_supported")
        if not channel.is_im and not (params.get("recipient_user_id")
                                      and params.get("recipient_team_id")):
            raise SlackError("invalid_arguments")
        thread_ts = str(params.get("thread_ts") or "")
        if thread_ts:
            ws.message(channel, thread_ts, error="thread_not_found")
        text = self._stream_text(params, required=False)
        message: dict[str, Any] = {
            "type": "message", "ts": ws.next_ts(), "user": ws.bot_user_id,
            "bot_id": ws.bot_id, "app_id": ws.app_id, "text": text, "team": ws.team_id,
            "bot_profile": ws.bot_profile(), "streaming": True,
            "recipient_user_id": params.get("recipient_user_id")}
        if thread_ts:
            message["thread_ts"] = thread_ts
        if params.get("username"):
            message["username"] = str(params["username"])
        ws.store(channel, message)
        self._status_cleared_by(channel, message)
        self.on_change("posted", channel, message, None)
        return {"ok": True, "channel": channel.id, "ts": message["ts"]}

    def chat_append_stream(self, params: dict[str, Any]) -> dict[str, Any]:
        """Text added to a streaming message (seen at once; no event until it stops)."""
        text = self._stream_text(params, required=True)
        channel, message = self._streaming_message(params)
        message["text"] = message.get("text", "") + text
        return {"ok": True, "channel": channel.id, "ts": message["ts"]}

    def chat_stop_stream(self, params: dict[str, Any]) -> dict[str, Any]:
        """The last text, blocks at the bottom and metadata; the message is final."""
        text = self._stream_text(params, required=False)
        channel, message = self._streaming_message(params)
        previous = copy.deepcopy(message)
        content = self._content({"blocks": params.get("blocks"),
                                 "metadata": params.get("metadata")})
        message["text"] = message.get("text", "") + text
        message.update(content)
        message.pop("streaming", None)
        message.pop("recipient_user_id", None)
        message["edited"] = {"user": self.ws.bot_user_id, "ts": self.ws.next_ts()}
        self.on_change("changed", channel, message, previous)
        return {"ok": True, "channel": channel.id, "ts": message["ts"],
                "message": self.ws.public_message(channel, message)}

    def chat_update(self, params: dict[str, Any]) -> dict[str, Any]:
        ws = self.ws
        channel = self._bot_channel(params)
        message = ws.message(channel, params.get("ts"))
        if message.get("bot_id") != ws.bot_id:
            raise SlackError("cant_update_message")
        content = self._content(params)
        if not content:
            raise SlackError("no_text")
        previous = copy.deepcopy(message)
        message.update(content)
        message["edited"] = {"user": ws.bot_user_id, "ts": ws.next_ts()}
        self.on_change("changed", channel, message, previous)
        public = ws.public_message(channel, message)
        return {"ok": True, "channel": channel.id, "ts": message["ts"],
                "text": message.get("text", ""), "message": public}

    def chat_delete(self, params: dict[str, Any]) -> dict[str, Any]:
        ws = self.ws
        channel = self._bot_channel(params)
        message = ws.message(channel, params.get("ts"))
        if message.get("bot_id") != ws.bot_id:
            raise SlackError("cant_delete_message")
        previous = copy.deepcopy(message)
        if ws.replies(channel, message["ts"]):  # a thread root leaves a tombstone
            message.clear()
            message.update(type="message", subtype="tombstone", ts=previous["ts"],
                           thread_ts=previous["ts"], text="This message was deleted.",
                           hidden=True, user="USLACKBOT")
        else:
            del channel.messages[previous["ts"]]
        self.on_change("deleted", channel, previous, None)
        return {"ok": True, "channel": channel.id, "ts": previous["ts"]}

    def chat_post_ephemeral(self, params: dict[str, Any]) -> dict[str, Any]:
        ws = self.ws
        channel = self._bot_channel(params)
        user = ws.user(params.get("user"))
        if user.id not in channel.members:
            raise SlackError("user_not_in_channel")
        content = self._content(params)
        if not content.get("text") and not content.get("blocks"):
            raise SlackError("no_text")
        ts = ws.next_ts()
        ws.ephemerals.append({"channel": channel.id, "user": user.id, "ts": ts,
                              "thread_ts": params.get("thread_ts"),
                              "username": params.get("username"), "blocks": None, **content})
        return {"ok": True, "message_ts": ts}

    def chat_get_permalink(self, params: dict[str, Any]) -> dict[str, Any]:
        channel = self._bot_channel(params)
        message = self.ws.message(channel, params.get("message_ts"))
        return {"ok": True, "channel": channel.id,
                "permalink": self.ws.permalink(channel, message)}

    # conversations -----------------------------------------------------------------------
    def _time_filter(self, messages: list[dict[str, Any]], params: dict[str, Any]
                     ) -> list[dict[str, Any]]:
        inclusive = truthy(params.get("inclusive"))
        oldest, latest = params.get("oldest"), params.get("latest")
        out = []
        for m in messages:
            key = ts_key(m["ts"])
            if oldest and (key < ts_key(str(oldest)) or (key == ts_key(str(oldest))
                                                         and not inclusive)):
                continue
            if latest and (key > ts_key(str(latest)) or (key == ts_key(str(latest))
                                                         and not inclusive)):
                continue
            out.append(m)
        return out

    def conversations_replies(self, params: dict[str, Any]) -> dict[str, Any]:
        ws = self.ws
        channel = self._bot_channel(params)
        message = ws.message(channel, params.get("ts"), error="thread_not_found")
        root = ws.message(channel, message.get("thread_ts") or message["ts"])
        thread = [root, *self._time_filter(ws.replies(channel, root["ts"]), params)]
        page, cursor = paginate(thread, params, 1000)
        meta = truthy(params.get("include_all_metadata"))
        body: dict[str, Any] = {
            "ok": True, "has_more": bool(cursor),
            "messages": [ws.public_message(channel, m, with_metadata=meta) for m in page]}
        if cursor:
            body["response_metadata"] = {"next_cursor": cursor}
        return body

    def conversations_history(self, params: dict[str, Any]) -> dict[str, Any]:
        ws = self.ws
        channel = self._bot_channel(params)
        top = [m for m in ws.ordered(channel)
               if not m.get("thread_ts") or m["thread_ts"] == m["ts"]
               or m.get("subtype") == "thread_broadcast"]
        top = list(reversed(self._time_filter(top, params)))
        page, cursor = paginate(top, params, 100)
        meta = truthy(params.get("include_all_metadata"))
        body: dict[str, Any] = {
            "ok": True, "has_more": bool(cursor), "pin_count": 0,
            "messages": [ws.public_message(channel, m, with_metadata=meta) for m in page],
            "channel_actions_ts": None, "channel_actions_count": 0}
        if cursor:
            body["response_metadata"] = {"next_cursor": cursor}
        return body

    def conversations_info(self, params: dict[str, Any]) -> dict[str, Any]:
        channel = self._bot_channel(params)
        obj = self.ws.channel_object(channel, num_members=truthy(params.get("include_num_members")))
        return {"ok": True, "channel": obj}

    def conversations_members(self, params: dict[str, Any]) -> dict[str, Any]:
        channel = self._bot_channel(params)
        page, cursor = paginate(list(channel.members), params, 100)
        return {"ok": True, "members": page, "response_metadata": {"next_cursor": cursor}}

    # users -------------------------------------------------------------------------------
    def users_info(self, params: dict[str, Any]) -> dict[str, Any]:
        user = self.ws.user(params.get("user"))
        if user.is_stranger and self.ws.strangers_not_found:
            raise SlackError("user_not_found")
        return {"ok": True, "user": self.ws.user_object(user)}

    def usergroups_users_list(self, params: dict[str, Any]) -> dict[str, Any]:
        group = self.ws.usergroups.get(str(params.get("usergroup") or ""))
        if group is None:
            raise SlackError("no_such_subteam")
        return {"ok": True, "users": list(group.users)}

    # reactions ---------------------------------------------------------------------------
    def _reaction_target(self, params: dict[str, Any]) -> tuple[Channel, dict[str, Any], str]:
        channel = self._bot_channel(params)
        message = self.ws.message(channel, params.get("timestamp"))
        name = str(params.get("name") or "").strip(":")
        if not name:
            raise SlackError("invalid_name")
        return channel, message, name

    def reactions_add(self, params: dict[str, Any]) -> dict[str, Any]:
        channel, message, name = self._reaction_target(params)
        add_reaction(message, name, self.ws.bot_user_id)
        self.on_change("reaction_added", channel, message,
                       {"reaction": name, "user": self.ws.bot_user_id})
        return {"ok": True}

    def reactions_remove(self, params: dict[str, Any]) -> dict[str, Any]:
        channel, message, name = self._reaction_target(params)
        remove_reaction(message, name, self.ws.bot_user_id)
        self.on_change("reaction_removed", channel, message,
                       {"reaction": name, "user": self.ws.bot_user_id})
        return {"ok": True}

    def assistant_set_status(self, params: dict[str, Any]) -> dict[str, Any]:
        channel = self._bot_channel(params, "channel_id")
        thread_ts = str(params.get("thread_ts") or "")
        if not thread_ts:
            raise SlackError("invalid_arguments")
        status = str(params.get("status") or "")
        loading = json_param(params.get("loading_messages"), "invalid_arguments") or []
        if not isinstance(loading, list) or len(loading) > 10:
            raise SlackError("invalid_arguments")
        key = (channel.id, thread_ts)
        if status:
            self.ws.assistant_status[key] = status
            self.ws.assistant_loading[key] = [str(m) for m in loading]
        else:  # an empty status clears it
            self.ws.assistant_status.pop(key, None)
            self.ws.assistant_loading.pop(key, None)
        return {"ok": True}


def check_block(block: dict[str, Any]) -> None:
    """The checks Slack makes on a `context_actions` block: at most 5 elements, each a
    `feedback_buttons` (with both buttons, each with text and value) or an `icon_button`."""
    if block.get("type") != "context_actions":
        return
    elements = block.get("elements")
    if not isinstance(elements, list) or not 0 < len(elements) <= 5:
        raise SlackError("invalid_blocks")
    for element in elements:
        if not isinstance(element, dict) or element.get("type") not in CONTEXT_ACTIONS_ELEMENTS:
            raise SlackError("invalid_blocks")
        if element["type"] == "feedback_buttons":
            for side in ("positive_button", "negative_button"):
                button = element.get(side)
                if (not isinstance(button, dict) or not isinstance(button.get("value"), str)
                        or not (button.get("text") or {}).get("text")):
                    raise SlackError("invalid_blocks")


def add_reaction(message: dict[str, Any], name: str, user: str) -> None:
    reactions = message.setdefault("reactions", [])
    entry = next((r for r in reactions if r["name"] == name), None)
    if entry is None:
        entry = {"name": name, "users": [], "count": 0}
        reactions.append(entry)
    if user in entry["users"]:
        raise SlackError("already_reacted")
    entry["users"].append(user)
    entry["count"] = len(entry["users"])


def remove_reaction(message: dict[str, Any], name: str, user: str) -> None:
    reactions = message.get("reactions") or []
    entry = next((r for r in reactions if r["name"] == name), None)
    if entry is None or user not in entry["users"]:
        raise SlackError("no_reaction")
    entry["users"].remove(user)
    entry["count"] = len(entry["users"])
    if not entry["users"]:
        reactions.remove(entry)
    if not reactions:
        message.pop("reactions", None)
