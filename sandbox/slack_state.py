"""In-memory state of the emulated Slack workspace: users, channels, messages, views.

Pure data and Slack-shaped serialisation; no HTTP, no delivery. Everything here is synchronous
and runs on the event loop that owns the emulator.
"""

from __future__ import annotations

import copy
import itertools
import secrets
import string
import time
from dataclasses import dataclass, field
from typing import Any


class SlackError(Exception):
    """A Web API error: becomes `{"ok": false, "error": code}` in the HTTP response."""

    def __init__(self, code: str, **extra: Any) -> None:
        super().__init__(code)
        self.code = code
        self.extra = extra


def ts_key(ts: str) -> tuple[int, int]:
    """Sort key of a Slack ts string ("1700000000.000100")."""
    sec, _, frac = ts.partition(".")
    return int(sec), int(frac or 0)


@dataclass
class User:
    id: str
    name: str
    real_name: str
    team_id: str
    is_bot: bool = False
    is_restricted: bool = False
    is_stranger: bool = False
    bot_id: str | None = None
    display_name: str = ""  # Slack's default: empty until the person sets one


@dataclass
class Channel:
    id: str
    name: str
    members: list[str]
    is_ext_shared: bool = False
    # Slack Connect: organisations connected to the channel, and ones invited but not yet in.
    connected_teams: list[str] = field(default_factory=list)
    pending_teams: list[str] = field(default_factory=list)
    created: int = field(default_factory=lambda: int(time.time()))
    messages: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def is_private(self) -> bool:
        return self.id.startswith("G")

    @property
    def is_im(self) -> bool:
        return self.id.startswith("D")

    @property
    def channel_type(self) -> str:
        """The `channel_type` field of message events."""
        if self.is_im:
            return "im"
        return "group" if self.is_private else "channel"


@dataclass
class Usergroup:
    id: str
    handle: str
    users: list[str]


class Workspace:
    """One Slack workspace (team) with its bot installed, plus Slack Connect guests."""

    def __init__(
        self,
        *,
        team_id: str,
        bot_user_id: str,
        bot_id: str,
        app_id: str,
        bot_name: str,
    ) -> None:
        self.team_id = team_id
        self.team_domain = team_id.lower()
        self.bot_user_id = bot_user_id
        self.bot_id = bot_id
        self.app_id = app_id
        self.bot_name = bot_name
        self.web_url = "http://127.0.0.1/"  # replaced by the emulator once it listens
        self.users: dict[str, User] = {}
        self.channels: dict[str, Channel] = {}
        self.usergroups: dict[str, Usergroup] = {}
        self.views: dict[str, dict[str, Any]] = {}
        # Each person's Home tab, as the app last published it (views.publish).
        self.home_views: dict[str, dict[str, Any]] = {}
        self.triggers: dict[str, dict[str, Any]] = {}
        self.ephemerals: list[dict[str, Any]] = []
        self.assistant_status: dict[tuple[str, str], str] = {}
        # The loading messages shown with the status (`assistant.threads.setStatus`).
        self.assistant_loading: dict[tuple[str, str], list[str]] = {}
        # Channels that refuse `chat.startStream`, as an older workspace or a channel type
        # without streaming would (`channel_type_not_supported`).
        self.streaming_refused: set[str] = set()
        self.strangers_not_found = False
        self._last_ts_us = 0
        self._ids = itertools.count(1)
        self.users[bot_user_id] = User(
            bot_user_id, bot_name, bot_name, team_id, is_bot=True, bot_id=bot_id
        )

    # ids and timestamps ------------------------------------------------------------------
    def next_ts(self) -> str:
        """A new message ts, strictly greater than every earlier one."""
        now_us = int(time.time() * 1_000_000)
        self._last_ts_us = max(now_us, self._last_ts_us + 1)
        sec, us = divmod(self._last_ts_us, 1_000_000)
        return f"{sec}.{us:06d}"

    def new_id(self, prefix: str, length: int = 10) -> str:
        """A Slack-looking id: prefix + upper-case alphanumerics, unique in this workspace."""
        alphabet = string.ascii_uppercase + string.digits
        body = "".join(secrets.choice(alphabet) for _ in range(length - 4))
        return f"{prefix}{body}{next(self._ids):04d}"

    # directory ---------------------------------------------------------------------------
    def add_user(self, user: User) -> User:
        self.users[user.id] = user
        return user

    def add_channel(self, channel: Channel) -> Channel:
        self.channels[channel.id] = channel
        return channel

    def channel(self, ref: str | None) -> Channel:
        """A channel by id, or by name ("general" / "#general"); `channel_not_found` else."""
        if ref:
            if ref in self.channels:
                return self.channels[ref]
            name = ref.lstrip("#")
            for ch in self.channels.values():
                if ch.name == name:
                    return ch
        raise SlackError("channel_not_found")

    def user(self, user_id: str | None) -> User:
        if not user_id or user_id not in self.users:
            raise SlackError("user_not_found")
        return self.users[user_id]

    def team_of(self, user_id: str) -> str:
        user = self.users.get(user_id)
        return user.team_id if user else self.team_id

    # messages ----------------------------------------------------------------------------
    def store(self, channel: Channel, message: dict[str, Any]) -> dict[str, Any]:
        """Store a new message (its `ts` must be set); thread replies get `parent_user_id`."""
        root_ts = message.get("thread_ts")
        if root_ts and root_ts != message["ts"]:
            root = self.message(channel, root_ts, error="thread_not_found")
            if root.get("thread_ts") and root["thread_ts"] != root["ts"]:
                root_ts = root["thread_ts"]  # a reply's ts: Slack threads under its parent
                root = self.message(channel, root_ts)
            message["thread_ts"] = root_ts
            message["parent_user_id"] = root.get("user")
        channel.messages[message["ts"]] = message
        return message

    def message(self, channel: Channel, ts: str | None, *, error: str = "message_not_found"
                ) -> dict[str, Any]:
        if not ts or ts not in channel.messages:
            raise SlackError(error)
        return channel.messages[ts]

    def replies(self, channel: Channel, root_ts: str) -> list[dict[str, Any]]:
        """The replies of a thread (without its root), oldest first."""
        found = [m for m in channel.messages.values()
                 if m.get("thread_ts") == root_ts and m["ts"] != root_ts]
        return sorted(found, key=lambda m: ts_key(m["ts"]))

    def ordered(self, channel: Channel) -> list[dict[str, Any]]:
        return sorted(channel.messages.values(), key=lambda m: ts_key(m["ts"]))

    def public_message(self, channel: Channel, message: dict[str, Any], *,
                       with_metadata: bool = True) -> dict[str, Any]:
        """A copy of a stored message as the Web API shows it (thread summary on roots)."""
        out = copy.deepcopy(message)
        if not with_metadata:
            out.pop("metadata", None)
        if not out.get("thread_ts") or out["thread_ts"] == out["ts"]:
            replies = self.replies(channel, out["ts"])
            if replies:
                users = list(dict.fromkeys(r.get("user") for r in replies if r.get("user")))
                out.update(
                    thread_ts=out["ts"],
                    reply_count=len(replies),
                    reply_users_count=len(users),
                    reply_users=users,
                    latest_reply=replies[-1]["ts"],
                    is_locked=False,
                    subscribed=False,
                )
        return out

    def permalink(self, channel: Channel, message: dict[str, Any]) -> str:
        link = f"{self.web_url}archives/{channel.id}/p{message['ts'].replace('.', '')}"
        root = message.get("thread_ts")
        if root and root != message["ts"]:
            link += f"?thread_ts={root}&cid={channel.id}"
        return link

    # serialisation -----------------------------------------------------------------------
    def bot_profile(self) -> dict[str, Any]:
        return {
            "id": self.bot_id,
            "app_id": self.app_id,
            "name": self.bot_name,
            "icons": {"image_36": "", "image_48": "", "image_72": ""},
            "deleted": False,
            "updated": 1700000000,
            "team_id": self.team_id,
        }

    def user_object(self, user: User) -> dict[str, Any]:
        """`users.info` shape. Strangers (other workspaces, no shared channel) show little."""
        if user.is_stranger:
            return {"id": user.id, "team_id": user.team_id, "is_stranger": True,
                    "deleted": False, "profile": {"team": user.team_id}}
        profile: dict[str, Any] = {
            "real_name": user.real_name,
            "real_name_normalized": user.real_name,
            "display_name": user.display_name,
            "display_name_normalized": user.display_name,
            "first_name": user.real_name.split(" ")[0],
            "team": user.team_id,
            "image_48": f"{self.web_url}avatars/{user.id}.png",
        }
        if user.bot_id:
            profile.update(bot_id=user.bot_id, api_app_id=self.app_id, always_active=True)
        return {
            "id": user.id,
            "team_id": user.team_id,
            "name": user.name,
            "deleted": False,
            "color": "9f69e7",
            "real_name": user.real_name,
            "tz": "Europe/London",
            "tz_label": "Greenwich Mean Time",
            "tz_offset": 0,
            "profile": profile,
            "is_admin": False,
            "is_owner": False,
            "is_primary_owner": False,
            "is_restricted": user.is_restricted,
            "is_ultra_restricted": False,
            "is_bot": user.is_bot,
            "is_app_user": False,
            "updated": 1700000000,
            "is_email_confirmed": not user.is_bot,
        }

    def channel_object(self, channel: Channel, *, num_members: bool = False) -> dict[str, Any]:
        """`conversations.info` shape."""
        others = ({self.team_of(m) for m in channel.members} | set(channel.connected_teams)
                  ) - {self.team_id}
        teams = [self.team_id, *sorted(others)]
        out: dict[str, Any] = {
            "id": channel.id,
            "created": channel.created,
            "is_archived": False,
            "is_im": channel.is_im,
            "is_org_shared": False,
            "context_team_id": self.team_id,
            "updated": channel.created * 1000,
        }
        if channel.is_im:
            others = [m for m in channel.members if m != self.bot_user_id]
            out.update(user=others[0] if others else None, is_user_deleted=False)
            return out
        out.update(
            name=channel.name,
            name_normalized=channel.name,
            is_channel=not channel.is_private,
            is_group=channel.is_private,
            is_mpim=False,
            is_private=channel.is_private,
            is_general=False,
            unlinked=0,
            is_shared=channel.is_ext_shared,
            is_ext_shared=channel.is_ext_shared,
            is_pending_ext_shared=bool(channel.pending_teams),
            pending_shared=list(channel.pending_teams),
            shared_team_ids=teams if channel.is_ext_shared else [self.team_id],
            creator="",
            is_member=self.bot_user_id in channel.members,
            topic={"value": "", "creator": "", "last_set": 0},
            purpose={"value": "", "creator": "", "last_set": 0},
            previous_names=[],
        )
        if num_members:
            out["num_members"] = len(channel.members)
        return out
