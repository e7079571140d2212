"""What people do in the emulated workspace (post, edit, react, click, run commands, submit
modals), each stored like Slack stores it and delivered to the app like Slack delivers it.

`PeopleActions` is a mixin of `SlackEmulator`; it relies on the emulator's delivery methods.
"""

from __future__ import annotations

import copy
import time
import uuid
from typing import Any

from sandbox import slack_payloads as p
from sandbox.slack_api import WebApi, add_reaction
from sandbox.slack_delivery import COMMANDS, INTERACTIVE, DeliveryResult, NoAppConnected
from sandbox.slack_state import Channel, SlackError, User, Workspace


class PeopleActions:
    ws: Workspace
    api: WebApi

    # provided by SlackEmulator
    async def _deliver(self, kind: str, payload: dict[str, Any], **retry: Any
                       ) -> DeliveryResult:
        raise NotImplementedError

    async def _deliver_event(self, event: dict[str, Any], channel: Channel | None
                             ) -> DeliveryResult | None:
        raise NotImplementedError

    def _new_response_url(self, context: dict[str, Any]) -> str:
        raise NotImplementedError

    def _new_trigger(self, user: str, view_id: str | None = None) -> str:
        raise NotImplementedError

    # helpers -----------------------------------------------------------------------------
    def _member_channel(self, channel: str, user: str) -> Channel:
        ch = self.ws.channel(channel)
        if user not in self.ws.users:
            raise ValueError(f"unknown user {user!r}: add_user() it first")
        if user not in ch.members:
            raise ValueError(f"{user} is not a member of {ch.id}: pass it in add_channel(members=)")
        return ch

    def _stored(self, channel: Channel, ts: str) -> dict[str, Any]:
        try:
            return self.ws.message(channel, ts)
        except SlackError:
            raise ValueError(f"no message {ts} in {channel.id}") from None

    # messages ----------------------------------------------------------------------------
    async def user_posts(self, channel: str, user: str, text: str, *,
                         thread_ts: str | None = None) -> str:
        """A person posts a message; delivers `message` (and `app_mention` when the text
        mentions the bot). Returns the message ts."""
        ch = self._member_channel(channel, user)
        message: dict[str, Any] = {
            "client_msg_id": str(uuid.uuid4()), "type": "message", "text": text,
            "user": user, "ts": self.ws.next_ts(), "blocks": p.rich_text_blocks(text),
            "team": self.ws.team_of(user)}
        author = self.ws.users[user]
        if author.bot_id:  # another app's bot user
            del message["client_msg_id"]
            message.update(bot_id=author.bot_id, app_id=f"A{author.bot_id[1:]}",
                           bot_profile={"id": author.bot_id, "app_id": f"A{author.bot_id[1:]}",
                                        "name": author.name, "deleted": False,
                                        "team_id": author.team_id})
        if thread_ts:
            message["thread_ts"] = thread_ts
        try:
            self.ws.store(ch, message)
        except SlackError as exc:
            raise ValueError(f"cannot post in thread {thread_ts}: {exc.code}") from None
        await self._deliver_event(p.message_event(self.ws, ch, message), ch)
        if f"<@{self.ws.bot_user_id}>" in text:
            await self._deliver_event(p.app_mention_event(self.ws, ch, message), ch)
        return message["ts"]

    async def user_edits(self, channel: str, ts: str, new_text: str, user: str
                         ) -> DeliveryResult | None:
        """A person edits their message: delivers `message_changed`."""
        ch = self._member_channel(channel, user)
        message = self._stored(ch, ts)
        if message.get("user") != user or message.get("bot_id"):
            raise ValueError(f"{user} did not write message {ts}")
        previous = copy.deepcopy(message)
        edit_ts = self.ws.next_ts()
        message.update(text=new_text, blocks=p.rich_text_blocks(new_text),
                       edited={"user": user, "ts": edit_ts})
        return await self._deliver_event(
            p.changed_event(self.ws, ch, message, previous, edit_ts), ch)

    async def user_deletes(self, channel: str, ts: str) -> DeliveryResult | None:
        """A message is deleted by its author: delivers `message_deleted`."""
        ch = self.ws.channel(channel)
        previous = copy.deepcopy(self._stored(ch, ts))
        del ch.messages[ts]
        return await self._deliver_event(
            p.deleted_event(self.ws, ch, previous, self.ws.next_ts()), ch)

    async def user_joins(self, channel: str, user: str) -> str:
        """A person joins a channel: `channel_join` message and `member_joined_channel`.
        An unknown user id is created as a member of the workspace's own team."""
        ch = self.ws.channel(channel)
        if user not in self.ws.users:
            self.ws.add_user(User(user, user.lower(), user.lower(), self.ws.team_id))
        if user not in ch.members:
            ch.members.append(user)
        message = {"type": "message", "subtype": "channel_join", "user": user,
                   "text": f"<@{user}> has joined the channel", "ts": self.ws.next_ts(),
                   "team": self.ws.team_of(user)}
        self.ws.store(ch, message)
        await self._deliver_event(p.message_event(self.ws, ch, message), ch)
        await self._deliver_event(
            {"type": "member_joined_channel", "user": user, "channel": ch.id,
             "channel_type": "G" if ch.is_private else "C", "team": self.ws.team_of(user),
             "event_ts": message["ts"]}, ch)
        return message["ts"]

    async def share_channel(self, channel: str, team_id: str, *, pending: bool = False
                            ) -> DeliveryResult | None:
        """Slack Connect: the channel is shared with organisation `team_id`. `pending`: only
        invited (conversations.info says `is_pending_ext_shared`, no event yet); otherwise the
        invitation is accepted and `channel_shared` is delivered."""
        ch = self.ws.channel(channel)
        if pending:
            ch.pending_teams.append(team_id)
            return None
        if team_id in ch.pending_teams:
            ch.pending_teams.remove(team_id)
        ch.connected_teams.append(team_id)
        ch.is_ext_shared = True
        return await self._deliver_if_connected(
            {"type": "channel_shared", "connected_team_id": team_id, "channel": ch.id,
             "event_ts": self.ws.next_ts()}, ch)

    async def unshare_channel(self, channel: str, team_id: str) -> DeliveryResult | None:
        """The organisation `team_id` is disconnected: its people leave the channel, and
        `channel_unshared` is delivered (`is_ext_shared`: whether others remain)."""
        ch = self.ws.channel(channel)
        if team_id in ch.connected_teams:
            ch.connected_teams.remove(team_id)
        ch.members = [m for m in ch.members if self.ws.team_of(m) != team_id]
        ch.is_ext_shared = bool(ch.connected_teams) or any(
            self.ws.team_of(m) != self.ws.team_id for m in ch.members)
        return await self._deliver_if_connected(
            {"type": "channel_unshared", "previously_connected_team_id": team_id,
             "channel": ch.id, "is_ext_shared": ch.is_ext_shared,
             "event_ts": self.ws.next_ts()}, ch)

    async def _deliver_if_connected(self, event: dict[str, Any], channel: Channel
                                    ) -> DeliveryResult | None:
        """Workspace changes happen with or without an app listening (set-up before start)."""
        try:
            return await self._deliver_event(event, channel)
        except NoAppConnected:
            return None

    async def add_reaction(self, channel: str, ts: str, name: str, user: str
                           ) -> DeliveryResult | None:
        """A person reacts to a message: stored, and `reaction_added` delivered."""
        ch = self._member_channel(channel, user)
        message = self._stored(ch, ts)
        add_reaction(message, name.strip(":"), user)
        return await self._deliver_event(
            p.reaction_event("reaction_added", ch, message, name.strip(":"), user,
                             self.ws.next_ts()), ch)

    # commands and interactivity ----------------------------------------------------------
    async def slash_command(self, command: str, text: str = "", *, user: str, channel: str
                            ) -> DeliveryResult:
        """A person runs a slash command; the result body is the app's immediate response."""
        ch = self.ws.channel(channel)
        url = self._new_response_url({"kind": "command", "channel": ch.id, "user": user})
        payload = p.slash_command(self.ws, command=command, text=text, user=user, channel=ch,
                                  response_url=url, trigger_id=self._new_trigger(user))
        return await self._deliver(COMMANDS, payload)

    async def click_button(self, *, user: str, channel: str, message_ts: str, action_id: str,
                           value: str | None = None, block_id: str | None = None
                           ) -> DeliveryResult:
        """A person clicks an interactive element of a stored message (`block_actions`)."""
        ch = self.ws.channel(channel)
        message = self._stored(ch, message_ts)
        found_block, element = p.find_element(message.get("blocks") or [], action_id, block_id)
        action: dict[str, Any] = {
            "action_id": action_id, "block_id": found_block,
            "type": element.get("type", "button"), "action_ts": f"{time.time():.6f}"}
        if element.get("type") == "feedback_buttons":
            # Slack sends the clicked button's value and text.
            buttons = [element.get("positive_button") or {}, element.get("negative_button") or {}]
            clicked = next((b for b in buttons if b.get("value") == value), None)
            if clicked is None:
                raise ValueError(f"no feedback button with value={value!r}")
            action["text"] = clicked.get("text")
        elif element.get("text") is not None:
            action["text"] = element["text"]
        action["value"] = value if value is not None else element.get("value")
        if element.get("style"):
            action["style"] = element["style"]
        url = self._new_response_url({"kind": "action", "channel": ch.id, "user": user,
                                      "message_ts": message_ts,
                                      "thread_ts": message.get("thread_ts")})
        payload = p.block_actions(self.ws, user=user, channel=ch,
                                  message=self.ws.public_message(ch, message), action=action,
                                  response_url=url, trigger_id=self._new_trigger(user))
        return await self._deliver(INTERACTIVE, payload)

    async def click_ephemeral_button(self, *, user: str, ephemeral_ts: str, action_id: str,
                                     value: str | None = None) -> DeliveryResult:
        """A person clicks a button of an ephemeral message only they can see. As in Slack,
        the payload has no `message`, and `container.is_ephemeral` is true."""
        ephemeral = next((e for e in self.ws.ephemerals
                          if e["ts"] == ephemeral_ts and e["user"] == user), None)
        if ephemeral is None:
            raise ValueError(f"no ephemeral message {ephemeral_ts} for {user}")
        ch = self.ws.channel(ephemeral["channel"])
        found_block, element = p.find_element(ephemeral.get("blocks") or [], action_id, None)
        action: dict[str, Any] = {
            "action_id": action_id, "block_id": found_block,
            "type": element.get("type", "button"), "action_ts": f"{time.time():.6f}",
            "value": value if value is not None else element.get("value")}
        url = self._new_response_url({"kind": "ephemeral", "channel": ch.id, "user": user,
                                      "ephemeral_ts": ephemeral_ts,
                                      "thread_ts": ephemeral.get("thread_ts")})
        payload = p.block_actions(self.ws, user=user, channel=ch,
                                  message={"ts": ephemeral_ts,
                                           "thread_ts": ephemeral.get("thread_ts")},
                                  action=action, response_url=url,
                                  trigger_id=self._new_trigger(user))
        payload["container"]["is_ephemeral"] = True
        del payload["message"]
        return await self._deliver(INTERACTIVE, payload)

    async def open_home(self, user: str, *, tab: str = "home") -> DeliveryResult | None:
        """A person opens the app's Home tab (or its Messages tab with `tab="messages"`):
        delivers `app_home_opened`, with the view published so far if there is one."""
        if user not in self.ws.users:
            raise ValueError(f"unknown user {user!r}: add_user() it first")
        event: dict[str, Any] = {"type": "app_home_opened", "user": user,
                                 "channel": "D" + user[1:], "tab": tab,
                                 "event_ts": self.ws.next_ts()}
        published = self.ws.home_views.get(user)
        if tab == "home" and published is not None:
            public = copy.deepcopy(published)
            public.pop("user", None)
            event["view"] = public
        return await self._deliver_event(event, None)

    async def click_home_button(self, *, user: str, action_id: str, value: str | None = None,
                                block_id: str | None = None,
                                seen: dict[str, Any] | None = None) -> DeliveryResult:
        """A person clicks a button of their Home tab: `block_actions` from a `view`
        container, with the view and no channel or message, as Slack sends it. `seen`: the
        view as the person's client still shows it (an older one the app has replaced)."""
        view = seen or self.ws.home_views.get(user)
        if view is None:
            raise ValueError(f"{user} has no Home view published")
        found_block, element = p.find_element(view.get("blocks") or [], action_id, block_id)
        action: dict[str, Any] = {
            "action_id": action_id, "block_id": found_block,
            "type": element.get("type", "button"), "action_ts": f"{time.time():.6f}",
            "value": value if value is not None else element.get("value")}
        if element.get("text") is not None:
            action["text"] = element["text"]
        public = copy.deepcopy(view)
        public.pop("user", None)
        payload = p.home_block_actions(self.ws, user=user, view=public, action=action,
                                       trigger_id=self._new_trigger(user, view["id"]))
        return await self._deliver(INTERACTIVE, payload)

    async def message_shortcut(self, callback_id: str, *, user: str, channel: str,
                               message_ts: str) -> DeliveryResult:
        """A person runs a message shortcut on a stored message (`message_action`)."""
        ch = self.ws.channel(channel)
        message = self._stored(ch, message_ts)
        url = self._new_response_url({"kind": "shortcut", "channel": ch.id, "user": user,
                                      "thread_ts": message.get("thread_ts") or message_ts})
        payload = p.message_action(self.ws, callback_id=callback_id, user=user, channel=ch,
                                   message=self.ws.public_message(ch, message),
                                   response_url=url, trigger_id=self._new_trigger(user))
        return await self._deliver(INTERACTIVE, payload)

    async def submit_view(self, view_id: str, *, user: str,
                          values: dict[str, dict[str, Any]] | None = None) -> DeliveryResult:
        """A person submits an open modal. `values` is `{block_id: {action_id: value}}`, a
        string value meaning a plain_text_input. The app's `response_action` is applied."""
        view = self.ws.views.get(view_id)
        if view is None:
            raise ValueError(f"no open view {view_id}")
        view["state"] = {"values": p.state_values(values or {})}
        trigger = self._new_trigger(user, view_id)
        result = await self._deliver(INTERACTIVE, p.view_submission(
            self.ws, user=user, view=view, trigger_id=trigger))
        if result.ok:
            self._apply_response_action(view, result)
        return result

    def _apply_response_action(self, view: dict[str, Any], result: DeliveryResult) -> None:
        try:
            answer = result.json() or {}
        except ValueError:
            answer = {}
        action = answer.get("response_action") if isinstance(answer, dict) else None
        views = self.ws.views
        if action == "errors":
            return
        if action == "update" and isinstance(answer.get("view"), dict):
            view.update({k: answer["view"][k] for k in (
                "blocks", "title", "submit", "close", "private_metadata", "callback_id")
                if k in answer["view"]})
            view["state"] = {"values": {}}
            return
        if action == "push" and isinstance(answer.get("view"), dict):
            new_id = self.ws.new_id("V")
            views[new_id] = {**copy.deepcopy(view), **answer["view"], "id": new_id,
                             "previous_view_id": view["id"], "state": {"values": {}}}
            return
        if action == "clear":
            for vid in [v["id"] for v in views.values()
                        if v["root_view_id"] == view["root_view_id"]]:
                del views[vid]
            return
        views.pop(view["id"], None)  # a plain ack closes the submitted view

    def _apply_response_url(self, context: dict[str, Any], payload: dict[str, Any]) -> None:
        """What Slack does with a response_url message: replace, delete, post or whisper."""
        channel, ts = context["channel"], context.get("message_ts")
        content = {k: payload[k] for k in ("text", "blocks") if k in payload}
        if context.get("kind") == "ephemeral":
            target = next((e for e in self.ws.ephemerals
                           if e["ts"] == context["ephemeral_ts"]), None)
            if target is not None and payload.get("delete_original"):
                self.ws.ephemerals.remove(target)
                return
            if target is not None and payload.get("replace_original"):
                target.update({"blocks": None, **content})
                return
        if payload.get("delete_original") and ts:
            self.api.chat_delete({"channel": channel, "ts": ts})
        elif payload.get("replace_original") and ts:
            self.api.chat_update({"channel": channel, "ts": ts, **content})
        elif payload.get("response_type") == "in_channel":
            thread_ts = payload.get("thread_ts") or (
                context.get("thread_ts") if context["kind"] != "command" else None)
            self.api.chat_post_message({"channel": channel, "thread_ts": thread_ts, **content})
        else:
            self.ws.ephemerals.append({"channel": channel, "user": context["user"],
                                       "ts": self.ws.next_ts(), "thread_ts": None,
                                       "username": None, "blocks": None,
                                       "source": "response_url", **content})
